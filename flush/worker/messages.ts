/**
 * What crosses the encode worker's boundary (plain objects with a `kind`: they survive
 * structured cloning): the jobs it runs, their results, and its ready signal.
 */
import type { WireError } from "../encode/errors.js";
import type { MergeRequest, MergeResult } from "../encode/merge.js";
import type { ParquetFacts } from "../encode/read-parquet.js";
import type { EncodeInput, EncodeOptions, EncodeTimings, EncodedFile } from "../encode/types.js";

/** What one input of an `encodeMany` job gave: its files, or why it could not be encoded. */
export type EncodeOutcome<E = WireError> = { readonly files: EncodedFile[] } | { readonly error: E };

/**
 * The jobs: encode a flush's rows; encode the rows of many small flushes in one round trip;
 * merge files of a partition (compaction); read files' footers.
 */
export type Job =
    | { readonly kind: "encode"; readonly input: EncodeInput; readonly options: EncodeOptions }
    | { readonly kind: "encodeMany"; readonly inputs: readonly EncodeInput[]; readonly options: EncodeOptions }
    | { readonly kind: "merge"; readonly request: MergeRequest; readonly options: EncodeOptions }
    | { readonly kind: "describe"; readonly paths: readonly string[] };

/** What each job kind answers. */
export interface JobResults {
    readonly encode: { readonly files: EncodedFile[]; readonly timings: EncodeTimings };
    /** One outcome per input, in order (an input that fails fails alone). */
    readonly encodeMany: { readonly outcomes: EncodeOutcome[]; readonly timings: EncodeTimings };
    readonly merge: MergeResult;
    readonly describe: ParquetFacts[];
}

export type JobResult = JobResults[Job["kind"]];

/** Main thread → worker. */
export interface JobMessage {
    readonly kind: "job";
    readonly id: number;
    readonly job: Job;
}

/** Worker → main thread. */
export type ReplyMessage =
    | { readonly kind: "done"; readonly id: number; readonly result: JobResult }
    | {
          readonly kind: "failed";
          readonly id: number;
          readonly error: WireError;
          /** The wasm instance may be corrupt (a panic): the client replaces the worker. */
          readonly fatal: boolean;
      };

/** Worker → main thread, once, before any reply: the encoder (Arrow, parquet-wasm) is loaded. */
export interface ReadyMessage {
    readonly kind: "ready";
}

export function isReady(value: unknown): value is ReadyMessage {
    return (value as { kind?: unknown } | null)?.kind === "ready";
}

export function isReply(value: unknown): value is ReplyMessage {
    const kind = (value as { kind?: unknown } | null)?.kind;
    return (kind === "done" || kind === "failed") && typeof (value as { id?: unknown }).id === "number";
}

export function isJobMessage(value: unknown): value is JobMessage {
    return (value as { kind?: unknown } | null)?.kind === "job";
}

/** `workerData` of an encode worker: what tells the module to serve jobs, and how. */
export const WORKER_KIND = "sluice-encode-worker";
export interface WorkerData {
    readonly kind: typeof WORKER_KIND;
    /** Nice value to give the worker's thread (0: leave it). */
    readonly nice: number;
}

/**
 * The Parquet encode worker (DESIGN.md §1: heavy work never runs on the event loop).
 *
 * This one module is both ends:
 * - in a `worker_threads` worker started by `EncodeWorker` (marked by its `workerData`), it
 *   loads parquet-wasm and answers `encode` jobs with `encodeParquet`;
 * - on the main thread it only exports `EncodeWorker`, the client: one job at a time per
 *   worker, the rest queued; a worker that dies mid-job fails that job and is replaced for the
 *   next one. The main thread never loads Arrow or the wasm module.
 *
 * A job's typed arrays are transferred, not copied: after `encode()` the caller's segments are
 * detached (their arrays read as empty). Arrays that are views into a larger buffer (an open
 * segment's spare capacity, Node's Buffer pool) are copied to exact-size buffers first, so a
 * transfer never takes memory that is not the segments'. The encoded files come back the same way.
 */
import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { type ResourceLimits, Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import type { Column, ColumnarBatch } from "../src/columnar/batch.js";
import { type WireError, EncodeError, EncodeInputError, EncodeWorkerClosedError, EncodeWorkerDiedError, encodeErrorFromWire, encodeErrorToWire } from "./encode/errors.js";
import type { EncodeInput, EncodeOptions, EncodeTimings, EncodedFile } from "./encode/types.js";

// ---------------------------------------------------------------------------------------------
// Messages (plain objects with a `kind`: they survive structured cloning)

/** Main thread → worker. */
export interface EncodeJobMessage {
    readonly kind: "encode";
    readonly id: number;
    readonly input: EncodeInput;
    readonly options: EncodeOptions;
}

/** Worker → main thread. */
export type EncodeReplyMessage =
    | { readonly kind: "encoded"; readonly id: number; readonly files: EncodedFile[]; readonly timings: EncodeTimings }
    | {
          readonly kind: "failed";
          readonly id: number;
          readonly error: WireError;
          /** The wasm instance may be corrupt (a panic): the client replaces the worker. */
          readonly fatal: boolean;
      };

/** Worker → main thread, once, before any reply: the encoder (Arrow, parquet-wasm) is loaded. */
export interface WorkerReadyMessage {
    readonly kind: "ready";
}

function isReady(value: unknown): value is WorkerReadyMessage {
    return (value as { kind?: unknown } | null)?.kind === "ready";
}

function isReply(value: unknown): value is EncodeReplyMessage {
    const kind = (value as { kind?: unknown } | null)?.kind;
    return (kind === "encoded" || kind === "failed") && typeof (value as { id?: unknown }).id === "number";
}

/** `workerData` of an encode worker: what tells this module to serve jobs, and how. */
const WORKER_KIND = "sluice-encode-worker";
interface EncodeWorkerData {
    readonly kind: typeof WORKER_KIND;
    /** Nice value to give the worker's thread (0: leave it). */
    readonly nice: number;
}

// ---------------------------------------------------------------------------------------------
// Transfer lists

type TypedArray = BigInt64Array | BigUint64Array | Float64Array | Uint32Array | Uint8Array;

function typedArrays(column: Column): TypedArray[] {
    const arrays: TypedArray[] = column.type === "s" ? [column.codes] : [column.values];
    if (column.type !== "t" && column.valid !== undefined) arrays.push(column.valid);
    return arrays;
}

function coversBuffer(array: TypedArray): boolean {
    return array.byteOffset === 0 && array.byteLength === array.buffer.byteLength;
}

/**
 * The segments as they are posted, and the buffers to transfer with them: every buffer some
 * array covers exactly, once (posting a buffer twice throws); arrays that are views into a
 * larger buffer nobody transfers (an open segment's spare capacity) are replaced by exact
 * copies, which are transferred.
 */
export function transferableSegments(segments: readonly ColumnarBatch[]): { segments: ColumnarBatch[]; transfer: ArrayBuffer[] } {
    const whole = new Set<ArrayBuffer>();
    for (const segment of segments) {
        for (const column of segment.columns.values()) {
            for (const array of typedArrays(column)) {
                if (array.buffer instanceof ArrayBuffer && coversBuffer(array)) whole.add(array.buffer);
            }
        }
    }
    const exact = <T extends TypedArray>(array: T): T => {
        if (!(array.buffer instanceof ArrayBuffer) || whole.has(array.buffer)) return array;
        const copy = array.slice() as T;
        whole.add(copy.buffer as ArrayBuffer);
        return copy;
    };
    return { segments: segments.map((segment) => withColumns(segment, exact)), transfer: [...whole] };
}

/** The batch with every typed array passed through `exact`. */
function withColumns(batch: ColumnarBatch, exact: <T extends TypedArray>(array: T) => T): ColumnarBatch {
    const columns = new Map<string, Column>();
    for (const [name, column] of batch.columns) {
        const validity = column.type !== "t" && column.valid !== undefined ? { valid: exact(column.valid) } : {};
        switch (column.type) {
            case "t":
                columns.set(name, { type: "t", values: exact(column.values) });
                break;
            case "s":
                columns.set(name, { type: "s", dict: column.dict, codes: exact(column.codes), ...validity });
                break;
            case "f":
                columns.set(name, { type: "f", values: exact(column.values), ...validity });
                break;
            case "i":
                columns.set(name, { type: "i", values: exact(column.values), ...validity });
                break;
            case "u":
                columns.set(name, { type: "u", values: exact(column.values), ...validity });
                break;
            case "b":
                columns.set(name, { type: "b", values: exact(column.values), ...validity });
                break;
        }
    }
    return { measurement: batch.measurement, rows: batch.rows, tags: [...batch.tags], columns };
}

function isDataCloneError(error: unknown): boolean {
    return (error as { name?: unknown } | null)?.name === "DataCloneError";
}

// ---------------------------------------------------------------------------------------------
// Worker side

/** A `WebAssembly.RuntimeError` (a Rust panic or trap): the instance may be left inconsistent. */
function isWasmTrap(error: unknown): boolean {
    return error instanceof Error && error.name === "RuntimeError";
}

/**
 * Gives the calling thread a lower CPU priority, never a higher one. On Linux a thread's id works
 * as a pid for setpriority(2), and only that thread changes. Nothing changes where that id
 * cannot be trusted: no /proc/thread-self (not Linux), or a /proc of another pid namespace (its
 * `<pid>/task/<tid>` does not name this process), rather than renicing some other process.
 */
function lowerThreadPriority(nice: number): void {
    let tid: number;
    try {
        const match = /^(\d+)\/task\/(\d+)$/.exec(readlinkSync("/proc/thread-self"));
        if (match === null || Number(match[1]) !== process.pid) return;
        tid = Number(match[2]);
    } catch {
        return;
    }
    try {
        if (nice > getPriority(tid)) setPriority(tid, nice);
    } catch {
        // EACCES/EPERM in a locked-down sandbox: encoding still works, at normal priority.
    }
}

async function serve({ nice }: EncodeWorkerData): Promise<void> {
    if (nice > 0) lowerThreadPriority(nice);
    const port = parentPort!;
    const { encodeParquet } = await import("./encode/parquet.js");
    const { emptyTimings } = await import("./encode/types.js");
    const ready: WorkerReadyMessage = { kind: "ready" };
    port.postMessage(ready);
    port.on("message", (message: EncodeJobMessage | undefined) => {
        if (message?.kind !== "encode") return;
        try {
            const timings = emptyTimings();
            const files = encodeParquet(message.input, message.options, timings);
            const reply: EncodeReplyMessage = { kind: "encoded", id: message.id, files, timings };
            port.postMessage(reply, [...new Set(files.map((file) => file.bytes.buffer as ArrayBuffer))]);
        } catch (error) {
            const fatal = isWasmTrap(error) || isWasmTrap((error as { cause?: unknown } | null)?.cause);
            const reply: EncodeReplyMessage = { kind: "failed", id: message.id, error: encodeErrorToWire(error), fatal };
            port.postMessage(reply);
        }
    });
}

if (!isMainThread && (workerData as { kind?: unknown } | null)?.kind === WORKER_KIND) {
    serve(workerData as EncodeWorkerData).catch((error: unknown) => {
        // Could not load the encoder (e.g. the wasm module): die loudly, the client reports it.
        setImmediate(() => {
            throw error;
        });
    });
}

// ---------------------------------------------------------------------------------------------
// Main-thread client

/**
 * The compiled worker module. From `dist/` that is the sibling `encode-worker.js`. Under a
 * TypeScript loader (vitest runs `flush/encode-worker.ts`), Node 20 cannot start a `.ts` file
 * as a worker, so the compiled twin in `dist/flush/` is used (`npm test` builds first).
 */
export function defaultWorkerUrl(): URL {
    const here = import.meta.url;
    return here.endsWith(".ts") ? new URL("../dist/flush/encode-worker.js", here) : new URL("./encode-worker.js", here);
}

export interface EncodeWorkerOptions {
    /** The worker module to start (see `defaultWorkerUrl`). */
    readonly workerUrl?: URL;
    /** V8 heap limits of the worker thread (parquet-wasm's linear memory is outside them). */
    readonly resourceLimits?: ResourceLimits;
    /**
     * Nice value of the worker's thread, 0-19 (Linux): encoding yields the CPU to ingest when
     * both want it, and still takes any CPU left over. 0 leaves the process's priority.
     */
    readonly nice?: number;
}

export const ENCODE_WORKER_DEFAULTS = {
    workerUrl: defaultWorkerUrl(),
    resourceLimits: {},
    nice: 0,
} as const satisfies { [K in keyof Required<EncodeWorkerOptions>]: EncodeWorkerOptions[K] };

export interface EncodeResult {
    readonly files: EncodedFile[];
    readonly timings: EncodeTimings;
}

interface Job {
    readonly id: number;
    readonly input: EncodeInput;
    readonly options: EncodeOptions;
    resolve(result: EncodeResult): void;
    reject(error: Error): void;
}

export interface EncodeWorkerStats {
    jobs: number;
    failedJobs: number;
    /** Workers started, the first one included. */
    workersStarted: number;
    /** Workers that exited or were replaced while holding a job. */
    workerDeaths: number;
    /** A worker runs and has loaded its encoder. */
    ready: boolean;
}

export class EncodeWorker {
    readonly #options: Required<EncodeWorkerOptions>;
    readonly #queue: Job[] = [];
    readonly #stats: Omit<EncodeWorkerStats, "ready"> = { jobs: 0, failedJobs: 0, workersStarted: 0, workerDeaths: 0 };
    #worker: Worker | undefined;
    /** The last worker that reported ready. */
    #readyWorker: Worker | undefined;
    #current: Job | undefined;
    /** The last 'error' event of the current worker: the reason given when it exits. */
    #lastError: Error | undefined;
    #nextId = 1;
    #closing: Promise<void> | undefined;
    #drained: (() => void) | undefined;

    constructor(options: EncodeWorkerOptions = {}) {
        this.#options = {
            workerUrl: options.workerUrl ?? ENCODE_WORKER_DEFAULTS.workerUrl,
            resourceLimits: options.resourceLimits ?? ENCODE_WORKER_DEFAULTS.resourceLimits,
            nice: options.nice ?? ENCODE_WORKER_DEFAULTS.nice,
        };
        if (!Number.isInteger(this.#options.nice) || this.#options.nice < 0 || this.#options.nice > 19) {
            throw new RangeError(`nice must be an integer from 0 to 19, got ${this.#options.nice}`);
        }
    }

    get stats(): Readonly<EncodeWorkerStats> {
        return { ...this.#stats, ready: this.#worker !== undefined && this.#readyWorker === this.#worker };
    }

    /** The worker thread's id while one runs (for tests and diagnostics). */
    get threadId(): number | undefined {
        return this.#worker?.threadId;
    }

    /**
     * Starts the worker now if none runs, so that its start (a V8 isolate, Arrow, compiling
     * parquet-wasm: ~0.2 s of CPU on several threads) happens before the first job instead of
     * during the first flush. It does not keep the process alive while it has no job.
     */
    start(): void {
        if (this.#closing !== undefined || this.#worker !== undefined) return;
        let worker: Worker;
        try {
            worker = this.#start();
        } catch {
            // The first job starts it again and reports why it cannot.
            return;
        }
        if (this.#current === undefined) worker.unref();
    }

    /** Encodes in the worker; the input's typed arrays are transferred (detached here). */
    async encode(input: EncodeInput, options: EncodeOptions): Promise<EncodedFile[]> {
        return (await this.encodeWithTimings(input, options)).files;
    }

    /** `encode`, plus where the worker spent the time. */
    encodeWithTimings(input: EncodeInput, options: EncodeOptions): Promise<EncodeResult> {
        if (this.#closing !== undefined) return Promise.reject(new EncodeWorkerClosedError());
        return new Promise<EncodeResult>((resolve, reject) => {
            this.#queue.push({ id: this.#nextId++, input, options, resolve, reject });
            this.#pump();
        });
    }

    /**
     * Refuses new jobs, lets the running and queued ones finish, then stops the worker.
     * Idempotent.
     */
    close(): Promise<void> {
        this.#closing ??= (async () => {
            if (this.#current !== undefined || this.#queue.length > 0) {
                await new Promise<void>((resolve) => (this.#drained = resolve));
            }
            const worker = this.#worker;
            this.#worker = undefined;
            if (worker !== undefined) await worker.terminate();
        })();
        return this.#closing;
    }

    #pump(): void {
        if (this.#current !== undefined) return;
        const job = this.#queue.shift();
        if (job === undefined) {
            this.#worker?.unref();
            this.#drained?.();
            return;
        }
        this.#current = job;
        this.#stats.jobs++;
        let worker: Worker;
        try {
            worker = this.#worker ?? this.#start();
        } catch (error) {
            this.#finish(job, new EncodeWorkerDiedError(`could not start the encode worker: ${(error as Error).message}`, { cause: error }));
            return;
        }
        worker.ref();
        const { segments, transfer } = transferableSegments(job.input.segments);
        const message: EncodeJobMessage = { kind: "encode", id: job.id, input: { ...job.input, segments }, options: job.options };
        try {
            try {
                worker.postMessage(message, transfer);
            } catch (error) {
                // Some buffer cannot be transferred (e.g. marked untransferable): copy instead.
                if (!isDataCloneError(error)) throw error;
                worker.postMessage(message);
            }
        } catch (error) {
            this.#finish(job, new EncodeInputError(`the batch cannot be sent to the encode worker: ${(error as Error).message}`, { cause: error }));
        }
    }

    #start(): Worker {
        const workerData: EncodeWorkerData = { kind: WORKER_KIND, nice: this.#options.nice };
        const worker = new Worker(this.#options.workerUrl, { workerData, resourceLimits: this.#options.resourceLimits });
        this.#stats.workersStarted++;
        this.#worker = worker;
        this.#lastError = undefined;
        worker.on("message", (message: unknown) => {
            this.#onMessage(worker, message);
        });
        worker.on("error", (error: Error) => {
            if (this.#worker === worker) this.#lastError = error;
        });
        worker.on("messageerror", (error: Error) => {
            if (this.#worker === worker && this.#current !== undefined) {
                this.#finish(this.#current, new EncodeWorkerDiedError(`the encode worker's answer could not be read: ${error.message}`, { cause: error }));
            }
        });
        worker.on("exit", (code: number) => {
            this.#onExit(worker, code);
        });
        return worker;
    }

    #onMessage(worker: Worker, message: unknown): void {
        if (worker === this.#worker && isReady(message)) {
            this.#readyWorker = worker;
            return;
        }
        const job = this.#current;
        if (worker !== this.#worker || job === undefined || !isReply(message) || message.id !== job.id) return;
        if (message.kind === "encoded") {
            this.#finish(job, undefined, { files: message.files, timings: message.timings });
            return;
        }
        if (message.fatal) this.#retire(worker);
        this.#finish(job, encodeErrorFromWire(message.error));
    }

    /** Drops a worker whose wasm state may be corrupt; the next job starts a fresh one. */
    #retire(worker: Worker): void {
        if (this.#worker === worker) this.#worker = undefined;
        void worker.terminate();
    }

    #onExit(worker: Worker, code: number): void {
        if (this.#worker !== worker) return;
        this.#worker = undefined;
        const job = this.#current;
        if (job === undefined) return;
        this.#stats.workerDeaths++;
        const reason = this.#lastError === undefined ? "" : `: ${this.#lastError.message}`;
        this.#finish(job, new EncodeWorkerDiedError(`the encode worker exited with code ${code} during a job${reason}`, { cause: this.#lastError }));
    }

    #finish(job: Job, error: EncodeError | undefined, result?: EncodeResult): void {
        if (this.#current !== job) return;
        this.#current = undefined;
        if (error === undefined) {
            job.resolve(result!);
        } else {
            this.#stats.failedJobs++;
            job.reject(error);
        }
        this.#pump();
    }
}

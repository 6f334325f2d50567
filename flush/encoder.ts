/** The encoder the flush loop and compaction use: the worker thread, with Sluice's file settings bound. */
import { SLUICE_VERSION } from "../src/version.js";
import type { EncodeInput, EncodeOptions } from "./encode/types.js";
import type { BatchEncoder } from "./flusher.js";
import type { MergeWorker } from "./upkeep/compactor.js";
import { EncodeWorker } from "./worker/client.js";
import type { EncodeOutcome } from "./worker/messages.js";

export interface ClosableEncoder extends BatchEncoder, MergeWorker {
    encodeMany(inputs: readonly EncodeInput[]): Promise<readonly EncodeOutcome<Error>[]>;
    /** The settings every file is written with (version, dedup). */
    readonly options: EncodeOptions;
    /** Starts the encoder now (it loads off the event loop), rather than at the first flush. */
    start(): void;
    close(): Promise<void>;
}

/** `nice`: the encode thread's nice value (flush.worker_nice); `dedup`: merge rows of the same point (dedup.enabled). */
export function createEncoder(settings: { readonly nice?: number; readonly dedup?: boolean } = {}): ClosableEncoder {
    const worker = new EncodeWorker(settings.nice === undefined ? {} : { nice: settings.nice });
    const options: EncodeOptions = { sluiceVersion: SLUICE_VERSION, dedup: settings.dedup ?? true };
    return {
        options,
        encode: (input) => worker.encode(input, options),
        encodeMany: (inputs) => worker.encodeMany(inputs, options),
        merge: (request, mergeOptions) => worker.merge(request, mergeOptions),
        describe: (paths) => worker.describe(paths),
        start: () => {
            worker.start();
        },
        close: () => worker.close(),
    };
}

/** The encoder the flush loop uses: the worker thread, with Sluice's file settings bound. */
import { SLUICE_VERSION } from "../src/version.js";
import { EncodeWorker } from "./encode-worker.js";
import type { BatchEncoder } from "./flusher.js";

export interface ClosableEncoder extends BatchEncoder {
    close(): Promise<void>;
}

/** `nice`: the encode thread's nice value (flush.worker_nice). */
export function createEncoder(options: { readonly nice?: number } = {}): ClosableEncoder {
    const worker = new EncodeWorker(options.nice === undefined ? {} : { nice: options.nice });
    return {
        encode: (input) => worker.encode(input, { sluiceVersion: SLUICE_VERSION }),
        close: () => worker.close(),
    };
}

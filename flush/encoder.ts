/** The encoder the flush loop uses: the worker thread, with Sluice's file settings bound. */
import { SLUICE_VERSION } from "../src/version.js";
import { EncodeWorker } from "./encode-worker.js";
import type { BatchEncoder } from "./flusher.js";

export interface ClosableEncoder extends BatchEncoder {
    /** Starts the encoder now (it loads off the event loop), rather than at the first flush. */
    start(): void;
    close(): Promise<void>;
}

/** `nice`: the encode thread's nice value (flush.worker_nice). */
export function createEncoder(options: { readonly nice?: number } = {}): ClosableEncoder {
    const worker = new EncodeWorker(options);
    return {
        encode: (input) => worker.encode(input, { sluiceVersion: SLUICE_VERSION }),
        start: () => {
            worker.start();
        },
        close: () => worker.close(),
    };
}

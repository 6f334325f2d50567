/** The encoder the flush loop uses: the worker thread, with Sluice's file settings bound. */
import { SLUICE_VERSION } from "../src/version.js";
import { EncodeWorker } from "./worker/client.js";
import type { BatchEncoder } from "./flusher.js";

export interface ClosableEncoder extends BatchEncoder {
    /** Starts the encoder now (it loads off the event loop), rather than at the first flush. */
    start(): void;
    close(): Promise<void>;
}

/** `nice`: the encode thread's nice value (flush.worker_nice); `dedup`: merge rows of the same point (dedup.enabled). */
export function createEncoder(options: { readonly nice?: number; readonly dedup?: boolean } = {}): ClosableEncoder {
    const worker = new EncodeWorker(options.nice === undefined ? {} : { nice: options.nice });
    const encodeOptions = { sluiceVersion: SLUICE_VERSION, dedup: options.dedup ?? true };
    return {
        encode: (input) => worker.encode(input, encodeOptions),
        start: () => {
            worker.start();
        },
        close: () => worker.close(),
    };
}

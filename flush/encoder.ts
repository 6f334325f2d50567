/** The encoder the flush loop uses: the worker thread, with Sluice's file settings bound. */
import { SLUICE_VERSION } from "../src/version.js";
import { EncodeWorker } from "./encode-worker.js";
import type { BatchEncoder } from "./flusher.js";

export interface ClosableEncoder extends BatchEncoder {
    close(): Promise<void>;
}

export function createEncoder(): ClosableEncoder {
    const worker = new EncodeWorker();
    return {
        encode: (input) => worker.encode(input, { sluiceVersion: SLUICE_VERSION }),
        close: () => worker.close(),
    };
}

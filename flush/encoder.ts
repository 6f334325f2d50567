/** The encoder the flush loop and compaction use: the worker thread, with Sluice's file settings bound. */
import type { Config } from "../src/config/schema.js";
import { SLUICE_VERSION } from "../src/version.js";
import type { EncodeOptions, TimeUnit } from "./encode/types.js";
import type { BatchEncoder } from "./flusher.js";
import type { MergeWorker } from "./upkeep/compactor.js";
import { EncodeWorker } from "./worker/client.js";

export interface ClosableEncoder extends BatchEncoder, MergeWorker {
    /** The settings every file is written with (version, dedup, time unit). */
    readonly options: EncodeOptions;
    /** Starts the encoder now (it loads off the event loop), rather than at the first flush. */
    start(): void;
    close(): Promise<void>;
}

export interface EncoderSettings {
    /** The encode thread's nice value (flush.worker_nice). */
    readonly nice?: number;
    /** Merge rows of the same point (dedup.enabled). */
    readonly dedup?: boolean;
    /** The unit of the files' `time` column (parquet.time_unit). */
    readonly timeUnit?: TimeUnit;
}

/** The encoder settings a configuration asks for (every process that writes Parquet uses these). */
export function encoderSettings(config: Config): EncoderSettings {
    return { nice: config.flush.worker_nice, dedup: config.dedup.enabled, timeUnit: config.parquet.time_unit };
}

export function createEncoder(settings: EncoderSettings = {}): ClosableEncoder {
    const worker = new EncodeWorker(settings.nice === undefined ? {} : { nice: settings.nice });
    const options: EncodeOptions = { sluiceVersion: SLUICE_VERSION, dedup: settings.dedup ?? true, ...(settings.timeUnit === undefined ? {} : { timeUnit: settings.timeUnit }) };
    return {
        options,
        encode: (input) => worker.encode(input, options),
        merge: (request, mergeOptions) => worker.merge(request, mergeOptions),
        describe: (paths) => worker.describe(paths),
        start: () => {
            worker.start();
        },
        close: () => worker.close(),
    };
}

/**
 * The encoder the flush loop and compaction use, with Sluice's file settings bound: two worker
 * threads, one encoding flushes and one merging for compaction (started at its first merge), so
 * that a merge of minutes never holds a flush back; the merge thread runs at a lower priority.
 */
import type { Config } from "../src/config/schema.js";
import { SLUICE_VERSION } from "../src/version.js";
import type { EncodeInput, EncodeOptions, TimeUnit } from "./encode/types.js";
import type { BatchEncoder } from "./flusher.js";
import type { MergeWorker } from "./upkeep/compactor.js";
import { EncodeWorker } from "./worker/client.js";
import type { EncodeOutcome } from "./worker/messages.js";

export interface ClosableEncoder extends BatchEncoder, MergeWorker {
    encodeMany(inputs: readonly EncodeInput[]): Promise<readonly EncodeOutcome<Error>[]>;
    /** The settings every file is written with (version, dedup, time unit). */
    readonly options: EncodeOptions;
    /** Starts the encoder now (it loads off the event loop), rather than at the first flush. */
    start(): void;
    /** Fails the merge under way and any queued (EncodeWorkerClosedError) and stops the merge thread: a shutdown does not wait for a compaction. */
    stopMerges(): Promise<void>;
    close(): Promise<void>;
}

export interface EncoderSettings {
    /** The encode thread's nice value (flush.worker_nice). */
    readonly nice?: number;
    /** The merge thread's nice value (compaction.worker_nice). */
    readonly mergeNice?: number;
    /** Merge rows of the same point (dedup.enabled). */
    readonly dedup?: boolean;
    /** The unit of the files' `time` column (parquet.time_unit). */
    readonly timeUnit?: TimeUnit;
    /** Flush files of at most this many rows are written by hyparquet-writer (parquet.small_file_rows). */
    readonly smallFileRows?: number;
}

/** The encoder settings a configuration asks for (every process that writes Parquet uses these). */
export function encoderSettings(config: Config): EncoderSettings {
    return {
        nice: config.flush.worker_nice,
        mergeNice: config.compaction.worker_nice,
        dedup: config.dedup.enabled,
        timeUnit: config.parquet.time_unit,
        smallFileRows: config.parquet.small_file_rows,
    };
}

export function createEncoder(settings: EncoderSettings = {}): ClosableEncoder {
    const worker = new EncodeWorker(settings.nice === undefined ? {} : { nice: settings.nice });
    const merger = new EncodeWorker(settings.mergeNice === undefined ? {} : { nice: settings.mergeNice });
    const options: EncodeOptions = {
        sluiceVersion: SLUICE_VERSION,
        dedup: settings.dedup ?? true,
        ...(settings.timeUnit === undefined ? {} : { timeUnit: settings.timeUnit }),
        ...(settings.smallFileRows === undefined ? {} : { smallFileRows: settings.smallFileRows }),
    };
    return {
        options,
        encode: (input) => worker.encode(input, options),
        encodeMany: (inputs) => worker.encodeMany(inputs, options),
        merge: (request, mergeOptions) => merger.merge(request, mergeOptions),
        describe: (paths) => merger.describe(paths),
        start: () => {
            worker.start();
        },
        release: () => merger.release(),
        stopMerges: () => merger.abort(),
        close: async () => {
            await Promise.all([worker.close(), merger.close()]);
        },
    };
}

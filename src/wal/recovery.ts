/**
 * Recovery: replays the WAL entries that are not yet in Parquet, in sequence order, through a
 * columnar callback. It never deletes anything: WAL files go only through purge, once the
 * replayed rows are flushed.
 */
import type { ColumnarBatch } from "../columnar/batch.js";
import { sliceBatch } from "../columnar/slice.js";
import { type FileSystem, nodeFileSystem } from "../fs/file-system.js";
import { WalDirectoryReader, decodedRecords } from "./directory-reader.js";

/** The highest sequence of (database, measurement) already in Parquet, or -1 for none. */
export type FlushedThrough = (database: string, measurement: string) => number;

export const NOTHING_FLUSHED: FlushedThrough = () => -1;

export interface RecoveryEvent {
    readonly file: string;
    readonly sequence?: number;
    readonly reason: string;
}

export interface RecoveryOptions {
    readonly dir: string;
    /** Receives the replayed rows, at most `batchRows` at a time; awaited before reading on. */
    readonly onBatch: (database: string, measurement: string, batch: ColumnarBatch, sequence: number) => void | Promise<void>;
    readonly flushedThrough?: FlushedThrough;
    /** The most rows one callback receives (an entry with more is split). */
    readonly batchRows?: number;
    /** The writer's active file, which recovery must not read. */
    readonly skipFile?: string | undefined;
    readonly fileSystem?: FileSystem;
    /** Told about every corrupt entry and unreadable file, as they are met. */
    readonly onProblem?: (event: RecoveryEvent) => void;
}

export const RECOVERY_DEFAULTS = {
    flushedThrough: NOTHING_FLUSHED,
    batchRows: 10_000,
} as const satisfies Partial<{ [K in keyof RecoveryOptions]: RecoveryOptions[K] }>;

export interface RecoveryStats {
    /** Files read (bad and skipped files not included). */
    recoveredFiles: number;
    /** Callback invocations. */
    recoveredBatches: number;
    /** Entries replayed. */
    recoveredEntries: number;
    recoveredRows: number;
    /** Entries passed over because their rows are already in Parquet. */
    alreadyFlushedEntries: number;
    /** Entries that failed their CRC or could not be decoded, and unreadable file rests. */
    corruptedEntries: number;
    /** Requests cut short by a crash (their last entry missing: never acknowledged), and their entries not replayed. */
    incompleteRequests: number;
    droppedEntries: number;
    /** Files not read: the active file and files with a bad header. */
    skippedFiles: number;
    tornTails: number;
    durationMs: number;
}

export async function recoverWal(options: RecoveryOptions): Promise<RecoveryStats> {
    const started = performance.now();
    const flushedThrough = options.flushedThrough ?? RECOVERY_DEFAULTS.flushedThrough;
    const batchRows = Math.max(1, options.batchRows ?? RECOVERY_DEFAULTS.batchRows);
    const report = options.onProblem ?? (() => undefined);
    const stats: RecoveryStats = {
        recoveredFiles: 0,
        recoveredBatches: 0,
        recoveredEntries: 0,
        recoveredRows: 0,
        alreadyFlushedEntries: 0,
        corruptedEntries: 0,
        incompleteRequests: 0,
        droppedEntries: 0,
        skippedFiles: 0,
        tornTails: 0,
        durationMs: 0,
    };
    const reader = new WalDirectoryReader(options.dir, { skipFile: options.skipFile, fileSystem: options.fileSystem ?? nodeFileSystem });
    for await (const record of decodedRecords(reader)) {
        if (record.kind === "problem") {
            if (record.fileSkipped) stats.skippedFiles++;
            else if (record.droppedEntries !== undefined) {
                stats.incompleteRequests++;
                stats.droppedEntries += record.droppedEntries;
            } else stats.corruptedEntries++;
            report({ file: record.file.name, ...(record.sequence === undefined ? {} : { sequence: record.sequence }), reason: record.reason });
            continue;
        }
        const { database, batch, sequence } = record;
        if (sequence <= flushedThrough(database, batch.measurement)) {
            stats.alreadyFlushedEntries++;
            continue;
        }
        for (let start = 0; start < batch.rows; start += batchRows) {
            await options.onBatch(database, batch.measurement, sliceBatch(batch, start, Math.min(batch.rows, start + batchRows)), sequence);
            stats.recoveredBatches++;
        }
        stats.recoveredEntries++;
        stats.recoveredRows += batch.rows;
    }
    const readable = reader.scans.filter((scan) => scan.badHeader === undefined);
    stats.recoveredFiles = readable.length;
    stats.tornTails = readable.filter((scan) => scan.tornTailOffset !== undefined).length;
    stats.skippedFiles += reader.skipped.length;
    stats.durationMs = performance.now() - started;
    return stats;
}

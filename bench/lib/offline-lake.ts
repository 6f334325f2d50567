/**
 * A lake written offline, fast, through Sluice's own write and flush path: `Engine` (WAL,
 * buffers, the encode worker, the commit protocol and its manifest) in this process, one flush
 * per simulated minute, so the files and their layout
 * (`<data>/parquet/<db>/<m>/date=…/hour=…/*.parquet`) are exactly what a server flushing every
 * minute leaves. Fast because the engine's clock is moved by the writer (a day takes minutes,
 * not a day), the WAL is not synced and the file system seam skips every fsync: these files are
 * a benchmark's input, not data to keep (the caller runs `sync` before measuring anything).
 */
import { performance } from "node:perf_hooks";
import { ManualClock } from "../../src/clock.js";
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import { loadConfig } from "../../src/config/load.js";
import { Engine } from "../../src/engine.js";
import { type FileSystem, nodeFileSystem } from "../../src/fs/file-system.js";
import { silentLogger } from "../../src/log.js";
import { createEncoder } from "../../flush/encoder.js";

/** The real file system, with every fsync and fdatasync skipped. */
const unsyncedFileSystem: FileSystem = {
    ...nodeFileSystem,
    open: async (path, mode) => ({ ...(await nodeFileSystem.open(path, mode)), datasync: async () => undefined, sync: async () => undefined }),
    syncDirectory: async () => undefined,
};

export interface OfflineLakeReport {
    readonly flushes: number;
    readonly files: number;
    readonly rows: number;
    readonly bytes: number;
    readonly seconds: number;
}

/**
 * Writes `minutes` minutes into `dataDir` (database `database`): minute m's batches are
 * written at simulated time `startMs + (m + 1) min`, then flushed (one file per measurement).
 */
export async function writeLakeOffline(options: {
    readonly dataDir: string;
    readonly database: string;
    readonly startMs: number;
    readonly minutes: number;
    readonly batchesOf: (minute: number) => ColumnarBatch[];
    readonly onProgress?: (done: number, report: OfflineLakeReport) => void;
}): Promise<OfflineLakeReport> {
    const started = performance.now();
    const config = loadConfig({ env: {}, flags: { data_dir: options.dataDir, "wal.sync_mode": "off", "compaction.enabled": false } });
    const clock = new ManualClock(options.startMs);
    const { engine } = await Engine.open(config, silentLogger, createEncoder({ dedup: config.dedup.enabled }), { clock, fileSystem: unsyncedFileSystem });
    const report = { flushes: 0, files: 0, rows: 0, bytes: 0, seconds: 0 };
    try {
        // The flush loop is not nudged: this writer flushes each minute itself.
        const writePath = engine.writePath(() => undefined);
        for (let minute = 0; minute < options.minutes; minute++) {
            clock.set(options.startMs + (minute + 1) * 60_000);
            await writePath.write(options.database, options.batchesOf(minute));
            const files = await engine.flusher.flushAll();
            report.flushes++;
            report.files += files.length;
            for (const file of files) {
                report.rows += file.rows;
                report.bytes += file.bytes;
            }
            options.onProgress?.(minute + 1, { ...report, seconds: (performance.now() - started) / 1000 });
        }
    } finally {
        await engine.shutdown();
    }
    return { ...report, seconds: (performance.now() - started) / 1000 };
}

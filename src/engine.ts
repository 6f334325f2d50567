/**
 * The storage engine behind both `serve` and `recover`: data-directory lock, schema, commit
 * log, WAL writer, buffers, flush loop and purge, opened in the order recovery needs and shut
 * down in the order invariant 3 asks (flush everything → purge → close).
 */
import { Buffers } from "../ingest/buffer/buffers.js";
import { SchemaStore } from "../ingest/schema-store.js";
import { WritePath } from "../ingest/write-path.js";
import { CommitLog, type CommitLogRecovery } from "../flush/commit-log.js";
import { crashPoint } from "../flush/crash-points.js";
import type { ClosableEncoder } from "../flush/encoder.js";
import { type BatchEncoder, Flusher } from "../flush/flusher.js";
import type { ColumnarBatch } from "./columnar/batch.js";
import type { Config } from "./config/schema.js";
import { type DataDirLock, lockDataDir, walDirOf } from "./data-dir.js";
import type { Logger } from "./log.js";
import { type FileSystem, nodeFileSystem } from "./fs/file-system.js";
import type { WalFileSystem } from "./wal/fs.js";
import { type PurgeReport, type PurgeTarget, type RecoveryStats, WalWriter, offlinePurgeTarget, purgeAll, purgeInactive, recoverWal } from "./wal/index.js";

/** Seams for tests: faults injected below the WAL, a fake or failing encoder. */
export interface EngineSeams {
    readonly fileSystem?: FileSystem;
    readonly walFileSystem?: WalFileSystem;
    readonly encoder?: BatchEncoder;
}

export interface StartupReport {
    readonly commitLog: CommitLogRecovery;
    readonly wal: RecoveryStats;
}

/** How often a long replay logs its progress. */
const PROGRESS_EVERY_MS = 3000;

export class Engine {
    /** True while startup replays the WAL: files it has not read yet must not be purged. */
    #replaying = true;

    private constructor(
        readonly config: Config,
        readonly log: Logger,
        readonly lock: DataDirLock,
        readonly schemaStore: SchemaStore,
        readonly commitLog: CommitLog,
        readonly writer: WalWriter,
        readonly buffers: Buffers,
        readonly flusher: Flusher,
        readonly writePath: WritePath,
        readonly closeEncoder: () => Promise<void>,
    ) {}

    /**
     * Opens the data directory and recovers: finishes or discards half-done flushes, then
     * replays every WAL entry not yet in Parquet into the buffers (flushing as they fill).
     */
    static async open(config: Config, log: Logger, encoder: ClosableEncoder, seams: EngineSeams = {}): Promise<{ engine: Engine; startup: StartupReport }> {
        const lock = await lockDataDir(seams.fileSystem ?? nodeFileSystem, config.data_dir);
        const undo: (() => Promise<unknown>)[] = [() => lock.release(), () => encoder.close()];
        // The encode worker loads while recovery runs, not during the first flush (unless faked).
        if (seams.encoder === undefined) encoder.start();
        try {
            const schemaStore = await SchemaStore.open(config.data_dir, log);
            const { commitLog, recovery } = await CommitLog.open(config.data_dir, log);
            undo.push(() => commitLog.close());
            const walDir = walDirOf(config.data_dir);
            const writer = await WalWriter.open({
                dir: walDir,
                syncMode: config.wal.sync_mode,
                syncIntervalMs: config.wal.sync_interval_ms,
                maxFileBytes: config.wal.max_file_bytes,
                maxFileAgeMs: config.wal.max_file_age_ms,
                minSequence: commitLog.highestFlushed() + 1,
                ...(seams.walFileSystem === undefined ? {} : { fileSystem: seams.walFileSystem }),
            });
            undo.push(() => writer.close());
            const buffers = new Buffers({ maxBytes: config.ingest.max_buffered_bytes });
            // eslint-disable-next-line prefer-const -- assigned below, after the flusher that calls back into it
            let engine: Engine | undefined;
            const flusher = new Flusher(
                {
                    buffers,
                    encoder: seams.encoder ?? encoder,
                    commitLog,
                    walDir,
                    purge: async () => {
                        await engine?.purge();
                    },
                    log,
                },
                { maxRows: config.flush.max_rows, maxAgeMs: config.flush.max_age_ms },
            );
            undo.push(() => flusher.close());
            buffers.countAlso(() => flusher.inFlightBytes);
            engine = new Engine(
                config,
                log,
                lock,
                schemaStore,
                commitLog,
                writer,
                buffers,
                flusher,
                new WritePath(writer, buffers, () => {
                    flusher.nudge();
                }),
                () => encoder.close(),
            );
            const wal = await engine.#replay();
            engine.#replaying = false;
            await flusher.settle();
            await engine.purge();
            flusher.start();
            return { engine, startup: { commitLog: recovery, wal } };
        } catch (error) {
            for (const step of undo.reverse()) await step().catch(() => undefined);
            throw error;
        }
    }

    /** Replays the WAL entries above each (database, measurement)'s flushed-through sequence. */
    async #replay(): Promise<RecoveryStats> {
        const first = this.writer.nextSequence;
        let lastLog = Date.now();
        let entries = 0;
        const stats = await recoverWal({
            dir: this.writer.dir,
            skipFile: this.writer.activeFile,
            flushedThrough: (database, measurement) => this.commitLog.flushedThrough(database, measurement),
            batchRows: Number.MAX_SAFE_INTEGER,
            onProblem: (event) => {
                this.log.warn("WAL entry not replayed", { file: event.file, sequence: event.sequence, reason: event.reason });
            },
            onBatch: async (database, measurement, batch, sequence) => {
                crashPoint("during-recovery");
                this.#declare(database, batch);
                const held = this.buffers.get(database, measurement);
                if (held !== undefined && !held.accepts(batch)) await this.flusher.flushBuffers(() => [held]);
                this.buffers.append(database, batch, sequence);
                await this.flusher.settle();
                await this.#waitForRoom();
                entries++;
                if (Date.now() - lastLog >= PROGRESS_EVERY_MS) {
                    lastLog = Date.now();
                    this.log.info(`replaying the WAL: ${entries} entries so far, at sequence ${sequence} of ${first - 1}`);
                }
            },
        });
        if (stats.recoveredEntries > 0 || stats.corruptedEntries > 0) {
            this.log.info(
                `WAL replayed: ${stats.recoveredEntries} entries (${stats.recoveredRows} rows) from ${stats.recoveredFiles} files in ${Math.round(stats.durationMs)} ms`,
                {
                    already_flushed: stats.alreadyFlushedEntries,
                    corrupted: stats.corruptedEntries,
                    torn_tails: stats.tornTails,
                },
            );
        }
        return stats;
    }

    /**
     * Replay's backpressure: while the buffers are at their budget (flushes failing), wait and
     * retry rather than hold the whole backlog in memory.
     */
    async #waitForRoom(): Promise<void> {
        for (let waited = 0; this.buffers.full; waited++) {
            if (waited % 30 === 0) this.log.warn("replay is waiting: the buffers are at ingest.max_buffered_bytes and flushes are not keeping up");
            await new Promise((resolve) => setTimeout(resolve, 1000));
            this.flusher.nudge();
            await this.flusher.settle();
        }
    }

    /** Declares a replayed batch's columns, in case the schema file missed them (a crash before it was saved). */
    #declare(database: string, batch: ColumnarBatch): void {
        const registry = this.schemaStore.registry;
        try {
            for (const tag of batch.tags) registry.declareTag(database, batch.measurement, tag);
            for (const [name, column] of batch.columns) {
                if (column.type === "t" || batch.tags.includes(name)) continue;
                registry.declareField(database, batch.measurement, name, column.type);
            }
        } catch (error) {
            this.log.warn("replayed entry disagrees with the schema; its rows are kept as written", { database, measurement: batch.measurement, error: (error as Error).message });
        }
    }

    /** The purge target of the running WAL: the active file is kept, the mark is the flusher's. */
    purgeTarget(): PurgeTarget {
        return {
            dir: this.writer.dir,
            activeFile: () => this.writer.activeFile,
            nextSequence: async () => this.writer.nextSequence,
            lowWaterMark: async () => this.flusher.lowWaterMark(this.writer.nextSequence),
            rotate: () => this.writer.rotate(),
        };
    }

    /**
     * Deletes the inactive WAL files whose entries are all in Parquet (the schema saved first).
     * Nothing while the WAL is being replayed: the low-water mark only covers what was read.
     */
    async purge(): Promise<PurgeReport | undefined> {
        if (this.#replaying) return undefined;
        await this.schemaStore.flush();
        crashPoint("before-purge");
        const report = await purgeInactive(this.purgeTarget());
        crashPoint("after-purge");
        return report;
    }

    /**
     * Graceful shutdown (invariant 3): flush everything, then close the WAL and delete every file
     * of it (all entries are in Parquet), then release the directory. If a flush fails, the WAL
     * stays as it is and the error is thrown after everything is closed.
     */
    async shutdown(): Promise<void> {
        let failure: unknown;
        try {
            await this.flusher.flushAll();
        } catch (error) {
            failure = error;
        }
        await this.flusher.close();
        await this.writer.close();
        try {
            await this.schemaStore.flush();
            if (failure === undefined) await purgeAll(offlinePurgeTarget(this.writer.dir, (database, measurement) => this.commitLog.flushedThrough(database, measurement)));
        } finally {
            await this.commitLog.close();
            await this.closeEncoder();
            await this.lock.release();
        }
        if (failure !== undefined) throw failure instanceof Error ? failure : new Error("the shutdown flush failed", { cause: failure });
    }
}

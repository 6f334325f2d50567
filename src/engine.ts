/**
 * The storage engine behind `serve` and the offline commands: data-directory lock, schema, the
 * commit protocol (flush manifest and lake), WAL writer, buffers, flush loop and purge, opened
 * in the order recovery needs and shut down in the order invariant 3 asks (flush everything →
 * purge → close). `serve` opens it writable (a WAL writer takes appends); `recover` opens it
 * without a writer, so it needs no free space to read the WAL and report.
 */
import { Buffers } from "../ingest/buffer/buffers.js";
import { SchemaStore } from "../ingest/schema-store.js";
import { WritePath } from "../ingest/write-path.js";
import type { CommitProtocol, CommitRecovery } from "../flush/commit.js";
import { crashPoint } from "../flush/crash-points.js";
import type { ClosableEncoder } from "../flush/encoder.js";
import { type BatchEncoder, Flusher } from "../flush/flusher.js";
import type { Lake } from "../flush/lake/lake.js";
import { openLake } from "../flush/lake/open.js";
import type { ObjectStore } from "../flush/storage/object-store.js";
import { Compactor } from "../flush/upkeep/compactor.js";
import { enforceRetention } from "../flush/upkeep/retention.js";
import { LakeUpkeep } from "../flush/upkeep/upkeep.js";
import { type Clock, systemClock } from "./clock.js";
import type { ColumnarBatch } from "./columnar/batch.js";
import { compactionOptions, flusherOptions, lakeSettings, schemaLimits, upkeepOptions, walWriterOptions } from "./config/components.js";
import type { Config } from "./config/schema.js";
import { type DataDirLock, lockDataDir, walDirOf } from "./data-dir.js";
import { messageOf } from "./errors.js";
import { type FileSystem, nodeFileSystem } from "./fs/file-system.js";
import type { Logger } from "./log.js";
import { listWalFiles } from "./wal/files.js";
import {
    type PurgeReport,
    type PurgeTarget,
    type RecoveryStats,
    WalWriter,
    nextFreeSequence,
    offlinePurgeTarget,
    purgeAll,
    purgeInactive,
    readBack,
    recoverWal,
} from "./wal/index.js";

/** Seams for tests: faults injected below every durable writer, a clock to move, a fake or failing encoder. */
export interface EngineSeams {
    readonly fileSystem?: FileSystem;
    readonly clock?: Clock;
    readonly encoder?: BatchEncoder;
    /** Replaces the configured bucket when `storage.backend = "s3"` (an in-process store with faults). */
    readonly objectStore?: ObjectStore;
}

export interface StartupReport {
    readonly commit: CommitRecovery;
    readonly wal: RecoveryStats;
}

/** How often a long replay logs its progress. */
const PROGRESS_EVERY_MS = 3000;

interface Parts {
    readonly config: Config;
    readonly encoderWorker: ClosableEncoder;
    readonly log: Logger;
    readonly fs: FileSystem;
    readonly clock: Clock;
    readonly lock: DataDirLock;
    readonly schemaStore: SchemaStore;
    readonly commit: CommitProtocol;
    readonly lake: Lake;
    /** Undefined when opened offline (`recover`). */
    readonly writer: WalWriter | undefined;
    readonly encoder: BatchEncoder;
    readonly closeEncoder: () => Promise<void>;
    readonly stopMerges: () => Promise<void>;
}

export class Engine {
    readonly config: Config;
    readonly log: Logger;
    readonly fs: FileSystem;
    readonly clock: Clock;
    readonly walDir: string;
    readonly schemaStore: SchemaStore;
    readonly commit: CommitProtocol;
    readonly buffers: Buffers;
    readonly flusher: Flusher;
    readonly lake: Lake;
    readonly upkeep: LakeUpkeep;
    readonly #writer: WalWriter | undefined;
    readonly #lock: DataDirLock;
    readonly #closeEncoder: () => Promise<void>;
    readonly #stopMerges: () => Promise<void>;
    /** True while startup replays the WAL: files it has not read yet must not be purged. */
    #replaying = true;

    private constructor(parts: Parts) {
        this.config = parts.config;
        this.log = parts.log;
        this.fs = parts.fs;
        this.clock = parts.clock;
        this.walDir = walDirOf(parts.config.data_dir);
        this.schemaStore = parts.schemaStore;
        this.commit = parts.commit;
        this.lake = parts.lake;
        this.#writer = parts.writer;
        this.#lock = parts.lock;
        this.#closeEncoder = parts.closeEncoder;
        this.#stopMerges = parts.stopMerges;
        this.buffers = new Buffers({ maxBytes: parts.config.ingest.max_buffered_bytes });
        this.flusher = new Flusher(
            {
                source: this.buffers,
                encoder: parts.encoder,
                commit: this.commit,
                readBack: (drained) => readBack(this.walDir, this.fs, drained),
                onCommitted: async (change) => {
                    this.upkeep.noteAdded(change.adds.map((add) => add.partition));
                    await this.purge();
                },
                log: this.log,
                clock: this.clock,
            },
            flusherOptions(parts.config),
        );
        this.buffers.countAlso(() => this.flusher.inFlightBytes);
        const compactor = new Compactor(
            { lake: this.lake, commit: this.commit, worker: parts.encoderWorker, encodeOptions: parts.encoderWorker.options, log: this.log, clock: this.clock },
            compactionOptions(parts.config),
        );
        this.upkeep = new LakeUpkeep(
            compactor,
            async (dryRun) => {
                const report = await enforceRetention({ lake: this.lake, commit: this.commit }, (database) => this.retentionPeriod(database), this.clock.now(), dryRun);
                if (!dryRun) await this.#sweep();
                return report;
            },
            upkeepOptions(parts.config),
            this.log,
            this.clock,
        );
    }

    /**
     * A database's retention period in ms (0: kept forever): `[retention.databases]`, else its
     * CREATE DATABASE … WITH DURATION, else `retention.period`.
     */
    retentionPeriod(database: string): number {
        return this.config.retention.databases[database] ?? this.schemaStore.durationOf(database) ?? this.config.retention.period;
    }

    /**
     * Opens the data directory and recovers: finishes or discards half-done changes, then
     * replays every WAL entry not yet in Parquet into the buffers (flushing as they fill).
     * `writable`: a WAL writer takes appends (serve); otherwise the engine only recovers.
     */
    static async open(
        config: Config,
        log: Logger,
        encoder: ClosableEncoder,
        seams: EngineSeams = {},
        options: { writable: boolean } = { writable: true },
    ): Promise<{ engine: Engine; startup: StartupReport }> {
        const fs = seams.fileSystem ?? nodeFileSystem;
        const clock = seams.clock ?? systemClock;
        const lock = await lockDataDir(fs, config.data_dir);
        const undo: (() => Promise<unknown>)[] = [() => lock.release(), () => encoder.close()];
        // The encode worker loads while recovery runs, not during the first flush (unless faked).
        if (seams.encoder === undefined) encoder.start();
        try {
            const walDir = walDirOf(config.data_dir);
            const schemaStore = await SchemaStore.open(fs, config.data_dir, log, schemaLimits(config));
            const walFloor = async () => (await listWalFiles(walDir, fs).catch(() => []))[0]?.firstSequence ?? Number.POSITIVE_INFINITY;
            const { commit, recovery, lake } = await openLake(lakeSettings(config, seams.objectStore), { fs, dataDir: config.data_dir, log, clock, walFloor });
            undo.push(() => lake.close());
            undo.push(() => commit.close());
            const writer = options.writable ? await WalWriter.open(walWriterOptions(config, walDir, commit.highestFlushed() + 1, { fileSystem: fs, clock })) : undefined;
            if (writer !== undefined) undo.push(() => writer.close());
            if (writer?.failure !== undefined) log.error("no WAL file could be created: writes are refused (503) until one can be", { error: writer.failure.message });
            const engine = new Engine({
                config,
                log,
                fs,
                clock,
                lock,
                schemaStore,
                commit,
                lake,
                writer,
                encoder: seams.encoder ?? encoder,
                encoderWorker: encoder,
                closeEncoder: () => encoder.close(),
                stopMerges: () => encoder.stopMerges(),
            });
            undo.push(() => engine.flusher.close());
            const wal = await engine.#replay();
            engine.#replaying = false;
            await engine.flusher.settle();
            if (writer !== undefined) {
                // A full disk may fail this purge (the schema save before it): the next flush purges.
                await engine.purge().catch((error: unknown) => {
                    log.warn("purging the WAL after recovery failed; it is tried again after the next flush", { error: messageOf(error) });
                });
                engine.flusher.start();
                engine.upkeep.start();
            }
            return { engine, startup: { commit: recovery, wal } };
        } catch (error) {
            for (const step of undo.reverse()) await step().catch(() => undefined);
            throw error;
        }
    }

    /** The WAL writer (serve); an offline engine has none. */
    get writer(): WalWriter {
        if (this.#writer === undefined) throw new Error("this engine was opened offline: it has no WAL writer");
        return this.#writer;
    }

    /** The write path of a writable engine. */
    writePath(
        afterWrite: () => void = () => {
            this.flusher.nudge();
        },
    ): WritePath {
        return new WritePath(this.writer, this.buffers, this.schemaStore.registry, this.clock, afterWrite);
    }

    /** Replays the WAL entries above each (database, measurement)'s flushed-through sequence. */
    async #replay(): Promise<RecoveryStats> {
        const last = this.#writer?.nextSequence ?? (await nextFreeSequence(this.walDir, 0, this.fs));
        let lastLog = this.clock.now();
        let entries = 0;
        const stats = await recoverWal({
            dir: this.walDir,
            fileSystem: this.fs,
            skipFile: this.#writer?.activeFile,
            flushedThrough: this.commit.flushedThrough,
            batchRows: Number.MAX_SAFE_INTEGER,
            onProblem: (event) => {
                this.log.warn("WAL entry not replayed", { file: event.file, sequence: event.sequence, reason: event.reason });
            },
            onBatch: async (database, measurement, batch, sequence) => {
                crashPoint("during-recovery");
                this.#declare(database, batch);
                const held = this.buffers.get(database, measurement);
                if (held !== undefined && !held.accepts(batch)) await this.flusher.flushBuffers(() => [held]);
                this.buffers.append(database, batch, sequence, this.clock.now());
                await this.flusher.settle();
                await this.#waitForRoom();
                entries++;
                if (this.clock.now() - lastLog >= PROGRESS_EVERY_MS) {
                    lastLog = this.clock.now();
                    this.log.info(`replaying the WAL: ${entries} entries so far, at sequence ${sequence} of ${last - 1}`);
                }
            },
        });
        if (stats.recoveredEntries > 0 || stats.corruptedEntries > 0 || stats.incompleteRequests > 0) {
            this.log.info(
                `WAL replayed: ${stats.recoveredEntries} entries (${stats.recoveredRows} rows) from ${stats.recoveredFiles} files in ${Math.round(stats.durationMs)} ms`,
                {
                    already_flushed: stats.alreadyFlushedEntries,
                    corrupted: stats.corruptedEntries,
                    incomplete_requests: stats.incompleteRequests,
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
            this.log.warn("replayed entry disagrees with the schema; its rows are kept as written", { database, measurement: batch.measurement, error: messageOf(error) });
        }
    }

    /** Deletes what other ingesters' interrupted steps left in a shared lake (a failure waits for the next check). */
    async #sweep(): Promise<void> {
        try {
            const removed = await this.lake.sweep();
            if (removed > 0) this.log.info("deleted files other ingesters left behind", { objects: removed });
        } catch (error) {
            this.log.warn("sweeping the lake failed; tried again at the next retention check", { error: messageOf(error) });
        }
    }

    /** The purge target of the running WAL: the active file is kept, the mark is the flusher's. */
    purgeTarget(): PurgeTarget {
        const writer = this.writer;
        return {
            dir: this.walDir,
            fileSystem: this.fs,
            activeFile: () => writer.activeFile,
            nextSequence: async () => writer.nextSequence,
            lowWaterMark: async () => this.flusher.lowWaterMark(writer.nextSequence),
            rotate: () => writer.rotate(),
        };
    }

    #offlinePurgeTarget(): PurgeTarget {
        return offlinePurgeTarget(this.walDir, this.commit.flushedThrough, this.fs);
    }

    /**
     * Deletes the inactive WAL files whose entries are all in Parquet (the schema saved first).
     * Nothing while the WAL is being replayed: the low-water mark only covers what was read.
     */
    async purge(): Promise<PurgeReport | undefined> {
        if (this.#replaying || this.#writer === undefined) return undefined;
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
        // A compaction under way is abandoned, not waited for: its outputs are discarded, its inputs stay, a later pass merges them.
        const upkeepClosed = this.upkeep.close();
        await this.#stopMerges();
        await upkeepClosed;
        let failure: unknown;
        try {
            await this.flusher.flushAll();
        } catch (error) {
            failure = error;
        }
        await this.flusher.close();
        await this.#writer?.close();
        try {
            await this.schemaStore.close();
            if (failure === undefined) await purgeAll(this.#offlinePurgeTarget());
        } finally {
            await this.commit.close();
            await this.lake.close();
            await this.#closeEncoder();
            await this.#lock.release();
        }
        if (failure !== undefined) throw failure instanceof Error ? failure : new Error("the shutdown flush failed", { cause: failure });
    }
}

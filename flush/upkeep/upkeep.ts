/**
 * Lake upkeep: compaction and retention in the background (every `compaction.interval_ms` and
 * `retention.check_interval_ms`) and on demand, one step at a time: a compaction and a retention
 * drop never run at once, so neither can pull a partition from under the other.
 */
import { performance } from "node:perf_hooks";
import type { Clock } from "../../src/clock.js";
import { messageOf } from "../../src/errors.js";
import type { Logger } from "../../src/log.js";
import type { PartitionRef } from "../manifest/records.js";
import { type CompactionReport, type Compactor, emptyCompactionReport } from "./compactor.js";
import type { RetentionReport } from "./retention.js";

export interface UpkeepOptions {
    readonly compactionEnabled: boolean;
    readonly compactionIntervalMs: number;
    readonly retentionIntervalMs: number;
}

export interface UpkeepStats {
    compactionPasses: number;
    compaction: CompactionReport;
    retentionChecks: number;
    partitionsDropped: number;
    failures: number;
}

/** Told of every compaction pass that rewrote something, for metrics: it must be cheap and must not throw. */
export interface UpkeepObserver {
    /** A pass compacted `partitions` partitions in this long. */
    compacted(seconds: number, partitions: number): void;
}

export class LakeUpkeep {
    readonly #timers: NodeJS.Timeout[] = [];
    #lane: Promise<unknown> = Promise.resolve();
    #closed = false;
    #scanned = false;
    #observer: UpkeepObserver = { compacted: () => undefined };
    readonly #stats: UpkeepStats = { compactionPasses: 0, compaction: emptyCompactionReport(), retentionChecks: 0, partitionsDropped: 0, failures: 0 };

    constructor(
        readonly compactor: Compactor,
        readonly retention: (dryRun: boolean) => Promise<RetentionReport>,
        readonly options: UpkeepOptions,
        readonly log: Logger,
        readonly clock: Clock,
    ) {}

    get stats(): Readonly<UpkeepStats> {
        return { ...this.#stats, compaction: { ...this.#stats.compaction } };
    }

    /** Tells `observer` of every compaction pass that rewrote something, from now on. */
    observe(observer: UpkeepObserver): void {
        this.#observer = observer;
    }

    /** Starts the background passes. */
    start(): void {
        if (this.options.compactionEnabled) this.#every(this.options.compactionIntervalMs, () => this.#compact(false));
        this.#every(this.options.retentionIntervalMs, () => this.#retain(false));
    }

    #every(intervalMs: number, step: () => Promise<unknown>): void {
        const timer = setInterval(() => {
            if (!this.#closed) this.#exclusive(step).catch(() => undefined);
        }, intervalMs);
        timer.unref();
        this.#timers.push(timer);
    }

    /** A flush committed files to these partitions. */
    noteAdded(partitions: readonly PartitionRef[]): void {
        this.compactor.noteAdded(partitions);
    }

    /** Compacts every partition holding more than one file, now (POST /api/v1/compact). */
    compactNow(): Promise<CompactionReport> {
        return this.#exclusive(() => this.#compact(true));
    }

    /** Drops the partitions past their database's period, now (POST /api/v1/retention). */
    retainNow(dryRun = false): Promise<RetentionReport> {
        return this.#exclusive(() => this.#retain(dryRun));
    }

    async #compact(force: boolean): Promise<CompactionReport> {
        const started = performance.now();
        if (!this.#scanned) {
            // What a previous run left uncompacted.
            this.#scanned = true;
            await this.compactor.scan();
        }
        const report = await this.compactor.run(force);
        if (report.partitions > 0) this.#observer.compacted((performance.now() - started) / 1000, report.partitions);
        this.#stats.compactionPasses++;
        const total = this.#stats.compaction;
        total.partitions += report.partitions;
        total.files_in += report.files_in;
        total.files_out += report.files_out;
        total.rows_in += report.rows_in;
        total.rows_out += report.rows_out;
        total.duplicates_merged += report.duplicates_merged;
        return report;
    }

    async #retain(dryRun: boolean): Promise<RetentionReport> {
        try {
            const report = await this.retention(dryRun);
            this.#stats.retentionChecks++;
            if (!dryRun) this.#stats.partitionsDropped += report.partitions.length;
            if (!dryRun && report.partitions.length > 0)
                this.log.info("retention dropped partitions", { partitions: report.partitions.length, files: report.files, bytes: report.bytes });
            return report;
        } catch (error) {
            this.#stats.failures++;
            this.log.error("enforcing retention failed; it is tried again on the next check", { error: messageOf(error) });
            throw error;
        }
    }

    #exclusive<T>(step: () => Promise<T>): Promise<T> {
        const run = this.#lane.then(step);
        this.#lane = run.catch(() => undefined);
        return run;
    }

    /** Stops the timers and waits for the step under way. */
    async close(): Promise<void> {
        this.#closed = true;
        for (const timer of this.#timers) clearInterval(timer);
        await this.#lane;
    }
}

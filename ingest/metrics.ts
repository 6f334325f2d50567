/**
 * `GET /metrics`: Prometheus text, every name prefixed `sluice_`, in base units (seconds, bytes).
 * - Counters (`*_total`) for requests and lines, counted where they happen, and for the WAL
 *   writer's and flush loop's stats, brought up to those stats at each scrape.
 * - Histograms: request duration by path and status (from the app, see RequestMetrics), WAL sync time and group
 *   size (the WAL writer's observer), flush and compaction duration (the flush loop's and the
 *   upkeep's observers).
 * - Gauges: buffered bytes and rows, the age of the oldest row not in Parquet yet, the next WAL
 *   sequence, and the process metrics of prom-client.
 * Nothing here does work per row: the hooks run once per request, group commit or flush, and
 * the gauges are read when /metrics is scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from "prom-client";
import type { Clock } from "../src/clock.js";
import type { WalWriter } from "../src/wal/index.js";
import type { Buffers } from "./buffer/buffers.js";
import { RequestMetrics } from "./request-metrics.js";

/** The flush loop's counters (flush/flusher.ts's stats fit this shape). */
export interface FlushCounters {
    readonly flushes: number;
    readonly rows: number;
    readonly files: number;
    readonly failures: number;
}

/** What the metrics read and hook into: the engine's parts, as the shapes they need (ingest/ imports nothing of flush/). */
export interface MetricSources {
    readonly writer: WalWriter;
    readonly buffers: Buffers;
    readonly flusher: {
        readonly stats: FlushCounters;
        /** When the oldest row of the flushes under way arrived (Infinity when none is). */
        readonly oldestInFlightAppendMs: number;
        observe(observer: { committed(seconds: number): void }): void;
    };
    readonly upkeep: { observe(observer: { compacted(seconds: number, partitions: number): void }): void };
    readonly clock: Clock;
}

/** What the routes count lines with. */
export interface LineCounter {
    inc(labels: { readonly endpoint: string }, value: number): void;
}

/** The lines one request's route counted, for that request's log line. */
export interface LineTally {
    accepted: number;
    rejected: number;
}

const SYNC_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const FLUSH_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const COMPACTION_SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

// Invariant kept: the counter never goes down. It follows a reading that only grows (a stat of
// this process), by the difference since the last scrape; a smaller reading changes nothing.
function counterFollowing(registry: Registry, name: string, help: string, read: () => number): Counter {
    let followed = 0;
    return new Counter({
        name,
        help,
        registers: [registry],
        collect() {
            const value = read();
            if (value > followed) {
                this.inc(value - followed);
                followed = value;
            }
        },
    });
}

function gaugeReading(registry: Registry, name: string, help: string, read: () => number): Gauge {
    return new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
            this.set(read());
        },
    });
}

export class Metrics {
    readonly registry = new Registry();
    /** Not in the registry: written after it (see RequestMetrics). */
    readonly requests = new RequestMetrics();
    readonly linesAccepted: LineCounter = new Counter({
        name: "sluice_lines_accepted_total",
        help: "Lines (rows) acknowledged, by endpoint",
        labelNames: ["endpoint"],
        registers: [this.registry],
    });
    readonly linesRejected: LineCounter = new Counter({
        name: "sluice_lines_rejected_total",
        help: "Lines rejected as bad input, by endpoint",
        labelNames: ["endpoint"],
        registers: [this.registry],
    });
    readonly promSkipped = new Counter({
        name: "sluice_prometheus_skipped_total",
        help: "Remote-write items not stored by design: stale markers (dropped), metadata, exemplars and native histograms (not supported), by kind",
        labelNames: ["kind"],
        registers: [this.registry],
    });

    constructor(sources: MetricSources) {
        const { registry } = this;
        const { writer, buffers, flusher, upkeep, clock } = sources;
        collectDefaultMetrics({ register: registry, prefix: "sluice_" });
        // Gauges named like counters (promtool refuses them); the same numbers by type stay, without the suffix.
        for (const name of ["active_handles", "active_requests", "active_resources"]) registry.removeSingleMetric(`sluice_nodejs_${name}_total`);
        counterFollowing(registry, "sluice_wal_entries_total", "WAL entries written by this process", () => writer.stats.entries);
        counterFollowing(registry, "sluice_wal_bytes_total", "WAL bytes written by this process", () => writer.stats.bytes);
        counterFollowing(registry, "sluice_wal_syncs_total", "fdatasync/fsync calls on WAL files", () => writer.stats.syncs);
        counterFollowing(registry, "sluice_wal_groups_total", "group commits (one write each)", () => writer.stats.groups);
        counterFollowing(registry, "sluice_wal_failed_groups_total", "group commits that failed (their writes got 503)", () => writer.stats.failedGroups);
        counterFollowing(registry, "sluice_wal_rotations_total", "WAL file rotations", () => writer.stats.rotations);
        counterFollowing(registry, "sluice_flushes_total", "flushes committed to Parquet", () => flusher.stats.flushes);
        counterFollowing(registry, "sluice_flushed_rows_total", "rows committed to Parquet", () => flusher.stats.rows);
        counterFollowing(registry, "sluice_flushed_files_total", "Parquet files committed", () => flusher.stats.files);
        counterFollowing(registry, "sluice_flush_failures_total", "failed flush attempts (rows kept and retried)", () => flusher.stats.failures);
        gaugeReading(registry, "sluice_wal_next_sequence", "the sequence the next WAL entry takes", () => writer.nextSequence);
        gaugeReading(registry, "sluice_buffered_bytes", "bytes held by the ingest buffers", () => buffers.bytes);
        gaugeReading(registry, "sluice_buffered_rows", "rows held by the ingest buffers", () => buffers.rows);
        gaugeReading(registry, "sluice_buffer_budget_bytes", "ingest.max_buffered_bytes", () => buffers.maxBytes);
        gaugeReading(
            registry,
            "sluice_oldest_unflushed_row_age_seconds",
            "age of the oldest row not in Parquet yet (buffered, or in a flush under way), from its arrival (a replayed row: from its replay); 0 when there is none",
            () => {
                const oldest = Math.min(buffers.oldestAppendMs, flusher.oldestInFlightAppendMs);
                return oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, clock.now() - oldest) / 1000;
            },
        );
        const syncSeconds = new Histogram({ name: "sluice_wal_sync_seconds", help: "fdatasync/fsync of WAL files", buckets: SYNC_SECONDS, registers: [registry] });
        const groupAppends = new Histogram({
            name: "sluice_wal_group_appends",
            help: "appends (write requests) sharing one WAL group commit: one write, one sync",
            buckets: exponentialBuckets(1, 2, 10),
            registers: [registry],
        });
        const groupBytes = new Histogram({ name: "sluice_wal_group_bytes", help: "bytes of one WAL group commit", buckets: exponentialBuckets(4096, 4, 7), registers: [registry] });
        writer.observe({
            group: (appends, bytes) => {
                groupAppends.observe(appends);
                groupBytes.observe(bytes);
            },
            synced: (seconds) => {
                syncSeconds.observe(seconds);
            },
        });
        const flushSeconds = new Histogram({
            name: "sluice_flush_duration_seconds",
            help: "committed flushes, from taking the rows out of the buffers to the durable commit (one commit may hold many measurements)",
            buckets: FLUSH_SECONDS,
            registers: [registry],
        });
        flusher.observe({
            committed: (seconds) => {
                flushSeconds.observe(seconds);
            },
        });
        const compactionSeconds = new Histogram({
            name: "sluice_compaction_duration_seconds",
            help: "compaction passes (background or POST /api/v1/compact) that rewrote at least one partition",
            buckets: COMPACTION_SECONDS,
            registers: [registry],
        });
        const compacted = new Counter({ name: "sluice_compacted_partitions_total", help: "partitions (hours of a measurement) rewritten by compaction", registers: [registry] });
        upkeep.observe({
            compacted: (seconds, partitions) => {
                compactionSeconds.observe(seconds);
                compacted.inc(partitions);
            },
        });
    }

    /** One answered request: counted and timed. */
    request(path: string, status: number, seconds: number): void {
        this.requests.record(path, status, seconds);
    }

    /** Everything, in the Prometheus text format (`registry.contentType`). */
    async exposition(): Promise<string> {
        return `${await this.registry.metrics()}${this.requests.exposition()}`;
    }

    /** The metrics as one request's route sees them: the same counters, its lines also added to `tally`. */
    forRequest(tally: LineTally): Metrics {
        const { linesAccepted, linesRejected } = this;
        // A view, not a copy: everything else is read through the prototype.
        const view = Object.create(this) as { -readonly [K in keyof Metrics]: Metrics[K] };
        view.linesAccepted = {
            inc: (labels, value) => {
                linesAccepted.inc(labels, value);
                tally.accepted += value;
            },
        };
        view.linesRejected = {
            inc: (labels, value) => {
                linesRejected.inc(labels, value);
                tally.rejected += value;
            },
        };
        return view;
    }
}

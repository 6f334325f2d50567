/** `GET /metrics`: Prometheus counters for requests and lines, gauges read from the WAL and buffers. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { WalWriter } from "../src/wal/index.js";
import type { Buffers } from "./buffer/buffers.js";

/** The flush loop's counters (flush/flusher.ts's stats fit this shape). */
export interface FlushCounters {
    readonly flushes: number;
    readonly rows: number;
    readonly files: number;
    readonly failures: number;
}

export class Metrics {
    readonly registry = new Registry();
    readonly requests = new Counter({ name: "sluice_http_requests_total", help: "HTTP requests by path and status", labelNames: ["path", "status"], registers: [this.registry] });
    readonly linesAccepted = new Counter({
        name: "sluice_lines_accepted_total",
        help: "Lines (rows) acknowledged, by endpoint",
        labelNames: ["endpoint"],
        registers: [this.registry],
    });
    readonly linesRejected = new Counter({
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

    constructor(writer: WalWriter, buffers: Buffers, flushStats: () => FlushCounters) {
        collectDefaultMetrics({ register: this.registry, prefix: "sluice_" });
        const gauge = (name: string, help: string, read: () => number) =>
            new Gauge({
                name,
                help,
                registers: [this.registry],
                collect() {
                    this.set(read());
                },
            });
        gauge("sluice_wal_entries_total", "WAL entries written by this process", () => writer.stats.entries);
        gauge("sluice_wal_bytes_total", "WAL bytes written by this process", () => writer.stats.bytes);
        gauge("sluice_wal_syncs_total", "fdatasync/fsync calls on WAL files", () => writer.stats.syncs);
        gauge("sluice_wal_groups_total", "group commits (one write each)", () => writer.stats.groups);
        gauge("sluice_wal_failed_groups_total", "group commits that failed (their writes got 503)", () => writer.stats.failedGroups);
        gauge("sluice_wal_rotations_total", "WAL file rotations", () => writer.stats.rotations);
        gauge("sluice_wal_next_sequence", "the sequence the next WAL entry takes", () => writer.nextSequence);
        gauge("sluice_buffered_bytes", "bytes held by the ingest buffers", () => buffers.bytes);
        gauge("sluice_buffered_rows", "rows held by the ingest buffers", () => buffers.rows);
        gauge("sluice_buffer_budget_bytes", "ingest.max_buffered_bytes", () => buffers.maxBytes);
        gauge("sluice_flushes_total", "flushes committed to Parquet", () => flushStats().flushes);
        gauge("sluice_flushed_rows_total", "rows committed to Parquet", () => flushStats().rows);
        gauge("sluice_flushed_files_total", "Parquet files committed", () => flushStats().files);
        gauge("sluice_flush_failures_total", "failed flush attempts (rows kept and retried)", () => flushStats().failures);
    }
}

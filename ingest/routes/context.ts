/**
 * What the routes need from the rest of the server: narrow, so tests can build it by hand, and
 * declared here (the server's flush and lake upkeep fit these shapes; ingest/ imports nothing of flush/).
 */
import type { PurgeReport, WalWriter } from "../../src/wal/index.js";
import type { TokenAuthenticator } from "../auth.js";
import type { Buffers } from "../buffer/buffers.js";
import type { Metrics } from "../metrics.js";
import type { ArcTimeUnit } from "../../src/columnar/time-units.js";
import type { SchemaRegistry } from "../schema.js";
import type { WritePath } from "../write-path.js";

export interface DatabaseCatalog {
    /** CREATE DATABASE (with DURATION, in ms): resolves once durable. */
    create(name: string, durationMs?: number): Promise<void>;
    /** Every database, sorted. */
    list(): string[];
    /** The retention period that applies to the database, in ms (0: kept forever). */
    retentionOf(name: string): number;
}

/** A Parquet file a flush committed. */
export interface FlushedFileInfo {
    readonly database: string;
    readonly measurement: string;
    readonly path: string;
    readonly rows: number;
    readonly bytes: number;
}

/** A flush that failed and waits for its retry. */
export interface FlushFailureInfo {
    readonly database: string;
    readonly measurement: string;
    readonly attempts: number;
    readonly error: string;
    readonly nextRetryMs: number;
}

/** What a compaction did (DESIGN.md §4: the body of POST /api/v1/compact). */
export interface CompactionOutcome {
    readonly partitions: number;
    readonly files_in: number;
    readonly files_out: number;
    readonly rows_in: number;
    readonly rows_out: number;
    readonly duplicates_merged: number;
}

/** What a retention check deleted (or, dry, would delete). */
export interface RetentionOutcome {
    readonly dry_run: boolean;
    readonly partitions: readonly {
        readonly database: string;
        readonly measurement: string;
        readonly date: string;
        readonly hour: string;
        readonly files: number;
        readonly bytes: number;
    }[];
    readonly files: number;
    readonly bytes: number;
}

export interface AppContext {
    readonly writePath: WritePath;
    readonly writer: WalWriter;
    readonly buffers: Buffers;
    readonly schema: SchemaRegistry;
    readonly auth: TokenAuthenticator;
    readonly metrics: Metrics;
    /** Limit of a request body, raw and decompressed. */
    readonly maxBodyBytes: number;
    /** The unit of `time` in msgpack payloads unless the request says otherwise. */
    readonly msgpackTimeUnit: ArcTimeUnit;
    /** The database of Prometheus remote writes without `?db=` (`prometheus.database`). */
    readonly prometheusDatabase: string;
    /** Databases: made with `CREATE DATABASE`, or written to. */
    readonly databases: DatabaseCatalog;
    /** The server clock in ns since the epoch. */
    nowNs(): bigint;
    /** False once shutdown began: writes are then refused with 503. */
    accepting(): boolean;
    /** Flushes every buffer; resolves with the files once durable. */
    flush(): Promise<FlushedFileInfo[]>;
    /** Flushes that failed and wait for their retry. */
    flushFailures(): FlushFailureInfo[];
    /** Compacts every partition holding more than one file; resolves once durable. */
    compact(): Promise<CompactionOutcome>;
    /** Deletes the partitions past their database's retention period (only lists them when dry). */
    retention(dryRun: boolean): Promise<RetentionOutcome>;
    /** Why the flush manifest refuses changes (fail-stop until repaired), if it does. */
    commitFailure(): string | undefined;
    /** Purges the WAL without force: `inactive`, `older-than` (ms) or `all` (rotates first). */
    purge(mode: { kind: "inactive" } | { kind: "older-than"; ageMs: number } | { kind: "all" }): Promise<PurgeReport>;
}

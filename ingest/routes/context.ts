/** What the routes need from the rest of the server: narrow, so tests can build it by hand. */
import type { FlushedFile, FlushFailure } from "../../flush/flusher.js";
import type { PurgeReport, WalWriter } from "../../src/wal/index.js";
import type { TokenAuthenticator } from "../auth.js";
import type { Buffers } from "../buffer/buffers.js";
import type { Metrics } from "../metrics.js";
import type { ArcTimeUnit } from "../../src/columnar/time-units.js";
import type { SchemaRegistry } from "../schema.js";
import type { WritePath } from "../write-path.js";

export interface DatabaseCatalog {
    create(name: string): void;
    /** Every database, sorted. */
    list(): string[];
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
    /** Databases: made with `CREATE DATABASE`, or written to. */
    readonly databases: DatabaseCatalog;
    /** The server clock in ns since the epoch. */
    nowNs(): bigint;
    /** False once shutdown began: writes are then refused with 503. */
    accepting(): boolean;
    /** Flushes every buffer; resolves with the files once durable. */
    flush(): Promise<FlushedFile[]>;
    /** Flushes that failed and wait for their retry. */
    flushFailures(): FlushFailure[];
    /** Why the flush manifest refuses changes (fail-stop until repaired), if it does. */
    commitFailure(): string | undefined;
    /** Purges the WAL without force: `inactive`, `older-than` (ms) or `all` (rotates first). */
    purge(mode: { kind: "inactive" } | { kind: "older-than"; ageMs: number } | { kind: "all" }): Promise<PurgeReport>;
}

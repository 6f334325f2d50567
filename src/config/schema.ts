/**
 * Every configuration key in one table: its type, default, documentation and (for the contract
 * keys) its command-line flag. The loader, the environment names, the flag map, the `Config`
 * type and the test that pins `config/default.toml` are all derived from this table.
 */
import { ARC_TIME_UNITS } from "../columnar/time-units.js";
import { COMPACTED_ENCODINGS, SMALL_FILE_ROWS_DEFAULT, TIME_UNITS } from "../../flush/encode/types.js";
import { NICE_RANGE } from "../../flush/worker/client.js";
import { LOG_FORMATS, LOG_LEVELS } from "../log.js";
import { SYNC_MODES } from "../wal/writer.js";

export const HTTP_SERVERS = ["node", "hyper-express"] as const;
export const STORAGE_BACKENDS = ["local", "s3"] as const;
export type HttpServer = (typeof HTTP_SERVERS)[number];

/** The size suffixes byte-size keys accept in strings ("512KiB", "64MiB", "1GiB"). */
export const BYTE_UNITS = { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;

interface KeyInfo {
    /** One line: what the key does; also the comment above it in `config/default.toml`. */
    readonly doc: string;
    /** The contract command-line flag (DESIGN.md section 6). */
    readonly flag?: `--${string}`;
    /** Never echo the value in error messages. */
    readonly secret?: boolean;
}

export type KeySpec = KeyInfo &
    (
        | {
              readonly type: "string";
              readonly default: string;
              /** May be empty (`""`): the key is not set, and what it configures is off. */
              readonly optional?: boolean;
          }
        | {
              readonly type: "integer";
              readonly default: number;
              readonly min: number;
              /** Inclusive; `Number.MAX_SAFE_INTEGER` when absent. */
              readonly max?: number;
              /** Also accepts sizes with a `BYTE_UNITS` suffix, in every source. */
              readonly bytes?: boolean;
          }
        | { readonly type: "enum"; readonly default: string; readonly values: readonly string[] }
        | { readonly type: "boolean"; readonly default: boolean }
        | { readonly type: "list"; readonly default: readonly string[] }
        /** A duration as written ("30d", "12h", "500ms"; "0": none), loaded as milliseconds. */
        | { readonly type: "duration"; readonly default: string }
        /** Names → durations (a TOML table; `name=7d,other=30d` in the environment), loaded as milliseconds. */
        | { readonly type: "durations"; readonly default: Readonly<Record<string, string>> }
    );

export const CONFIG_SCHEMA = {
    data_dir: {
        type: "string",
        default: "./data",
        flag: "--data-dir",
        doc: "Directory of the WAL and the Parquet files; a relative path is taken from the working directory.",
    },
    shutdown_timeout_ms: {
        type: "integer",
        default: 30_000,
        min: 100,
        doc: "Longest graceful shutdown (SIGTERM/SIGINT), in ms: past it Sluice exits with status 2, naming what is not in Parquet yet; the WAL keeps it for the next start.",
    },
    node_id: {
        type: "string",
        default: "",
        optional: true,
        doc: 'This ingester\'s name on a shared bucket (storage.backend = "s3"), unique per ingester: letters, digits, - and _. Empty: the name its data directory was first started with, else the host name.',
    },
    "log.level": { type: "enum", values: LOG_LEVELS, default: "info", doc: "Least severe events logged: trace | debug | info | warn | error | fatal | silent." },
    "log.format": {
        type: "enum",
        values: LOG_FORMATS,
        default: "json",
        doc: "Log lines on stdout: json (one object per line: time, level, msg and the event's fields) | text (one readable line per event).",
    },
    "http.host": { type: "string", default: "127.0.0.1", flag: "--host", doc: "Address to listen on." },
    "http.port": { type: "integer", default: 8086, min: 0, max: 65535, flag: "--port", doc: "Port to listen on (0: any free port)." },
    "http.server": { type: "enum", values: HTTP_SERVERS, default: "node", doc: "HTTP implementation: node | hyper-express." },
    "http.max_body_bytes": {
        type: "integer",
        default: 64 * BYTE_UNITS.MiB,
        min: 1,
        bytes: true,
        doc: 'Largest request body in bytes, also after gunzip (413 above it); sizes like "64MiB" are accepted.',
    },
    "http.allow_unauthenticated": { type: "boolean", default: false, doc: "Allow listening on a non-loopback host without auth.tokens (refused at start otherwise)." },
    "http.max_inflight_body_bytes": {
        type: "integer",
        default: 64 * BYTE_UNITS.MiB,
        min: 1,
        bytes: true,
        doc: "Request-body bytes (raw and after gunzip) held in memory at once across all requests, at least http.max_body_bytes; beyond it a request waits up to 1 s, then gets 503 with Retry-After, its body unread.",
    },
    "http.max_connections": {
        type: "integer",
        default: 0,
        min: 0,
        doc: "Open connections at most (node adapter): at the cap a new one closes an idle one (one that sent nothing first), or itself when none is idle. 0: what the descriptor limit leaves after a reserve for the WAL and flushes, at most 1024; a value that does not fit stops the start.",
    },
    "http.headers_timeout_ms": {
        type: "integer",
        default: 10_000,
        min: 10,
        doc: "Time a connection gets to send a request's headers, in ms (node adapter; hyper-express closes connections idle for 10 s).",
    },
    "http.request_timeout_ms": {
        type: "integer",
        default: 120_000,
        min: 10,
        doc: "Time a client gets to send a whole request, headers and body, in ms (node adapter).",
    },
    "http.keep_alive_timeout_ms": {
        type: "integer",
        default: 65_000,
        min: 1,
        doc: "How long an idle keep-alive connection stays open, in ms (node adapter): above the 60 s idle timeout of common load balancers, so that they close first.",
    },
    "http.tls_cert_file": {
        type: "string",
        default: "",
        optional: true,
        doc: "PEM certificate (chain) file: with http.tls_key_file, the node adapter serves HTTPS only (both or neither; not on hyper-express). Read at start.",
    },
    "http.tls_key_file": { type: "string", default: "", optional: true, doc: "PEM private key file of http.tls_cert_file (unencrypted)." },
    "auth.tokens": {
        type: "list",
        default: [],
        secret: true,
        doc: "Accepted API tokens (comma-separated in SLUICE_AUTH_TOKENS); when set, requests without one get 401.",
    },
    "wal.sync_mode": { type: "enum", values: SYNC_MODES, default: "fdatasync", doc: "When an append is durable: fdatasync | fsync | async | off." },
    "wal.sync_interval_ms": { type: "integer", default: 100, min: 1, doc: "In async mode, how often written WAL entries are synced, in ms." },
    "wal.max_file_bytes": {
        type: "integer",
        default: 64 * BYTE_UNITS.MiB,
        min: 4096,
        max: 4 * BYTE_UNITS.GiB,
        bytes: true,
        doc: 'Rotate the WAL file before it would grow past this size (4096 bytes to 4GiB; sizes like "64MiB" are accepted).',
    },
    "wal.max_file_age_ms": { type: "integer", default: 600_000, min: 10, doc: "Rotate a WAL file with entries once it is this old, in ms." },
    "ingest.max_buffered_bytes": {
        type: "integer",
        default: 512 * BYTE_UNITS.MiB,
        min: BYTE_UNITS.MiB,
        bytes: true,
        doc: 'Memory budget of all ingest buffers; near it Sluice flushes early, above it writes get 503 (at least 1MiB; sizes like "1GiB" are accepted).',
    },
    "ingest.max_measurements_per_database": {
        type: "integer",
        default: 10_000,
        min: 1,
        doc: "Measurements one database may have; a line of one more is rejected (400) naming this limit.",
    },
    "ingest.max_measurements": {
        type: "integer",
        default: 100_000,
        min: 1,
        doc: "Measurements all databases together may have (each costs memory for as long as Sluice runs: its schema, ~1 KB); a line of one more is rejected (400) naming this limit.",
    },
    "ingest.max_columns_per_measurement": {
        type: "integer",
        default: 1_000,
        min: 1,
        doc: "Tag and field columns one measurement may have; a line that would add more is rejected (400) naming this limit.",
    },
    "ingest.msgpack_time_unit": {
        type: "enum",
        values: ARC_TIME_UNITS,
        default: "ns",
        doc: "Unit of `time` in msgpack writes without ?precision=: ns | us | ms | s | auto (Arc's guess from the magnitude).",
    },
    "dedup.enabled": {
        type: "boolean",
        default: true,
        doc: "A point is (measurement, tag set, time): written again, it stays one point, the later write's non-null fields winning (false: every row kept as written).",
    },
    "prometheus.database": {
        type: "string",
        default: "prometheus",
        doc: "Database of Prometheus remote writes to /api/v1/write and /api/v1/prom/write without ?db=.",
    },
    "flush.max_rows": { type: "integer", default: 1_000_000, min: 1, doc: "Flush a buffer to Parquet once it holds this many rows." },
    "flush.max_age_ms": { type: "integer", default: 60_000, min: 10, doc: "Flush a buffer to Parquet once its oldest row is this old, in ms." },
    "flush.worker_nice": {
        type: "integer",
        default: 0,
        min: NICE_RANGE.min,
        max: NICE_RANGE.max,
        doc: "Nice value (0-19) of the Parquet encode thread (Linux): above 0, ingest wins the CPU when both want it and the flush gets what is left.",
    },
    "parquet.time_unit": {
        type: "enum",
        values: TIME_UNITS,
        default: "ns",
        doc: "Unit of the time column of new Parquet files: ns (TIMESTAMP(NANOS)) | us (TIMESTAMP(MICROS), for Spark 3.x, plus a time_nanos column with the nanoseconds past each microsecond).",
    },
    "parquet.small_file_rows": {
        type: "integer",
        default: SMALL_FILE_ROWS_DEFAULT,
        min: 0,
        doc: "A flush file of at most this many rows is written by the pure-JS hyparquet-writer, ~1.6-2x cheaper than parquet-wasm for a few rows, same codec (zstd pages stored uncompressed in Zstandard frames until their partition is compacted); 0: every file by parquet-wasm.",
    },
    "storage.backend": {
        type: "enum",
        values: STORAGE_BACKENDS,
        default: "local",
        doc: "Where the Parquet lake lives: local (data_dir/parquet) | s3 (the [s3] bucket, shared with other ingesters; the WAL stays local).",
    },
    "s3.endpoint": { type: "string", default: "", optional: true, doc: "URL of an S3-compatible service (MinIO, Ceph radosgw, R2); empty: AWS S3 in s3.region." },
    "s3.bucket": { type: "string", default: "", optional: true, doc: 'Bucket of the lake (required with storage.backend = "s3").' },
    "s3.prefix": { type: "string", default: "", optional: true, doc: "Key prefix of the lake in the bucket (several lakes can share one bucket)." },
    "s3.region": { type: "string", default: "us-east-1", doc: "Region of the bucket." },
    "s3.force_path_style": { type: "boolean", default: false, doc: "Address the bucket as endpoint/bucket/key (MinIO, Ceph) instead of bucket.endpoint/key." },
    "s3.access_key_id": {
        type: "string",
        default: "",
        optional: true,
        secret: true,
        doc: "Access key; empty: the AWS SDK's chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles).",
    },
    "s3.secret_access_key": { type: "string", default: "", optional: true, secret: true, doc: "Secret key, with s3.access_key_id (never logged)." },
    "s3.lease_ttl_ms": {
        type: "integer",
        default: 30_000,
        min: 100,
        doc: "Lifetime of the node_id and compaction leases, in ms (renewed every third of it): how long a dead ingester's leases block others.",
    },
    "compaction.enabled": { type: "boolean", default: true, doc: "Merge each hour's files into few in the background (point identity across files needs it)." },
    "compaction.interval_ms": { type: "integer", default: 60_000, min: 10, doc: "How often the background compaction looks for partitions that are due, in ms." },
    "compaction.min_files": { type: "integer", default: 8, min: 2, doc: "Compact an hour of a measurement as soon as it holds this many files." },
    "compaction.max_delay_ms": {
        type: "integer",
        default: 600_000,
        min: 0,
        doc: "Compact an hour with two or more files once the oldest one it received since its last compaction is this old, in ms: how long a duplicate from a late retry can stay visible.",
    },
    "compaction.worker_nice": {
        type: "integer",
        default: 10,
        min: NICE_RANGE.min,
        max: NICE_RANGE.max,
        doc: "Nice value (0-19) of the compaction thread (Linux), a thread of its own beside the flush's: flushes never wait behind a merge, and ingest and flushes win the CPU when they want it.",
    },
    "compaction.max_rows_per_file": {
        type: "integer",
        default: 1_000_000,
        min: 1,
        doc: "Rows of a compacted file at most (and files of half as many or more are big: not rewritten unless their times overlap another file's).",
    },
    "compaction.row_group_rows": {
        type: "integer",
        default: 65_536,
        // parquet-wasm fails on files of ~10,000 row groups (a wasm trap): 1,000,000-row files of 1,024-row groups hold ~1,000.
        min: 1024,
        doc: "Rows of a row group of a compacted file at most: rows are sorted by (tags, time), so smaller groups let readers skip the groups of other tag values by their min/max and read groups in parallel.",
    },
    "compaction.encodings": {
        type: "enum",
        values: COMPACTED_ENCODINGS,
        default: "flush",
        doc: "Column encodings of compacted files: flush (the same as a flush's, readable by Spark 3.3+) | dense (floats of which over 1 in 8 values differ BYTE_STREAM_SPLIT rather than PLAIN or dictionary-coded: a smaller lake; not read by Spark 3.x).",
    },
    "retention.period": { type: "duration", default: "0", doc: 'Delete hours of data older than this ("30d", "12h"; "0": keep forever), unless a database has its own period.' },
    "retention.check_interval_ms": { type: "integer", default: 60_000, min: 10, doc: "How often expired hours are looked for and deleted, in ms." },
    "retention.databases": {
        type: "durations",
        default: {},
        doc: 'Periods of single databases, over CREATE DATABASE ... WITH DURATION and retention.period: a table like { telegraf = "7d" }.',
    },
} as const satisfies Record<string, KeySpec>;

type Schema = typeof CONFIG_SCHEMA;
export type ConfigKey = keyof Schema;

type ValueOf<S> = S extends { readonly type: "enum"; readonly values: readonly (infer V)[] }
    ? V
    : S extends { readonly type: "string" }
      ? string
      : S extends { readonly type: "integer" }
        ? number
        : S extends { readonly type: "boolean" }
          ? boolean
          : S extends { readonly type: "duration" }
            ? number
            : S extends { readonly type: "durations" }
              ? Readonly<Record<string, number>>
              : readonly string[];

type TopKey = Exclude<ConfigKey, `${string}.${string}`>;
type Section = ConfigKey extends infer K ? (K extends `${infer S}.${string}` ? S : never) : never;

/** The loaded configuration: top-level keys, then one object per section, keys as in the file. */
export type Config = { readonly [K in TopKey]: ValueOf<Schema[K]> } & {
    readonly [S in Section]: { readonly [K in ConfigKey as K extends `${S}.${infer N}` ? N : never]: ValueOf<Schema[K]> };
};

/** `data_dir` → `SLUICE_DATA_DIR`, `wal.sync_mode` → `SLUICE_WAL_SYNC_MODE`. */
export function envVarName(key: ConfigKey): string {
    return `SLUICE_${key.replaceAll(".", "_").toUpperCase()}`;
}

/** Every key with its spec, in table order. */
export const CONFIG_ENTRIES = Object.entries(CONFIG_SCHEMA) as readonly (readonly [ConfigKey, KeySpec])[];

/** The contract flags and the key each sets, for the CLI: `{"--port": "http.port", ...}`. */
export const CONFIG_FLAGS: Readonly<Record<string, ConfigKey>> = Object.freeze(
    Object.fromEntries(CONFIG_ENTRIES.flatMap(([key, spec]) => (spec.flag === undefined ? [] : [[spec.flag, key] as const]))),
);

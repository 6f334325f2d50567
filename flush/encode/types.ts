/**
 * What the Parquet encoder takes and gives: one (database, measurement)'s rows in, one Parquet
 * file's bytes per UTC hour touched out (DESIGN.md §4). Plain data only, so every shape here
 * crosses the worker boundary by structured clone.
 */
import type { ColumnarBatch } from "../../src/columnar/batch.js";

export const COMPRESSIONS = ["zstd", "snappy", "none"] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export function isCompression(value: unknown): value is Compression {
    return typeof value === "string" && (COMPRESSIONS as readonly string[]).includes(value);
}

/** How the `time` column's values are encoded (dictionary encoding is always off for it). */
export const TIME_ENCODINGS = ["delta", "plain"] as const;
export type TimeEncoding = (typeof TIME_ENCODINGS)[number];

/**
 * The unit of the `time` column: `ns` TIMESTAMP(NANOS); `us` TIMESTAMP(MICROS) (Spark 3.x cannot
 * read NANOS) plus a column of the nanoseconds past each microsecond, so nothing is lost (time-unit.ts).
 */
export const TIME_UNITS = ["ns", "us"] as const;
export type TimeUnit = (typeof TIME_UNITS)[number];

export interface EncodeInput {
    /** The raw database name (written to `sluice:database`). */
    readonly database: string;
    /**
     * The rows, as segments of one measurement joined in order (a column missing from a segment
     * is null there); column names are final (the `<name>_field` rule is applied upstream).
     */
    readonly segments: readonly ColumnarBatch[];
    /** The lowest and highest WAL sequence whose rows the segments hold (`sluice:wal_seq`). */
    readonly minSequence: number;
    readonly maxSequence: number;
}

export interface EncodeOptions {
    /** Page compression codec of every column. */
    readonly compression?: Compression;
    /** The most rows in one row group. */
    readonly maxRowGroupRows?: number;
    /** `delta`: DELTA_BINARY_PACKED (measured 21.5 → 14.0 MB per 1M rows); `plain`: PLAIN. */
    readonly timeEncoding?: TimeEncoding;
    /** Written to `sluice:version`. */
    readonly sluiceVersion: string;
    /** Merge rows with the same tag set and time into one point (DESIGN.md §3 invariant 6). */
    readonly dedup?: boolean;
    /** The unit of the `time` column (`parquet.time_unit`); points keep their nanoseconds in both. */
    readonly timeUnit?: TimeUnit;
    /**
     * An hour-file of at most this many rows is written by hyparquet-writer rather than
     * parquet-wasm (`parquet.small_file_rows`; small-parquet.ts); 0: never.
     */
    readonly smallFileRows?: number;
}

/** The default of `parquet.small_file_rows`. */
export const SMALL_FILE_ROWS_DEFAULT = 64;

export const ENCODE_DEFAULTS = {
    compression: "zstd",
    // arrow-rs's default. Dictionaries are per row group: 1M-row groups measured 18.3 MB / 0.84 s
    // against 21.3 MB / 1.03 s with 122,880-row groups (1M Telegraf-like rows, ZSTD).
    maxRowGroupRows: 1_048_576,
    timeEncoding: "delta",
    dedup: true,
    timeUnit: "ns",
    // Below ~N rows the pure-JS writer is the cheaper one (README "Many small measurements").
    smallFileRows: SMALL_FILE_ROWS_DEFAULT,
} as const satisfies { [K in keyof Required<Omit<EncodeOptions, "sluiceVersion">>]: EncodeOptions[K] };

export type ResolvedEncodeOptions = Required<EncodeOptions>;

/** One Parquet file: the rows of `batch` whose time falls in one UTC hour. */
export interface EncodedFile {
    /** The hour's UTC date, `YYYY-MM-DD` (the `date=` partition). */
    readonly date: string;
    /** The hour, `HH` (the `hour=` partition). */
    readonly hour: string;
    readonly rows: number;
    /** The complete Parquet file. */
    readonly bytes: Uint8Array;
    readonly minTimeNs: bigint;
    readonly maxTimeNs: bigint;
    /** Rows of the input merged into other rows of this file (the same point written again). */
    readonly merged: number;
}

/** Where an encode spent its time, summed over the files it produced (milliseconds). */
export interface EncodeTimings {
    /** Checking the segments and joining them into one batch. */
    joinMs: number;
    /** Hour split and (hour, tags, time) ordering. */
    sortMs: number;
    /** Gathering every column through the order and building the Arrow table. */
    arrowMs: number;
    /** `tableToIPC` plus parquet-wasm's `Table.fromIPCStream`. */
    ipcMs: number;
    /** parquet-wasm `writeParquet`. */
    parquetMs: number;
    /** The wasm linear memory after the encode (it never shrinks). */
    wasmMemoryBytes: number;
}

export function emptyTimings(): EncodeTimings {
    return { joinMs: 0, sortMs: 0, arrowMs: 0, ipcMs: 0, parquetMs: 0, wasmMemoryBytes: 0 };
}

/** What a compacted file's columns are encoded with: a flush's encodings (the default, DESIGN.md §4), or denser ones (compacted-encodings.ts). */
export const COMPACTED_ENCODINGS = ["flush", "dense"] as const;
export type CompactedEncodings = (typeof COMPACTED_ENCODINGS)[number];

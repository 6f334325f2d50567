/**
 * Column encodings of the fields of every file parquet-wasm writes, flushes and compactions
 * alike (so a compacted file keeps a flush's encodings, DESIGN.md §4), all of them ones Spark
 * 3.3+'s vectorized reader supports (no BYTE_STREAM_SPLIT). Tiny flush files (small-parquet.ts)
 * are hyparquet-writer's: floats PLAIN, ints as it chooses, until their partition is compacted.
 *
 * - int64 / uint64 fields: DELTA_BINARY_PACKED, no dictionary (counters and gauges move by
 *   little from one row of a series to the next, and rows are sorted by series);
 * - float64 fields whose values are mostly distinct (over half of the first 65,536 rows: drifting
 *   gauges, ratios at full precision): PLAIN, no dictionary. A dictionary of such a column holds
 *   every value and costs a lookup per row. Floats that repeat (load averages with 2 decimals,
 *   constants) keep their dictionary;
 * - strings and booleans: as every other column (dictionary).
 *
 * Every column keeps the file's codec (DESIGN.md §4: ZSTD by default). Snappy on the mostly
 * distinct floats would read faster still (below) for ~7 % more bytes on them; not done, for
 * that promise.
 *
 * Measured on the cpu measurement of a day of bench/lib/telegraf-day.ts (24 hourly files,
 * 65,536-row groups), DuckDB's CPU for "group by host" (min of 21 runs): 55 ms with dictionaries
 * everywhere, 39 ms with these floats PLAIN and ZSTD, 27.5 ms PLAIN and Snappy, 32.5 ms
 * BYTE_STREAM_SPLIT and ZSTD; 194 MB with dictionaries, 155.5 MB PLAIN and ZSTD (166 with Snappy).
 */
import { Compression as WasmCompression, Encoding, type WriterPropertiesBuilder } from "parquet-wasm/node";
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import type { ColumnSettings } from "./column-settings.js";
import type { Compression } from "./types.js";

const CODECS = {
    zstd: WasmCompression.ZSTD,
    snappy: WasmCompression.SNAPPY,
    none: WasmCompression.UNCOMPRESSED,
} as const satisfies Record<Compression, WasmCompression>;

/** parquet-wasm's codec of a compression setting. */
export function wasmCodec(compression: Compression): WasmCompression {
    return CODECS[compression];
}

/** Values of a float column looked at (from its first row) to tell whether it repeats. */
const SAMPLE_ROWS = 65_536;
/**
 * A float column is written without a dictionary when more than this share of its sampled values
 * differ. Below it a dictionary pays: 2-decimal values drawn from 10,000 (15 % distinct) took
 * 0.64 MB per 262,144 rows with one, 1.25 MB PLAIN with Snappy; at ~80 % distinct both took 1.27 MB.
 */
export const DISTINCT_SHARE = 1 / 2;

/** Whether more than `share` of a float column's sampled values differ (a dictionary would hold most of them). */
export function mostlyDistinct(values: Float64Array, share: number): boolean {
    const sample = values.subarray(0, SAMPLE_ROWS);
    const limit = Math.max(1, Math.floor(sample.length * share));
    const seen = new Set<number>();
    for (const value of sample) {
        seen.add(value);
        if (seen.size > limit) return true;
    }
    return false;
}

/** `encoding` without a dictionary on each of `columns`. */
export function undictionaried(columns: readonly string[], encoding: Encoding): ColumnSettings {
    return (builder: WriterPropertiesBuilder) => columns.reduce((tuned, name) => tuned.setColumnDictionaryEnabled(name, false).setColumnEncoding(name, encoding), builder);
}

/** The fields' encodings for every file of `batch`, decided once from all its rows. */
// Invariant kept: an encoding is set only on the column types the Parquet spec defines it for.
export function fieldEncodings(batch: ColumnarBatch): ColumnSettings {
    const delta: string[] = [];
    const plain: string[] = [];
    for (const [name, column] of batch.columns) {
        if (column.type === "i" || column.type === "u") delta.push(name);
        else if (column.type === "f" && mostlyDistinct(column.values, DISTINCT_SHARE)) plain.push(name);
    }
    const deltaCoded = undictionaried(delta, Encoding.DELTA_BINARY_PACKED);
    const plainCoded = undictionaried(plain, Encoding.PLAIN);
    return (builder) => plainCoded(deltaCoded(builder));
}

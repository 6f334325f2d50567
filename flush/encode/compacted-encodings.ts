/**
 * Column encodings of compaction's outputs (a merge is background work: it can spend CPU for
 * bytes). A merged file is sorted by (tags, time), so each series' values follow each other:
 *
 * - int64 / uint64 fields: DELTA_BINARY_PACKED, no dictionary (counters and gauges move by
 *   little from one row to the next);
 * - float64 fields whose values are mostly distinct (drifting gauges, ratios at full precision):
 *   BYTE_STREAM_SPLIT, no dictionary (the bytes of one significance together, which ZSTD packs);
 *   floats that repeat (load averages with 2 decimals, constants) keep their dictionary. Not in
 *   files written for Spark 3.x (`parquet.time_unit = "us"`): its vectorized reader has no
 *   BYTE_STREAM_SPLIT before Spark 4 (SPARK-56894); it reads DELTA_BINARY_PACKED since 3.3.
 *
 * Measured on an hour of bench/lib/telegraf-day.ts data (10 measurements, 100 hosts, ZSTD):
 * 18.0 MB with the flush's encodings, 11.5 MB with these (1.57× smaller); DuckDB reads all of them.
 */
import { Encoding, type WriterPropertiesBuilder } from "parquet-wasm/node";
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import type { WriterTuning } from "./parquet.js";
import { EncodeInputError } from "./errors.js";
import { COMPACTED_ENCODINGS, type CompactedEncodings, type TimeUnit } from "./types.js";

/** Values of a float column looked at (from its first row) to tell whether it repeats. */
const SAMPLE_ROWS = 65_536;
/** A float column repeats when its sample holds at most this share of distinct values. */
const REPEATING_SHARE = 1 / 8;

/** Whether most of a float column's sampled values differ (a dictionary would hold them all). */
function mostlyDistinct(values: Float64Array): boolean {
    const sample = values.subarray(0, SAMPLE_ROWS);
    const limit = Math.max(1, Math.floor(sample.length * REPEATING_SHARE));
    const seen = new Set<number>();
    for (const value of sample) {
        seen.add(value);
        if (seen.size > limit) return true;
    }
    return false;
}

/** The writer settings of a compacted file whose `time` is in `timeUnit` (none beyond a flush's for "flush"). */
export function compactedEncodings(choice: CompactedEncodings, timeUnit: TimeUnit): WriterTuning | undefined {
    switch (choice) {
        case "flush":
            return undefined;
        case "dense":
            return (builder, batch) => tuneColumns(builder, batch, timeUnit === "ns");
        default:
            // A request from outside the type system (the worker's messages are structured clones).
            throw new EncodeInputError(`compacted encodings "${String(choice)}" are not one of ${COMPACTED_ENCODINGS.join(", ")}`);
    }
}

// Invariant kept: an encoding is set only on the column types the Parquet spec defines it for.
function tuneColumns(builder: WriterPropertiesBuilder, batch: ColumnarBatch, byteStreamSplit: boolean): WriterPropertiesBuilder {
    let tuned = builder;
    for (const [name, column] of batch.columns) {
        if (column.type === "i" || column.type === "u") {
            tuned = tuned.setColumnDictionaryEnabled(name, false).setColumnEncoding(name, Encoding.DELTA_BINARY_PACKED);
        } else if (byteStreamSplit && column.type === "f" && mostlyDistinct(column.values)) {
            tuned = tuned.setColumnDictionaryEnabled(name, false).setColumnEncoding(name, Encoding.BYTE_STREAM_SPLIT);
        }
    }
    return tuned;
}

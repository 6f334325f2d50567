/**
 * Column encodings of compaction's outputs. By default ("flush") a compacted file has a flush's
 * (field-encodings.ts: readable by Spark 3.3+). "dense" trades that for bytes: float64 fields
 * whose values are mostly distinct are BYTE_STREAM_SPLIT (the bytes of one significance
 * together), which ZSTD packs, instead of PLAIN, and more of them are (over 1 in 8 distinct
 * rather than 1 in 2). Not in files
 * written for Spark 3.x (`parquet.time_unit = "us"`): its vectorized reader has no
 * BYTE_STREAM_SPLIT before Spark 4 (SPARK-56894).
 *
 * Measured on the cpu measurement of a day of bench/lib/telegraf-day.ts (24 hourly files, ZSTD):
 * 166 MB with a flush's encodings, 143 MB dense; DuckDB reads both about as fast.
 */
import { Encoding } from "parquet-wasm/node";
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import type { ColumnSettings, WriterTuning } from "./column-settings.js";
import { EncodeInputError } from "./errors.js";
import { mostlyDistinct, undictionaried } from "./field-encodings.js";
import { COMPACTED_ENCODINGS, type CompactedEncodings, type TimeUnit } from "./types.js";

/** The writer settings of a compacted file whose `time` is in `timeUnit` (none beyond a flush's for "flush"). */
export function compactedEncodings(choice: CompactedEncodings, timeUnit: TimeUnit): WriterTuning | undefined {
    switch (choice) {
        case "flush":
            return undefined;
        case "dense":
            return timeUnit === "ns" ? splitFloats : undefined;
        default:
            // A request from outside the type system (the worker's messages are structured clones).
            throw new EncodeInputError(`compacted encodings "${String(choice)}" are not one of ${COMPACTED_ENCODINGS.join(", ")}`);
    }
}

/** Dense files split the floats of which more than this share of the sampled values differ (dense's rule since it was added). */
const SPLIT_SHARE = 1 / 8;

// Invariant kept: BYTE_STREAM_SPLIT is set only on float columns, which the Parquet spec defines it for.
function splitFloats(batch: ColumnarBatch): ColumnSettings {
    const split = [...batch.columns].filter(([, column]) => column.type === "f" && mostlyDistinct(column.values, SPLIT_SHARE)).map(([name]) => name);
    return undictionaried(split, Encoding.BYTE_STREAM_SPLIT);
}

/**
 * Float columns that hold NaN are written without min/max statistics. The Parquet spec leaves
 * NaN out of min/max, and DuckDB 1.5 (before duckdb/duckdb#25747, which reads `nan_count`) then
 * takes a row group of NaN, 1, 1 for one whose values are all 1: `WHERE f > 100` and
 * `WHERE f = 'NaN'` skip the NaN rows. Prometheus sends NaN as a value; with no statistics the
 * reader reads the column instead of pruning it, which is what DuckDB's own writer does.
 */
import { EnabledStatistics, type WriterPropertiesBuilder } from "parquet-wasm/node";
import type { Column, ColumnarBatch } from "../../src/columnar/batch.js";

/** Whether `column` is a float column with a NaN among its values (a null's slot holds 0, never NaN). */
export function holdsNaN(column: Column): boolean {
    if (column.type !== "f") return false;
    for (const value of column.values) if (value !== value) return true;
    return false;
}

// Invariant kept: no float column holding NaN gets min/max statistics a reader could prune it by.
export function nanStatistics(builder: WriterPropertiesBuilder, batch: ColumnarBatch): WriterPropertiesBuilder {
    let tuned = builder;
    for (const [name, column] of batch.columns) if (holdsNaN(column)) tuned = tuned.setColumnStatisticsEnabled(name, EnabledStatistics.None);
    return tuned;
}

/**
 * Float columns that hold NaN are written without min/max statistics. The Parquet spec leaves
 * NaN out of min/max, and DuckDB 1.5 (before duckdb/duckdb#25747, which reads `nan_count`) then
 * takes a row group of NaN, 1, 1 for one whose values are all 1: `WHERE f > 100` and
 * `WHERE f = 'NaN'` skip the NaN rows. Prometheus sends NaN as a value; with no statistics the
 * reader reads the column instead of pruning it, which is what DuckDB's own writer does.
 */
import { EnabledStatistics } from "parquet-wasm/node";
import type { Column, ColumnarBatch } from "../../src/columnar/batch.js";
import type { ColumnSettings } from "./column-settings.js";

/** Whether `column` is a float column with a NaN among its values (a null's slot holds 0, never NaN). */
function holdsNaN(column: Column): boolean {
    if (column.type !== "f") return false;
    for (const value of column.values) if (value !== value) return true;
    return false;
}

/** The float columns of `batch` that hold NaN: written without statistics in every file of it. */
export function columnsWithNaN(batch: ColumnarBatch): ReadonlySet<string> {
    return new Set([...batch.columns].filter(([, column]) => holdsNaN(column)).map(([name]) => name));
}

// Invariant kept: no float column holding NaN gets min/max statistics a reader could prune it by.
export function withoutStatistics(columns: ReadonlySet<string>): ColumnSettings {
    return (builder) => [...columns].reduce((tuned, name) => tuned.setColumnStatisticsEnabled(name, EnabledStatistics.None), builder);
}

/** Rows a buffer holds outside its segments, as a writer keeps them. */
import type { ColumnType, ColumnarBatch } from "../../src/columnar/batch.js";

/**
 * Rows kept in a compact form of their own (remote write's: ingest/prom/staged-rows.ts; a small
 * measurement's first rows: packed-rows.ts), attached to the buffer until it needs them as a
 * batch: before a write of another kind, a drain, or when it is attached rows of another writer.
 * Cheaper per append than a batch: no per-column work for a measurement that gets a few rows per
 * request.
 */
export interface StagedRows {
    readonly rows: number;
    /** Bytes it holds (allocated). */
    readonly bytes: number;
    /** Bytes its rows would count once moved into segments (at least). */
    segmentBytes(): number;
    /** Columns its rows have (time included). */
    readonly columns: number;
    /** The type of a column its rows have, if they have it. */
    columnType(name: string): ColumnType | undefined;
    /** Takes every row out, in the order staged, as one batch. */
    take(): ColumnarBatch;
}

/**
 * What rows cost once buffered, counted against ingest.max_buffered_bytes: as segments (column
 * builders) or packed (a small measurement's first rows, packed-rows.ts).
 */
import { type Column, type ColumnarBatch, bitmapBytes } from "../../src/columnar/batch.js";

/**
 * What a buffer holding rows costs beyond its arrays' bytes: its objects, maps and
 * accumulators, and the allocator's overhead on small arrays. Measured as process RSS with
 * 20,000 one-row measurements of 3, 13 and 23 columns (Node 20): about 3.3, 7.2 and 12.3 KB
 * each, where the arrays alone are 0.26, 0.9 and 1.5 KB (issue 13 item 3: 100,000 small
 * measurements once counted 26 MB against the budget and took 1.1 GB). `packed`: a buffer whose
 * rows are all packed costs its object, its map entry and the packed rows' object, names and
 * array object beyond the array's bytes.
 */
export const BUFFER_OVERHEAD_BYTES = { measurement: 2048, column: 384, packed: 512 } as const;

/** What a growable array (src/columnar/growable.ts) or packed rows allocate to hold `bytes`: a power of two, at least 64. */
export function allocated(bytes: number): number {
    return Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
}

/** Bytes a column of `rows` rows takes in segments: its arrays, each at `size(bytes)`, and its dictionary strings at two bytes a character. */
export function columnSegmentBytes(column: Column, rows: number, size: (bytes: number) => number = (bytes) => bytes): number {
    let bytes = size(column.type === "s" ? 4 * rows : column.type === "b" ? bitmapBytes(rows) : 8 * rows);
    if (column.type !== "t" && column.valid !== undefined) bytes += size(bitmapBytes(rows));
    if (column.type === "s") for (const value of column.dict) bytes += 2 * value.length + 64;
    return bytes;
}

/** Bytes a batch takes as a new buffer's segments: its arrays as allocated, its dictionary strings, and the buffer's overhead per measurement and column. */
export function segmentBytes(batch: ColumnarBatch): number {
    let bytes = BUFFER_OVERHEAD_BYTES.measurement + BUFFER_OVERHEAD_BYTES.column * batch.columns.size;
    for (const column of batch.columns.values()) bytes += columnSegmentBytes(column, batch.rows, allocated);
    return bytes;
}

import { type Column, type ColumnarBatch, bitIsSet, bitmapBytes, setBit } from "./batch.js";

/** Bits [start, end) of a bitmap as a new bitmap starting at bit 0. */
export function sliceBitmap(bitmap: Uint8Array, start: number, end: number): Uint8Array {
    if ((start & 7) === 0) return bitmap.slice(start >>> 3, (start >>> 3) + bitmapBytes(end - start));
    const out = new Uint8Array(bitmapBytes(end - start));
    for (let i = start; i < end; i++) if (bitIsSet(bitmap, i)) setBit(out, i - start);
    return out;
}

function sliceColumn(column: Column, start: number, end: number): Column {
    const validity = column.type !== "t" && column.valid !== undefined ? { valid: sliceBitmap(column.valid, start, end) } : {};
    switch (column.type) {
        case "t":
            return { type: "t", values: column.values.subarray(start, end) };
        case "b":
            return { type: "b", values: sliceBitmap(column.values, start, end), ...validity };
        case "s":
            return { type: "s", dict: column.dict, codes: column.codes.subarray(start, end), ...validity };
        case "f":
            return { type: "f", values: column.values.subarray(start, end), ...validity };
        case "i":
            return { type: "i", values: column.values.subarray(start, end), ...validity };
        case "u":
            return { type: "u", values: column.values.subarray(start, end), ...validity };
    }
}

/** Rows [start, end) of a batch; numeric columns are views, bitmaps are copied. */
export function sliceBatch(batch: ColumnarBatch, start: number, end: number): ColumnarBatch {
    if (start === 0 && end === batch.rows) return batch;
    const columns = new Map<string, Column>();
    for (const [name, column] of batch.columns) columns.set(name, sliceColumn(column, start, end));
    return { measurement: batch.measurement, rows: end - start, tags: batch.tags, columns };
}

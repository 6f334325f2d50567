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

function takeBits(bitmap: Uint8Array, rows: Uint32Array): Uint8Array {
    const out = new Uint8Array(bitmapBytes(rows.length));
    for (let k = 0; k < rows.length; k++) if (bitIsSet(bitmap, rows[k]!)) setBit(out, k);
    return out;
}

function takeColumn(column: Column, rows: Uint32Array): Column {
    const validity = column.type !== "t" && column.valid !== undefined ? { valid: takeBits(column.valid, rows) } : {};
    switch (column.type) {
        case "t":
            return { type: "t", values: BigInt64Array.from(rows, (row) => column.values[row]!) };
        case "b":
            return { type: "b", values: takeBits(column.values, rows), ...validity };
        case "s":
            return { type: "s", dict: column.dict, codes: Uint32Array.from(rows, (row) => column.codes[row]!), ...validity };
        case "f":
            return { type: "f", values: Float64Array.from(rows, (row) => column.values[row]!), ...validity };
        case "i":
            return { type: "i", values: BigInt64Array.from(rows, (row) => column.values[row]!), ...validity };
        case "u":
            return { type: "u", values: BigUint64Array.from(rows, (row) => column.values[row]!), ...validity };
    }
}

/** The given rows of a batch, in the given order, copied. */
export function takeRows(batch: ColumnarBatch, rows: Uint32Array): ColumnarBatch {
    const columns = new Map<string, Column>();
    for (const [name, column] of batch.columns) columns.set(name, takeColumn(column, rows));
    return { measurement: batch.measurement, rows: rows.length, tags: batch.tags, columns };
}

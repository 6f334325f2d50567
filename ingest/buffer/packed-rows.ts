/**
 * The rows of a small measurement packed into one byte array (issue 13 item 5). A buffer that
 * keeps its rows in column builders costs ~3.5 KB of JavaScript heap however few they are (the
 * builder, an accumulator per column, their maps and typed arrays): 100,000 one-row measurements
 * took ~350 MB of heap, and V8 lets its heap grow to a multiple of what is live. Packed, the
 * rows are one byte array outside the heap, plus the column names and types: taken out as one
 * batch of exact-size arrays when the buffer needs a batch (a flush, more rows than
 * PACKED_MAX_ROWS, or a write of another kind).
 *
 * Layout, one record per appended batch: rows (u32), columns (u32); per column: name index (u32),
 * type (u8, the letter's code), flags (u8: 1 a tag, 2 has validity), then its values (8 bytes a
 * row; booleans a bitmap; strings: a u32 code a row, the dictionary size (u32), each entry's
 * UTF-8 length (u32) and bytes), then its validity bitmap when flagged.
 */
import { type Column, type ColumnType, type ColumnarBatch, bitmapBytes } from "../../src/columnar/batch.js";
import { joinBatches } from "../../src/columnar/batch-builder.js";
import { BUFFER_OVERHEAD_BYTES } from "./costs.js";
import type { StagedRows } from "./staged-rows.js";

/** A buffer packs its rows while it holds at most this many (beyond, column builders are cheaper per row). */
export const PACKED_MAX_ROWS = 64;

const TAG = 1;
const VALID = 2;
const NO_BYTES = Buffer.alloc(0);

type NumericArray = BigInt64Array | BigUint64Array | Float64Array;
const NUMERIC = { t: BigInt64Array, i: BigInt64Array, u: BigUint64Array, f: Float64Array } as const;

function valueBytes(column: Column, rows: number): number {
    switch (column.type) {
        case "b":
            return bitmapBytes(rows);
        case "s": {
            let bytes = 4 * rows + 4;
            for (const value of column.dict) bytes += 4 + Buffer.byteLength(value, "utf8");
            return bytes;
        }
        default:
            return 8 * rows;
    }
}

/** Bytes a batch takes packed. */
export function packedBytes(batch: ColumnarBatch): number {
    let bytes = 8;
    for (const column of batch.columns.values()) {
        bytes += 6 + valueBytes(column, batch.rows);
        if (column.type !== "t" && column.valid !== undefined) bytes += bitmapBytes(batch.rows);
    }
    return bytes;
}

/** The array size that holds `bytes`: a power of two, at least 64. */
export function packedCapacity(bytes: number): number {
    return Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
}

/** What a batch counts as a new buffer's packed rows: the array that holds it and the buffer's overhead. */
export function packedCost(batch: ColumnarBatch): number {
    return packedCapacity(packedBytes(batch)) + BUFFER_OVERHEAD_BYTES.packed;
}

/** Bytes a column's arrays take in segments (before their growth) and its dictionary strings, as costs.ts counts them. */
function segmentColumnBytes(column: Column, rows: number): number {
    let bytes = column.type === "s" ? 4 * rows : column.type === "b" ? bitmapBytes(rows) : 8 * rows;
    if (column.type !== "t" && column.valid !== undefined) bytes += bitmapBytes(rows);
    if (column.type === "s") for (const value of column.dict) bytes += 2 * value.length + 64;
    return bytes;
}

export class PackedRows implements StagedRows {
    /** Column names, and each one's type letter at the same index. */
    #names: string[] = [];
    #types = "";
    #bytes: Buffer = NO_BYTES;
    #length = 0;
    #rows = 0;
    /** What the rows' arrays and strings take in segments, summed over the batches added. */
    #segmentData = 0;

    constructor(readonly measurement: string) {}

    get rows(): number {
        return this.#rows;
    }

    /** The array's size (its spare room included). */
    get bytes(): number {
        return this.#bytes.byteLength;
    }

    // Invariant kept: covers what the rows count once in segments (each column's arrays at most double as they grow, from 64 bytes).
    segmentBytes(): number {
        const columns = this.#names.length;
        return BUFFER_OVERHEAD_BYTES.measurement + columns * (BUFFER_OVERHEAD_BYTES.column + 64) + 2 * this.#segmentData;
    }

    get columns(): number {
        return this.#names.length;
    }

    /** Bytes adding `batch` adds to `bytes` (the array grown to hold it). */
    growth(batch: ColumnarBatch): number {
        const needed = this.#length + packedBytes(batch);
        return needed <= this.#bytes.byteLength ? 0 : packedCapacity(needed) - this.#bytes.byteLength;
    }

    columnType(name: string): ColumnType | undefined {
        const index = this.#names.indexOf(name);
        return index < 0 ? undefined : (this.#types[index] as ColumnType);
    }

    #nameIndex(name: string, type: ColumnType): number {
        const index = this.#names.indexOf(name);
        if (index >= 0) return index;
        this.#types += type;
        return this.#names.push(name) - 1;
    }

    #reserve(extra: number): void {
        if (this.#length + extra <= this.#bytes.byteLength) return;
        const grown = Buffer.alloc(packedCapacity(this.#length + extra));
        this.#bytes.copy(grown, 0, 0, this.#length);
        this.#bytes = grown;
    }

    #copy(array: Uint8Array | NumericArray | Uint32Array, byteLength: number): void {
        this.#bytes.set(new Uint8Array(array.buffer, array.byteOffset, byteLength), this.#length);
        this.#length += byteLength;
    }

    // Invariant kept: records follow each other in append order, each whole (sized before any byte is written).
    /** Appends the batch's rows (the caller keeps the buffer's column types consistent: `accepts`). */
    add(batch: ColumnarBatch): void {
        const rows = batch.rows;
        this.#reserve(packedBytes(batch));
        const out = this.#bytes;
        out.writeUInt32LE(rows, this.#length);
        out.writeUInt32LE(batch.columns.size, this.#length + 4);
        this.#length += 8;
        const tags = new Set(batch.tags);
        for (const [name, column] of batch.columns) {
            const valid = column.type === "t" ? undefined : column.valid;
            out.writeUInt32LE(this.#nameIndex(name, column.type), this.#length);
            out[this.#length + 4] = column.type.charCodeAt(0);
            out[this.#length + 5] = (tags.has(name) ? TAG : 0) | (valid === undefined ? 0 : VALID);
            this.#length += 6;
            if (column.type === "s") {
                this.#copy(column.codes, 4 * rows);
                out.writeUInt32LE(column.dict.length, this.#length);
                this.#length += 4;
                for (const value of column.dict) {
                    const written = out.write(value, this.#length + 4, "utf8");
                    out.writeUInt32LE(written, this.#length);
                    this.#length += 4 + written;
                }
            } else if (column.type === "b") this.#copy(column.values, bitmapBytes(rows));
            else this.#copy(column.values, 8 * rows);
            if (valid !== undefined) this.#copy(valid, bitmapBytes(rows));
            this.#segmentData += segmentColumnBytes(column, rows);
        }
        this.#rows += rows;
    }

    /** Takes every row out, in the order added, as one batch of exact-size arrays, and empties the rows. */
    take(): ColumnarBatch {
        const batches: ColumnarBatch[] = [];
        for (let at = 0; at < this.#length;) {
            const read = this.#read(at);
            batches.push(read.batch);
            at = read.next;
        }
        this.#names = [];
        this.#types = "";
        this.#bytes = NO_BYTES;
        this.#length = 0;
        this.#rows = 0;
        this.#segmentData = 0;
        return joinBatches(batches);
    }

    #read(start: number): { batch: ColumnarBatch; next: number } {
        const bytes = this.#bytes;
        const rows = bytes.readUInt32LE(start);
        const count = bytes.readUInt32LE(start + 4);
        let at = start + 8;
        const take = (length: number): ArrayBuffer => {
            const copy = new Uint8Array(length);
            copy.set(bytes.subarray(at, at + length));
            at += length;
            return copy.buffer;
        };
        const columns = new Map<string, Column>();
        const tags: string[] = [];
        for (let c = 0; c < count; c++) {
            const name = this.#names[bytes.readUInt32LE(at)]!;
            const type = String.fromCharCode(bytes[at + 4]!) as ColumnType;
            const flags = bytes[at + 5]!;
            at += 6;
            let column: Column;
            if (type === "s") {
                const codes = new Uint32Array(take(4 * rows));
                const dict: string[] = new Array<string>(bytes.readUInt32LE(at));
                at += 4;
                for (let k = 0; k < dict.length; k++) {
                    const length = bytes.readUInt32LE(at);
                    dict[k] = bytes.toString("utf8", at + 4, at + 4 + length);
                    at += 4 + length;
                }
                column = { type, dict, codes };
            } else if (type === "b") column = { type, values: new Uint8Array(take(bitmapBytes(rows))) };
            else column = { type, values: new NUMERIC[type](take(8 * rows)) } as Column;
            if ((flags & VALID) !== 0) column = { ...column, valid: new Uint8Array(take(bitmapBytes(rows))) } as Column;
            if ((flags & TAG) !== 0) tags.push(name);
            columns.set(name, column);
        }
        return { batch: { measurement: this.measurement, rows, tags, columns }, next: at };
    }
}

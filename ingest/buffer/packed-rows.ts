/**
 * The rows of a small measurement packed into one byte array (issue 13 item 5). A buffer that
 * keeps its rows in column builders costs ~3.5 KB of JavaScript heap however few they are (the
 * builder, an accumulator per column, their maps and typed arrays): 100,000 one-row measurements
 * took ~350 MB of heap, and V8 lets its heap grow to a multiple of what is live. Packed, the
 * rows are one byte array outside the heap, plus the column names and types: taken out as one
 * batch of exact-size arrays when the buffer needs a batch (a flush, more rows or batches than
 * PACKED_MAX_ROWS and PACKED_MAX_BATCHES, or a write of another kind).
 *
 * Layout, one record per appended batch: rows (u32), columns (u32); per column: name index (u32),
 * type (u8, the letter's code), flags (u8: 1 a tag, 2 has validity), then its values (8 bytes a
 * row; booleans a bitmap; strings: a u32 code a row, the dictionary size (u32), each entry's
 * UTF-8 length (u32) and bytes), then its validity bitmap when flagged.
 */
import { type Column, type ColumnType, type ColumnarBatch, bitmapBytes, setBit } from "../../src/columnar/batch.js";
import { BUFFER_OVERHEAD_BYTES, allocated, columnSegmentBytes } from "./costs.js";
import type { StagedRows } from "./staged-rows.js";

/**
 * A buffer packs its rows while it holds at most this many rows and batches: beyond, column
 * builders are cheaper per row, and each packed batch costs its packing and unpacking on top
 * (~7 µs a measurement per flush for the first batch, ~1.5 µs for each further one: appends and
 * drains of 20 measurements of 5-row batches, 12 per flush, took 1.3x the time of builders
 * alone when 1 batch was packed and 1.6x when 4 were; whole requests of that shape used 1,058
 * against 1,018 µs of server CPU, medians of 6 interleaved runs that varied by ±8%).
 */
export const PACKED_MAX_ROWS = 64;
export const PACKED_MAX_BATCHES = 4;

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

/** Whether a buffer that holds nothing packs `batch` (its first rows). */
export function startsPacked(batch: ColumnarBatch): boolean {
    return batch.rows <= PACKED_MAX_ROWS;
}

/** What a batch counts as a new buffer's packed rows: the array that holds it and the buffer's overhead. */
export function packedCost(batch: ColumnarBatch): number {
    return allocated(packedBytes(batch)) + BUFFER_OVERHEAD_BYTES.packed;
}

export class PackedRows implements StagedRows {
    /** Column names, and each one's type letter at the same index. */
    #names: string[] = [];
    #types = "";
    #bytes: Buffer = NO_BYTES;
    #length = 0;
    #rows = 0;
    #batches = 0;
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

    /** Whether `batch` may join these rows (PACKED_MAX_ROWS, PACKED_MAX_BATCHES). */
    fits(batch: ColumnarBatch): boolean {
        return this.#rows + batch.rows <= PACKED_MAX_ROWS && this.#batches < PACKED_MAX_BATCHES;
    }

    /** Bytes adding `batch` adds to `bytes` (the array grown to hold it). */
    growth(batch: ColumnarBatch): number {
        const needed = this.#length + packedBytes(batch);
        return needed <= this.#bytes.byteLength ? 0 : allocated(needed) - this.#bytes.byteLength;
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
        const grown = Buffer.alloc(allocated(this.#length + extra));
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
        for (const [name, column] of batch.columns) {
            const valid = column.type === "t" ? undefined : column.valid;
            out.writeUInt32LE(this.#nameIndex(name, column.type), this.#length);
            out[this.#length + 4] = column.type.charCodeAt(0);
            out[this.#length + 5] = (batch.tags.includes(name) ? TAG : 0) | (valid === undefined ? 0 : VALID);
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
            this.#segmentData += columnSegmentBytes(column, rows);
        }
        this.#rows += rows;
        this.#batches++;
    }

    /** Takes every row out, in the order added, as one batch of exact-size arrays, and empties the rows. */
    take(): ColumnarBatch {
        const joined = new JoinedColumns(this.#names, this.#types, this.#rows);
        const bytes = this.#bytes;
        for (let at = 0, row = 0; at < this.#length;) {
            const rows = bytes.readUInt32LE(at);
            const count = bytes.readUInt32LE(at + 4);
            at += 8;
            for (let c = 0; c < count; c++) at = joined.read(bytes, at, row, rows);
            joined.endRecord(row);
            row += rows;
        }
        const batch = joined.batch(this.measurement);
        this.#names = [];
        this.#types = "";
        this.#bytes = NO_BYTES;
        this.#length = 0;
        this.#rows = 0;
        this.#batches = 0;
        this.#segmentData = 0;
        return batch;
    }
}

/** Copies `length` bytes (a few hundred at most: a loop beats making views). */
function copyBytes(from: Uint8Array, start: number, to: Uint8Array, at: number, length: number): void {
    for (let k = 0; k < length; k++) to[at + k] = from[start + k]!;
}

/** Copies bits [0, count) of the bitmap at `from[start…]` to bits [row, row + count) of `to`. */
function copyBits(from: Uint8Array, start: number, to: Uint8Array, row: number, count: number): void {
    for (let k = 0; k < count; k++) if ((from[start + (k >>> 3)]! & (1 << (k & 7))) !== 0) setBit(to, row + k);
}

function setBits(to: Uint8Array, row: number, count: number): void {
    for (let k = row; k < row + count; k++) setBit(to, k);
}

// Invariant kept: every column holds exactly `rows` rows; a row a record did not give a column is null in it.
/** The packed records' columns joined into arrays of all their rows, read one column of one record at a time. */
class JoinedColumns {
    readonly #values: Uint8Array[];
    readonly #valid: (Uint8Array | undefined)[];
    readonly #dicts: { readonly dict: string[]; readonly codes: Map<string, number> }[];
    readonly #tags = new Set<number>();
    /** Per column, whether the record read now gave it. */
    readonly #given: boolean[];

    constructor(
        readonly names: readonly string[],
        readonly types: string,
        readonly rows: number,
    ) {
        this.#values = names.map((_, i) => new Uint8Array(this.#valueBytes(types[i] as ColumnType)));
        this.#valid = names.map(() => undefined);
        this.#dicts = names.map(() => ({ dict: [], codes: new Map() }));
        this.#given = names.map(() => false);
    }

    #valueBytes(type: ColumnType): number {
        return type === "b" ? bitmapBytes(this.rows) : type === "s" ? 4 * this.rows : 8 * this.rows;
    }

    /** The validity of column `index`, made (all rows before `row` present) at its first null. */
    #validOf(index: number, row: number): Uint8Array {
        let valid = this.#valid[index];
        if (valid === undefined) {
            valid = new Uint8Array(bitmapBytes(this.rows));
            setBits(valid, 0, row);
            this.#valid[index] = valid;
        }
        return valid;
    }

    /** Reads one column of a record of `rows` rows starting at `row`; returns where the next one starts. */
    read(bytes: Buffer, start: number, row: number, rows: number): number {
        const index = bytes.readUInt32LE(start);
        const flags = bytes[start + 5]!;
        let at = start + 6;
        const values = this.#values[index]!;
        this.#given[index] = true;
        if ((flags & TAG) !== 0) this.#tags.add(index);
        const type = this.types[index] as ColumnType;
        if (type === "s") {
            const codesAt = at;
            at += 4 * rows;
            const size = bytes.readUInt32LE(at);
            at += 4;
            const { dict, codes } = this.#dicts[index]!;
            const remap = new Uint32Array(size);
            for (let k = 0; k < size; k++) {
                const length = bytes.readUInt32LE(at);
                const value = bytes.toString("utf8", at + 4, at + 4 + length);
                at += 4 + length;
                let code = codes.get(value);
                if (code === undefined) codes.set(value, (code = dict.push(value) - 1));
                remap[k] = code;
            }
            const out = new Uint32Array(values.buffer);
            for (let k = 0; k < rows; k++) out[row + k] = remap[bytes.readUInt32LE(codesAt + 4 * k)] ?? 0;
        } else if (type === "b") {
            copyBits(bytes, at, values, row, rows);
            at += bitmapBytes(rows);
        } else {
            copyBytes(bytes, at, values, 8 * row, 8 * rows);
            at += 8 * rows;
        }
        if ((flags & VALID) !== 0) {
            copyBits(bytes, at, this.#validOf(index, row), row, rows);
            at += bitmapBytes(rows);
        } else if (this.#valid[index] !== undefined) setBits(this.#valid[index], row, rows);
        return at;
    }

    /** Ends a record that starts at `row`: the columns it did not give are null in its rows (their bits stay clear). */
    endRecord(row: number): void {
        const given = this.#given;
        for (let index = 0; index < given.length; index++) {
            if (!given[index]) this.#validOf(index, row);
            given[index] = false;
        }
    }

    batch(measurement: string): ColumnarBatch {
        const columns = new Map<string, Column>();
        const order = [...this.names.keys()].sort((a, b) => this.#rank(a) - this.#rank(b));
        for (const index of order) {
            const type = this.types[index] as ColumnType;
            const values = this.#values[index]!;
            const valid = this.#valid[index];
            const validity = valid === undefined || type === "t" ? {} : { valid };
            let column: Column;
            if (type === "s") column = { type, dict: this.#dicts[index]!.dict, codes: new Uint32Array(values.buffer), ...validity };
            else if (type === "b") column = { type, values, ...validity };
            else column = { type, values: new NUMERIC[type](values.buffer as ArrayBuffer), ...validity } as Column;
            columns.set(this.names[index]!, column);
        }
        return { measurement, rows: this.rows, tags: [...this.#tags].map((index) => this.names[index]!), columns };
    }

    /** Time first, then tags, then fields, each in the order first seen. */
    #rank(index: number): number {
        return (this.types[index] === "t" ? 0 : this.#tags.has(index) ? 1 : 2) * this.names.length + index;
    }
}

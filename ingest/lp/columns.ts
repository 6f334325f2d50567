/**
 * Column builders: growable typed arrays that one measurement's rows are written into while the
 * body is scanned. A value is written at the pending row's index and committed at once (the
 * line is usually good); if the line is rejected later, `rollback` takes the row back. Rows a
 * column has no value for are nulls: zero in the value array and a 0 bit in the validity bitmap,
 * which exists only once the column has a null.
 */
import { endianness } from "node:os";
import { type FieldColumn, type StringColumn, bitmapBytes } from "../../src/columnar/batch.js";
import type { FieldType } from "../schema.js";

/** Where the low and high 32-bit words of a 64-bit element sit in a Uint32Array view. */
export const LO = endianness() === "LE" ? 0 : 1;
export const HI = 1 - LO;

/** Distinct string values a column takes before it may stop deduplicating (when over half are distinct). */
const DEDUPE_PROBE = 1024;

/** Rows a column or time array starts with; capacities double from there. */
const INITIAL_ROWS = 64;

const EMPTY_F64 = new Float64Array(0);
const EMPTY_U32 = new Uint32Array(0);
const EMPTY_U8 = new Uint8Array(0);

/** Bytes a row of a finished column of this type takes (validity bits not counted). */
export const COLUMN_WIDTH = { f: 8, i: 8, u: 8, b: 1, s: 4 } as const satisfies { [T in FieldType]: number };

/** A capacity of at least `rows`: the next power of two from INITIAL_ROWS (amortised doubling). */
export function grownCapacity(current: number, rows: number): number {
    let capacity = Math.max(current, INITIAL_ROWS);
    while (capacity < rows) capacity *= 2;
    return capacity;
}

function grow<T extends Float64Array | Uint32Array | Uint8Array>(old: T, length: number, make: (length: number) => T): T {
    const next = make(length);
    next.set(old);
    return next;
}

/**
 * One field column of a batch under construction. One class for every type (only the arrays of
 * its type are allocated), so the decoder's call sites stay monomorphic.
 */
export class ColumnBuilder {
    readonly name: string;
    type: FieldType;
    /** The type is declared in the registry (a field accepted before): it never changes. */
    fixed: boolean;
    /** Rows the arrays hold. */
    capacity = 0;
    f64: Float64Array = EMPTY_F64;
    /** `i`/`u`: two 32-bit words per row (the memory of a BigInt64Array/BigUint64Array). */
    words: Uint32Array = EMPTY_U32;
    /** `b`: one bit per row. */
    bits: Uint8Array = EMPTY_U8;
    /** `s`: dictionary code per row. */
    codes: Uint32Array = EMPTY_U32;
    dict: string[] = [];
    #codeOf: Map<string, number> | null = new Map();
    /** Values looked up (against the distinct ones, the dictionary: to tell when deduplication stops paying). */
    #lookups = 0;
    /** Validity bitmap, created at the first null. */
    valid: Uint8Array | null = null;
    /** Rows below this index are final (a committed value or a zeroed null). */
    filled = 0;
    /** Rows with a value. */
    present = 0;
    /** The field key whose value the last committed row holds (two keys may map to one column: `host` of a tag host, and `host_field`). */
    lastKey = "";

    constructor(name: string, type: FieldType, fixed: boolean) {
        this.name = name;
        this.type = type;
        this.fixed = fixed;
    }

    /** Makes room for row index `row`. */
    grow(row: number): void {
        const capacity = grownCapacity(this.capacity, row + 1);
        switch (this.type) {
            case "f":
                this.f64 = grow(this.f64, capacity, (n) => new Float64Array(n));
                break;
            case "i":
            case "u":
                this.words = grow(this.words, capacity * 2, (n) => new Uint32Array(n));
                break;
            case "b":
                this.bits = grow(this.bits, bitmapBytes(capacity), (n) => new Uint8Array(n));
                break;
            case "s":
                this.codes = grow(this.codes, capacity, (n) => new Uint32Array(n));
                break;
        }
        if (this.valid !== null) this.valid = grow(this.valid, bitmapBytes(capacity), (n) => new Uint8Array(n));
        this.capacity = capacity;
    }

    /**
     * A column whose type is not fixed takes another type. Such a column holds at most the
     * pending line's value (an accepted line fixes the type), which is dropped.
     */
    retype(type: FieldType): void {
        if (this.fixed) throw new Error(`column "${this.name}" cannot change type: it is declared ${this.type}`);
        this.type = type;
        this.capacity = 0;
        this.f64 = EMPTY_F64;
        this.words = EMPTY_U32;
        this.bits = EMPTY_U8;
        this.codes = EMPTY_U32;
        this.dict = [];
        this.#codeOf = new Map();
        this.#lookups = 0;
        this.valid = null;
        this.filled = 0;
        this.present = 0;
    }

    /**
     * The dictionary code of a string value, added when new. A column whose values turn out
     * mostly distinct (log lines, ids) stops looking them up and appends each one: measured on
     * the string-heavy bench, hashing long unique strings into the Map was a quarter of the time.
     */
    code(value: string): number {
        const codeOf = this.#codeOf;
        if (codeOf === null) {
            this.dict.push(value);
            return this.dict.length - 1;
        }
        this.#lookups++;
        let code = codeOf.get(value);
        if (code === undefined) {
            code = this.dict.length;
            this.dict.push(value);
            codeOf.set(value, code);
            const distinct = code + 1;
            if (distinct >= DEDUPE_PROBE && distinct * 2 > this.#lookups) this.#codeOf = null;
        }
        return code;
    }

    stageBool(row: number, value: boolean): void {
        if (row >= this.capacity) this.grow(row);
        if (value) this.bits[row >>> 3]! |= 1 << (row & 7);
        else this.bits[row >>> 3]! &= ~(1 << (row & 7));
    }

    // Invariant kept: rows [0, filled) are final; a null row is zero and has a 0 validity bit.
    commit(row: number): void {
        if (this.filled > row) return; // a duplicate field in the line: its last value is already in place
        if (this.filled !== row) this.#fillNulls(row);
        if (this.valid !== null) this.valid[row >>> 3]! |= 1 << (row & 7);
        this.filled = row + 1;
        this.present++;
    }

    /** Takes back the value committed for `row` by a line that was then rejected. */
    rollback(row: number): void {
        if (this.filled !== row + 1) return;
        this.filled = row;
        this.present--;
        if (this.valid !== null) this.valid[row >>> 3]! &= ~(1 << (row & 7));
    }

    /** Rows [filled, row) are nulls: zero them, and start the validity bitmap if there is none. */
    #fillNulls(row: number): void {
        if (row > this.capacity) this.grow(row - 1);
        if (this.valid === null) {
            const valid = new Uint8Array(bitmapBytes(this.capacity));
            // Without a bitmap every row so far had a value.
            for (let r = 0; r < this.filled; r++) valid[r >>> 3]! |= 1 << (r & 7);
            this.valid = valid;
        }
        switch (this.type) {
            case "f":
                this.f64.fill(0, this.filled, row);
                break;
            case "i":
            case "u":
                this.words.fill(0, this.filled * 2, row * 2);
                break;
            case "b":
                for (let r = this.filled; r < row; r++) this.bits[r >>> 3]! &= ~(1 << (r & 7));
                break;
            case "s":
                this.codes.fill(0, this.filled, row);
                break;
        }
        this.filled = row;
    }

    /** The finished column for a batch of `rows` rows (views of the builder's arrays). */
    finish(rows: number): FieldColumn {
        if (this.filled < rows) this.#fillNulls(rows);
        const valid = this.valid === null ? undefined : this.valid.subarray(0, bitmapBytes(rows));
        const withValid = <C extends FieldColumn>(column: C): C => (valid === undefined ? column : { ...column, valid });
        switch (this.type) {
            case "f":
                return withValid({ type: "f", values: this.f64.subarray(0, rows) });
            case "i":
                return withValid({ type: "i", values: new BigInt64Array(this.words.buffer, this.words.byteOffset, rows) });
            case "u":
                return withValid({ type: "u", values: new BigUint64Array(this.words.buffer, this.words.byteOffset, rows) });
            case "b": {
                // A rejected line may have staged a bit past the last row: clear the tail.
                if ((rows & 7) !== 0) this.bits[rows >>> 3]! &= (1 << (rows & 7)) - 1;
                return withValid({ type: "b", values: this.bits.subarray(0, bitmapBytes(rows)) });
            }
            case "s":
                return withValid<StringColumn>({ type: "s", dict: this.dict, codes: this.codes.subarray(0, rows) });
        }
    }
}

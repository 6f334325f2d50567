/**
 * Gathering columns through a row order: `out[k] = in[order[k]]` for every column layout of a
 * batch. An undefined order means "rows 0..n-1 unchanged", and then nothing is copied.
 */
import type { StringColumn } from "../../src/columnar/batch.js";
import { int64Words } from "./hour.js";
import type { RankedDictionary } from "./sort.js";

type Wide = BigInt64Array | BigUint64Array | Float64Array;

/**
 * An 8-byte column through the order, copied as pairs of 32-bit words so that every bit
 * pattern (NaN payloads included) survives and no BigInt is ever made.
 */
export function gatherWide<T extends Wide>(values: T, order: Uint32Array | undefined, make: (buffer: ArrayBuffer, length: number) => T): T {
    if (order === undefined) return values;
    const source = int64Words(values);
    const out = new Int32Array(order.length * 2);
    for (let k = 0; k < order.length; k++) {
        const from = order[k]! * 2;
        out[2 * k] = source[from]!;
        out[2 * k + 1] = source[from + 1]!;
    }
    return make(out.buffer, order.length);
}

/** A bitmap (LSB first) through the order, and how many of its bits are set. */
export function gatherBits(bits: Uint8Array, order: Uint32Array | undefined, rows: number): { bits: Uint8Array; ones: number } {
    const n = order === undefined ? rows : order.length;
    if (order === undefined) return { bits, ones: countOnes(bits, n) };
    const out = new Uint8Array((n + 7) >>> 3);
    let ones = 0;
    for (let k = 0; k < n; k += 8) {
        const end = Math.min(8, n - k);
        let byte = 0;
        for (let b = 0; b < end; b++) {
            const row = order[k + b]!;
            byte |= ((bits[row >>> 3]! >>> (row & 7)) & 1) << b;
        }
        out[k >>> 3] = byte;
        ones += BIT_COUNT[byte]!;
    }
    return { bits: out, ones };
}

const BIT_COUNT = Uint8Array.from({ length: 256 }, (_, byte) => {
    let count = 0;
    for (let v = byte; v !== 0; v >>>= 1) count += v & 1;
    return count;
});

/** Set bits among the first `n` of a bitmap. */
export function countOnes(bits: Uint8Array, n: number): number {
    let ones = 0;
    const full = n >>> 3;
    for (let i = 0; i < full; i++) ones += BIT_COUNT[bits[i]!]!;
    for (let i = full * 8; i < n; i++) ones += (bits[i >>> 3]! >>> (i & 7)) & 1;
    return ones;
}

/** Validity through the order: undefined when every row has a value. */
export function gatherValidity(valid: Uint8Array | undefined, order: Uint32Array | undefined, rows: number): { bits: Uint8Array; nulls: number } | undefined {
    if (valid === undefined) return undefined;
    const n = order === undefined ? rows : order.length;
    const gathered = gatherBits(valid, order, rows);
    return gathered.ones === n ? undefined : { bits: gathered.bits, nulls: n - gathered.ones };
}

/** Dictionary codes (Int32, Arrow's) and the dictionary they index: only the values used. */
export interface GatheredStrings {
    readonly codes: Int32Array;
    readonly dict: readonly string[];
}

function present(valid: Uint8Array | undefined, k: number): boolean {
    return valid === undefined || ((valid[k >>> 3]! >>> (k & 7)) & 1) === 1;
}

/**
 * A tag column through the order, its dictionary reduced to the values these rows use, kept
 * in rank order (so the file's dictionary is sorted). Null rows get code 0.
 */
export function gatherTag(column: StringColumn, ranked: RankedDictionary, order: Uint32Array | undefined, rows: number, valid: Uint8Array | undefined): GatheredStrings {
    const n = order === undefined ? rows : order.length;
    const codes = new Int32Array(n);
    const used = new Uint8Array(ranked.values.length + 1);
    for (let k = 0; k < n; k++) {
        if (!present(valid, k)) continue;
        const rank = ranked.rankOfCode[column.codes[order === undefined ? k : order[k]!]!]!;
        codes[k] = rank;
        used[rank] = 1;
    }
    const newIndex = new Int32Array(used.length);
    const dict: string[] = [];
    for (let rank = 1; rank < used.length; rank++) {
        if (used[rank] === 1) {
            newIndex[rank] = dict.length;
            dict.push(ranked.values[rank - 1]!);
        }
    }
    for (let k = 0; k < n; k++) if (present(valid, k)) codes[k] = newIndex[codes[k]!]!;
    return { codes, dict };
}

/**
 * A string field through the order, its dictionary reduced to the values these rows use, in
 * order of first use. Null rows get code 0.
 */
export function gatherStrings(column: StringColumn, order: Uint32Array | undefined, rows: number, valid: Uint8Array | undefined): GatheredStrings {
    const n = order === undefined ? rows : order.length;
    const codes = new Int32Array(n);
    const newIndex = new Int32Array(column.dict.length).fill(-1);
    const dict: string[] = [];
    for (let k = 0; k < n; k++) {
        if (!present(valid, k)) continue;
        const code = column.codes[order === undefined ? k : order[k]!]!;
        let index = newIndex[code]!;
        if (index < 0) {
            index = dict.length;
            newIndex[code] = index;
            dict.push(column.dict[code]!);
        }
        codes[k] = index;
    }
    return { codes, dict };
}

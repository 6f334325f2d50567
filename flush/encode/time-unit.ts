/**
 * The `time` column in microseconds (`parquet.time_unit = "us"`, for readers such as Spark 3.x
 * that refuse TIMESTAMP(NANOS)) without losing a nanosecond: each time is split into the
 * microsecond holding it, floor(ns / 1000), and the nanoseconds past it, 0–999, stored in a
 * second column; the file's footer names that column (`sluice:time_nanos`). Floor rather than
 * truncation keeps the microseconds in the same order as the nanoseconds (also before 1970) and
 * the part past them never negative: exact ns = µs · 1000 + nanos.
 *
 * Both directions work on the 32-bit halves of the int64 values with exact double arithmetic
 * (no BigInt per row): a flush of 1M rows splits its times in a few milliseconds.
 */
import { EncodeInputError } from "./errors.js";
import { int64Words } from "./hour.js";

/** The preferred name of the nanoseconds column; the footer key says which name a file uses. */
export const NANOS_COLUMN = "time_nanos";

const TWO_32 = 2 ** 32;

/** `NANOS_COLUMN`, or when the rows already have a column of that name, the first free of `time_nanos_2`, `time_nanos_3`, … */
export function nanosColumnName(taken: { has(name: string): boolean }): string {
    if (!taken.has(NANOS_COLUMN)) return NANOS_COLUMN;
    let n = 2;
    while (taken.has(`${NANOS_COLUMN}_${n}`)) n++;
    return `${NANOS_COLUMN}_${n}`;
}

export interface SplitTimes {
    /** floor(ns / 1000) per row. */
    readonly micros: BigInt64Array;
    /** ns − 1000 · micros per row, 0–999. */
    readonly nanos: Int16Array;
}

// Invariant kept: micros[i] · 1000 + nanos[i] === ns[i] for every row, with 0 ≤ nanos[i] ≤ 999.
export function splitMicros(ns: BigInt64Array): SplitTimes {
    const rows = ns.length;
    const micros = new BigInt64Array(rows);
    const nanos = new Int16Array(rows);
    const from = int64Words(ns);
    const to = int64Words(micros);
    for (let i = 0; i < rows; i++) {
        const high = from[2 * i + 1]!;
        const low = from[2 * i]! >>> 0;
        // Long division by 1000, one 32-bit word at a time; every intermediate is below 2^42.
        const highQuotient = Math.floor(high / 1000);
        const rest = (high - highQuotient * 1000) * TWO_32 + low;
        const lowQuotient = Math.floor(rest / 1000);
        to[2 * i + 1] = highQuotient;
        to[2 * i] = lowQuotient | 0;
        nanos[i] = rest - lowQuotient * 1000;
    }
    return { micros, nanos };
}

// Invariant kept: the result is micros[i] · 1000 + nanos[i] exactly, or an error when that leaves int64.
export function joinMicros(micros: BigInt64Array, nanos: Int16Array | Int32Array | undefined, where: string): BigInt64Array {
    const rows = micros.length;
    const ns = new BigInt64Array(rows);
    const from = int64Words(micros);
    const to = int64Words(ns);
    for (let i = 0; i < rows; i++) {
        const extra = nanos === undefined ? 0 : nanos[i]!;
        if (extra < 0 || extra > 999) throw new EncodeInputError(`${where}: row ${i} has ${extra} nanoseconds past its microsecond, not 0–999`);
        const high = from[2 * i + 1]!;
        // Below 2^42: exact; its carry goes into the high word.
        const low = (from[2 * i]! >>> 0) * 1000 + extra;
        const carry = Math.floor(low / TWO_32);
        const newHigh = high * 1000 + carry;
        if (newHigh < -0x80000000 || newHigh > 0x7fffffff) throw new EncodeInputError(`${where}: row ${i}, ${micros[i]} µs + ${extra} ns, is outside the int64 nanosecond range`);
        to[2 * i + 1] = newHigh;
        to[2 * i] = (low - carry * TWO_32) | 0;
    }
    return ns;
}

/** How a file's `time` is written: nanoseconds, or microseconds plus the nanoseconds column named here. */
export type TimeLayout = { readonly unit: "ns" } | { readonly unit: "us"; readonly nanosColumn: string };

/** The layout of a file in `unit` whose rows have the columns `taken`. */
export function timeLayout(unit: "ns" | "us", taken: { has(name: string): boolean }): TimeLayout {
    return unit === "ns" ? { unit } : { unit, nanosColumn: nanosColumnName(taken) };
}

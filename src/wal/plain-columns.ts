/**
 * Columns given as plain msgpack arrays (Arc's form) turned into typed columns. With a declared
 * type each value is checked against it; without one (Arc's `{m, columns}`), the type is taken
 * from the values and `time` gets Arc's unit guess.
 */
import { type Column, type ColumnType, TIME_COLUMN, bitmapBytes, setBit } from "../columnar/batch.js";
import { INT64_MAX, INT64_MIN, arcTimeScale } from "../columnar/time-units.js";
import { WalDecodeError } from "./errors.js";

const UINT64_MAX = 2n ** 64n - 1n;

export function columnFromValues(name: string, declared: ColumnType | undefined, values: unknown[], rows: number): Column {
    if (values.length !== rows) throw new WalDecodeError(`column "${name}" has ${values.length} values for ${rows} rows`);
    if (declared === undefined && name === TIME_COLUMN) return arcTimeColumn(values);
    const type = declared ?? inferType(name, values);
    if (type === "t") return { type, values: BigInt64Array.from(values, (v, i) => int64(name, i, required(name, i, v))) };
    const valid = new Uint8Array(bitmapBytes(rows));
    let nulls = 0;
    values.forEach((v, i) => {
        if (v === null || v === undefined) nulls++;
        else setBit(valid, i);
    });
    const validity = nulls === 0 ? {} : { valid };
    switch (type) {
        case "f":
            return { type, ...validity, values: Float64Array.from(values, (v, i) => (v == null ? 0 : float(name, i, v))) };
        case "i":
            return { type, ...validity, values: BigInt64Array.from(values, (v, i) => (v == null ? 0n : int64(name, i, v))) };
        case "u":
            return { type, ...validity, values: BigUint64Array.from(values, (v, i) => (v == null ? 0n : uint64(name, i, v))) };
        case "b": {
            const bits = new Uint8Array(bitmapBytes(rows));
            values.forEach((v, i) => {
                if (v != null && boolean(name, i, v)) setBit(bits, i);
            });
            return { type, ...validity, values: bits };
        }
        case "s": {
            const dict: string[] = [];
            const index = new Map<string, number>();
            const codes = Uint32Array.from(values, (v, i) => {
                if (v == null) return 0;
                const text = string(name, i, v);
                let code = index.get(text);
                if (code === undefined) {
                    code = dict.push(text) - 1;
                    index.set(text, code);
                }
                return code;
            });
            return { type, ...validity, dict, codes };
        }
    }
}

function inferType(name: string, values: unknown[]): ColumnType {
    let kind: "number" | "string" | "boolean" | undefined;
    let integral = true;
    let unsigned = false;
    for (const [i, v] of values.entries()) {
        if (v == null) continue;
        const k = typeof v === "bigint" ? "number" : typeof v;
        if (k !== "number" && k !== "string" && k !== "boolean") throw mismatch(name, i, v, "a number, string or boolean");
        if (kind !== undefined && k !== kind) throw mismatch(name, i, v, `a ${kind} like the values before it`);
        kind = k;
        if (typeof v === "number" && !Number.isInteger(v)) integral = false;
        if (typeof v === "bigint" && v > INT64_MAX) unsigned = true;
    }
    if (kind === "number") return integral ? (unsigned ? "u" : "i") : "f";
    return kind === "boolean" ? "b" : "s";
}

/** Arc's rule: the first value's magnitude picks the unit (< 1e10 s, < 1e13 ms, < 1e16 µs, else ns). */
function arcTimeColumn(values: unknown[]): Column {
    const first = values.length === 0 ? 0n : int64(TIME_COLUMN, 0, required(TIME_COLUMN, 0, values[0]));
    const scale = arcTimeScale(first);
    return {
        type: "t",
        values: BigInt64Array.from(values, (v, i) => {
            const ns = int64(TIME_COLUMN, i, required(TIME_COLUMN, i, v)) * scale;
            if (ns < INT64_MIN || ns > INT64_MAX) throw mismatch(TIME_COLUMN, i, v, "a time within int64 nanoseconds");
            return ns;
        }),
    };
}

function mismatch(name: string, row: number, value: unknown, expected: string): WalDecodeError {
    return new WalDecodeError(`column "${name}" row ${row} is ${JSON.stringify(String(value))}, expected ${expected}`);
}

function required(name: string, row: number, value: unknown): unknown {
    if (value == null) throw mismatch(name, row, value, "a value (time is never null)");
    return value;
}

function integer(name: string, row: number, value: unknown, min: bigint, max: bigint, what: string): bigint {
    let result: bigint | undefined;
    if (typeof value === "bigint") result = value;
    else if (typeof value === "number" && Number.isSafeInteger(value)) result = BigInt(value);
    if (result === undefined || result < min || result > max) throw mismatch(name, row, value, what);
    return result;
}

function int64(name: string, row: number, value: unknown): bigint {
    return integer(name, row, value, INT64_MIN, INT64_MAX, "an int64");
}

function uint64(name: string, row: number, value: unknown): bigint {
    return integer(name, row, value, 0n, UINT64_MAX, "a uint64");
}

function float(name: string, row: number, value: unknown): number {
    if (typeof value === "number") return value;
    if (typeof value === "bigint") return Number(value);
    throw mismatch(name, row, value, "a number");
}

function boolean(name: string, row: number, value: unknown): boolean {
    if (typeof value !== "boolean") throw mismatch(name, row, value, "a boolean");
    return value;
}

function string(name: string, row: number, value: unknown): string {
    if (typeof value !== "string") throw mismatch(name, row, value, "a string");
    return value;
}

/**
 * Column accumulators: a column that grows by whole batch columns and is taken out as one batch
 * column. Missing rows are nulls; string dictionaries are merged. Given a capacity in rows, the
 * storage is allocated for exactly that many up front.
 */
import { SluiceError } from "../errors.js";
import type { Column, ColumnType, FieldColumn } from "./batch.js";
import { GrowableArray, GrowableBitmap } from "./growable.js";

/** Batches of one column with different types cannot be joined. */
export class ColumnTypeMismatchError extends SluiceError {
    readonly code = "column-type-mismatch";
}

/** Validity that stays absent until the first null. */
class LazyValidity {
    #bitmap: GrowableBitmap | undefined;

    constructor(private readonly capacityRows: number) {}

    /** Appends the validity of `count` rows: all present, all absent, or as a bitmap says. */
    append(rowsBefore: number, count: number, valid: Uint8Array | undefined | "absent"): void {
        if (valid === undefined && this.#bitmap === undefined) return;
        if (this.#bitmap === undefined) {
            this.#bitmap = new GrowableBitmap(Math.max(this.capacityRows, rowsBefore + count));
            this.#bitmap.appendRun(true, rowsBefore);
        }
        if (valid === undefined) this.#bitmap.appendRun(true, count);
        else if (valid === "absent") this.#bitmap.appendRun(false, count);
        else this.#bitmap.appendBits(valid, count);
    }

    get capacityBytes(): number {
        return this.#bitmap?.capacityBytes ?? 0;
    }

    view(): { valid: Uint8Array } | Record<string, never> {
        return this.#bitmap === undefined ? {} : { valid: this.#bitmap.view() };
    }
}

export interface Accumulator {
    readonly type: ColumnType;
    readonly rows: number;
    readonly bytes: number;
    /** Appends a batch column of `count` rows; `undefined` appends `count` nulls. */
    append(column: Column | undefined, count: number): void;
    /** The accumulated column (views of the live memory: do not append afterwards). */
    take(): Column;
}

function expectType(column: Column, type: ColumnType): void {
    if (column.type !== type) throw new ColumnTypeMismatchError(`column holds ${type}, batch has ${column.type}`);
}

class TimeAccumulator implements Accumulator {
    readonly type = "t";
    readonly #values: GrowableArray<BigInt64Array>;

    constructor(capacityRows: number) {
        this.#values = new GrowableArray(BigInt64Array, capacityRows);
    }

    get rows(): number {
        return this.#values.length;
    }
    get bytes(): number {
        return this.#values.capacityBytes;
    }

    append(column: Column | undefined): void {
        if (column?.type !== "t") throw new ColumnTypeMismatchError("the time column is missing or not of type t");
        this.#values.append(column.values);
    }

    take(): Column {
        return { type: "t", values: this.#values.view() };
    }
}

type ScalarType = "f" | "i" | "u" | "b";
type NumericArray = Float64Array | BigInt64Array | BigUint64Array;
const NUMERIC_ARRAYS = { f: Float64Array, i: BigInt64Array, u: BigUint64Array } as const;

/** Numbers in a growable typed array, booleans in a growable bitmap; validity either way. */
class ScalarAccumulator implements Accumulator {
    readonly #values: GrowableArray<NumericArray> | GrowableBitmap;
    readonly #validity: LazyValidity;
    #rows = 0;

    constructor(
        readonly type: ScalarType,
        capacityRows: number,
    ) {
        this.#values = type === "b" ? new GrowableBitmap(capacityRows) : new GrowableArray<NumericArray>(NUMERIC_ARRAYS[type], capacityRows);
        this.#validity = new LazyValidity(capacityRows);
    }

    get rows(): number {
        return this.#rows;
    }
    get bytes(): number {
        return this.#values.capacityBytes + this.#validity.capacityBytes;
    }

    append(column: Column | undefined, count: number): void {
        const values = this.#values;
        if (column === undefined) {
            if (values instanceof GrowableBitmap) values.appendRun(false, count);
            else values.appendZeros(count);
        } else {
            expectType(column, this.type);
            if (values instanceof GrowableBitmap) values.appendBits((column as { values: Uint8Array }).values, count);
            else values.append((column as { values: NumericArray }).values);
        }
        this.#validity.append(this.#rows, count, column === undefined ? "absent" : (column as FieldColumn).valid);
        this.#rows += count;
    }

    take(): Column {
        return { type: this.type, values: this.#values.view(), ...this.#validity.view() } as Column;
    }
}

/** Strings: one dictionary for the whole column, each batch's codes remapped into it. */
class StringAccumulator implements Accumulator {
    readonly type = "s";
    readonly #dict: string[] = [];
    readonly #index = new Map<string, number>();
    readonly #codes: GrowableArray<Uint32Array>;
    readonly #validity: LazyValidity;
    #dictBytes = 0;

    constructor(capacityRows: number) {
        this.#codes = new GrowableArray(Uint32Array, capacityRows);
        this.#validity = new LazyValidity(capacityRows);
    }

    get rows(): number {
        return this.#codes.length;
    }
    get bytes(): number {
        return this.#codes.capacityBytes + this.#validity.capacityBytes + this.#dictBytes;
    }

    #code(value: string): number {
        let code = this.#index.get(value);
        if (code === undefined) {
            code = this.#dict.push(value) - 1;
            this.#index.set(value, code);
            this.#dictBytes += 2 * value.length + 64;
        }
        return code;
    }

    append(column: Column | undefined, count: number): void {
        const rowsBefore = this.rows;
        if (column === undefined) this.#codes.appendZeros(count);
        else {
            expectType(column, "s");
            const { dict, codes } = column as { dict: readonly string[]; codes: Uint32Array };
            const remap = new Uint32Array(dict.length);
            for (let i = 0; i < dict.length; i++) remap[i] = this.#code(dict[i]!);
            const mapped = new Uint32Array(count);
            for (let i = 0; i < count; i++) mapped[i] = remap[codes[i]!] ?? 0;
            this.#codes.append(mapped);
        }
        this.#validity.append(rowsBefore, count, column === undefined ? "absent" : (column as FieldColumn).valid);
    }

    take(): Column {
        return { type: "s", dict: this.#dict, codes: this.#codes.view(), ...this.#validity.view() };
    }
}

/**
 * A new accumulator for `type`, holding `rowsBefore` nulls (a column that appears late), with
 * room for `capacityRows` rows up front (0: it grows from a few).
 */
export function accumulatorFor(type: ColumnType, rowsBefore: number, capacityRows = 0): Accumulator {
    const capacity = capacityRows > 0 ? Math.max(capacityRows, rowsBefore) : 0;
    const accumulator = type === "t" ? new TimeAccumulator(capacity) : type === "s" ? new StringAccumulator(capacity) : new ScalarAccumulator(type, capacity);
    if (rowsBefore > 0) accumulator.append(undefined, rowsBefore);
    return accumulator;
}

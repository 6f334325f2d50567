/**
 * The columnar batch: the one shape every stage shares (parser output, WAL payload, buffers,
 * flush input). One batch holds the rows of one (database, measurement) pair.
 */
import { SluiceError } from "../errors.js";

/** Column type codes, as written in the WAL's `types` map (DESIGN.md §2). */
export const COLUMN_TYPES = ["t", "f", "i", "u", "b", "s"] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export function isColumnType(value: unknown): value is ColumnType {
    return typeof value === "string" && (COLUMN_TYPES as readonly string[]).includes(value);
}

/** The time column's name: int64 nanoseconds since the epoch, UTC, never null. */
export const TIME_COLUMN = "time";

/**
 * A validity bitmap: bit i (LSB first within each byte) is 1 when row i has a value. Arrow's
 * layout. A column without one has no nulls.
 */
export type ValidityBitmap = Uint8Array;

export interface TimeColumn {
    readonly type: "t";
    readonly values: BigInt64Array;
}
export interface FloatColumn {
    readonly type: "f";
    readonly values: Float64Array;
    readonly valid?: ValidityBitmap;
}
export interface IntColumn {
    readonly type: "i";
    readonly values: BigInt64Array;
    readonly valid?: ValidityBitmap;
}
export interface UintColumn {
    readonly type: "u";
    readonly values: BigUint64Array;
    readonly valid?: ValidityBitmap;
}
/** Booleans as a bitmap, LSB first: bit i is row i's value (0 where the row is null). */
export interface BoolColumn {
    readonly type: "b";
    readonly values: Uint8Array;
    readonly valid?: ValidityBitmap;
}
/** Strings, dictionary-coded: row i is `dict[codes[i]]` (code 0 where the row is null). */
export interface StringColumn {
    readonly type: "s";
    readonly dict: readonly string[];
    readonly codes: Uint32Array;
    readonly valid?: ValidityBitmap;
}

export type FieldColumn = FloatColumn | IntColumn | UintColumn | BoolColumn | StringColumn;
export type Column = TimeColumn | FieldColumn;

export interface ColumnarBatch {
    readonly measurement: string;
    readonly rows: number;
    /** Names of the tag columns (each a string column). */
    readonly tags: readonly string[];
    /** Every column by name, `time` included; insertion order is the column order. */
    readonly columns: ReadonlyMap<string, Column>;
}

/** A batch whose columns disagree with its row count or types (a bug, or a corrupt WAL entry). */
export class BatchShapeError extends SluiceError {
    readonly code = "batch-shape";
}

export function bitmapBytes(rows: number): number {
    return (rows + 7) >>> 3;
}

export function bitIsSet(bitmap: Uint8Array, index: number): boolean {
    return ((bitmap[index >>> 3] ?? 0) & (1 << (index & 7))) !== 0;
}

export function setBit(bitmap: Uint8Array, index: number): void {
    bitmap[index >>> 3]! |= 1 << (index & 7);
}

/** Whether row `index` of a column has a value. */
export function isPresent(column: Column, index: number): boolean {
    return column.type === "t" || column.valid === undefined || bitIsSet(column.valid, index);
}

/** The number of values a column's main array holds for `rows` rows. */
function valueCount(column: Column): number {
    switch (column.type) {
        case "b":
            return column.values.length * 8;
        case "s":
            return column.codes.length;
        default:
            return column.values.length;
    }
}

// Invariant kept: a batch that passes has a time column, every column sized to `rows`, every
// tag a string column, and every string code inside its dictionary.
export function assertBatchShape(batch: ColumnarBatch): void {
    const { rows } = batch;
    if (!Number.isSafeInteger(rows) || rows < 0) {
        throw new BatchShapeError(`row count ${rows} is not a non-negative integer`);
    }
    if (batch.measurement.length === 0) throw new BatchShapeError("measurement name is empty");
    if (batch.columns.get(TIME_COLUMN)?.type !== "t") {
        throw new BatchShapeError(`batch has no "${TIME_COLUMN}" column of type t`);
    }
    for (const [name, column] of batch.columns) {
        const count = valueCount(column);
        const expected = column.type === "b" ? bitmapBytes(rows) * 8 : rows;
        if (count !== expected) {
            throw new BatchShapeError(`column "${name}" holds ${count} values for ${rows} rows`);
        }
        if (column.type !== "t" && column.valid !== undefined && column.valid.length !== bitmapBytes(rows)) {
            throw new BatchShapeError(`column "${name}" validity has ${column.valid.length} bytes, expected ${bitmapBytes(rows)}`);
        }
        if (column.type === "s") {
            const size = column.dict.length;
            for (let i = 0; i < rows; i++) {
                if (column.codes[i]! >= size && isPresent(column, i)) {
                    throw new BatchShapeError(`column "${name}" row ${i} has code ${column.codes[i]} outside its ${size}-entry dictionary`);
                }
            }
        }
    }
    for (const tag of batch.tags) {
        if (batch.columns.get(tag)?.type !== "s") {
            throw new BatchShapeError(`tag "${tag}" is not a string column`);
        }
    }
}

/** Row `index` of a column as a plain JS value (null when missing): for tests and the CLI. */
export function valueAt(column: Column, index: number): bigint | number | boolean | string | null {
    if (!isPresent(column, index)) return null;
    switch (column.type) {
        case "b":
            return bitIsSet(column.values, index);
        case "s":
            return column.dict[column.codes[index]!]!;
        default:
            return column.values[index]!;
    }
}

/**
 * An Arrow table read back from Parquet → the columnar batch every stage shares (the inverse of
 * arrow.ts): `time` TimestampNanosecond, strings (dictionary-coded or plain Utf8) as dictionary
 * codes, float64, int64, uint64 and booleans as typed arrays, Arrow's null bitmaps as validity.
 * A `time` in microseconds (`parquet.time_unit = "us"`) comes back in nanoseconds, joined with the
 * file's nanoseconds column, which is not a field.
 */
import { type Data, DataType, type Table, TimeUnit, Type } from "apache-arrow";
import { type Column, type ColumnarBatch, TIME_COLUMN, bitmapBytes } from "../../src/columnar/batch.js";
import { EncodeInputError } from "./errors.js";
import { joinMicros } from "./time-unit.js";

/** The validity of `data` as a fresh bitmap starting at row 0, or undefined when every row has a value. */
function validityOf(data: Data): Uint8Array | undefined {
    if (data.nullCount === 0) return undefined;
    const bits = new Uint8Array(bitmapBytes(data.length));
    for (let i = 0; i < data.length; i++) if (data.getValid(i)) bits[i >>> 3]! |= 1 << (i & 7);
    return bits;
}

/** The values of a fixed-width column from its offset, copied so nothing aliases the wasm or IPC buffers. */
function valuesOf<T extends BigInt64Array | BigUint64Array | Float64Array>(data: Data, make: (length: number) => T): T {
    const out = make(data.length);
    out.set((data.values as T).subarray(data.offset, data.offset + data.length) as never);
    return out;
}

function boolColumn(data: Data): Column {
    const values = new Uint8Array(bitmapBytes(data.length));
    const bits = data.values as Uint8Array;
    for (let i = 0; i < data.length; i++) {
        const at = data.offset + i;
        if ((bits[at >>> 3]! >>> (at & 7)) & 1) values[i >>> 3]! |= 1 << (i & 7);
    }
    const valid = validityOf(data);
    return valid === undefined ? { type: "b", values } : { type: "b", values, valid };
}

/** A string column (a dictionary of strings, or plain Utf8) as dictionary codes. */
function stringColumn(data: Data): Column {
    const codes = new Uint32Array(data.length);
    const valid = validityOf(data);
    const dict: string[] = [];
    if (DataType.isDictionary(data.type)) {
        const dictionary = data.dictionary!;
        for (let i = 0; i < dictionary.length; i++) dict.push(dictionary.get(i) as string);
        const keys = data.values as Int32Array;
        for (let i = 0; i < data.length; i++) codes[i] = keys[data.offset + i]!;
        if (valid !== undefined) for (let i = 0; i < data.length; i++) if (((valid[i >>> 3]! >>> (i & 7)) & 1) === 0) codes[i] = 0;
    } else {
        const codeOf = new Map<string, number>();
        for (let i = 0; i < data.length; i++) {
            if (valid !== undefined && ((valid[i >>> 3]! >>> (i & 7)) & 1) === 0) continue;
            const value = utf8At(data, i);
            let code = codeOf.get(value);
            if (code === undefined) {
                code = dict.length;
                dict.push(value);
                codeOf.set(value, code);
            }
            codes[i] = code;
        }
    }
    return valid === undefined ? { type: "s", dict, codes } : { type: "s", dict, codes, valid };
}

const decoder = new TextDecoder();

function utf8At(data: Data, i: number): string {
    const offsets = data.valueOffsets as Int32Array;
    const bytes = data.values as Uint8Array;
    return decoder.decode(bytes.subarray(offsets[data.offset + i], offsets[data.offset + i + 1]));
}

/**
 * The `time` column of a table in nanoseconds: a TIMESTAMP(NANOS) as it is; a TIMESTAMP(MICROS)
 * joined with the Int16 column `nanosColumn` (the footer's `sluice:time_nanos`; none: 0 ns past
 * each microsecond). Other units are refused: Sluice never writes them.
 */
export function timeNanosOf(table: Table, nanosColumn: string | undefined): BigInt64Array {
    const data: Data | undefined = table.getChild(TIME_COLUMN)?.data[0];
    if (data === undefined) throw new EncodeInputError(`no "${TIME_COLUMN}" column`);
    if (!DataType.isTimestamp(data.type)) throw new EncodeInputError(`column "${TIME_COLUMN}" is ${Type[data.type.typeId]}, not a timestamp`);
    const values = valuesOf(data, (n) => new BigInt64Array(n));
    if (data.nullCount > 0) throw new EncodeInputError(`column "${TIME_COLUMN}" has ${data.nullCount} nulls`);
    switch (data.type.unit) {
        case TimeUnit.NANOSECOND:
            return values;
        case TimeUnit.MICROSECOND: {
            if (nanosColumn === undefined) return joinMicros(values, undefined, TIME_COLUMN);
            const nanos: Data | undefined = table.getChild(nanosColumn)?.data[0];
            if (nanos === undefined || !DataType.isInt(nanos.type) || nanos.type.bitWidth > 32 || nanos.nullCount > 0)
                throw new EncodeInputError(`the nanoseconds column "${nanosColumn}" named by the footer is missing or not a non-null integer column`);
            const extra = (nanos.values as Int16Array | Int32Array).subarray(nanos.offset, nanos.offset + nanos.length);
            return joinMicros(values, extra, `columns "${TIME_COLUMN}" and "${nanosColumn}"`);
        }
        default:
            throw new EncodeInputError(`column "${TIME_COLUMN}" is in ${TimeUnit[data.type.unit].toLowerCase()}s; Sluice reads only nano- and microseconds`);
    }
}

function columnOf(name: string, data: Data): Column {
    const type = data.type.typeId;
    const valid = validityOf(data);
    const withValidity = <C extends Column>(column: C): C => (valid === undefined ? column : { ...column, valid });
    switch (type) {
        case Type.Float:
            return withValidity({ type: "f", values: valuesOf(data, (n) => new Float64Array(n)) });
        case Type.Int:
            if (DataType.isInt(data.type) && data.type.isSigned) return withValidity({ type: "i", values: valuesOf(data, (n) => new BigInt64Array(n)) });
            return withValidity({ type: "u", values: valuesOf(data, (n) => new BigUint64Array(n)) });
        case Type.Bool:
            return boolColumn(data);
        case Type.Utf8:
        case Type.Dictionary:
            return stringColumn(data);
        default:
            throw new EncodeInputError(`column "${name}" has type ${Type[type]}, which Sluice does not write`);
    }
}

// Invariant kept: the batch holds exactly the table's rows and values (times in exact
// nanoseconds), nulls as nulls, and owns its memory (nothing aliases the table's buffers).
export function columnarFromArrow(table: Table, measurement: string, tags: readonly string[], nanosColumn?: string): ColumnarBatch {
    if (table.batches.length > 1) throw new EncodeInputError("expected one record batch per read");
    const columns = new Map<string, Column>([[TIME_COLUMN, { type: "t", values: timeNanosOf(table, nanosColumn) }]]);
    for (const field of table.schema.fields) {
        if (columns.has(field.name) || field.name === nanosColumn) continue;
        const data: Data | undefined = table.getChild(field.name)?.data[0];
        if (data === undefined) continue;
        columns.set(field.name, columnOf(field.name, data));
    }
    return { measurement, rows: table.numRows, tags: tags.filter((tag) => columns.has(tag)), columns };
}

/**
 * Arc's msgpack columnar payloads (`POST /api/v1/write/msgpack`): one map `{m, columns}`, an
 * array of them, or `{batch: [...]}`; each column an array of values. Decoded straight into
 * typed columns; anything malformed rejects the whole payload with the reason.
 *
 * Beyond Arc: an optional `tags: [names]` key marks string columns as tags (Arc has no tags),
 * and `time` is nanoseconds unless the request asks for Arc's unit guessing.
 */
import { type Column, type ColumnType, type ColumnarBatch, type FieldColumn, TIME_COLUMN, bitmapBytes, setBit } from "../../src/columnar/batch.js";
import { type ArcTimeUnit, INT64_MAX, INT64_MIN, NANOS_PER, arcTimeScale } from "../../src/columnar/time-units.js";
import { nameProblem } from "../../src/names.js";
import { BadRequestError } from "../errors.js";
import { SchemaOverlay, type SchemaView } from "../schema.js";
import { MsgpackCursor, type ScalarKind } from "./cursor.js";

export interface ArcDecodeOptions {
    readonly database: string;
    /** Read only: what the payload declares is kept in an overlay; the write path reserves it. */
    readonly schema: SchemaView;
    /** The unit of `time` values; `auto` guesses from the first value as Arc does. */
    readonly timeUnit: ArcTimeUnit;
    /** Server clock in ns: the time of every row of a map without a `time` column. */
    readonly nowNs: bigint;
}

const MAX_EXACT_FLOAT_INT = 2n ** 53n;

export function decodeArcPayload(body: Buffer, options: ArcDecodeOptions): ColumnarBatch[] {
    if (body.length === 0) throw new BadRequestError("empty body: expected a msgpack map {m, columns}, an array of them, or {batch: [...]}");
    const cursor = new MsgpackCursor(body);
    const staged = new SchemaOverlay(options.schema);
    const batches: ColumnarBatch[] = [];
    const items = cursor.arrayHeader();
    if (items !== undefined) {
        for (let i = 0; i < items; i++) batches.push(decodeMap(cursor, options, staged, `item ${i}`));
    } else {
        const start = cursor.offset;
        const entries = cursor.mapHeader();
        if (entries === undefined) throw new BadRequestError("payload is not a msgpack map or array");
        if (entries === 1 && cursor.scalarKind() === "string" && cursor.string() === "batch") {
            const count = cursor.arrayHeader();
            if (count === undefined) throw new BadRequestError(`"batch" is not an array`);
            for (let i = 0; i < count; i++) batches.push(decodeMap(cursor, options, staged, `batch[${i}]`));
        } else {
            cursor.rewind(start);
            batches.push(decodeMap(cursor, options, staged, "payload"));
        }
    }
    if (!cursor.done) throw new BadRequestError(`${body.length - cursor.offset} bytes follow the payload`);
    return batches;
}

interface RawColumn {
    readonly name: string;
    /** Where the column's array begins (after its header). */
    readonly offset: number;
    readonly length: number;
}

function decodeMap(cursor: MsgpackCursor, options: ArcDecodeOptions, staged: SchemaOverlay, where: string): ColumnarBatch {
    const { database } = options;
    const entries = cursor.mapHeader();
    if (entries === undefined) throw new BadRequestError(`${where} is not a map`);
    let measurement: string | undefined;
    let raw: RawColumn[] | undefined;
    let tags: string[] = [];
    for (let i = 0; i < entries; i++) {
        if (cursor.scalarKind() !== "string") throw new BadRequestError(`${where} has a key that is not a string`);
        const key = cursor.string();
        if (key === "m") {
            if (cursor.scalarKind() !== "string") throw new BadRequestError(`${where} "m" is not a string`);
            measurement = cursor.string();
        } else if (key === "columns") raw = readColumnIndex(cursor, where);
        else if (key === "tags") tags = readStringArray(cursor, `${where} "tags"`);
        else if (key === "t" || key === "h" || key === "fields" || key === "f") {
            throw new BadRequestError(`${where} looks like Arc's row format ("${key}"): send the columnar form {m, columns: {name: [values]}}`);
        } else throw new BadRequestError(`${where} has an unknown key "${key}" (expected m, columns and optionally tags)`);
    }
    if (measurement === undefined) throw new BadRequestError(`${where} has no measurement name "m"`);
    const misnamed = nameProblem("measurement", measurement);
    if (misnamed !== undefined) throw new BadRequestError(`${where}: ${misnamed}`);
    if (raw === undefined) throw new BadRequestError(`${where} has no "columns" map`);
    const rows = raw[0]?.length ?? 0;
    for (const column of raw) {
        if (column.length !== rows) throw new BadRequestError(`${where} column "${column.name}" has ${column.length} values, "${raw[0]!.name}" has ${rows}`);
    }
    for (const tag of tags) {
        if (!raw.some((column) => column.name === tag)) throw new BadRequestError(`${where} lists tag "${tag}" with no column of that name`);
    }
    const end = cursor.offset;
    const columns = new Map<string, Column>();
    const timeColumn = raw.find((column) => column.name === TIME_COLUMN);
    columns.set(TIME_COLUMN, timeColumn === undefined ? { type: "t", values: new BigInt64Array(rows).fill(options.nowNs) } : readTime(cursor, timeColumn, options.timeUnit, where));
    for (const tag of tags) {
        if (staged.fieldType(database, measurement, tag) !== undefined) throw new BadRequestError(`${where} tag "${tag}" is already a field of measurement "${measurement}"`);
        const column = readColumn(
            cursor,
            raw.find((c) => c.name === tag)!,
            "s",
            where,
        );
        if (column === undefined) continue;
        columns.set(tag, column);
        staged.declare(database, measurement, tag, "tag");
    }
    for (const column of raw) {
        if (column.name === TIME_COLUMN || tags.includes(column.name)) continue;
        const name = staged.isTag(database, measurement, column.name) ? `${column.name}_field` : column.name;
        if (columns.has(name)) throw new BadRequestError(`${where} column "${column.name}" would be stored as "${name}", which is taken`);
        const known = staged.fieldType(database, measurement, name);
        const decoded = readColumn(cursor, column, known, where);
        if (decoded === undefined) continue;
        if (known !== undefined && decoded.type !== known) {
            throw new BadRequestError(`field type conflict: ${where} column "${column.name}" of measurement "${measurement}" is ${decoded.type}, already exists as ${known}`);
        }
        columns.set(name, decoded);
        staged.declare(database, measurement, name, decoded.type);
    }
    cursor.rewind(end);
    return { measurement, rows, tags: tags.filter((tag) => columns.has(tag)), columns };
}

function readStringArray(cursor: MsgpackCursor, what: string): string[] {
    const count = cursor.arrayHeader();
    if (count === undefined) throw new BadRequestError(`${what} is not an array`);
    const values: string[] = [];
    for (let i = 0; i < count; i++) {
        if (cursor.scalarKind() !== "string") throw new BadRequestError(`${what}[${i}] is not a string`);
        values.push(cursor.string());
    }
    return values;
}

/** Where each column's values are, skipping over them (they are read once the types are known). */
function readColumnIndex(cursor: MsgpackCursor, where: string): RawColumn[] {
    const entries = cursor.mapHeader();
    if (entries === undefined) throw new BadRequestError(`${where} "columns" is not a map`);
    const columns: RawColumn[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < entries; i++) {
        if (cursor.scalarKind() !== "string") throw new BadRequestError(`${where} has a column name that is not a string`);
        const name = cursor.string();
        if (name === "") throw new BadRequestError(`${where} has an empty column name`);
        if (seen.has(name)) throw new BadRequestError(`${where} has column "${name}" twice`);
        seen.add(name);
        const length = cursor.arrayHeader();
        if (length === undefined) throw new BadRequestError(`${where} column "${name}" is not an array`);
        const offset = cursor.offset;
        for (let row = 0; row < length; row++) {
            const kind = cursor.scalarKind();
            if (kind === undefined) throw new BadRequestError(`${where} column "${name}" row ${row}: only nil, booleans, numbers and strings are accepted`);
            cursor.skip();
        }
        columns.push({ name, offset, length });
    }
    return columns;
}

/** The kinds a column's values have. */
function kindsOf(cursor: MsgpackCursor, column: RawColumn): Set<ScalarKind> {
    cursor.rewind(column.offset);
    const kinds = new Set<ScalarKind>();
    for (let row = 0; row < column.length; row++) {
        kinds.add(cursor.scalarKind()!);
        cursor.skip();
    }
    kinds.delete("nil");
    return kinds;
}

function columnType(kinds: Set<ScalarKind>, known: ColumnType | undefined, name: string, where: string): ColumnType | undefined {
    const numeric = [...kinds].every((kind) => kind === "int" || kind === "uint64" || kind === "float");
    if (kinds.size === 0) return undefined;
    if (kinds.size === 1 && kinds.has("string")) return "s";
    if (kinds.size === 1 && kinds.has("bool")) return "b";
    if (!numeric) throw new BadRequestError(`${where} column "${name}" mixes ${[...kinds].join(" and ")} values`);
    if (kinds.has("float") || known === "f") return "f";
    if (kinds.has("uint64") || known === "u") return "u";
    return "i";
}

/** A column's values as a typed column of the type they call for (undefined when all are nil). */
function readColumn(cursor: MsgpackCursor, column: RawColumn, known: ColumnType | undefined, where: string): FieldColumn | undefined {
    const type = columnType(kindsOf(cursor, column), known, column.name, where);
    if (type === undefined || type === "t") return undefined;
    const rows = column.length;
    const valid = new Uint8Array(bitmapBytes(rows));
    let nulls = 0;
    const what = (row: number) => `${where} column "${column.name}" row ${row}`;
    cursor.rewind(column.offset);
    const eachRow = (read: (row: number) => void) => {
        for (let row = 0; row < rows; row++) {
            if (cursor.scalarKind() === "nil") {
                cursor.skip();
                nulls++;
                continue;
            }
            setBit(valid, row);
            read(row);
        }
    };
    let result: FieldColumn;
    switch (type) {
        case "f": {
            const values = new Float64Array(rows);
            eachRow((row) => {
                if (cursor.scalarKind() !== "float") {
                    const integer = cursor.integer();
                    if (integer > MAX_EXACT_FLOAT_INT || integer < -MAX_EXACT_FLOAT_INT) throw new BadRequestError(`${what(row)}: ${integer} has no exact float64 value`);
                    values[row] = Number(integer);
                } else values[row] = cursor.float();
            });
            result = { type, values };
            break;
        }
        case "i": {
            const values = new BigInt64Array(rows);
            eachRow((row) => (values[row] = cursor.integer()));
            result = { type, values };
            break;
        }
        case "u": {
            const values = new BigUint64Array(rows);
            eachRow((row) => {
                const value = cursor.integer();
                if (value < 0n) throw new BadRequestError(`${what(row)}: ${value} is negative in an unsigned column`);
                values[row] = value;
            });
            result = { type, values };
            break;
        }
        case "b": {
            const values = new Uint8Array(bitmapBytes(rows));
            eachRow((row) => {
                if (cursor.boolean()) setBit(values, row);
            });
            result = { type, values };
            break;
        }
        case "s": {
            const dict: string[] = [];
            const index = new Map<string, number>();
            const codes = new Uint32Array(rows);
            eachRow((row) => {
                const value = cursor.string();
                let code = index.get(value);
                if (code === undefined) {
                    code = dict.push(value) - 1;
                    index.set(value, code);
                }
                codes[row] = code;
            });
            result = { type, dict, codes };
            break;
        }
    }
    return nulls === 0 ? result : { ...result, valid };
}

function readTime(cursor: MsgpackCursor, column: RawColumn, unit: ArcTimeUnit, where: string): Column {
    cursor.rewind(column.offset);
    const values = new BigInt64Array(column.length);
    let scale: bigint | undefined = unit === "auto" ? undefined : NANOS_PER[unit];
    for (let row = 0; row < column.length; row++) {
        const kind = cursor.scalarKind();
        let value: bigint;
        if (kind === "int") value = cursor.integer();
        else if (kind === "float") {
            const float = cursor.float();
            if (!Number.isSafeInteger(float)) throw new BadRequestError(`${where} time row ${row}: ${float} is not a whole number`);
            value = BigInt(float);
        } else throw new BadRequestError(`${where} time row ${row}: expected an integer timestamp, got ${kind ?? "another type"}`);
        scale ??= arcTimeScale(value);
        const ns = value * scale;
        if (ns < INT64_MIN || ns > INT64_MAX) throw new BadRequestError(`${where} time row ${row}: ${value} is out of range in nanoseconds`);
        values[row] = ns;
    }
    return { type: "t", values };
}

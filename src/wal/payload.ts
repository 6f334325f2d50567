/**
 * The WAL entry payload (DESIGN.md §2): a database envelope, then one standard msgpack map (no
 * extension types) holding one (database, measurement) batch in columnar form.
 *
 * Envelope: 0x01 | u16 BE database-name length | database name (UTF-8) | msgpack map
 * Map keys, in this order: m, n, tags, types, columns, valid (only when a column has nulls), u
 * (only on entries of a request written as several entries: how many entries of that request
 * follow this one, so the last has 0). A reader of Arc's format ignores `u`; recovery replays a
 * request's entries only when its last one is present (DESIGN.md §3 invariant 7).
 */
import { Packr, Unpackr } from "msgpackr";
import {
    type BoolColumn,
    type Column,
    type ColumnarBatch,
    type ColumnType,
    type StringColumn,
    BatchShapeError,
    TIME_COLUMN,
    assertBatchShape,
    bitmapBytes,
    isColumnType,
} from "../columnar/batch.js";
import { fromLittleEndian, toLittleEndianBytes } from "../columnar/endian.js";
import { messageOf } from "../errors.js";
import { EntryWriter, msgpackString } from "./entry-writer.js";
import { WalDecodeError } from "./errors.js";
import { columnFromValues } from "./plain-columns.js";

export const ENVELOPE_MARKER = 0x01;
/** The database of a payload without an envelope (Arc's rule). */
export const DEFAULT_DATABASE = "default";
const MAX_DATABASE_NAME_BYTES = 0xffff;

const packr = new Packr({ useRecords: false, variableMapSize: true, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: "bigint" });

export interface DecodedPayload {
    readonly database: string;
    readonly batch: ColumnarBatch;
    /** Entries of the same request that follow this one in the WAL (0: the request ends here). */
    readonly following: number;
}

/** The envelope bytes for `database`. */
export function encodeEnvelope(database: string): Buffer {
    const name = Buffer.from(database, "utf8");
    if (name.length > MAX_DATABASE_NAME_BYTES) {
        throw new BatchShapeError(`database name is ${name.length} bytes, the limit is ${MAX_DATABASE_NAME_BYTES}`);
    }
    const envelope = Buffer.allocUnsafe(3 + name.length);
    envelope[0] = ENVELOPE_MARKER;
    envelope.writeUInt16BE(name.length, 1);
    name.copy(envelope, 3);
    return envelope;
}

/** Envelopes of the databases written lately (a bounded cache: names are few, but not bounded by anything here). */
const envelopes = new Map<string, Buffer>();
const MAX_CACHED_ENVELOPES = 256;

/** `encodeEnvelope(database)`, from a cache. */
export function envelopeOf(database: string): Buffer {
    let envelope = envelopes.get(database);
    if (envelope === undefined) {
        if (envelopes.size >= MAX_CACHED_ENVELOPES) envelopes.clear();
        envelope = encodeEnvelope(database);
        envelopes.set(database, envelope);
    }
    return envelope;
}

const KEY_M = msgpackString("m");
const KEY_N = msgpackString("n");
const KEY_TAGS = msgpackString("tags");
const KEY_TYPES = msgpackString("types");
const KEY_COLUMNS = msgpackString("columns");
const KEY_DICT = msgpackString("dict");
/** The `codes` key of a string column's map (its bin follows). */
export const CODES_KEY = msgpackString("codes");
const KEY_VALID = msgpackString("valid");
const KEY_FOLLOWING = msgpackString("u");
/** A fixmap header for the five keys every map has (m, n, tags, types, columns). */
const MAP_OF_FIVE = 0x85;

/**
 * The bytes of a payload map that depend only on the batch's shape (its measurement, its
 * columns in order with their types, which are tags), computed once and copied into every
 * entry of that shape. A map is written as: `mapHeader` (counting `valid` and `u` when
 * present), `head`, the row count, `body`, then per column in order `keys[i]` and its values.
 */
export class PayloadShape {
    /** `m` <measurement> `n` */
    readonly head: Buffer;
    /** `tags` [...] `types` {...} `columns` <map header> */
    readonly body: Buffer;
    /** Per column: its name, and for a string column the `{dict, codes}` map header and `dict` key. */
    readonly keys: readonly Buffer[];
    readonly columns: readonly (readonly [string, ColumnType])[];

    constructor(measurement: string, tags: readonly string[], columns: readonly (readonly [string, ColumnType])[]) {
        this.columns = columns;
        const head = new EntryWriter(64);
        head.raw(KEY_M);
        head.str(measurement);
        head.raw(KEY_N);
        this.head = Buffer.from(head.finish());
        const body = new EntryWriter(256);
        body.raw(KEY_TAGS);
        body.arrayHeader(tags.length);
        for (const tag of tags) body.str(tag);
        body.raw(KEY_TYPES);
        body.mapHeader(columns.length);
        for (const [name, type] of columns) {
            body.str(name);
            body.str(type);
        }
        body.raw(KEY_COLUMNS);
        body.mapHeader(columns.length);
        this.body = Buffer.from(body.finish());
        this.keys = columns.map(([name, type]) => {
            const key = new EntryWriter(64);
            key.str(name);
            if (type === "s") {
                key.mapHeader(2);
                key.raw(KEY_DICT);
            }
            return Buffer.from(key.finish());
        });
    }

    static of(batch: ColumnarBatch): PayloadShape {
        return new PayloadShape(
            batch.measurement,
            batch.tags,
            [...batch.columns].map(([name, column]) => [name, column.type] as const),
        );
    }
}

/** Writes the map header, `head`, the row count and `body` of a payload map of `shape`. */
export function writeMapStart(writer: EntryWriter, shape: PayloadShape, rows: number, hasValid: boolean, following: number): void {
    writer.byte(MAP_OF_FIVE + (hasValid ? 1 : 0) + (following > 0 ? 1 : 0));
    writer.raw(shape.head);
    writer.uint(rows);
    writer.raw(shape.body);
}

/** The optional keys after `columns`: `valid` (column name → bitmap) and `u` (when `following` > 0). */
export function writeMapEnd(writer: EntryWriter, valid: readonly (readonly [string, Uint8Array])[], following: number): void {
    if (valid.length > 0) {
        writer.raw(KEY_VALID);
        writer.mapHeader(valid.length);
        for (const [name, bitmap] of valid) {
            writer.str(name);
            writer.bin(bitmap);
        }
    }
    if (following > 0) {
        writer.raw(KEY_FOLLOWING);
        writer.uint(following);
    }
}

/**
 * The msgpack map of one batch, its typed columns packed as views of their memory; `following`
 * is how many entries of the same request come after it. (msgpackr, measured faster here than
 * the EntryWriter for batches of a shape seen once; writers of many entries of a few shapes
 * write them through PayloadShape instead, byte for byte the same.)
 */
export function encodeBatch(batch: ColumnarBatch, following = 0): Buffer {
    assertBatchShape(batch);
    const types = new Map<string, ColumnType>();
    const columns = new Map<string, unknown>();
    const valid = new Map<string, Buffer>();
    for (const [name, column] of batch.columns) {
        types.set(name, column.type);
        columns.set(name, encodeColumnValues(column));
        if (column.type !== "t" && column.valid !== undefined) valid.set(name, bytesOf(column.valid));
    }
    const map = new Map<string, unknown>([
        ["m", batch.measurement],
        ["n", batch.rows],
        ["tags", [...batch.tags]],
        ["types", types],
        ["columns", columns],
    ]);
    if (valid.size > 0) map.set("valid", valid);
    if (following > 0) map.set("u", following);
    return packr.pack(map);
}

function bytesOf(array: Uint8Array): Buffer {
    return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

function encodeColumnValues(column: Column): unknown {
    switch (column.type) {
        case "b":
            return bytesOf(column.values);
        case "s":
            return new Map<string, unknown>([
                ["dict", [...column.dict]],
                ["codes", toLittleEndianBytes(column.codes)],
            ]);
        default:
            return toLittleEndianBytes(column.values);
    }
}

/** Envelope and map, as the two parts of one payload (written without concatenation). */
export function encodePayload(database: string, batch: ColumnarBatch, following = 0): [Buffer, Buffer] {
    return [encodeEnvelope(database), encodeBatch(batch, following)];
}

/** The database a payload belongs to and where its msgpack body starts. */
export function splitEnvelope(payload: Buffer): { database: string; body: Buffer } {
    if (payload.length >= 3 && payload[0] === ENVELOPE_MARKER) {
        const length = payload.readUInt16BE(1);
        if (3 + length <= payload.length) {
            const name = payload.subarray(3, 3 + length);
            const database = new TextDecoder("utf-8", { fatal: true }).decode(name);
            return { database, body: payload.subarray(3 + length) };
        }
    }
    return { database: DEFAULT_DATABASE, body: payload };
}

// Invariant kept: a decoded batch passes assertBatchShape, and its typed arrays own their memory
// (nothing aliases the payload buffer, which the reader reuses).
export function decodePayload(payload: Buffer): DecodedPayload {
    let envelope: { database: string; body: Buffer };
    try {
        envelope = splitEnvelope(payload);
    } catch {
        throw new WalDecodeError("envelope database name is not valid UTF-8");
    }
    let value: unknown;
    try {
        value = unpackr.unpack(envelope.body);
    } catch (error) {
        throw new WalDecodeError(`payload is not msgpack: ${messageOf(error)}`);
    }
    const batch = value instanceof Map && value.has("types") ? decodeTypedMap(value) : decodeArcMap(value);
    try {
        assertBatchShape(batch);
    } catch (error) {
        throw new WalDecodeError(messageOf(error));
    }
    return { database: envelope.database, batch, following: value instanceof Map ? followingOf(value.get("u")) : 0 };
}

function followingOf(value: unknown): number {
    if (value === undefined) return 0;
    const count = typeof value === "bigint" ? Number(value) : value;
    if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0) throw new WalDecodeError(`"u" is not a count of entries`);
    return count;
}

function field(map: Map<unknown, unknown>, key: string): unknown {
    if (!map.has(key)) throw new WalDecodeError(`payload map has no "${key}" key`);
    return map.get(key);
}

function asMap(value: unknown, what: string): Map<unknown, unknown> {
    if (!(value instanceof Map)) throw new WalDecodeError(`${what} is not a map`);
    return value;
}

function asString(value: unknown, what: string): string {
    if (typeof value !== "string") throw new WalDecodeError(`${what} is not a string`);
    return value;
}

function asRowCount(value: unknown): number {
    const rows = typeof value === "bigint" ? Number(value) : value;
    if (typeof rows !== "number" || !Number.isSafeInteger(rows) || rows < 0) {
        throw new WalDecodeError(`"n" is ${String(value)}, not a row count`);
    }
    return rows;
}

function decodeTypedMap(map: Map<unknown, unknown>): ColumnarBatch {
    const measurement = asString(field(map, "m"), `"m"`);
    const rows = asRowCount(field(map, "n"));
    const tagsValue = field(map, "tags");
    if (!Array.isArray(tagsValue)) throw new WalDecodeError(`"tags" is not an array`);
    const tags = tagsValue.map((tag, i) => asString(tag, `"tags"[${i}]`));
    const types = asMap(field(map, "types"), `"types"`);
    const values = asMap(field(map, "columns"), `"columns"`);
    const valid = map.has("valid") ? asMap(map.get("valid"), `"valid"`) : new Map<unknown, unknown>();
    const columns = new Map<string, Column>();
    for (const [nameValue, typeValue] of types) {
        const name = asString(nameValue, "a column name");
        if (!isColumnType(typeValue)) throw new WalDecodeError(`column "${name}" has unknown type ${String(typeValue)}`);
        if (!values.has(name)) throw new WalDecodeError(`column "${name}" is in "types" but not in "columns"`);
        const validity = valid.has(name) ? decodeBitmap(valid.get(name), rows, `"valid"."${name}"`) : undefined;
        if (typeValue === "t" && validity !== undefined) throw new WalDecodeError(`time column "${name}" has a validity bitmap`);
        columns.set(name, decodeColumn(name, typeValue, values.get(name), rows, validity));
    }
    for (const name of values.keys()) {
        if (!types.has(name)) throw new WalDecodeError(`column "${String(name)}" has no entry in "types"`);
    }
    return { measurement, rows, tags, columns };
}

function decodeColumn(name: string, type: ColumnType, value: unknown, rows: number, valid: Uint8Array | undefined): Column {
    if (Array.isArray(value)) return columnFromValues(name, type, value, rows);
    const what = `column "${name}"`;
    const withValidity = <C extends Column>(column: C): C => (valid === undefined ? column : { ...column, valid });
    switch (type) {
        case "t":
            return { type, values: fromLittleEndian(BigInt64Array, binary(value, rows * 8, what)) };
        case "f":
            return withValidity({ type, values: fromLittleEndian(Float64Array, binary(value, rows * 8, what)) });
        case "i":
            return withValidity({ type, values: fromLittleEndian(BigInt64Array, binary(value, rows * 8, what)) });
        case "u":
            return withValidity({ type, values: fromLittleEndian(BigUint64Array, binary(value, rows * 8, what)) });
        case "b":
            return withValidity<BoolColumn>({ type, values: decodeBitmap(value, rows, what) });
        case "s":
            return withValidity<StringColumn>(decodeDictionary(value, rows, what));
    }
}

function binary(value: unknown, expectedBytes: number, what: string): Uint8Array {
    if (!(value instanceof Uint8Array)) throw new WalDecodeError(`${what} is neither a bin nor an array`);
    if (value.length !== expectedBytes) {
        throw new WalDecodeError(`${what} has ${value.length} bytes, expected ${expectedBytes}`);
    }
    return value;
}

function decodeBitmap(value: unknown, rows: number, what: string): Uint8Array {
    return Uint8Array.from(binary(value, bitmapBytes(rows), what));
}

function decodeDictionary(value: unknown, rows: number, what: string): StringColumn {
    const map = asMap(value, what);
    const dict = field(map, "dict");
    if (!Array.isArray(dict)) throw new WalDecodeError(`${what} "dict" is not an array`);
    dict.forEach((entry, i) => asString(entry, `${what} "dict"[${i}]`));
    const codes = fromLittleEndian(Uint32Array, binary(field(map, "codes"), rows * 4, `${what} "codes"`));
    return { type: "s", dict: dict as string[], codes };
}

/** Arc's form: `{m, columns}` of plain arrays, no n/tags/types; every non-time column a field. */
function decodeArcMap(value: unknown): ColumnarBatch {
    const map = asMap(value, "payload");
    const measurement = asString(field(map, "m"), `"m"`);
    const arrays = asMap(field(map, "columns"), `"columns"`);
    let rows: number | undefined;
    for (const [name, array] of arrays) {
        if (!Array.isArray(array)) throw new WalDecodeError(`column "${String(name)}" is not an array`);
        if (rows !== undefined && array.length !== rows) {
            throw new WalDecodeError(`column "${String(name)}" has ${array.length} values, others have ${rows}`);
        }
        rows = array.length;
    }
    if (!arrays.has(TIME_COLUMN)) throw new WalDecodeError(`Arc payload has no "${TIME_COLUMN}" column`);
    const columns = new Map<string, Column>();
    for (const [name, array] of arrays) {
        const columnName = asString(name, "a column name");
        columns.set(columnName, columnFromValues(columnName, undefined, array as unknown[], rows ?? 0));
    }
    return { measurement, rows: rows ?? 0, tags: [], columns };
}

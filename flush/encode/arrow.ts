/**
 * Batch rows (through a row order) → an Arrow table, straight from typed arrays with
 * `makeData` (no row objects, no builders: the builders cannot keep nanoseconds).
 *
 * Column order: `time`, the tags in `batch.tags` order, then the fields in batch order. A field
 * may take its rows through an order of its own (point identity: a merged point's value of a
 * field comes from the latest of its rows that has one).
 * `time` → Timestamp(ns) without a time zone, not nullable (Parquet TIMESTAMP(NANOS,
 * isAdjustedToUTC=false), which DuckDB reads as exact TIMESTAMP_NS); in the `us` layout
 * Timestamp(µs) the same way, followed by the Int16 nanoseconds column (time-unit.ts); tags and string fields →
 * Dictionary<Utf8, Int32>; `f` Float64, `i` Int64, `u` Uint64, `b` Bool; validity → null bitmap.
 */
import {
    Bool,
    type Data,
    Dictionary,
    Field,
    Float64,
    Int16,
    Int32,
    Int64,
    RecordBatch,
    Schema,
    Struct,
    Table,
    TimestampMicrosecond,
    TimestampNanosecond,
    Uint64,
    Utf8,
    type Vector,
    makeData,
    makeVector,
} from "apache-arrow";
import { type ColumnarBatch, type FieldColumn, type StringColumn, type TimeColumn, TIME_COLUMN } from "../../src/columnar/batch.js";
import { EncodeFailedError } from "./errors.js";
import { type GatheredStrings, gatherBits, gatherStrings, gatherTag, gatherValidity, gatherWide } from "./gather.js";
import { int64Words } from "./hour.js";
import type { RankedDictionary } from "./sort.js";
import { type TimeLayout, splitMicros } from "./time-unit.js";

/** An Arrow Utf8 vector of `values` (UTF-8 bytes plus Int32 offsets). */
export function utf8Vector(values: readonly string[]): Vector<Utf8> {
    const valueOffsets = new Int32Array(values.length + 1);
    let total = 0;
    for (let i = 0; i < values.length; i++) {
        total += Buffer.byteLength(values[i]!, "utf8");
        valueOffsets[i + 1] = total;
    }
    if (total > 0x7fffffff) throw new EncodeFailedError(`a dictionary of ${values.length} strings holds ${total} bytes, beyond Arrow Utf8's 2 GiB`);
    const data = new Uint8Array(total);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let at = 0;
    for (const value of values) at += bytes.write(value, at, "utf8");
    return makeVector(makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets, data }));
}

/**
 * Hands out the arrays of one table's buffers, copying any whose memory already backs another
 * one. apache-arrow 21's IPC writer merges consecutive chunks that share an ArrayBuffer and
 * overlap (`collapseContiguousByteRanges`), so the same array in two columns (possible when rows
 * need no reordering and the batch reuses an array) yields a truncated message body.
 */
class DistinctBuffers {
    readonly #used = new Set<ArrayBufferLike>();

    own<T extends Uint8Array | Int32Array | Float64Array | BigInt64Array | BigUint64Array>(array: T): T {
        if (array.byteLength === 0) return array;
        const owned = this.#used.has(array.buffer) ? (array.slice() as T) : array;
        this.#used.add(owned.buffer);
        return owned;
    }
}

function dictionaryData(strings: GatheredStrings, validity: { bits: Uint8Array; nulls: number } | undefined, id: number): Data<Dictionary<Utf8, Int32>> {
    // A fixed id per column (not apache-arrow's global counter): the same input gives the same bytes.
    const type = new Dictionary(new Utf8(), new Int32(), id);
    return makeData({
        type,
        length: strings.codes.length,
        nullCount: validity?.nulls ?? 0,
        ...(validity === undefined ? {} : { nullBitmap: validity.bits }),
        data: strings.codes,
        dictionary: utf8Vector(strings.dict),
    });
}

function fieldData(column: FieldColumn, order: Uint32Array | undefined, rows: number, buffers: DistinctBuffers, id: number): Data {
    const n = order === undefined ? rows : order.length;
    const gathered = gatherValidity(column.valid, order, rows);
    const validity = gathered === undefined ? undefined : { bits: buffers.own(gathered.bits), nulls: gathered.nulls };
    const nulls = { nullCount: validity?.nulls ?? 0, ...(validity === undefined ? {} : { nullBitmap: validity.bits }) };
    switch (column.type) {
        case "f":
            return makeData({ type: new Float64(), length: n, ...nulls, data: buffers.own(gatherWide(column.values, order, (b, l) => new Float64Array(b, 0, l))) });
        case "i":
            return makeData({ type: new Int64(), length: n, ...nulls, data: buffers.own(gatherWide(column.values, order, (b, l) => new BigInt64Array(b, 0, l))) });
        case "u":
            return makeData({ type: new Uint64(), length: n, ...nulls, data: buffers.own(gatherWide(column.values, order, (b, l) => new BigUint64Array(b, 0, l))) });
        case "b":
            return makeData({ type: new Bool(), length: n, ...nulls, data: buffers.own(gatherBits(column.values, order, rows).bits) });
        case "s":
            return dictionaryData(gatherStrings(column, order, rows, validity?.bits), validity, id);
    }
}

export interface ArrowRows {
    readonly table: Table;
    readonly rows: number;
    readonly minTimeNs: bigint;
    readonly maxTimeNs: bigint;
}

/**
 * The Arrow table of `order`'s rows of `batch` (all rows in place when `order` is undefined);
 * a field in `fieldOrders` takes its rows through that order instead (same length).
 * `tags` are the ranked tag dictionaries from `orderRows`; `layout` how `time` is written.
 */
export function buildArrowTable(
    batch: ColumnarBatch,
    tags: readonly RankedDictionary[],
    order: Uint32Array | undefined,
    layout: TimeLayout,
    fieldOrders?: ReadonlyMap<string, Uint32Array>,
): ArrowRows {
    const rows = order === undefined ? batch.rows : order.length;
    const fields: Field[] = [];
    const children: Data[] = [];
    const buffers = new DistinctBuffers();

    const time = buffers.own(gatherWide((batch.columns.get(TIME_COLUMN) as TimeColumn).values, order, (b, l) => new BigInt64Array(b, 0, l)));
    if (layout.unit === "ns") {
        fields.push(new Field(TIME_COLUMN, new TimestampNanosecond(), false));
        children.push(makeData({ type: new TimestampNanosecond(), length: rows, nullCount: 0, data: time }));
    } else {
        const { micros, nanos } = splitMicros(time);
        fields.push(new Field(TIME_COLUMN, new TimestampMicrosecond(), false), new Field(layout.nanosColumn, new Int16(), false));
        children.push(
            makeData({ type: new TimestampMicrosecond(), length: rows, nullCount: 0, data: micros }),
            makeData({ type: new Int16(), length: rows, nullCount: 0, data: nanos }),
        );
    }

    batch.tags.forEach((name, t) => {
        const column = batch.columns.get(name) as StringColumn;
        const gathered = gatherValidity(column.valid, order, batch.rows);
        const validity = gathered === undefined ? undefined : { bits: buffers.own(gathered.bits), nulls: gathered.nulls };
        const data = dictionaryData(gatherTag(column, tags[t]!, order, batch.rows, validity?.bits), validity, children.length);
        fields.push(new Field(name, data.type, true));
        children.push(data);
    });

    const tagNames = new Set(batch.tags);
    for (const [name, column] of batch.columns) {
        if (column.type === "t" || tagNames.has(name)) continue;
        const data = fieldData(column, fieldOrders?.get(name) ?? order, batch.rows, buffers, children.length);
        fields.push(new Field(name, data.type, true));
        children.push(data);
    }

    const schema = new Schema(fields);
    const struct = makeData({ type: new Struct(fields), length: rows, nullCount: 0, children });
    const table = new Table(schema, new RecordBatch(schema, struct));
    const { min, max } = timeRange(time, rows);
    return { table, rows, minTimeNs: min, maxTimeNs: max };
}

/** The lowest and highest of the first `rows` times. */
export function timeRange(time: BigInt64Array, rows: number): { min: bigint; max: bigint } {
    const words = int64Words(time);
    let min = 0;
    let max = 0;
    for (let i = 1; i < rows; i++) {
        const high = words[2 * i + 1]!;
        const low = words[2 * i]! >>> 0;
        const minHigh = words[2 * min + 1]!;
        if (high < minHigh || (high === minHigh && low < words[2 * min]! >>> 0)) min = i;
        const maxHigh = words[2 * max + 1]!;
        if (high > maxHigh || (high === maxHigh && low > words[2 * max]! >>> 0)) max = i;
    }
    return { min: time[min]!, max: time[max]! };
}

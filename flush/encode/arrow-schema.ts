/**
 * The `ARROW:schema` footer value of a file not written by parquet-wasm: the Arrow schema that
 * parquet-wasm would embed for the same rows, so Arrow readers (pyarrow/pandas, polars, arrow-rs
 * in compaction) give tags and string fields the same types (dictionary<int32, utf8>) in every
 * file of a measurement. Derived from apache-arrow's own IPC schema message of a zero-row table
 * built by `buildArrowTable` (the code that builds parquet-wasm's input), never hand-rolled.
 */
import { Table, tableToIPC } from "apache-arrow";
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import { buildArrowTable } from "./arrow.js";
import { EncodeFailedError } from "./errors.js";
import type { RankedDictionary } from "./sort.js";
import type { TimeLayout } from "./time-unit.js";

export const ARROW_SCHEMA_KEY = "ARROW:schema";

/** Distinct column shapes remembered (one per measurement shape; cleared when full). */
const CACHE_LIMIT = 4096;
const cache = new Map<string, string>();

/** What the schema message depends on: the time layout and each column's name, type and role, in order. */
function shapeKey(batch: ColumnarBatch, layout: TimeLayout): string {
    const columns = [...batch.columns].map(([name, column]) => [name, column.type]);
    return JSON.stringify([layout, batch.tags, columns]);
}

/** The IPC schema message (continuation marker, length, flatbuffer) of a stream holding no batches. */
function schemaMessage(table: Table): Uint8Array {
    const stream = tableToIPC(new Table(table.schema), "stream");
    const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
    if (stream.byteLength < 8 || view.getUint32(0, true) !== 0xffffffff) throw new EncodeFailedError("apache-arrow's IPC stream does not open with a framed schema message");
    return stream.subarray(0, 8 + view.getInt32(4, true));
}

// Invariant kept: the value equals what the rows' Arrow table (arrow.ts) would be described by, for any rows of this shape.
export function arrowSchemaValue(batch: ColumnarBatch, tags: readonly RankedDictionary[], layout: TimeLayout): string {
    const key = shapeKey(batch, layout);
    const known = cache.get(key);
    if (known !== undefined) return known;
    const { table } = buildArrowTable(batch, tags, new Uint32Array(0), layout);
    const value = Buffer.from(schemaMessage(table)).toString("base64");
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, value);
    return value;
}

/**
 * The Parquet file of an hour of few rows (`parquet.small_file_rows`), written by the pure-JS
 * hyparquet-writer straight from the batch's columns: no Arrow table, no IPC, no wasm writer
 * set-up, which cost ~0.31 ms of CPU per one-row file against ~0.16 ms here (`npm run bench --
 * smallfile`). The same contract as parquet-wasm's files (DESIGN.md §4): the same columns in
 * the same order with the same Parquet and reader-visible types, `time` REQUIRED and DELTA_BINARY_PACKED
 * (or PLAIN), strings UTF-8 and dictionary-encoded, the same footer key-values and `ARROW:schema`.
 *
 * Integer columns carry their legacy converted type only (UINT_64 for uint64 fields, INT_16 for
 * the nanoseconds column), which the format defines as equal to INTEGER(64, false) and
 * INTEGER(16, true) and every reader Sluice is tested with maps to the same type: hyparquet-writer
 * 0.17.0 writes IntType.bitWidth, a Thrift i8, as a zigzag varint, so readers would see 32 for 16
 * and fail on the footer for 64.
 *
 * The configured codec is the file's codec. hyparquet-writer has no ZSTD encoder (nor has Node
 * 20), so with `zstd` each page is a Zstandard frame that stores its bytes (zstd-stored.ts): a
 * page of a few values does not compress anyway; compacting their partition rewrites them with ZSTD.
 */
import { parquetWriteBuffer } from "hyparquet-writer";
import { type Column, type ColumnarBatch, type TimeColumn, TIME_COLUMN, valueAt } from "../../src/columnar/batch.js";
import { ARROW_SCHEMA_KEY, arrowSchemaValue } from "./arrow-schema.js";
import { timeRange } from "./arrow.js";
import { withTimeRange } from "./footer.js";
import { gatherWide } from "./gather.js";
import type { RankedDictionary } from "./sort.js";
import { type TimeLayout, splitMicros } from "./time-unit.js";
import { zstdStored } from "./zstd-stored.js";
import type { Compression, ResolvedEncodeOptions } from "./types.js";

type WriteOptions = Parameters<typeof parquetWriteBuffer>[0];
type ColumnSource = WriteOptions["columnData"][number];
type SchemaElement = NonNullable<WriteOptions["schema"]>[number];
type CompressionCodec = NonNullable<WriteOptions["codec"]>;

/** The codec a small file is written with, for each configured one: the same as parquet-wasm's. */
export const SMALL_FILE_CODECS = {
    zstd: "ZSTD",
    snappy: "SNAPPY",
    none: "UNCOMPRESSED",
} as const satisfies Record<Compression, CompressionCodec>;

export interface SmallFile {
    readonly bytes: Uint8Array;
    readonly rows: number;
    readonly minTimeNs: bigint;
    readonly maxTimeNs: bigint;
}

type Cell = bigint | number | boolean | string | null;

/** The schema element of a nullable column of `column`'s type, as parquet-rs declares it for its Arrow type (arrow.ts), integers by converted type only (see above). */
function fieldElement(name: string, column: Exclude<Column, TimeColumn>): SchemaElement {
    const optional = { name, repetition_type: "OPTIONAL" } as const;
    switch (column.type) {
        case "f":
            return { ...optional, type: "DOUBLE" };
        case "i":
            return { ...optional, type: "INT64" };
        case "u":
            return { ...optional, type: "INT64", converted_type: "UINT_64" };
        case "b":
            return { ...optional, type: "BOOLEAN" };
        case "s":
            return { ...optional, type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "STRING" } };
    }
}

/**
 * Strings always dictionary-encoded, as parquet-wasm writes them; floats never: hyparquet-writer
 * keys its dictionary by a Map, which takes -0 for 0; other columns as hyparquet-writer chooses.
 */
function columnEncoding(column: Exclude<Column, TimeColumn>): { readonly encoding?: NonNullable<ColumnSource["encoding"]> } {
    if (column.type === "s") return { encoding: "RLE_DICTIONARY" };
    if (column.type === "f") return { encoding: "PLAIN" };
    return {};
}

/** `column`'s values through `order` as plain JS values (null where missing), the form hyparquet-writer takes. */
function cellsThrough(column: Column, order: Uint32Array | undefined, rows: number): Cell[] {
    const cells = new Array<Cell>(rows);
    for (let k = 0; k < rows; k++) cells[k] = valueAt(column, order === undefined ? k : order[k]!);
    return cells;
}

/** The `time` columns (one, or µs plus the nanoseconds column) with their schema elements. */
function timeColumns(time: BigInt64Array, layout: TimeLayout, encoding: NonNullable<ColumnSource["encoding"]>): { sources: ColumnSource[]; elements: SchemaElement[] } {
    const required = { repetition_type: "REQUIRED" } as const;
    if (layout.unit === "ns") {
        return {
            sources: [{ name: TIME_COLUMN, data: time, encoding, nullable: false }],
            elements: [{ name: TIME_COLUMN, type: "INT64", ...required, logical_type: { type: "TIMESTAMP", isAdjustedToUTC: false, unit: "NANOS" } }],
        };
    }
    const { micros, nanos } = splitMicros(time);
    return {
        sources: [
            { name: TIME_COLUMN, data: micros, encoding, nullable: false },
            { name: layout.nanosColumn, data: Int32Array.from(nanos), nullable: false },
        ],
        elements: [
            { name: TIME_COLUMN, type: "INT64", ...required, converted_type: "TIMESTAMP_MICROS", logical_type: { type: "TIMESTAMP", isAdjustedToUTC: false, unit: "MICROS" } },
            { name: layout.nanosColumn, type: "INT32", ...required, converted_type: "INT_16" },
        ],
    };
}

/**
 * The Parquet file of `order`'s rows of `batch` (all rows in place when undefined), columns as
 * `buildArrowTable` lays them out: `time`, the tags in `batch.tags` order, then the fields in
 * batch order, a field in `fieldOrders` taking its rows through that order. `metadata` is the
 * file's footer key-values without its time range, which is added here; the columns in
 * `noStatistics` (floats holding NaN, nan-statistics.ts) get no statistics.
 */
// Invariant kept: the columns, the types readers give them and the footer key-values are those parquet-wasm writes for the same rows.
export function writeSmallParquet(
    batch: ColumnarBatch,
    tags: readonly RankedDictionary[],
    order: Uint32Array | undefined,
    layout: TimeLayout,
    fieldOrders: ReadonlyMap<string, Uint32Array> | undefined,
    options: ResolvedEncodeOptions,
    metadata: ReadonlyMap<string, string>,
    noStatistics: ReadonlySet<string>,
): SmallFile {
    const rows = order === undefined ? batch.rows : order.length;
    const time = gatherWide((batch.columns.get(TIME_COLUMN) as TimeColumn).values, order, (b, l) => new BigInt64Array(b, 0, l));
    const { sources, elements } = timeColumns(time, layout, options.timeEncoding === "delta" ? "DELTA_BINARY_PACKED" : "PLAIN");
    const tagNames = new Set(batch.tags);
    const add = (name: string, column: Exclude<Column, TimeColumn>, rowOrder: Uint32Array | undefined) => {
        sources.push({ name, data: cellsThrough(column, rowOrder, rows), nullable: true, statistics: !noStatistics.has(name), ...columnEncoding(column) });
        elements.push(fieldElement(name, column));
    };
    for (const name of batch.tags) add(name, batch.columns.get(name) as Exclude<Column, TimeColumn>, order);
    for (const [name, column] of batch.columns) {
        if (column.type === "t" || tagNames.has(name)) continue;
        add(name, column, fieldOrders?.get(name) ?? order);
    }
    const { min, max } = timeRange(time, rows);
    const keyValues = withTimeRange(metadata, min, max).set(ARROW_SCHEMA_KEY, arrowSchemaValue(batch, tags, layout));
    const bytes = parquetWriteBuffer({
        columnData: sources,
        schema: [{ name: "arrow_schema", num_children: elements.length }, ...elements],
        codec: SMALL_FILE_CODECS[options.compression],
        compressors: { ZSTD: zstdStored },
        rowGroupSize: options.maxRowGroupRows,
        // Whole string bounds, as parquet-rs writes them: no truncated bound for a reader to prune by.
        statisticsTruncateLength: Number.POSITIVE_INFINITY,
        kvMetadata: [...keyValues].map(([key, value]) => ({ key, value })),
        createdBy: `sluice ${options.sluiceVersion} (hyparquet-writer)`,
    });
    return { bytes: new Uint8Array(bytes), rows, minTimeNs: min, maxTimeNs: max };
}

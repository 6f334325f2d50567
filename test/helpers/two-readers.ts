/**
 * One Parquet file read by two independent readers, DuckDB (C++) and hyparquet (pure JS, with
 * hyparquet-compressors for ZSTD), each turned into the same plain rows so they can be compared
 * value by value: `time` as exact int64 nanoseconds (a microsecond `time` joined with the
 * nanoseconds column its footer names, which is then not a column of the row), bigints for 64-bit
 * integers, numbers, booleans, strings, and null for a missing value.
 */
import { readFile } from "node:fs/promises";
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import { type FileMetaData, type SchemaElement, parquetMetadata, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import type { Value } from "./batches.js";

export type PlainRow = Record<string, Value>;

/** What a reader saw: the rows in file order, the `time` column's unit, and the footer's nanoseconds column. */
export interface ReadBack {
    readonly rows: PlainRow[];
    readonly timeType: string;
    /** `sluice:time_nanos` as this reader found it in the footer. */
    readonly nanosColumn: string | undefined;
}

const NANOS_KEY = "sluice:time_nanos";

function sqlString(value: string): string {
    return `'${value.replaceAll("'", "''")}'`;
}

/** µs · 1000 + ns, checking that the part past the microsecond is 0–999 (so µs is the floor). */
function joined(micros: bigint, nanos: unknown, where: string): bigint {
    if (typeof nanos !== "number" || !Number.isInteger(nanos) || nanos < 0 || nanos > 999)
        throw new Error(`${where}: nanoseconds past the microsecond ${String(nanos)} are not 0–999`);
    return micros * 1000n + BigInt(nanos);
}

export async function readWithDuckDB(connection: DuckDBConnection, path: string): Promise<ReadBack> {
    const source = `read_parquet(${sqlString(path)}, hive_partitioning = false, file_row_number = true)`;
    const described = (await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjects();
    const timeType = String(described.find((row) => row["column_name"] === "time")!["column_type"]);
    const kv = (await connection.runAndReadAll(`SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata(${sqlString(path)})`)).getRowObjects();
    const nanosValue = kv.find((row) => row["key"] === NANOS_KEY)?.["value"];
    const nanosColumn = nanosValue === undefined ? undefined : String(nanosValue);
    const epoch = timeType === "TIMESTAMP_NS" ? "epoch_ns" : "epoch_us";
    const result = await connection.runAndReadAll(`SELECT * EXCLUDE (file_row_number) REPLACE (${epoch}(time) AS time) FROM ${source} ORDER BY file_row_number`);
    const rows = result.getRowObjects().map((row: Record<string, DuckDBValue>, i) => {
        const plain: PlainRow = {};
        for (const [name, value] of Object.entries(row)) {
            if (name === nanosColumn) continue;
            if (value !== null && typeof value === "object") throw new Error(`DuckDB gave column ${name} as ${value.constructor.name}`);
            plain[name] = value;
        }
        if (nanosColumn !== undefined) plain["time"] = joined(row["time"] as bigint, row[nanosColumn], `DuckDB row ${i}`);
        return plain;
    });
    return { rows, timeType, nanosColumn };
}

export interface HyparquetReadBack extends ReadBack {
    readonly metadata: FileMetaData;
    /** The schema element of each top-level column, by name. */
    readonly schema: ReadonlyMap<string, SchemaElement>;
}

/** hyparquet's raw view: timestamps as the int64 the file stores (no Date, which would round). */
const RAW = { timestampFromNanoseconds: (value: bigint) => value, timestampFromMicroseconds: (value: bigint) => value, timestampFromMilliseconds: (value: bigint) => value };

export async function readWithHyparquet(path: string): Promise<HyparquetReadBack> {
    const bytes = await readFile(path);
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const metadata = parquetMetadata(file, { parsers: RAW });
    const schema = new Map(metadata.schema.slice(1).map((element) => [element.name, element]));
    const nanosColumn = metadata.key_value_metadata?.find((entry) => entry.key === NANOS_KEY)?.value;
    const unit = schema.get("time")?.logical_type;
    const timeType = unit?.type === "TIMESTAMP" ? unit.unit : String(unit?.type);
    const read = await parquetReadObjects({ file, metadata, compressors, parsers: RAW, utf8: true });
    const rows = read.map((row, i) => {
        const plain: PlainRow = {};
        for (const [name, value] of Object.entries(row)) {
            if (name === nanosColumn) continue;
            plain[name] = (value ?? null) as Value;
        }
        if (nanosColumn !== undefined) plain["time"] = joined(row["time"] as bigint, row[nanosColumn], `hyparquet row ${i}`);
        return plain;
    });
    return { rows, timeType, nanosColumn, metadata, schema };
}

/**
 * Reads back everything under `<data>/parquet` with DuckDB, the way an operator would
 * (`read_parquet(..., union_by_name=true)`), for the crash and fault tests.
 */
import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import type { StoredPoint } from "./load.js";

export interface ParquetFileInfo {
    /** Relative to `<data>/parquet`. */
    readonly path: string;
    readonly bytes: number;
    readonly mtimeMs: number;
}

/** Every `*.parquet` file under `<data>/parquet`, sorted by path ([] when there is no such directory). */
export async function parquetFiles(dataDir: string): Promise<ParquetFileInfo[]> {
    const root = join(dataDir, "parquet");
    const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch((error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return [];
        throw error;
    });
    const files: ParquetFileInfo[] = [];
    for (const entry of entries) {
        if (!entry.isFile() || !entry.name.endsWith(".parquet")) continue;
        const path = join(entry.parentPath, entry.name);
        const info = await stat(path);
        files.push({ path: relative(root, path), bytes: info.size, mtimeMs: info.mtimeMs });
    }
    return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Every `*.wal` file left in `<data>/wal`. */
export async function walFiles(dataDir: string): Promise<string[]> {
    const names = await readdir(join(dataDir, "wal")).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw error;
    });
    return names.filter((name) => name.endsWith(".wal")).sort();
}

function sqlString(value: string): string {
    return `'${value.replaceAll("'", "''")}'`;
}

export interface ParquetContents {
    readonly files: ParquetFileInfo[];
    readonly points: StoredPoint[];
    /** `writer:seq` keys found more than once, by DuckDB's GROUP BY … HAVING count(*) > 1. */
    readonly duplicateKeys: string[];
}

/**
 * Reads every row of every Parquet file (columns `writer`, `seq`, `v`, `time`), with the
 * database and measurement taken from the file's directory (percent-decoded, DESIGN.md §4).
 */
export async function readParquet(dataDir: string): Promise<ParquetContents> {
    const files = await parquetFiles(dataDir);
    if (files.length === 0) return { files, points: [], duplicateKeys: [] };
    const root = join(dataDir, "parquet");
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
        const source = `read_parquet(${sqlString(join(root, "**", "*.parquet"))}, union_by_name = true, filename = true, hive_partitioning = false)`;
        const reader = await connection.runAndReadAll(`SELECT filename, writer, seq, v, epoch_ns(time) AS ns FROM ${source}`);
        const points: StoredPoint[] = [];
        for (const row of reader.getRowObjects()) {
            const file = relative(root, String(row.filename));
            const [database = "", measurement = ""] = file.split(sep).map((part) => decodeURIComponent(part));
            points.push({
                database,
                measurement,
                writer: String(row.writer),
                seq: row.seq as bigint,
                timeNs: row.ns as bigint,
                v: row.v === null ? null : Number(row.v),
                file,
            });
        }
        const duplicates = await connection.runAndReadAll(`SELECT writer, seq, count(*) AS n FROM ${source} GROUP BY writer, seq HAVING count(*) > 1 ORDER BY writer, seq`);
        const duplicateKeys = duplicates.getRowObjects().map((row) => `${String(row.writer)}:${String(row.seq)} ×${String(row.n)}`);
        return { files, points, duplicateKeys };
    } finally {
        connection.closeSync();
        instance.closeSync();
    }
}

/** Runs the statements in one fresh in-memory DuckDB session; the last one's rows. */
export async function queryDuckDB(...statements: string[]): Promise<Record<string, unknown>[]> {
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
        for (const sql of statements.slice(0, -1)) await connection.run(sql);
        return (await connection.runAndReadAll(statements.at(-1)!)).getRowObjects();
    } finally {
        connection.closeSync();
        instance.closeSync();
    }
}

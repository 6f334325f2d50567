/**
 * Compaction's merge in the worker (flush/encode/merge.ts): a partition's files merged as sorted
 * streams into as few files as the target allows, every point once, the later file's non-null
 * fields winning; a stream never reads more than a batch of each input at a time.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeParquet } from "../flush/encode/parquet.js";
import type { EncodeOptions } from "../flush/encode/types.js";
import { EncodeWorker } from "../flush/worker/client.js";
import { type Row, makeBatch, tempDir } from "./helpers/batches.js";
import { seededRandom } from "./helpers/random.js";

const T0 = 1_700_000_000_000_000_000n;
const OPTIONS: EncodeOptions = { sluiceVersion: "test", dedup: true };
const TYPES = { host: "s", dc: "s", usage: "f", count: "i", note: "s" } as const;

describe("merging a partition's files", () => {
    let dir: { path: string; cleanup: () => Promise<void> };
    let worker: EncodeWorker;
    let counter = 0;
    beforeAll(async () => {
        dir = await tempDir("sluice-merge-");
        worker = new EncodeWorker();
    });
    afterAll(async () => {
        await worker.close();
        await dir.cleanup();
    });
    afterEach(() => undefined);

    /** A flush file of these rows (tags given in arrival order; the encoder sorts them by name). */
    async function flushFile(rows: readonly Row[], tags: readonly string[], sequence: number): Promise<string> {
        const [file] = encodeParquet({ database: "db", segments: [makeBatch("m", tags, TYPES, rows)], minSequence: sequence, maxSequence: sequence }, OPTIONS);
        const path = join(dir.path, `in-${counter++}.parquet`);
        await writeFile(path, file!.bytes);
        return path;
    }

    async function rowsOf(files: readonly { bytes: Uint8Array }[]): Promise<Record<string, unknown>[]> {
        const paths = await Promise.all(
            files.map(async (file) => {
                const path = join(dir.path, `out-${String(counter++).padStart(6, "0")}.parquet`);
                await writeFile(path, file.bytes);
                return `'${path}'`;
            }),
        );
        const instance = await DuckDBInstance.create(":memory:");
        const connection = await instance.connect();
        try {
            const sql = `select epoch_ns(time)::VARCHAR as t, host, dc, usage, count, note from read_parquet([${paths.join(",")}], union_by_name = true, file_row_number = true, filename = true) order by filename, file_row_number`;
            return (await connection.runAndReadAll(sql)).getRowObjects().map((row) => ({ ...row, count: row.count === null ? null : Number(row.count) }));
        } finally {
            connection.closeSync();
            instance.closeSync();
        }
    }

    it("merges overlapping files into one sorted file, each point once, the later file's non-null fields winning", async () => {
        const first = await flushFile(
            [
                { time: T0, host: "b", usage: 1 },
                { time: T0, host: "a", usage: 2, note: "old" },
                { time: T0 + 5n, host: "a", usage: 3 },
            ],
            ["host"],
            1,
        );
        const second = await flushFile(
            [
                { time: T0, host: "a", usage: 20, count: 7n },
                { time: T0 + 1n, host: "a", dc: "x", usage: 4 },
                { time: T0, host: "c", usage: 5 },
            ],
            ["host", "dc"],
            2,
        );
        const result = await worker.merge({ database: "db", measurement: "m", inputs: [first, second], targetRows: 1000, batchRows: 2 }, OPTIONS);
        expect(result).toMatchObject({ rowsIn: 6, rowsOut: 5, merged: 1 });
        expect(result.files).toHaveLength(1);
        expect(await rowsOf(result.files)).toEqual([
            { t: String(T0), host: "a", dc: null, usage: 20, count: 7, note: "old" },
            { t: String(T0 + 5n), host: "a", dc: null, usage: 3, count: null, note: null },
            { t: String(T0), host: "b", dc: null, usage: 1, count: null, note: null },
            { t: String(T0), host: "c", dc: null, usage: 5, count: null, note: null },
            { t: String(T0 + 1n), host: "a", dc: "x", usage: 4, count: null, note: null },
        ]);
    });

    it("streams many inputs in small batches into files of at most the target, keeping every point once", async () => {
        const next = seededRandom(42);
        const inputs: string[] = [];
        const expected = new Map<string, number>();
        for (let file = 0; file < 6; file++) {
            const rows: Row[] = [];
            for (let i = 0; i < 300; i++) {
                // Overlapping (host, time) keys across files: later files repeat some points.
                const host = `h${Math.floor(next() * 20)}`;
                const time = T0 + BigInt(Math.floor(next() * 200));
                const usage = file * 1000 + i;
                rows.push({ time, host, usage });
            }
            // Within one flush file the last write of a point wins already.
            for (const row of rows) expected.set(`${row.host as string}@${row.time as bigint}`, row.usage as number);
            inputs.push(await flushFile(rows, ["host"], file + 1));
        }
        const result = await worker.merge({ database: "db", measurement: "m", inputs, targetRows: 500, batchRows: 37 }, OPTIONS);
        expect(result.rowsOut).toBe(expected.size);
        expect(result.files.length).toBeGreaterThan(1);
        for (const file of result.files) expect(file.rows).toBeLessThanOrEqual(500 + 6 * 37);
        const rows = await rowsOf(result.files);
        const seen = new Map(rows.map((row) => [`${row.host as string}@${row.t as string}`, row.usage]));
        expect(seen.size).toBe(expected.size);
        for (const [key, usage] of expected) expect(seen.get(key), key).toBe(usage);
        // Sorted across output files: (host, time) never goes down.
        const keys = rows.map((row) => [row.host as string, BigInt(row.t as string)] as const);
        for (let i = 1; i < keys.length; i++) expect(keys[i - 1]![0] < keys[i]![0] || (keys[i - 1]![0] === keys[i]![0] && keys[i - 1]![1] < keys[i]![1]), `row ${i}`).toBe(true);
    });

    it("describes files from their footers", async () => {
        const path = await flushFile(
            [
                { time: T0 + 9n, host: "a", usage: 1 },
                { time: T0 + 3n, host: "b", usage: 1 },
            ],
            ["host"],
            17,
        );
        expect(await worker.describe([path])).toEqual([{ rows: 2, measurement: "m", tags: ["host"], minSequence: 17, maxSequence: 17, minTimeNs: T0 + 3n, maxTimeNs: T0 + 9n }]);
    });
});

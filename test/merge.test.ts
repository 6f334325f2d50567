/**
 * Compaction's merge in the worker (flush/encode/merge.ts): a partition's files merged as sorted
 * streams into as few files as the target allows, every point once, the later file's non-null
 * fields winning; a stream never reads more than a batch of each input at a time.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { compactedEncodings } from "../flush/encode/compacted-encodings.js";
import { EncodeInputError } from "../flush/encode/errors.js";
import { encodeParquet } from "../flush/encode/parquet.js";
import type { ColumnType } from "../src/columnar/batch.js";
import type { EncodeOptions } from "../flush/encode/types.js";
import { EncodeWorker } from "../flush/worker/client.js";
import { isWasmTrap } from "../flush/worker/main.js";
import { type Row, makeBatch, tempDir } from "./helpers/batches.js";
import { type ColumnLayout, columnLayout } from "./helpers/column-layout.js";
import { queryDuckDB } from "./helpers/parquet.js";
import { readWithDuckDB, readWithHyparquet } from "./helpers/two-readers.js";
import { seededRandom } from "./helpers/random.js";

const T0 = 1_700_000_000_000_000_000n;
const OPTIONS: EncodeOptions = { sluiceVersion: "test", dedup: true };
const TYPES = { host: "s", dc: "s", usage: "f", count: "i", note: "s" } as const;

describe("compacted encodings and wasm failures", () => {
    it("knows flush and dense encodings only, and refuses any other name with a typed error", () => {
        expect(compactedEncodings("flush", "ns")).toBeUndefined();
        expect(compactedEncodings("dense", "ns")).toBeTypeOf("function");
        expect(() => compactedEncodings("Dense" as never, "ns")).toThrow(EncodeInputError);
    });

    it("takes a wasm trap and a stack overflow for failures that retire the encode thread, other errors not", () => {
        const trap = Object.assign(new Error("memory access out of bounds"), { name: "RuntimeError" }); // WebAssembly's type is outside this project's libs
        expect(isWasmTrap(trap)).toBe(true);
        expect(isWasmTrap(new RangeError("Maximum call stack size exceeded"))).toBe(true);
        expect(isWasmTrap(new RangeError("Invalid typed array length: -1"))).toBe(false);
        expect(isWasmTrap(new Error("disk full"))).toBe(false);
    });
});

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
    async function flushFile(rows: readonly Row[], tags: readonly string[], sequence: number, types: Record<string, ColumnType> = TYPES): Promise<string> {
        const [file] = encodeParquet({ database: "db", segments: [makeBatch("m", tags, types, rows)], minSequence: sequence, maxSequence: sequence }, OPTIONS);
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

    /** The layout (column-layout.ts) of a file's bytes. */
    async function layoutOf(bytes: Uint8Array): Promise<ColumnLayout> {
        const path = join(dir.path, `layout-${counter++}.parquet`);
        await writeFile(path, bytes);
        return columnLayout(path);
    }

    /** A merged file's rows against its inputs' by DuckDB, and DuckDB's against hyparquet's. */
    async function expectValuesKept(bytes: Uint8Array, inputs: readonly string[]): Promise<Record<string, unknown>[]> {
        const out = join(dir.path, `merged-${counter++}.parquet`);
        await writeFile(out, bytes);
        const select = (source: string) =>
            `select epoch_ns(time)::VARCHAR t, host, drift::VARCHAR drift, "level"::VARCHAR "level", count::VARCHAR count, big::VARCHAR big, "on", note from ${source} order by host, time`;
        const merged = await queryDuckDB(select(`read_parquet('${out}')`));
        const flushed = await queryDuckDB(select(`read_parquet([${inputs.map((path) => `'${path}'`).join(",")}], union_by_name = true)`));
        expect(merged).toEqual(flushed);
        const instance = await DuckDBInstance.create(":memory:");
        const connection = await instance.connect();
        try {
            const duck = await readWithDuckDB(connection, out);
            expect((await readWithHyparquet(out)).rows).toEqual(duck.rows);
        } finally {
            connection.closeSync();
            instance.closeSync();
        }
        return merged;
    }

    it("writes a flush's encodings by default (ints delta-coded, mostly distinct floats PLAIN, repeating floats with a dictionary), dense floats byte-stream-split, in row groups of maxRowGroupRows, every value read back equal", async () => {
        const types = { host: "s", drift: "f", level: "f", count: "i", big: "u", on: "b", note: "s" } as const;
        const next = seededRandom(7);
        const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, Number.MIN_VALUE, Number.MAX_VALUE];
        const ints = [-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n];
        const rows: Row[] = [];
        for (let i = 0; i < 3000; i++) {
            rows.push({
                time: T0 + BigInt(i % 1000) * 1_000_000_000n,
                host: `h${Math.floor(i / 1000)}`,
                drift: i < specials.length ? specials[i]! : i % 13 === 0 ? null : next() * 100,
                level: i % 7 === 0 ? null : i < 12 ? specials[i % specials.length]! : Math.round(next() * 300) / 100,
                count: i < ints.length ? ints[i]! : i % 11 === 0 ? null : BigInt(i * 1000 + Math.floor(next() * 50)),
                big: i === 5 ? 2n ** 64n - 1n : i === 6 ? 2n ** 63n : i % 17 === 0 ? null : BigInt(i),
                on: i % 3 === 0,
                note: i % 500 === 0 ? `n${i}` : null,
            });
        }
        // Two flush files of interleaved halves, so the merge has to merge.
        const inputs = [
            await flushFile(
                rows.filter((_, i) => i % 2 === 0),
                ["host"],
                1,
                types,
            ),
            await flushFile(
                rows.filter((_, i) => i % 2 === 1),
                ["host"],
                2,
                types,
            ),
        ];
        /** The encodings every file gets (field-encodings.ts), whatever floats repeat in it. */
        const expectFieldEncodings = (layout: ColumnLayout, what: string) => {
            for (const column of ["count", "big"]) {
                expect(layout.encodings.get(column), `${what}: ${column}`).toContain("DELTA_BINARY_PACKED");
                expect(layout.encodings.get(column), `${what}: ${column}`).not.toContain("RLE_DICTIONARY");
                expect(layout.codecs.get(column), `${what}: ${column}`).toEqual(new Set(["ZSTD"]));
            }
            expect(layout.encodings.get("host"), `${what}: host`).toContain("RLE_DICTIONARY");
            expect(layout.codecs.get("host"), `${what}: host`).toEqual(new Set(["ZSTD"]));
        };
        for (const flushed of inputs) {
            const layout = await columnLayout(flushed);
            expectFieldEncodings(layout, "flush file");
            expect(layout.encodings.get("drift"), "flush file: drift").toEqual(new Set(["PLAIN", "RLE"]));
            expect(layout.codecs.get("drift"), "flush file: drift").toEqual(new Set(["ZSTD"]));
        }
        // By default (compaction.encodings = "flush") a compacted file gets a flush's encodings.
        const plain = await worker.merge({ database: "db", measurement: "m", inputs, targetRows: 10_000, batchRows: 256 }, { ...OPTIONS, maxRowGroupRows: 1000 });
        expect(plain.files).toHaveLength(1);
        const plainLayout = await layoutOf(plain.files[0]!.bytes);
        expect(plainLayout.rowGroups).toBe(3);
        expectFieldEncodings(plainLayout, "compacted");
        expect(plainLayout.encodings.get("drift"), "compacted: drift").toEqual(new Set(["PLAIN", "RLE"]));
        expect(plainLayout.codecs.get("drift"), "compacted: drift").toEqual(new Set(["ZSTD"]));
        // 300 values in 3,000 rows: a dictionary pays, and the file's codec stays.
        expect(plainLayout.encodings.get("level"), "compacted: level").toContain("RLE_DICTIONARY");
        expect(plainLayout.codecs.get("level"), "compacted: level").toEqual(new Set(["ZSTD"]));
        const merged = await expectValuesKept(plain.files[0]!.bytes, inputs);
        expect(merged).toHaveLength(3000);
        expect(merged.slice(0, 6).map((row) => row.drift)).toEqual(["nan", "inf", "-inf", "-0.0", "5e-324", "1.7976931348623157e+308"]);
        expect(merged.slice(1, 6).map((row) => row.level)).toEqual(["inf", "-inf", "-0.0", "5e-324", "1.7976931348623157e+308"]);
        expect(merged.filter((row) => row.drift === null)).toHaveLength(rows.filter((row) => row.drift === null).length);
        expect(merged.find((row) => row.big === String(2n ** 64n - 1n))).toBeDefined();
        expect(merged.find((row) => row.big === String(2n ** 63n))).toBeDefined();
        expect(merged.find((row) => row.count === String(-(2n ** 63n)))).toBeDefined();
        expect(merged.find((row) => row.count === String(2n ** 63n - 1n))).toBeDefined();

        const dense = await worker.merge(
            { database: "db", measurement: "m", inputs, targetRows: 10_000, batchRows: 256, encodings: "dense" },
            { ...OPTIONS, maxRowGroupRows: 1000 },
        );
        expect(dense.files).toHaveLength(1);
        const layout = await layoutOf(dense.files[0]!.bytes);
        expect(layout.rowGroups).toBe(3);
        expectFieldEncodings(layout, "dense");
        expect(layout.encodings.get("drift")).toContain("BYTE_STREAM_SPLIT");
        expect(layout.codecs.get("drift")).toEqual(new Set(["ZSTD"]));
        expect(layout.encodings.get("level")).toContain("RLE_DICTIONARY");
        expect(await expectValuesKept(dense.files[0]!.bytes, inputs)).toEqual(merged);
    });

    it("with dense encodings leaves floats as a flush writes them in files for Spark 3.x (parquet.time_unit us): no BYTE_STREAM_SPLIT", async () => {
        const rows: Row[] = Array.from({ length: 500 }, (_, i) => ({ time: T0 + BigInt(i), host: "a", usage: i / 7, count: BigInt(i) }));
        const inputs = [await flushFile(rows.slice(0, 250), ["host"], 1), await flushFile(rows.slice(250), ["host"], 2)];
        const result = await worker.merge({ database: "db", measurement: "m", inputs, targetRows: 1000, batchRows: 100, encodings: "dense" }, { ...OPTIONS, timeUnit: "us" });
        const layout = await layoutOf(result.files[0]!.bytes);
        expect(layout.encodings.get("usage")).toEqual(new Set(["PLAIN", "RLE"]));
        expect(layout.codecs.get("usage")).toEqual(new Set(["ZSTD"]));
        expect(layout.encodings.get("count")).toContain("DELTA_BINARY_PACKED");
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

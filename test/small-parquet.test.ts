/**
 * Tiny flush files written by hyparquet-writer (flush/encode/small-parquet.ts,
 * `parquet.small_file_rows`): for any batch, DuckDB and hyparquet read the same rows and types
 * from them as from parquet-wasm's file of the same batch; the footer and its Arrow schema are
 * the same; the codec is the documented one; DuckDB reads both kinds of file of a measurement
 * together; and compaction (parquet-wasm's reader) merges them with parquet-wasm's files.
 */
import { type Schema, tableFromIPC } from "apache-arrow";
import fc from "fast-check";
import { type FileMetaData, parquetMetadata } from "hyparquet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EncodeInputError } from "../flush/encode/errors.js";
import { encodeParquet } from "../flush/encode/parquet.js";
import { describeParquet } from "../flush/encode/read-parquet.js";
import { SMALL_FILE_CODECS } from "../flush/encode/small-parquet.js";
import { COMPRESSIONS, type EncodeOptions, type EncodedFile, TIME_UNITS, type TimeUnit } from "../flush/encode/types.js";
import { EncodeWorker } from "../flush/worker/client.js";
import { type Row, makeBatch } from "./helpers/batches.js";
import { duckdbScratch } from "./helpers/duckdb-scratch.js";
import { type PlainRow, readWithDuckDB, readWithHyparquet } from "./helpers/two-readers.js";

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const HOUR = 3_600_000_000_000n;
const T0 = 1_700_000_000_000_000_000n - (1_700_000_000_000_000_000n % HOUR);
const TYPES = { host: "s", dc: "s", f: "f", i: "i", u: "u", b: "b", s: "s" } as const;
const TAGS = ["host", "dc"];
/** Every file through parquet-wasm, or every file through hyparquet-writer. */
const WASM = { smallFileRows: 0 } as const;
const SMALL = { smallFileRows: 1_000_000 } as const;

const scratch = duckdbScratch("sluice-small-parquet-");
const save = (bytes: Uint8Array) => scratch.save(bytes);

function encode(rows: readonly Row[], options: Partial<EncodeOptions>, measurement = "m", types: Record<string, "s" | "f" | "i" | "u" | "b"> = TYPES): EncodedFile[] {
    return encodeParquet({ database: "db", segments: [makeBatch(measurement, TAGS, types, rows)], minSequence: 3, maxSequence: 8 }, { sluiceVersion: "test", ...options });
}

function metadataOf(bytes: Uint8Array): FileMetaData {
    return parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
}

function keyValues(bytes: Uint8Array): Map<string, string | undefined> {
    return new Map((metadataOf(bytes).key_value_metadata ?? []).map(({ key, value }) => [key, value]));
}

/** The Arrow schema a footer's `ARROW:schema` holds, read by apache-arrow (a framed IPC schema message, then end of stream). */
function arrowSchemaOf(bytes: Uint8Array): Schema {
    const message = Buffer.from(keyValues(bytes).get("ARROW:schema")!, "base64");
    return tableFromIPC(Buffer.concat([message, Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])])).schema;
}

function describeColumns(schema: Schema): string[][] {
    return schema.fields.map((field) => [field.name, String(field.type), String(field.nullable)]);
}

/** A file's facts but its bytes. */
function factsOf(file: EncodedFile): Omit<EncodedFile, "bytes"> {
    return { date: file.date, hour: file.hour, rows: file.rows, minTimeNs: file.minTimeNs, maxTimeNs: file.maxTimeNs, merged: file.merged };
}

async function duckTypes(path: string): Promise<Record<string, string>> {
    const rows = (await scratch.connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${path}', hive_partitioning = false)`)).getRowObjects();
    return Object.fromEntries(rows.map((row) => [String(row["column_name"]), String(row["column_type"])]));
}

/** What both readers make of a file; they must agree with each other. */
async function readBoth(path: string): Promise<{ rows: PlainRow[]; types: Record<string, string> }> {
    const duck = await readWithDuckDB(scratch.connection, path);
    const hy = await readWithHyparquet(path);
    expect(hy.rows, path).toEqual(duck.rows);
    return { rows: duck.rows, types: await duckTypes(path) };
}

const value = {
    tag: fc.option(fc.constantFrom("a", "b", "", "é", "🦆 duck", "with space,comma=eq"), { nil: null }),
    f: fc.option(fc.oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 5e-324, Number.MAX_VALUE)), { nil: null }),
    i: fc.option(fc.oneof(fc.bigInt({ min: I64_MIN, max: I64_MAX }), fc.constantFrom(I64_MIN, I64_MAX, 0n, -1n)), { nil: null }),
    u: fc.option(fc.oneof(fc.bigInt({ min: 0n, max: U64_MAX }), fc.constantFrom(0n, 2n ** 63n, U64_MAX)), { nil: null }),
    b: fc.option(fc.boolean(), { nil: null }),
    s: fc.option(fc.oneof(fc.string({ unit: "grapheme", maxLength: 12 }), fc.constantFrom("", "日本語", "nul\u0000byte", "x".repeat(300))), { nil: null }),
    time: fc.oneof(fc.bigInt({ min: T0 - HOUR, max: T0 + 2n * HOUR }), fc.constantFrom(I64_MIN, I64_MAX, -1n, 0n, T0, T0 + 1n)),
};
const row = fc.record({ time: value.time, host: value.tag, dc: value.tag, f: value.f, i: value.i, u: value.u, b: value.b, s: value.s });

describe("a tiny file by hyparquet-writer reads back as parquet-wasm's file of the same rows", () => {
    it.each(TIME_UNITS)("for any rows (nulls, NaN, ±Inf, -0, int64/uint64 extremes, unicode, empty strings, repeated points), time in %s", async (timeUnit: TimeUnit) => {
        await fc.assert(
            fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 12 }), fc.boolean(), async (rows, dedup) => {
                const wasm = encode(rows, { ...WASM, timeUnit, dedup });
                const small = encode(rows, { ...SMALL, timeUnit, dedup });
                expect(small.map(factsOf)).toEqual(wasm.map(factsOf));
                for (const [k, file] of small.entries()) {
                    expect(metadataOf(file.bytes).created_by).toMatch(/\(hyparquet-writer\)$/);
                    expect(metadataOf(wasm[k]!.bytes).created_by).toMatch(/^parquet-rs /);
                    const expected = await readBoth(await save(wasm[k]!.bytes));
                    const got = await readBoth(await save(file.bytes));
                    expect(got.types).toEqual(expected.types);
                    expect(got.rows).toEqual(expected.rows);
                }
            }),
            { numRuns: 40 },
        );
    });

    it("carries the same footer key-values, and an ARROW:schema with the same Arrow columns (dictionary tags and strings)", () => {
        for (const timeUnit of TIME_UNITS) {
            const rows: Row[] = [{ time: T0 + 5n, host: "a", f: 1.5, i: -2n, u: U64_MAX, b: true, s: "x" }];
            const [wasm] = encode(rows, { ...WASM, timeUnit });
            const [small] = encode(rows, { ...SMALL, timeUnit });
            const expected = keyValues(wasm!.bytes);
            const got = keyValues(small!.bytes);
            expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
            for (const [key, text] of expected) if (key !== "ARROW:schema") expect(got.get(key), key).toBe(text);
            const schema = describeColumns(arrowSchemaOf(small!.bytes));
            expect(schema).toEqual(describeColumns(arrowSchemaOf(wasm!.bytes)));
            expect(schema.find(([name]) => name === "host")![1]).toMatch(/^Dictionary<Int32, Utf8>/);
        }
    });

    it("keeps the flush's column order, `time` REQUIRED and DELTA_BINARY_PACKED (PLAIN when asked), strings dictionary-encoded", () => {
        const rows: Row[] = [{ time: T0, host: "a", dc: "x", f: 1, i: 1n, u: 1n, b: false, s: "v" }];
        for (const timeEncoding of ["delta", "plain"] as const) {
            const [small] = encode(rows, { ...SMALL, timeEncoding });
            const [wasm] = encode(rows, { ...WASM, timeEncoding });
            const names = (bytes: Uint8Array) =>
                metadataOf(bytes)
                    .schema.slice(1)
                    .map((element) => [element.name, element.type, element.repetition_type]);
            expect(names(small!.bytes)).toEqual(names(wasm!.bytes));
            const chunks = new Map(metadataOf(small!.bytes).row_groups[0]!.columns.map((chunk) => [chunk.meta_data!.path_in_schema[0]!, chunk.meta_data!.encodings]));
            expect(chunks.get("time")).toContain(timeEncoding === "delta" ? "DELTA_BINARY_PACKED" : "PLAIN");
            expect(chunks.get("time")).not.toContain("RLE_DICTIONARY");
            for (const name of ["host", "dc", "s"]) expect(chunks.get(name), name).toContain("RLE_DICTIONARY");
        }
    });
});

describe("which writer, and which codec", () => {
    const rowsOf = (n: number): Row[] => Array.from({ length: n }, (_, k) => ({ time: T0 + BigInt(k), host: `h${k % 3}`, f: k / 3, s: k % 2 === 0 ? "even" : null }));
    const writer = (file: EncodedFile) => metadataOf(file.bytes).created_by;

    it("writes an hour-file of at most parquet.small_file_rows rows (after merging repeated points) with hyparquet-writer, a larger one and any with 0 with parquet-wasm", () => {
        expect(writer(encode(rowsOf(8), { smallFileRows: 8 })[0]!)).toMatch(/hyparquet-writer/);
        expect(writer(encode(rowsOf(9), { smallFileRows: 8 })[0]!)).toMatch(/^parquet-rs /);
        expect(writer(encode(rowsOf(1), { smallFileRows: 0 })[0]!)).toMatch(/^parquet-rs /);
        // Nine rows, two of them the same point: an 8-row file.
        const repeated = [...rowsOf(8), { time: T0, host: "h0", f: 100 }];
        const [file] = encode(repeated, { smallFileRows: 8 });
        expect([file!.rows, file!.merged]).toEqual([8, 1]);
        expect(writer(file!)).toMatch(/hyparquet-writer/);
        // Decided per hour: a 2-row hour and a 9-row hour of one flush.
        const hours = encode([...rowsOf(9), { time: T0 + HOUR, host: "h0" }, { time: T0 + HOUR + 1n, host: "h1" }], { smallFileRows: 8 });
        expect(hours.map((hour) => [hour.rows, writer(hour)?.startsWith("parquet-rs")])).toEqual([
            [9, true],
            [2, false],
        ]);
    });

    it("refuses a small_file_rows that is not a non-negative integer", () => {
        for (const smallFileRows of [-1, 1.5, Number.NaN]) expect(() => encode(rowsOf(1), { smallFileRows })).toThrow(EncodeInputError);
    });

    it.each(COMPRESSIONS)("compression %s: the tiny file has parquet-wasm's codec, and it reads back", async (compression) => {
        const [small] = encode(rowsOf(5), { ...SMALL, compression });
        const [wasm] = encode(rowsOf(5), { ...WASM, compression });
        const codecs = (file: EncodedFile) => new Set(metadataOf(file.bytes).row_groups.flatMap((group) => group.columns.map((chunk) => chunk.meta_data!.codec)));
        expect([...codecs(small!)]).toEqual([SMALL_FILE_CODECS[compression]]);
        expect([...codecs(small!)]).toEqual([...codecs(wasm!)]);
        expect([...codecs(wasm!)]).toEqual([{ zstd: "ZSTD", snappy: "SNAPPY", none: "UNCOMPRESSED" }[compression]]);
        expect((await readBoth(await save(small!.bytes))).rows).toEqual((await readBoth(await save(wasm!.bytes))).rows);
    });
});

describe("tiny files next to parquet-wasm's files of the same measurement", () => {
    it("DuckDB reads both together with union_by_name, the columns one file lacks NULL", async () => {
        const small = await save(encode([{ time: T0, host: "a", f: 1, s: "tiny" }], { ...SMALL }, "m", { host: "s", dc: "s", f: "f", s: "s" })[0]!.bytes);
        const wasm = await save(encode([{ time: T0 + 1n, host: "b", dc: "x", i: 7n, u: U64_MAX }], { ...WASM }, "m", { host: "s", dc: "s", i: "i", u: "u" })[0]!.bytes);
        const sql = `SELECT epoch_ns(time)::VARCHAR AS t, host, dc, f, s, i, u FROM read_parquet(['${small}', '${wasm}'], union_by_name = true) ORDER BY time`;
        expect((await scratch.connection.runAndReadAll(sql)).getRowObjects()).toEqual([
            { t: String(T0), host: "a", dc: null, f: 1, s: "tiny", i: null, u: null },
            { t: String(T0 + 1n), host: "b", dc: "x", f: null, s: null, i: 7n, u: U64_MAX },
        ]);
    });

    it.each([
        ["parquet-wasm", WASM],
        ["hyparquet-writer", SMALL],
    ] as const)("%s: a float column holding NaN has no min/max, so DuckDB's filters find the NaN rows", async (_, writer) => {
        const rows: Row[] = [Number.NaN, 1, 1, 1].map((f, k) => ({ time: T0 + BigInt(k), host: "a", f, i: BigInt(k) }));
        const [file] = encode(rows, { ...writer }, "m", { host: "s", dc: "s", f: "f", i: "i" });
        const statistics = new Map(metadataOf(file!.bytes).row_groups[0]!.columns.map((chunk) => [chunk.meta_data!.path_in_schema.join("."), chunk.meta_data!.statistics]));
        expect(statistics.get("f")?.min_value ?? statistics.get("f")?.min).toBeUndefined();
        expect(statistics.get("i")?.min_value ?? statistics.get("i")?.min).toBe(0n);
        const path = await save(file!.bytes);
        const count = async (where: string) =>
            Number((await scratch.connection.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${path}') WHERE ${where}`)).getRowObjects()[0]!["n"]);
        expect(await count("f > 100")).toBe(1);
        expect(await count("f = 'NaN'")).toBe(1);
        expect(await count("i >= 1")).toBe(3);
    });

    it("DuckDB's filters on the tiny file's statistics find every row (long strings, uint64 above 2^63, time)", async () => {
        const long = "é".repeat(40);
        const rows: Row[] = [
            { time: T0 + 7n, host: `${long}a`, u: U64_MAX, s: `${long}z` },
            { time: T0 + 9n, host: `${long}b`, u: 2n ** 63n, s: long },
        ];
        const path = await save(encode(rows, { ...SMALL })[0]!.bytes);
        const count = async (where: string) => {
            const [row] = (await scratch.connection.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${path}') WHERE ${where}`)).getRowObjects();
            return Number(row!["n"]);
        };
        expect(await count(`host = '${long}b'`)).toBe(1);
        expect(await count(`host > '${long}a'`)).toBe(1);
        expect(await count(`s >= '${long}z'`)).toBe(1);
        expect(await count(`u >= 9223372036854775808`)).toBe(2);
        expect(await count(`u = 18446744073709551615`)).toBe(1);
        expect(await count(`epoch_ns(time) >= ${T0 + 8n}`)).toBe(1);
    });

    describe("compaction (parquet-wasm's reader) merges them", () => {
        let worker: EncodeWorker;
        beforeAll(() => {
            worker = new EncodeWorker();
        });
        afterAll(async () => {
            await worker.close();
        });

        it.each(TIME_UNITS)("a tiny file and a parquet-wasm file, time in %s: every point once, the later file winning, written by parquet-wasm with ZSTD", async (timeUnit) => {
            const older = encode(
                [
                    { time: T0 + 1n, host: "a", f: 1, i: I64_MIN, s: "old" },
                    { time: T0 + 2n, host: "b", u: U64_MAX, b: true },
                ],
                { ...WASM, timeUnit },
            )[0]!;
            const newer = encode([{ time: T0 + 1n, host: "a", f: -0, u: 2n ** 63n }], { ...SMALL, timeUnit })[0]!;
            expect(metadataOf(newer.bytes).created_by).toMatch(/hyparquet-writer/);
            const inputs = [await save(older.bytes), await save(newer.bytes)];
            const facts = await describeParquet(inputs[1]!);
            expect(facts).toMatchObject({ rows: 1, measurement: "m", tags: ["dc", "host"], minSequence: 3, maxSequence: 8, minTimeNs: T0 + 1n, maxTimeNs: T0 + 1n });
            const result = await worker.merge({ database: "db", measurement: "m", inputs, targetRows: 1000, batchRows: 1 }, { sluiceVersion: "test", timeUnit, ...SMALL });
            expect(result).toMatchObject({ rowsIn: 3, rowsOut: 2, merged: 1 });
            const [merged] = result.files;
            expect(metadataOf(merged!.bytes).created_by).toMatch(/^parquet-rs /);
            expect(new Set(metadataOf(merged!.bytes).row_groups[0]!.columns.map((chunk) => chunk.meta_data!.codec))).toEqual(new Set(["ZSTD"]));
            const back = await readBoth(await save(merged!.bytes));
            expect(back.rows).toEqual([
                { time: T0 + 1n, dc: null, host: "a", f: -0, i: I64_MIN, u: 2n ** 63n, b: null, s: "old" },
                { time: T0 + 2n, dc: null, host: "b", f: null, i: null, u: U64_MAX, b: true, s: null },
            ]);
        });
    });
});

/**
 * Readers beyond DuckDB (issue 15, item 6). Every type Sluice writes, through the real encoder
 * (the worker the flush loop uses), read back by two independent readers, DuckDB and hyparquet,
 * value by value, with `time` in nanoseconds and in microseconds (`parquet.time_unit`); the
 * microsecond split itself; compaction of a lake whose files were written partly in ns and
 * partly in µs; and the option end to end through a real server.
 */
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ClosableEncoder, createEncoder } from "../flush/encoder.js";
import { EncodeInputError } from "../flush/encode/errors.js";
import { encodeParquet } from "../flush/encode/parquet.js";
import { joinMicros, splitMicros } from "../flush/encode/time-unit.js";
import { TIME_UNITS, type TimeUnit } from "../flush/encode/types.js";
import { type Row, makeBatch, tempDir } from "./helpers/batches.js";
import { parquetFiles } from "./helpers/parquet.js";
import { type TestServer, startTestServer } from "./helpers/server.js";
import { duckdbScratch } from "./helpers/duckdb-scratch.js";
import { type PlainRow, readWithDuckDB, readWithHyparquet } from "./helpers/two-readers.js";

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const HOUR = 3_600_000_000_000n;
/** 2023-11-14 22:00 UTC: the start of an hour. */
const T0 = 1_700_000_000_000_000_000n - (1_700_000_000_000_000_000n % HOUR);

const scratch = duckdbScratch("sluice-readers-");
const save = (bytes: Uint8Array) => scratch.save(bytes);

/** A row's identity as a string: its tag values and its time. */
function keyOf(row: PlainRow, tags: readonly string[]): string {
    return JSON.stringify([...tags.map((tag) => row[tag] ?? null), String(row["time"])]);
}

function byKey(rows: readonly PlainRow[], tags: readonly string[]): PlainRow[] {
    return [...rows].sort((a, b) => (keyOf(a, tags) < keyOf(b, tags) ? -1 : keyOf(a, tags) > keyOf(b, tags) ? 1 : 0));
}

/** The rows of every file, read by both readers; they must agree row by row, in file order. */
async function readAll(paths: readonly string[], expectedTimeType: TimeUnit): Promise<PlainRow[]> {
    const rows: PlainRow[] = [];
    for (const path of paths) {
        const duck = await readWithDuckDB(scratch.connection, path);
        const hy = await readWithHyparquet(path);
        expect(hy.rows, path).toEqual(duck.rows);
        expect(duck.timeType).toBe(expectedTimeType === "ns" ? "TIMESTAMP_NS" : "TIMESTAMP");
        expect(hy.timeType).toBe(expectedTimeType === "ns" ? "NANOS" : "MICROS");
        expect(hy.nanosColumn).toBe(duck.nanosColumn);
        expect(hy.nanosColumn === undefined).toBe(expectedTimeType === "ns");
        rows.push(...duck.rows);
    }
    return rows;
}

// ---------------------------------------------------------------------------------------------
// The split itself

describe("the microsecond split (flush/encode/time-unit.ts)", () => {
    const floorDiv = (a: bigint, b: bigint) => (a % b < 0n ? a / b - 1n : a / b);

    it("is floor(ns / 1000) and the 0–999 ns past it, joined back exactly, over the whole int64 range", () => {
        const edges = [I64_MIN, I64_MIN + 191n, I64_MIN + 192n, I64_MIN + 1000n, -1001n, -1000n, -999n, -1n, 0n, 1n, 999n, 1000n, I64_MAX - 1000n, I64_MAX];
        fc.assert(
            fc.property(fc.array(fc.oneof(fc.bigInt({ min: I64_MIN, max: I64_MAX }), fc.constantFrom(...edges)), { maxLength: 64 }), (times) => {
                const ns = BigInt64Array.from(times);
                const { micros, nanos } = splitMicros(ns);
                times.forEach((time, i) => {
                    expect(micros[i]).toBe(floorDiv(time, 1000n));
                    expect(BigInt(nanos[i]!)).toBe(time - floorDiv(time, 1000n) * 1000n);
                });
                // The lowest microsecond times 1000 is below INT64_MIN; the join still lands exactly.
                expect(joinMicros(micros, nanos, "test")).toEqual(ns);
            }),
        );
    });

    it("refuses a join that leaves int64 or a nanosecond part outside 0–999", () => {
        expect(() => joinMicros(BigInt64Array.of(I64_MAX / 1000n + 1n), undefined, "f")).toThrow(EncodeInputError);
        expect(() => joinMicros(BigInt64Array.of(I64_MIN / 1000n - 1n), Int16Array.of(0), "f")).toThrow(/outside the int64 nanosecond range/);
        expect(() => joinMicros(BigInt64Array.of(I64_MAX / 1000n), Int16Array.of(808), "f")).toThrow(EncodeInputError);
        expect(joinMicros(BigInt64Array.of(I64_MAX / 1000n), Int16Array.of(807), "f")).toEqual(BigInt64Array.of(I64_MAX));
        expect(() => joinMicros(BigInt64Array.of(5n), Int16Array.of(1000), "f")).toThrow(/not 0–999/);
        expect(() => joinMicros(BigInt64Array.of(5n), Int16Array.of(-1), "f")).toThrow(/not 0–999/);
    });
});

// ---------------------------------------------------------------------------------------------
// Every type, both readers, both units

/** Both writers of flush files: parquet-wasm (`parquet.small_file_rows = 0`), and hyparquet-writer for every file here (small-parquet.ts). */
const WRITERS = [
    { writer: "parquet-wasm", smallFileRows: 0, createdBy: /^parquet-rs / },
    { writer: "hyparquet-writer", smallFileRows: 1_000, createdBy: /\(hyparquet-writer\)$/ },
] as const;

describe.each(TIME_UNITS.flatMap((timeUnit) => WRITERS.map((writer) => ({ timeUnit, ...writer }))))(
    "every type Sluice writes, time in $timeUnit, by $writer, read by DuckDB and hyparquet",
    ({ timeUnit, smallFileRows, createdBy, writer }) => {
        const types = { "zone ü": "s", host: "s", f: "f", i: "i", u: "u", b: "b", s: "s", température: "f" } as const;
        const tags = ["host", "zone ü"];
        const TIMES = [
            I64_MIN, // 1677-09-21 00:12:43.145224192, the first int64 nanosecond
            I64_MIN + 1n,
            -2_208_988_800_000_000_001n, // 1899-12-31 23:59:59.999999999
            -1500n, // before 1970 with sub-µs digits: floor, not truncation
            -1n,
            0n,
            1n,
            999n,
            1000n,
            T0, // whole seconds (Telegraf's usual)
            T0 + 123_456_000n, // whole µs
            T0 + 123_456_789n, // sub-µs digits
            T0 + 123_456_790n, // the same µs, 1 ns later: another point
            I64_MAX - 1n,
            I64_MAX, // 2262-04-11 23:47:16.854775807, the last one
        ];
        const SERIES: Record<string, string | null>[] = [
            { host: "a", "zone ü": "eu" },
            { host: "é", "zone ü": null },
            { host: "🦆 duck", "zone ü": "日本" },
            { host: "with space,comma=eq", "zone ü": "" },
            { host: null, "zone ü": "only zone" },
        ];
        const F: (number | null)[] = [0, -0, NaN, Infinity, -Infinity, 5e-324, Number.MAX_VALUE, -1.5, 0.1, null];
        const I: (bigint | null)[] = [I64_MIN, I64_MAX, 0n, -1n, 2n ** 53n + 1n, null];
        const U: (bigint | null)[] = [0n, 2n ** 63n, U64_MAX, 2n ** 53n + 1n, 2n ** 63n - 1n, 1n, null];
        const B: (boolean | null)[] = [true, false, null];
        const S: (string | null)[] = ["", "🦆", "héllo wörld", "日本語", 'quote " and \\ backslash', "line\nbreak", "nul\u0000byte", "x".repeat(5000), null];
        const rows: Row[] = [];
        for (const series of SERIES) {
            for (const time of TIMES) {
                const k = rows.length;
                rows.push({
                    time,
                    ...series,
                    f: F[k % F.length],
                    i: I[k % I.length],
                    u: U[k % U.length],
                    b: B[k % B.length],
                    s: S[k % S.length],
                    température: k % 4 === 0 ? null : k / 8,
                });
            }
        }
        const expected: PlainRow[] = rows.map((row) => Object.fromEntries(["time", ...Object.keys(types)].map((name) => [name, row[name] ?? null])));

        let encoder: ClosableEncoder;
        let paths: string[];
        beforeAll(async () => {
            encoder = createEncoder({ timeUnit, smallFileRows });
            const files = await encoder.encode({ database: "db", segments: [makeBatch("every type", tags, types, rows)], minSequence: 1, maxSequence: 9 });
            paths = await Promise.all(files.map((file) => save(file.bytes)));
        });
        afterAll(async () => {
            await encoder.close();
        });

        it("both readers see every row, value for value, NULLs as NULLs, time to the nanosecond", async () => {
            expect(paths.length).toBeGreaterThan(3);
            const back = await readAll(paths, timeUnit);
            expect(back).toHaveLength(rows.length);
            expect(byKey(back, tags)).toEqual(byKey(expected, tags));
        });

        /**
         * hyparquet-writer files carry an integer's converted type only (its IntType.bitWidth, a
         * Thrift i8, would be written as a varint: small-parquet.ts); DuckDB's types below are the same.
         */
        const integerType = (bitWidth: number, isSigned: boolean) => (writer === "parquet-wasm" ? { type: "INTEGER", bitWidth, isSigned } : undefined);

        it("is the writer asked for, for every file", async () => {
            for (const path of paths) expect((await readWithHyparquet(path)).metadata.created_by, path).toMatch(createdBy);
        });

        it("declares time REQUIRED and not adjusted to UTC, the nanoseconds column REQUIRED INT(16), the rest OPTIONAL", async () => {
            for (const path of paths) {
                const { schema } = await readWithHyparquet(path);
                const time = schema.get("time")!;
                expect(time.type).toBe("INT64");
                expect(time.repetition_type).toBe("REQUIRED");
                expect(time.logical_type).toEqual({ type: "TIMESTAMP", isAdjustedToUTC: false, unit: timeUnit === "ns" ? "NANOS" : "MICROS" });
                if (timeUnit === "us") {
                    const nanos = schema.get("time_nanos")!;
                    expect(nanos).toMatchObject({ type: "INT32", repetition_type: "REQUIRED", converted_type: "INT_16" });
                    expect(nanos.logical_type).toEqual(integerType(16, true));
                } else {
                    expect(schema.has("time_nanos")).toBe(false);
                }
                expect(schema.get("u")).toMatchObject({ type: "INT64", converted_type: "UINT_64" });
                expect(schema.get("u")!.logical_type).toEqual(integerType(64, false));
                for (const name of Object.keys(types)) expect(schema.get(name)!.repetition_type, name).toBe("OPTIONAL");
                const described = (await scratch.connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${path}', hive_partitioning = false)`)).getRowObjects();
                expect(Object.fromEntries(described.map((row) => [row["column_name"], row["column_type"]]))).toEqual({
                    time: timeUnit === "ns" ? "TIMESTAMP_NS" : "TIMESTAMP",
                    ...(timeUnit === "us" ? { time_nanos: "SMALLINT" } : {}),
                    host: "VARCHAR",
                    "zone ü": "VARCHAR",
                    f: "DOUBLE",
                    i: "BIGINT",
                    u: "UBIGINT",
                    b: "BOOLEAN",
                    s: "VARCHAR",
                    température: "DOUBLE",
                });
            }
        });

        it("writes statistics both readers agree with: signed time and int64, unsigned uint64 (above 2^63 too)", async () => {
            for (const path of paths) {
                const { metadata, rows: fileRows } = await readWithHyparquet(path);
                const statsQuery = `SELECT path_in_schema AS name, stats_min_value AS min, stats_max_value AS max FROM parquet_metadata('${path}')`;
                if (timeUnit === "ns" && fileRows.some((row) => row["time"] === I64_MIN)) {
                    // DuckDB 1.5 reads INT64_MIN ns exactly (epoch_ns) but cannot render it as text, so
                    // neither `time::VARCHAR` nor parquet_metadata() works on this file (µs renders fine).
                    await expect(scratch.connection.runAndReadAll(statsQuery)).rejects.toThrow(/Date out of range in timestamp_ns conversion/);
                    continue;
                }
                const duck = (await scratch.connection.runAndReadAll(statsQuery)).getRowObjects();
                for (const name of ["time", "i", "u"]) {
                    const values = fileRows.map((row) => row[name]).filter((value): value is bigint => typeof value === "bigint");
                    if (values.length === 0) continue;
                    // The file's own values (time in its unit: µs is the floor of ns / 1000).
                    const stored = name === "time" && timeUnit === "us" ? values.map((ns) => (ns % 1000n < 0n ? ns / 1000n - 1n : ns / 1000n)) : values;
                    const min = stored.reduce((a, b) => (b < a ? b : a));
                    const max = stored.reduce((a, b) => (b > a ? b : a));
                    const chunk = metadata.row_groups[0]!.columns.find((column) => column.meta_data?.path_in_schema[0] === name)!;
                    expect([chunk.meta_data!.statistics!.min_value, chunk.meta_data!.statistics!.max_value], `${path} ${name}`).toEqual([min, max]);
                    const stats = duck.find((row) => row["name"] === name)!;
                    if (name !== "time") expect([stats["min"], stats["max"]], `${path} ${name}`).toEqual([String(min), String(max)]);
                }
            }
            // DuckDB prunes by these statistics: a wrong uint64 order would lose rows here.
            const list = paths.map((path) => `'${path}'`).join(",");
            const [count] = (
                await scratch.connection.runAndReadAll(`SELECT count(*) AS n FROM read_parquet([${list}], union_by_name = true) WHERE u >= 9223372036854775808`)
            ).getRowObjects();
            expect(count!["n"]).toBe(BigInt(rows.filter((row) => typeof row["u"] === "bigint" && row["u"] >= 2n ** 63n).length));
        });
    },
);

// ---------------------------------------------------------------------------------------------
// Microseconds: point identity, the column name, and a lake of both units

describe('parquet.time_unit = "us": identity stays the nanosecond', () => {
    const types = { host: "s", v: "f", note: "s" } as const;
    const encode = (rows: readonly Row[], timeUnit: TimeUnit, extra: Record<string, "f" | "i" | "s"> = {}) =>
        encodeParquet({ database: "db", segments: [makeBatch("m", ["host"], { ...types, ...extra }, rows)], minSequence: 1, maxSequence: 1 }, { sluiceVersion: "test", timeUnit });

    it("keeps two points of one microsecond apart and merges only the same nanosecond", async () => {
        const files = encode(
            [
                { time: T0 + 5_001n, host: "a", v: 1 },
                { time: T0 + 5_002n, host: "a", v: 2 },
                { time: T0 + 5_001n, host: "a", note: "again" },
            ],
            "us",
        );
        expect(files.map((file) => [file.rows, file.merged])).toEqual([[2, 1]]);
        const back = await readAll([await save(files[0]!.bytes)], "us");
        expect(back).toEqual([
            { time: T0 + 5_001n, host: "a", v: 1, note: "again" },
            { time: T0 + 5_002n, host: "a", v: 2, note: null },
        ]);
    });

    it("names the nanoseconds column time_nanos_2 when the measurement has its own time_nanos, and says so in the footer", async () => {
        const [file] = encode([{ time: T0 + 7n, host: "a", v: 1, time_nanos: 42n }], "us", { time_nanos: "i" });
        const path = await save(file!.bytes);
        const duck = await readWithDuckDB(scratch.connection, path);
        expect(duck.nanosColumn).toBe("time_nanos_2");
        expect(await readAll([path], "us")).toEqual([{ time: T0 + 7n, host: "a", v: 1, note: null, time_nanos: 42n }]);
    });

    describe("compaction of an hour written partly in ns, partly in µs (the key changed between runs)", () => {
        const older: Row[] = [
            { time: T0 + 1_000_001n, host: "a", v: 1, note: "ns file" },
            { time: T0 + 1_000_002n, host: "a", v: 2 },
            { time: T0 + 3n, host: "b", v: 3 },
        ];
        const newer: Row[] = [
            { time: T0 + 1_000_001n, host: "a", v: 10 }, // the same point: v corrected, note kept
            { time: T0 + 1_000_003n, host: "a", v: 4 }, // the same µs as the first two, another point
            { time: T0 + 2n, host: "b", v: 5 },
        ];
        const merged: PlainRow[] = [
            { time: T0 + 1_000_001n, host: "a", v: 10, note: "ns file" },
            { time: T0 + 1_000_002n, host: "a", v: 2, note: null },
            { time: T0 + 1_000_003n, host: "a", v: 4, note: null },
            { time: T0 + 2n, host: "b", v: 5, note: null },
            { time: T0 + 3n, host: "b", v: 3, note: null },
        ];

        it.each([
            ["ns", "us", "us"],
            ["us", "ns", "ns"],
            ["ns", "us", "ns"],
            ["us", "ns", "us"],
        ] as const)("older file in %s, newer in %s, merged into %s: every nanosecond kept, the point merged once", async (olderUnit, newerUnit, outUnit) => {
            const inputs = [await save(encode(older, olderUnit)[0]!.bytes), await save(encode(newer, newerUnit)[0]!.bytes)];
            const encoder = createEncoder({ timeUnit: outUnit });
            try {
                const facts = await encoder.describe(inputs);
                expect(facts.map((fact) => [fact.minTimeNs, fact.maxTimeNs])).toEqual([
                    [T0 + 3n, T0 + 1_000_002n],
                    [T0 + 2n, T0 + 1_000_003n],
                ]);
                const result = await encoder.merge({ database: "db", measurement: "m", inputs, targetRows: 100, batchRows: 2 }, encoder.options);
                expect([result.rowsIn, result.rowsOut, result.merged]).toEqual([6, 5, 1]);
                const back = await readAll(await Promise.all(result.files.map((file) => save(file.bytes))), outUnit);
                expect(back).toEqual(merged);
            } finally {
                await encoder.close();
            }
        });
    });

    it("reads a foreign microsecond file (no footer key) as whole microseconds, and refuses milliseconds", async () => {
        const us = scratch.pathFor("duckdb-us");
        const ms = scratch.pathFor("duckdb-ms");
        await scratch.connection.run(`COPY (SELECT TIMESTAMP '2023-11-14 22:13:20.123456' AS time, 'a' AS host, 1.5::DOUBLE AS v) TO '${us}' (FORMAT parquet)`);
        await scratch.connection.run(`COPY (SELECT TIMESTAMP_MS '2023-11-14 22:13:20.123' AS time, 'a' AS host) TO '${ms}' (FORMAT parquet)`);
        const encoder = createEncoder({ timeUnit: "ns" });
        try {
            const [facts] = await encoder.describe([us]);
            expect([facts!.minTimeNs, facts!.maxTimeNs]).toEqual([1_700_000_000_123_456_000n, 1_700_000_000_123_456_000n]);
            const result = await encoder.merge({ database: "db", measurement: "m", inputs: [us], targetRows: 10, batchRows: 10 }, encoder.options);
            expect(await readAll([await save(result.files[0]!.bytes)], "ns")).toEqual([{ time: 1_700_000_000_123_456_000n, host: "a", v: 1.5 }]);
            await expect(encoder.describe([ms])).rejects.toThrow(/milliseconds; Sluice reads only nano- and microseconds/);
        } finally {
            await encoder.close();
        }
    });
});

// ---------------------------------------------------------------------------------------------
// End to end: the key through a real server, a restart in the other unit, compaction

describe("parquet.time_unit through a real server", () => {
    let t: TestServer | undefined;
    let lake: { path: string; cleanup: () => Promise<void> } | undefined;
    afterEach(async () => {
        await t?.stop();
        t = undefined;
        await lake?.cleanup();
        lake = undefined;
    });

    const write = async (body: string) => {
        const response = await fetch(`${t!.url}/write?db=db`, { method: "POST", body });
        expect(response.status, await response.text()).toBe(204);
    };
    const flush = async () => {
        expect((await fetch(`${t!.url}/api/v1/flush`, { method: "POST" })).status).toBe(200);
    };
    const lakeFiles = async () => (await parquetFiles(lake!.path)).map((file) => join(lake!.path, "parquet", file.path));

    it("writes µs files with the nanoseconds kept; after a restart in ns, compaction merges both exactly", async () => {
        lake = await tempDir("sluice-readers-lake-");
        const settings = { "compaction.enabled": false };
        t = await startTestServer("node", { ...settings, "parquet.time_unit": "us" }, {}, lake.path);
        await write(
            [
                `m,host=a v=1 ${T0}`, // whole seconds, as Telegraf writes
                `m,host=a v=2 ${T0 + 123_456_000n}`, // whole µs
                `m,host=a v=3 ${T0 + 123_456_789n}`, // sub-µs digits
                `m,host=a v=4 ${T0 + 123_456_790n}`, // the same µs, another point
            ].join("\n"),
        );
        await flush();
        const first = await lakeFiles();
        expect(first).toHaveLength(1);
        expect(await readAll(first, "us")).toEqual([
            { time: T0, host: "a", v: 1 },
            { time: T0 + 123_456_000n, host: "a", v: 2 },
            { time: T0 + 123_456_789n, host: "a", v: 3 },
            { time: T0 + 123_456_790n, host: "a", v: 4 },
        ]);
        await t.stop();

        t = await startTestServer("node", { ...settings, "parquet.time_unit": "ns" }, {}, lake.path);
        await write([`m,host=a v=30 ${T0 + 123_456_789n}`, `m,host=b v=5 ${T0 + 1n}`].join("\n"));
        await flush();
        const both = await lakeFiles();
        expect(both).toHaveLength(2);
        // Before compaction DuckDB's union_by_name widens time to TIMESTAMP_NS; time_nanos adds the rest.
        const [mixed] = (
            await scratch.connection.runAndReadAll(
                `SELECT count(*) AS n, count(DISTINCT epoch_ns(time) + coalesce(time_nanos, 0)) AS distinct_ns, any_value(typeof(time)) AS type FROM read_parquet([${both.map((path) => `'${path}'`).join(",")}], union_by_name = true)`,
            )
        ).getRowObjects();
        expect(mixed).toEqual({ n: 6n, distinct_ns: 5n, type: "TIMESTAMP_NS" });

        const response = await fetch(`${t.url}/api/v1/compact`, { method: "POST" });
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ files_in: 2, files_out: 1, rows_in: 6, rows_out: 5, duplicates_merged: 1 });
        expect(byKey(await readAll(await lakeFiles(), "ns"), ["host"])).toEqual(
            byKey(
                [
                    { time: T0, host: "a", v: 1 },
                    { time: T0 + 123_456_000n, host: "a", v: 2 },
                    { time: T0 + 123_456_789n, host: "a", v: 30 },
                    { time: T0 + 123_456_790n, host: "a", v: 4 },
                    { time: T0 + 1n, host: "b", v: 5 },
                ],
                ["host"],
            ),
        );
    });
});

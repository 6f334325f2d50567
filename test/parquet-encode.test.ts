/**
 * Batch → Parquet (flush/encode) and the encode worker, every file read back with DuckDB:
 * types, exact nanoseconds and 64-bit integers, NULLs, (tags, time) order, the hour split,
 * unicode names, the footer key-values, union_by_name across files, and the worker's transfers.
 */
import { seededRandom } from "./helpers/random.js";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DuckDBConnection, DuckDBInstance, type DuckDBValue } from "@duckdb/node-api";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { Column, ColumnarBatch } from "../src/columnar/batch.js";
import { EncodeInputError, EncodeWorkerClosedError, EncodeWorkerDiedError } from "../flush/encode/errors.js";
import { hourLabels, hourOf } from "../flush/encode/hour.js";
import { encodeParquet } from "../flush/encode/parquet.js";
import { compareCodePoints, orderRows } from "../flush/encode/sort.js";
import type { EncodeInput, EncodeOptions, EncodedFile } from "../flush/encode/types.js";
import { createEncoder } from "../flush/encoder.js";
import { EncodeWorker, defaultWorkerUrl } from "../flush/worker/client.js";
import { type Row, type Value, makeBatch, tempDir } from "./helpers/batches.js";
import { columnLayout } from "./helpers/column-layout.js";
import { readWithDuckDB, readWithHyparquet } from "./helpers/two-readers.js";

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const HOUR = 3_600_000_000_000n;
/** 2023-11-14 22:13:20 UTC, a time with a non-zero nanosecond part. */
const T0 = 1_700_000_000_000_000_007n;
const OPTIONS: EncodeOptions = { sluiceVersion: "9.8.7-test" };

function input(batch: ColumnarBatch, database = "db", minSequence = 12, maxSequence = 345): EncodeInput {
    return { database, segments: [batch], minSequence, maxSequence };
}

/** A copy of a batch whose arrays own their memory (the worker detaches the original's). */
function cloneBatch(batch: ColumnarBatch): ColumnarBatch {
    const columns = new Map<string, Column>();
    for (const [name, column] of batch.columns) columns.set(name, structuredClone(column));
    return { ...batch, columns };
}

// ---------------------------------------------------------------------------------------------
// DuckDB

let instance: DuckDBInstance;
let connection: DuckDBConnection;
let dir: { path: string; cleanup: () => Promise<void> };
let fileCounter = 0;

beforeAll(async () => {
    instance = await DuckDBInstance.create(":memory:");
    connection = await instance.connect();
});
afterAll(() => {
    connection.closeSync();
    instance.closeSync();
});
beforeEach(async () => {
    dir = await tempDir("sluice-parquet-");
});
afterEach(async () => {
    await dir.cleanup();
});

async function query(sql: string): Promise<Record<string, DuckDBValue>[]> {
    return (await connection.runAndReadAll(sql)).getRowObjects();
}

function sqlString(value: string): string {
    return `'${value.replaceAll("'", "''")}'`;
}

/** Writes the file under the partition layout of DESIGN.md §4 and returns its path, quoted for SQL. */
async function saveFile(file: EncodedFile, subdir = "m"): Promise<string> {
    const folder = join(dir.path, subdir, `date=${file.date}`, `hour=${file.hour}`);
    await mkdir(folder, { recursive: true });
    const path = join(folder, `f${fileCounter++}.parquet`);
    await writeFile(path, file.bytes);
    return sqlString(path);
}

/** The only file of a one-hour batch. */
async function encodeOne(batch: ColumnarBatch, options: EncodeOptions = OPTIONS): Promise<{ file: EncodedFile; path: string }> {
    const files = encodeParquet(input(batch), options);
    expect(files).toHaveLength(1);
    return { file: files[0]!, path: await saveFile(files[0]!) };
}

/** Rows in file order, with `time` as exact int64 nanoseconds (epoch_ns). */
async function fileRows(path: string, columns: string): Promise<Record<string, DuckDBValue>[]> {
    return query(`SELECT epoch_ns(time) AS ns, ${columns} FROM read_parquet(${path}, file_row_number = true) ORDER BY file_row_number`);
}

// ---------------------------------------------------------------------------------------------

describe("encodeParquet: types and values read back by DuckDB", () => {
    const types = { host: "s", region: "s", usage: "f", count: "i", big: "u", ok: "b", note: "s" } as const;
    const rows: Row[] = [
        { time: T0, host: "a", region: "eu", usage: 0.1, count: 2n ** 53n + 1n, big: 2n ** 63n + 1n, ok: true, note: "x" },
        { time: T0 + 1n, host: "a", region: "eu", usage: null, count: null, big: null, ok: null, note: null },
        { time: T0 + 2n, host: "a", region: "eu", usage: -0, count: I64_MIN, big: U64_MAX, ok: false, note: "y" },
        { time: T0 + 3n, host: "a", region: "eu", usage: 1.5e300, count: I64_MAX, big: 0n, ok: true, note: "x" },
        { time: T0 + 4n, host: "a", region: "eu", usage: 0, count: 0n, big: 2n ** 53n + 1n, ok: false, note: "" },
    ];

    it("writes TIMESTAMP_NS time, VARCHAR tags and DOUBLE/BIGINT/UBIGINT/BOOLEAN/VARCHAR fields", async () => {
        const { path } = await encodeOne(makeBatch("cpu", ["host", "region"], types, rows));
        const described = await query(`DESCRIBE SELECT * FROM read_parquet(${path}, hive_partitioning = false)`);
        expect(described.map((r) => [r["column_name"], r["column_type"]])).toEqual([
            ["time", "TIMESTAMP_NS"],
            ["host", "VARCHAR"],
            ["region", "VARCHAR"],
            ["usage", "DOUBLE"],
            ["count", "BIGINT"],
            ["big", "UBIGINT"],
            ["ok", "BOOLEAN"],
            ["note", "VARCHAR"],
        ]);
    });

    it("keeps int64 above 2^53, uint64 above 2^63 and every float exactly; missing values are NULL, never 0", async () => {
        const { path } = await encodeOne(makeBatch("cpu", ["host", "region"], types, rows));
        const back = await fileRows(path, "usage, count, big, ok, note, usage IS NULL AS usage_null, count IS NULL AS count_null");
        expect(back.map((r) => r["ns"])).toEqual(rows.map((r) => r["time"]));
        expect(back.map((r) => r["count"])).toEqual([2n ** 53n + 1n, null, I64_MIN, I64_MAX, 0n]);
        expect(back.map((r) => r["big"])).toEqual([2n ** 63n + 1n, null, U64_MAX, 0n, 2n ** 53n + 1n]);
        expect(back.map((r) => r["usage"])).toEqual([0.1, null, -0, 1.5e300, 0]);
        expect(Object.is(back[2]!["usage"], -0)).toBe(true);
        expect(back.map((r) => r["ok"])).toEqual([true, null, false, true, false]);
        expect(back.map((r) => r["note"])).toEqual(["x", null, "y", "x", ""]);
        expect(back[1]!["usage_null"]).toBe(true);
        expect(back[4]!["usage_null"]).toBe(false);
        expect(back[1]!["count_null"]).toBe(true);
        const sums = await query(`SELECT count(usage) AS usage, count(count) AS count, count(big) AS big, count(ok) AS ok, count(note) AS note FROM read_parquet(${path})`);
        expect(sums[0]).toEqual({ usage: 4n, count: 4n, big: 4n, ok: 4n, note: 4n });
    });

    it("keeps nanoseconds exactly: not multiples of 1000, before 1970, and the int64 extremes", async () => {
        const times = [
            1n,
            999n,
            1_000_000_007n,
            -1n,
            -1_234_567_891n,
            -2_208_988_800_000_000_001n, // 1899-12-31 23:59:59.999999999
            T0,
            I64_MAX - 1n, // 2262-04-11 23:47:16.854775806, the last timestamp DuckDB renders
            -9_223_000_000_000_000_123n, // 1677-09-25, near the first one DuckDB renders
        ];
        for (const time of times) {
            const { file, path } = await encodeOne(makeBatch("t", [], {}, [{ time }]));
            expect([file.minTimeNs, file.maxTimeNs]).toEqual([time, time]);
            const [row] = await query(`SELECT epoch_ns(time) AS ns, typeof(time) AS type, CAST(time AS VARCHAR) AS text FROM read_parquet(${path})`);
            expect(row!["ns"]).toBe(time);
            expect(row!["type"]).toBe("TIMESTAMP_NS");
            const seconds = time / 1_000_000_000n - (time % 1_000_000_000n < 0n ? 1n : 0n);
            const nanos = ((time % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
            const iso = new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace("T", " ");
            expect(row!["text"]).toBe(nanos === 0n ? iso : `${iso}.${String(nanos).padStart(9, "0")}`);
        }
        // INT64_MIN and INT64_MAX are stored exactly too (DuckDB reads MAX as 'infinity').
        const files = encodeParquet(input(makeBatch("t", [], {}, [{ time: I64_MIN + 1n }, { time: I64_MIN }, { time: I64_MAX }])), OPTIONS);
        const back: DuckDBValue[] = [];
        for (const file of files) back.push(...(await fileRows(await saveFile(file), "1 AS one")).map((r) => r["ns"]!));
        expect(back).toEqual([I64_MIN, I64_MIN + 1n, I64_MAX]);
    });
});

describe("encodeParquet: the Parquet schema, encodings and footer", () => {
    const batch = () =>
        makeBatch(
            "cpu",
            ["host"],
            { host: "s", usage: "f", count: "i", big: "u", ok: "b", note: "s" },
            Array.from({ length: 300 }, (_, i) => ({
                time: T0 + BigInt(i) * 1_000_000_007n,
                host: `h${i % 3}`,
                usage: i / 4,
                count: BigInt(i),
                big: BigInt(i),
                ok: i % 2 === 0,
                note: i % 5 === 0 ? null : `n${i % 7}`,
            })),
        );

    it("time is INT64 TIMESTAMP(NANOS, isAdjustedToUTC=false), REQUIRED; the rest OPTIONAL, strings UTF8", async () => {
        const { path } = await encodeOne(batch());
        const schema = await query(`SELECT name, type, converted_type, logical_type, repetition_type FROM parquet_schema(${path}) WHERE type IS NOT NULL`);
        const byName = Object.fromEntries(schema.map((r) => [r["name"] as string, r]));
        expect(byName["time"]).toMatchObject({ type: "INT64", converted_type: null, repetition_type: "REQUIRED" });
        expect(byName["time"]!["logical_type"]).toMatch(/^TimestampType\(isAdjustedToUTC=0, unit=TimeUnit\(.*NANOS=NanoSeconds\(\)\)\)$/);
        for (const name of ["host", "note"])
            expect(byName[name]).toMatchObject({ type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: "StringType()", repetition_type: "OPTIONAL" });
        expect(byName["usage"]).toMatchObject({ type: "DOUBLE", repetition_type: "OPTIONAL" });
        expect(byName["count"]).toMatchObject({ type: "INT64", converted_type: null, repetition_type: "OPTIONAL" });
        expect(byName["big"]).toMatchObject({ type: "INT64", converted_type: "UINT_64", repetition_type: "OPTIONAL" });
        expect(byName["ok"]).toMatchObject({ type: "BOOLEAN", repetition_type: "OPTIONAL" });
    });

    it("ZSTD by default on every column, DELTA_BINARY_PACKED without a dictionary on time and ints, dictionaries on strings, statistics", async () => {
        const { path } = await encodeOne(batch());
        const meta = await query(
            `SELECT path_in_schema AS name, compression, encodings, stats_min_value AS min, stats_max_value AS max, stats_null_count AS nulls FROM parquet_metadata(${path})`,
        );
        const byName = Object.fromEntries(meta.map((r) => [r["name"] as string, r]));
        for (const row of meta) expect(row["compression"], String(row["name"])).toBe("ZSTD");
        for (const name of ["time", "count", "big"]) {
            expect(byName[name]!["encodings"], name).toContain("DELTA_BINARY_PACKED");
            expect(byName[name]!["encodings"], name).not.toMatch(/DICTIONARY/);
        }
        expect(byName["usage"]!["encodings"]).not.toMatch(/DICTIONARY|BYTE_STREAM_SPLIT/);
        for (const name of ["host", "note"]) expect(byName[name]!["encodings"]).toContain("RLE_DICTIONARY");
        // 300 rows, 1.000000007 s apart from T0 = 2023-11-14 22:13:20.000000007
        expect(byName["time"]).toMatchObject({ min: "2023-11-14 22:13:20.000000007", max: "2023-11-14 22:18:19.0000021", nulls: 0n });
        expect(byName["host"]).toMatchObject({ min: "h0", max: "h2", nulls: 0n });
        expect(byName["note"]).toMatchObject({ nulls: 60n });
        expect(byName["big"]).toMatchObject({ min: "0", max: "299" });
    });

    it("honours the codec, the time encoding and the row-group size", async () => {
        for (const [compression, name] of [
            ["snappy", "SNAPPY"],
            ["none", "UNCOMPRESSED"],
        ] as const) {
            const { path } = await encodeOne(batch(), { ...OPTIONS, compression, timeEncoding: "plain", maxRowGroupRows: 128 });
            const meta = await query(`SELECT DISTINCT compression, row_group_id, row_group_num_rows FROM parquet_metadata(${path}) ORDER BY row_group_id`);
            expect(meta.map((r) => [r["compression"], r["row_group_num_rows"]])).toEqual([
                [name, 128n],
                [name, 128n],
                [name, 44n],
            ]);
            const [time] = await query(`SELECT encodings FROM parquet_metadata(${path}) WHERE path_in_schema = 'time' LIMIT 1`);
            expect(time!["encodings"]).not.toMatch(/DELTA|DICTIONARY/);
            expect((await query(`SELECT count(*) AS n FROM read_parquet(${path})`))[0]!["n"]).toBe(300n);
        }
    });

    it("encodes fields by one rule (field-encodings.ts): ints and uint64s delta-coded, mostly distinct floats PLAIN, repeating floats dictionary-coded; DuckDB and hyparquet read back every value", async () => {
        const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, Number.MIN_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE];
        const ints = [I64_MIN, I64_MAX, 0n, -1n, 2n ** 53n + 1n];
        const uints = [0n, 2n ** 63n, U64_MAX, 2n ** 63n - 1n];
        const next = seededRandom(11);
        const rows: Row[] = Array.from({ length: 2000 }, (_, k) => ({
            time: T0 + BigInt(k) * 1_000_000_000n,
            host: "h",
            drift: k < specials.length ? specials[k]! : k % 13 === 0 ? null : next() * 100,
            level: k % 9 === 1 ? null : k < specials.length ? specials[k]! : Math.round(next() * 20) / 4,
            count: k < ints.length ? ints[k]! : k % 11 === 0 ? null : BigInt(k * 7),
            big: k < uints.length ? uints[k]! : k % 17 === 0 ? null : BigInt(k),
            note: k % 3 === 0 ? null : `n${k % 5}`,
            // 35 % and 70 % of the values distinct: either side of the half that decides.
            some: (k % 700) / 4,
            most: (k % 1400) / 4,
        }));
        const types = { host: "s", drift: "f", level: "f", count: "i", big: "u", note: "s", some: "f", most: "f" } as const;
        const { path } = await encodeOne(makeBatch("cpu", ["host"], types, rows));
        const layout = await columnLayout(path.slice(1, -1));
        for (const name of ["drift", "most"]) {
            expect(layout.encodings.get(name), name).toEqual(new Set(["PLAIN", "RLE"]));
            expect(layout.codecs.get(name), name).toEqual(new Set(["ZSTD"]));
        }
        for (const name of ["level", "some"]) {
            expect(layout.encodings.get(name), name).toContain("RLE_DICTIONARY");
            expect(layout.codecs.get(name), name).toEqual(new Set(["ZSTD"]));
        }
        for (const name of ["count", "big"]) {
            expect(layout.encodings.get(name), name).toContain("DELTA_BINARY_PACKED");
            expect(layout.encodings.get(name), name).not.toContain("RLE_DICTIONARY");
            expect(layout.codecs.get(name), name).toEqual(new Set(["ZSTD"]));
        }
        const file = path.slice(1, -1);
        const duck = await readWithDuckDB(connection, file);
        const expected = rows.map((row) => Object.fromEntries(["time", ...Object.keys(types)].map((name) => [name, row[name] ?? null])));
        expect(duck.rows).toEqual(expected);
        const hy = (await readWithHyparquet(file)).rows;
        expect(hy).toEqual(expected);
        for (const back of [duck.rows, hy])
            expect(
                [back[3]!["drift"], back[3]!["level"]].every((value) => Object.is(value, -0)),
                "-0 stays -0",
            ).toBe(true);
    });

    it("writes the footer key-values with the raw names", async () => {
        const unicode = makeBatch('températüre/°C "x"', ["région", "🏷"], { région: "s", "🏷": "s", "çà va": "f" }, [{ time: T0, région: "Île-de-France", "🏷": "😀", "çà va": 1.5 }]);
        const [file] = encodeParquet(input(unicode, "données/α.%", 7, 7), OPTIONS);
        const path = await saveFile(file!);
        const kv = await query(`SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata(${path}) WHERE decode(key) LIKE 'sluice:%'`);
        expect(Object.fromEntries(kv.map((r) => [r["key"], r["value"]]))).toEqual({
            "sluice:database": "données/α.%",
            "sluice:measurement": 'températüre/°C "x"',
            "sluice:tags": JSON.stringify(["région", "🏷"]),
            "sluice:wal_seq": "7-7",
            "sluice:version": "9.8.7-test",
            "sluice:time_zone": "UTC",
            "sluice:time_range": `${T0}-${T0}`,
        });
        expect(JSON.parse(kv.find((r) => r["key"] === "sluice:tags")!["value"] as string)).toEqual(["région", "🏷"]);
        const [row] = await query(`SELECT "région", "🏷", "çà va" FROM read_parquet(${path})`);
        expect(row).toEqual({ région: "Île-de-France", "🏷": "😀", "çà va": 1.5 });
        const other = encodeParquet(input(makeBatch("m", [], {}, [{ time: 1n }]), "db", 12, 345), OPTIONS);
        const [seq] = await query(`SELECT decode(value) AS value FROM parquet_kv_metadata(${await saveFile(other[0]!)}) WHERE decode(key) = 'sluice:wal_seq'`);
        expect(seq!["value"]).toBe("12-345");
    });
});

// ---------------------------------------------------------------------------------------------
// Order and hours

/** The reference order, by comparison: (hour, tags with null first in code point order, time, arrival). */
function referenceOrder(tags: readonly string[], rows: readonly Row[]): number[] {
    const compareTag = (a: Value | undefined, b: Value | undefined) => (a == null ? (b == null ? 0 : -1) : b == null ? 1 : compareCodePoints(a as string, b as string));
    return rows
        .map((_, i) => i)
        .sort((i, j) => {
            const a = rows[i]!;
            const b = rows[j]!;
            const hours = hourOf(a["time"] as bigint) - hourOf(b["time"] as bigint);
            if (hours !== 0) return hours;
            for (const tag of tags) {
                const c = compareTag(a[tag], b[tag]);
                if (c !== 0) return c;
            }
            const at = a["time"] as bigint;
            const bt = b["time"] as bigint;
            return at < bt ? -1 : at > bt ? 1 : i - j;
        });
}

function actualOrder(batch: ColumnarBatch): number[] {
    const order = orderRows(batch);
    return order.permutation === undefined ? Array.from({ length: batch.rows }, (_, i) => i) : Array.from(order.permutation);
}

/** Tag values that sort differently in UTF-16 and in UTF-8/code point order, plus nulls. */
const AWKWARD = ["b", "a", "", "ab", "Z", "é", "\uffff", "😀", "\ue000", "𝔸", null] as const;

function randomRows(count: number, seed: number, options: { tags: readonly string[]; values: readonly (string | null)[]; ordered: boolean; spanHours: number }): Row[] {
    const next = seededRandom(seed);
    const rows: Row[] = [];
    for (let i = 0; i < count; i++) {
        const row: Row = { id: BigInt(i) };
        const offset = options.ordered
            ? BigInt(Math.floor((i / count) * options.spanHours * 3_600_000)) * 1_000_000n + BigInt(i % 1000)
            : BigInt(Math.floor(next() * options.spanHours * 3.6e12));
        row["time"] = T0 - (T0 % HOUR) + offset;
        for (const tag of options.tags) row[tag] = options.values[Math.floor(next() * options.values.length)]!;
        rows.push(row);
    }
    return rows;
}

describe("encodeParquet: row order and hour partitions", () => {
    it("orders by (hour, tags nulls first in UTF-8 order, time), ties in arrival order", () => {
        for (const ordered of [true, false]) {
            const tags = ["host", "region"];
            const rows = randomRows(3000, ordered ? 1 : 2, { tags, values: AWKWARD, ordered, spanHours: 2 });
            // Duplicated (tags, time) rows, arriving right after the original: arrival order decides.
            rows.splice(11, 0, { ...rows[10]!, id: 3000n }, { ...rows[10]!, id: 3001n });
            const batch = makeBatch("m", tags, { host: "s", region: "s", id: "i" }, rows);
            const order = orderRows(batch);
            expect(actualOrder(batch)).toEqual(referenceOrder(tags, rows));
            expect(order.hours.map((h) => h.end - h.start).reduce((a, b) => a + b)).toBe(rows.length);
            if (ordered) expect(order.resortedGroups).toBe(0);
            else expect(order.resortedGroups).toBeGreaterThan(0);
        }
    });

    it("orders many high-cardinality tags (cardinality product above 2^53) and no tags at all", () => {
        const tags = ["t1", "t2", "t3", "t4", "t5"];
        const values = Array.from({ length: 2000 }, (_, i) => `v${(i * 7919) % 2000}`);
        const rows = randomRows(4000, 3, { tags, values, ordered: false, spanHours: 1 });
        const types = Object.fromEntries(tags.map((t) => [t, "s" as const]));
        expect(actualOrder(makeBatch("m", tags, types, rows))).toEqual(referenceOrder(tags, rows));
        const untagged = randomRows(500, 4, { tags: [], values: [], ordered: false, spanHours: 3 });
        expect(actualOrder(makeBatch("m", [], {}, untagged))).toEqual(referenceOrder([], untagged));
    });

    it("writes rows that DuckDB finds sorted by (tags, time), each input row exactly once", async () => {
        const tags = ["host", "region"];
        const rows = randomRows(2000, 5, { tags, values: AWKWARD, ordered: false, spanHours: 1 });
        const { path } = await encodeOne(makeBatch("m", tags, { host: "s", region: "s", id: "i" }, rows));
        const inFile = await fileRows(path, "host, region, id");
        const sorted = await query(`SELECT epoch_ns(time) AS ns, host, region, id FROM read_parquet(${path}) ORDER BY host NULLS FIRST, region NULLS FIRST, time, id`);
        expect(inFile).toEqual(sorted);
        expect(inFile.map((r) => r["id"]).sort((a, b) => Number(a) - Number(b))).toEqual(rows.map((r) => r["id"]));
        for (const r of inFile) {
            const source = rows[Number(r["id"])]!;
            expect([r["ns"], r["host"], r["region"]]).toEqual([source["time"], source["host"] ?? null, source["region"] ?? null]);
        }
    });

    it("writes one file per UTC hour touched, boundaries exact", async () => {
        const start = 1_700_002_800_000_000_000n; // 2023-11-14 23:00:00 UTC
        const times = [start - 1n, start, start + HOUR - 1n, start + HOUR, start + HOUR + 5n, start - 7n, start + 3n];
        const rows = times.map((time, i) => ({ time, host: i % 2 === 0 ? "b" : "a", v: i }));
        const files = encodeParquet(
            input(
                makeBatch(
                    "m",
                    ["host"],
                    { host: "s", v: "i" },
                    rows.map((r) => ({ ...r, v: BigInt(r.v) })),
                ),
            ),
            OPTIONS,
        );
        expect(files.map((f) => [f.date, f.hour, f.rows, f.minTimeNs, f.maxTimeNs])).toEqual([
            ["2023-11-14", "22", 2, start - 7n, start - 1n],
            ["2023-11-14", "23", 3, start, start + HOUR - 1n],
            ["2023-11-15", "00", 2, start + HOUR, start + HOUR + 5n],
        ]);
        for (const file of files) {
            const path = await saveFile(file);
            const back = await query(`SELECT DISTINCT strftime(time, '%Y-%m-%d') AS date, strftime(time, '%H') AS hour FROM read_parquet(${path})`);
            expect(back).toEqual([{ date: file.date, hour: file.hour }]);
        }
        const all = await query(
            `SELECT count(*) AS n, count(DISTINCT v) AS distinct_v FROM read_parquet(${sqlString(join(dir.path, "m", "**", "*.parquet"))}, hive_partitioning = false)`,
        );
        expect(all[0]).toEqual({ n: 7n, distinct_v: 7n });
    });

    it("splits hours by floor division before 1970", () => {
        expect([hourOf(-1n), hourOf(0n), hourOf(-HOUR), hourOf(-HOUR - 1n), hourOf(I64_MIN), hourOf(I64_MAX)]).toEqual([-1, 0, -1, -2, -2562048, 2562047]);
        expect(hourLabels(-1)).toEqual({ date: "1969-12-31", hour: "23" });
        expect(hourLabels(hourOf(I64_MIN))).toEqual({ date: "1677-09-21", hour: "00" });
        const files = encodeParquet(input(makeBatch("m", [], {}, [{ time: -1n }, { time: 0n }, { time: -HOUR - 1n }])), OPTIONS);
        expect(files.map((f) => [f.date, f.hour, f.rows])).toEqual([
            ["1969-12-31", "22", 1],
            ["1969-12-31", "23", 1],
            ["1970-01-01", "00", 1],
        ]);
    });

    it("reads files with different columns together with union_by_name", async () => {
        const a = makeBatch("m", ["host"], { host: "s", usage: "f" }, [{ time: T0, host: "a", usage: 1.5 }]);
        const b = makeBatch("m", ["host", "dc"], { host: "s", dc: "s", count: "i", usage: "f" }, [{ time: T0 + HOUR, host: "b", dc: "x", count: 3n, usage: 2.5 }]);
        for (const batch of [a, b]) for (const file of encodeParquet(input(batch), OPTIONS)) await saveFile(file, "db/m");
        const glob = sqlString(join(dir.path, "db", "m", "**", "*.parquet"));
        const back = await query(`SELECT epoch_ns(time) AS ns, host, dc, usage, count, hour FROM read_parquet(${glob}, union_by_name = true) ORDER BY time`);
        expect(back).toEqual([
            { ns: T0, host: "a", dc: null, usage: 1.5, count: null, hour: 22n },
            { ns: T0 + HOUR, host: "b", dc: "x", usage: 2.5, count: 3n, hour: 23n },
        ]);
    });
});

describe("encodeParquet: segments", () => {
    it("joins segments in order into one file; a column missing from a segment is NULL there", async () => {
        const first = makeBatch("m", ["host"], { host: "s", usage: "f" }, [
            { time: T0 + 5n, host: "b", usage: 1 },
            { time: T0 + 1n, host: "a", usage: 2 },
        ]);
        const second = makeBatch("m", ["host", "dc"], { host: "s", dc: "s", count: "i" }, [
            { time: T0 + 3n, host: "b", dc: "x", count: 7n },
            { time: T0 + 2n, host: "c", count: 8n },
        ]);
        const files = encodeParquet({ database: "db", segments: [first, second], minSequence: 1, maxSequence: 2 }, OPTIONS);
        expect(files.map((file) => file.rows)).toEqual([4]);
        const back = await fileRows(await saveFile(files[0]!), "host, dc, usage, count");
        // File order is (tags by name: dc, host; then time), a missing tag first.
        expect(back).toEqual([
            { ns: T0 + 1n, host: "a", dc: null, usage: 2, count: null },
            { ns: T0 + 5n, host: "b", dc: null, usage: 1, count: null },
            { ns: T0 + 2n, host: "c", dc: null, usage: null, count: 8n },
            { ns: T0 + 3n, host: "b", dc: "x", usage: null, count: 7n },
        ]);
    });

    it("refuses segments of different measurements or column types, and no segments at all", () => {
        const a = makeBatch("m", [], { v: "f" }, [{ time: 1n, v: 1 }]);
        const other = makeBatch("n", [], { v: "f" }, [{ time: 2n, v: 2 }]);
        const retyped = makeBatch("m", [], { v: "i" }, [{ time: 2n, v: 2n }]);
        for (const segments of [[a, other], [a, retyped], []]) {
            expect(() => encodeParquet({ database: "db", segments, minSequence: 1, maxSequence: 1 }, OPTIONS)).toThrow(EncodeInputError);
        }
    });
});

describe("encodeParquet: input checks", () => {
    it("returns no file for an empty batch", () => {
        expect(encodeParquet(input(makeBatch("m", [], {}, [])), OPTIONS)).toEqual([]);
    });

    it("rejects malformed batches and options with encode-bad-input", () => {
        const good = () => makeBatch("m", ["host"], { host: "s" }, [{ time: 1n, host: "a" }]);
        const broken: ColumnarBatch = { ...good(), columns: new Map([...good().columns, ["host", { type: "s", dict: [], codes: Uint32Array.of(3) }]]) };
        const cases: [EncodeInput, EncodeOptions][] = [
            [input(broken), OPTIONS],
            [input({ ...good(), tags: ["time"] }), OPTIONS],
            [input({ ...good(), tags: ["host", "host"] }), OPTIONS],
            [input(good(), "db", 5, 4), OPTIONS],
            [input(good(), ""), OPTIONS],
            [input(good()), { ...OPTIONS, compression: "lz4" as never }],
            [input(good()), { ...OPTIONS, maxRowGroupRows: 0 }],
        ];
        for (const [bad, options] of cases) {
            expect(() => encodeParquet(bad, options)).toThrow(EncodeInputError);
        }
    });
});

// ---------------------------------------------------------------------------------------------
// The worker

describe("EncodeWorker", () => {
    // vitest runs the TypeScript sources, and Node 20 cannot start a .ts file as a worker: the
    // client then starts the compiled dist/flush/worker/main.js (`npm test` builds first).
    const compiled = fileURLToPath(defaultWorkerUrl());
    let worker: EncodeWorker | undefined;

    beforeAll(() => {
        if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run \`npm run build\` (npm test does) before this test`);
    });
    afterEach(async () => {
        await worker?.close();
        worker = undefined;
    });

    function sample(rows: number, seed: number): ColumnarBatch {
        const values = ["web-1", "web-2", "db-1", "😀", null];
        const next = seededRandom(seed);
        return makeBatch(
            "cpu",
            ["host"],
            { host: "s", usage: "f", count: "i", ok: "b" },
            Array.from({ length: rows }, (_, i) => ({
                time: T0 + BigInt(i) * 1_000_003_007n,
                host: values[Math.floor(next() * values.length)]!,
                usage: i % 7 === 0 ? null : Math.round(next() * 10000) / 100,
                count: BigInt(i) - 2n ** 60n,
                ok: next() < 0.5,
            })),
        );
    }

    /** The nice value of each thread of this process (Linux: field 19 of /proc/self/task/TID/stat). */
    function threadNices(): Map<number, number> {
        const nices = new Map<number, number>();
        for (const tid of readdirSync("/proc/self/task")) {
            const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
            nices.set(Number(tid), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
        }
        return nices;
    }

    it.runIf(process.platform === "linux")("runs its thread, and only it, at the nice value it is given", async () => {
        const before = threadNices();
        worker = new EncodeWorker({ nice: 7 });
        expect((await worker.encode(input(sample(100, 5)), OPTIONS)).length).toBeGreaterThan(0);
        const niced = [...threadNices()].filter(([tid, nice]) => nice === 7 && before.get(tid) !== 7);
        expect(niced).toHaveLength(1);
        expect(threadNices().get(process.pid)).toBe(before.get(process.pid));
        await worker.close();
        expect(threadNices().has(niced[0]![0])).toBe(false);
        expect(() => new EncodeWorker({ nice: 20 })).toThrow(RangeError);
    });

    it("abort fails the running and the queued jobs at once and stops its thread (a shutdown does not wait for a long merge)", async () => {
        worker = new EncodeWorker();
        const jobs = [0, 1, 2].map((seed) =>
            worker!.encode(input(sample(20_000, seed)), OPTIONS).then(
                () => "done",
                (error: unknown) => error,
            ),
        );
        await worker.abort();
        for (const outcome of await Promise.all(jobs)) expect(outcome).toBeInstanceOf(EncodeWorkerClosedError);
        await expect(worker.encode(input(sample(10, 9)), OPTIONS)).rejects.toBeInstanceOf(EncodeWorkerClosedError);
        await worker.close();
    });

    it.runIf(process.platform === "linux")(
        "merges (compaction) in a thread of their own at compaction.worker_nice, started by the first merge job, released between passes",
        async () => {
            const before = threadNices();
            const encoder = createEncoder({ nice: 0, mergeNice: 11 });
            try {
                expect((await encoder.encode(input(sample(100, 5)))).length).toBeGreaterThan(0);
                const niced = () => [...threadNices()].filter(([tid, nice]) => nice === 11 && before.get(tid) !== 11);
                expect(niced()).toHaveLength(0);
                expect(await encoder.describe([])).toEqual([]);
                expect(niced()).toHaveLength(1);
                // Released between compaction passes: the thread and its memory go, the next merge job starts one again.
                await encoder.release();
                expect(niced()).toHaveLength(0);
                expect(await encoder.describe([])).toEqual([]);
                expect(niced()).toHaveLength(1);
                await encoder.stopMerges();
                await expect(encoder.describe([])).rejects.toBeInstanceOf(EncodeWorkerClosedError);
                // Flushes go on after the merge thread stopped.
                expect((await encoder.encode(input(sample(100, 6)))).length).toBeGreaterThan(0);
            } finally {
                await encoder.close();
            }
        },
    );

    it("starts and loads its encoder before the first job when asked, without a second worker", async () => {
        worker = new EncodeWorker();
        expect(worker.stats).toMatchObject({ ready: false, workersStarted: 0 });
        worker.start();
        await vi.waitFor(
            () => {
                expect(worker!.stats.ready).toBe(true);
            },
            { timeout: 60_000, interval: 20 },
        );
        expect(worker.stats).toMatchObject({ jobs: 0, workersStarted: 1 });
        worker.start();
        const files = await worker.encode(input(sample(100, 5)), OPTIONS);
        expect(files.reduce((sum, file) => sum + file.rows, 0)).toBe(100);
        expect(worker.stats).toMatchObject({ jobs: 1, workersStarted: 1, ready: true });
        await worker.close();
        worker.start();
        expect(worker.stats).toMatchObject({ workersStarted: 1, ready: false });
    });

    it.runIf(process.platform === "linux")("never raises its thread's priority above the process's", () => {
        // A process already at nice 12 asks for 5: its encode thread must stay at 12 (as root a
        // plain setpriority would succeed and raise it; unprivileged it would be refused).
        const script = `
            import { setPriority } from "node:os";
            import { readFileSync, readdirSync } from "node:fs";
            setPriority(12);
            const { EncodeWorker } = await import(${JSON.stringify(new URL("client.js", defaultWorkerUrl()).href)});
            const worker = new EncodeWorker({ nice: 5 });
            const time = BigInt64Array.of(1n);
            await worker.encode({ database: "db", segments: [{ measurement: "m", rows: 1, tags: [], columns: new Map([["time", { type: "t", values: time }]]) }], minSequence: 1, maxSequence: 1 }, { sluiceVersion: "t" });
            const nices = readdirSync("/proc/self/task").map((tid) => { const stat = readFileSync("/proc/self/task/" + tid + "/stat", "utf8"); return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]); });
            await worker.close();
            console.log(JSON.stringify(nices));`;
        // A file, not -e: a worker inherits the parent's execArgv, and --input-type breaks it.
        const file = join(dir.path, "nice.mjs");
        writeFileSync(file, script);
        const child = spawnSync(process.execPath, [file], { encoding: "utf8", timeout: 60_000 });
        expect(child.stderr).toBe("");
        const nices = JSON.parse(child.stdout) as number[];
        expect(nices.length).toBeGreaterThan(1);
        expect(Math.min(...nices)).toBeGreaterThanOrEqual(0);
        expect(nices).not.toContain(5);
    });

    it("transfers the batch's arrays and returns what the in-thread encoder returns", async () => {
        worker = new EncodeWorker();
        const batch = sample(20_000, 7); // spans 6 hours
        const expected = encodeParquet(input(cloneBatch(batch)), OPTIONS);
        const arrays = [...batch.columns.values()].map((c) => (c.type === "s" ? c.codes : c.values));
        const files = await worker.encode(input(batch), OPTIONS);
        for (const array of arrays) expect(array.byteLength).toBe(0); // detached: moved, not copied
        expect(files).toHaveLength(6);
        // Not byte for byte: parquet-wasm writes the footer key-values in HashMap order.
        const summary = (f: EncodedFile) => ({ ...f, bytes: f.bytes.length });
        expect(files.map(summary)).toEqual(expected.map(summary));
        for (const [i, file] of files.entries()) {
            const columns = "host, usage, count, ok";
            expect(await fileRows(await saveFile(file), columns)).toEqual(await fileRows(await saveFile(expected[i]!), columns));
        }
        const total = await query(`SELECT count(*) AS n FROM read_parquet(${sqlString(join(dir.path, "m", "**", "*.parquet"))})`);
        expect(total[0]!["n"]).toBe(40_000n);
    });

    it("copies arrays that are views into a larger buffer, and sends a shared buffer once", async () => {
        worker = new EncodeWorker();
        const backing = new BigInt64Array(64);
        const time = backing.subarray(8, 12);
        time.set([T0, T0 + 1n, T0 + 2n, T0 + 3n]);
        const shared = Float64Array.of(1, 2, 3, 4);
        const batch: ColumnarBatch = {
            measurement: "m",
            rows: 4,
            tags: [],
            columns: new Map<string, Column>([
                ["time", { type: "t", values: time }],
                ["a", { type: "f", values: shared }],
                ["b", { type: "f", values: shared }],
            ]),
        };
        const [file] = await worker.encode(input(batch), OPTIONS);
        expect(time.length).toBe(4); // a view into `backing`: copied, so `backing` stays usable
        expect(backing[8]).toBe(T0);
        expect(shared.byteLength).toBe(0); // exact-size and used twice: transferred once
        const back = await query(`SELECT epoch_ns(time) AS ns, a, b FROM read_parquet(${await saveFile(file!)}) ORDER BY time`);
        expect(back.map((r) => [r["ns"], r["a"], r["b"]])).toEqual([
            [T0, 1, 1],
            [T0 + 1n, 2, 2],
            [T0 + 2n, 3, 3],
            [T0 + 3n, 4, 4],
        ]);
    });

    it("runs one job at a time, in order, and reports bad input without losing the worker", async () => {
        worker = new EncodeWorker();
        const jobs = [1, 2, 3].map((seed) => worker!.encode(input(sample(1000 * seed, seed)), OPTIONS));
        const bad = worker.encode(input(sample(10, 9), "db", 3, 1), OPTIONS);
        const results = await Promise.all(jobs);
        expect(results.map((files) => files.reduce((n, f) => n + f.rows, 0))).toEqual([1000, 2000, 3000]);
        await expect(bad).rejects.toMatchObject({ code: "encode-bad-input", name: "EncodeInputError" });
        expect((await worker.encode(input(sample(10, 10)), OPTIONS)).length).toBeGreaterThan(0);
        expect(worker.stats).toMatchObject({ jobs: 5, failedJobs: 1, workersStarted: 1, workerDeaths: 0 });
    });

    it("encodes many inputs in one job, one outcome each in order; a bad input fails alone", async () => {
        worker = new EncodeWorker();
        const shared = Float64Array.of(5); // one buffer in two inputs: transferred once
        const tiny = (measurement: string): ColumnarBatch => ({
            measurement,
            rows: 1,
            tags: [],
            columns: new Map<string, Column>([
                ["time", { type: "t", values: BigInt64Array.of(T0) }],
                ["v", { type: "f", values: shared }],
            ]),
        });
        const outcomes = await worker.encodeMany([input(sample(300, 1)), input(tiny("a")), input(sample(10, 2), "db", 3, 1), input(tiny("b"), "db", 7, 7)], OPTIONS);
        expect(shared.byteLength).toBe(0);
        expect(outcomes).toHaveLength(4);
        const rows = outcomes.map((outcome) => ("files" in outcome ? outcome.files.reduce((n, f) => n + f.rows, 0) : outcome.error.code));
        expect(rows).toEqual([300, 1, "encode-bad-input", 1]);
        const b = outcomes[3]!;
        if (!("files" in b)) throw new Error("input b failed");
        const back = await query(`SELECT epoch_ns(time) AS ns, v FROM read_parquet(${await saveFile(b.files[0]!)})`);
        expect(back.map((r) => [r["ns"], r["v"]])).toEqual([[T0, 5]]);
        expect(worker.stats).toMatchObject({ jobs: 1, failedJobs: 0, workersStarted: 1, workerDeaths: 0 });
        expect(await worker.encodeMany([], OPTIONS)).toEqual([]);
    });

    it("fails the job of a worker that dies, and starts a fresh worker for the next", async () => {
        // A worker module that exits on its first job, once; later workers are the real one.
        const flag = join(dir.path, "crashed");
        const fixture = join(dir.path, "crashing-worker.mjs");
        await writeFile(
            fixture,
            [
                `import { existsSync, writeFileSync } from "node:fs";`,
                `import { parentPort } from "node:worker_threads";`,
                `if (existsSync(${JSON.stringify(flag)})) await import(${JSON.stringify(defaultWorkerUrl().href)});`,
                `else { writeFileSync(${JSON.stringify(flag)}, ""); parentPort.once("message", () => process.exit(3)); }`,
            ].join("\n"),
        );
        worker = new EncodeWorker({ workerUrl: new URL(`file://${fixture}`) });
        const first = worker.encode(input(sample(100, 1)), OPTIONS);
        const second = worker.encode(input(sample(100, 2)), OPTIONS);
        await expect(first).rejects.toThrow(EncodeWorkerDiedError);
        await expect(first).rejects.toMatchObject({ code: "encode-worker-died", retryable: true });
        expect((await second).reduce((n, f) => n + f.rows, 0)).toBe(100);
        expect(worker.stats).toMatchObject({ jobs: 2, failedJobs: 1, workersStarted: 2, workerDeaths: 1 });
    });

    it("finishes queued jobs on close() and refuses new ones", async () => {
        worker = new EncodeWorker();
        const pending = worker.encode(input(sample(500, 3)), OPTIONS);
        const closed = worker.close();
        await expect(worker.encode(input(sample(10, 4)), OPTIONS)).rejects.toThrow(EncodeWorkerClosedError);
        expect((await pending).reduce((n, f) => n + f.rows, 0)).toBe(500);
        await closed;
        expect(worker.threadId).toBeUndefined();
    });
});

describe("encodeParquet: point identity (DESIGN.md §3 invariant 6)", () => {
    const rows = [
        { time: T0, host: "a", usage: 1, note: "first" },
        { time: T0, host: "b", usage: 5 },
        { time: T0, host: "a", usage: null, count: 7n },
        { time: T0 + 1n, host: "a", usage: 2 },
        { time: T0, host: "a", usage: 3 },
        { time: T0 + HOUR, usage: 9 },
        { time: T0 + HOUR, count: 4n },
    ];
    const batch = () => makeBatch("m", ["host"], { host: "s", usage: "f", count: "i", note: "s" }, rows);

    it("merges rows of one tag set and time into one point: the latest non-null value of each field wins", async () => {
        const files = encodeParquet({ database: "db", segments: [batch()], minSequence: 1, maxSequence: 2 }, OPTIONS);
        expect(files.map((file) => [file.rows, file.merged])).toEqual([
            [3, 2],
            [1, 1],
        ]);
        expect(await fileRows(await saveFile(files[0]!), "host, usage, count, note")).toEqual([
            { ns: T0, host: "a", usage: 3, count: 7n, note: "first" },
            { ns: T0 + 1n, host: "a", usage: 2, count: null, note: null },
            { ns: T0, host: "b", usage: 5, count: null, note: null },
        ]);
        // A missing tag is the same tag set as the same tag missing: one point, its fields merged.
        expect(await fileRows(await saveFile(files[1]!), "host, usage, count")).toEqual([{ ns: T0 + HOUR, host: null, usage: 9, count: 4n }]);
    });

    it("keeps every row as written with dedup off", async () => {
        const files = encodeParquet({ database: "db", segments: [batch()], minSequence: 1, maxSequence: 2 }, { ...OPTIONS, dedup: false });
        expect(files.map((file) => [file.rows, file.merged])).toEqual([
            [5, 0],
            [2, 0],
        ]);
    });
});

/**
 * Flush encode benchmark: `npm run bench -- flush [--runs N] [--rows N] [--json]`.
 *
 * Telegraf-like batches (default 1M rows, seeded): time increasing by 1,000,007 ns (not a
 * multiple of 1000, one UTC hour), tags host (100 values) / region (4) / service (20), five
 * float fields with 2 decimals, one int, one bool. Two shapes:
 * - `round-robin`: 2,000 series (every host, region and service used) reporting in turn, as
 *   agents on a fixed interval do: within a series the time step is constant;
 * - `random`: each row's tags picked at random (8,000 series, random gaps within a series): the
 *   worst case for the gather through the sort order and for the time column's deltas.
 * Each is encoded to Parquet through `EncodeWorker` (the worker thread, typed arrays
 * transferred): `round-robin` for every codec (zstd / snappy / none) × time encoding
 * (DELTA_BINARY_PACKED / PLAIN), `random` with zstd; each cell with a fresh worker, one warm-up
 * run, then `--runs` measured runs, each on a fresh copy of the batch.
 *
 * Reported per cell: the median [min–max] wall time of `encode()` as the caller sees it, rows/s
 * and MB/s of columnar input (the typed arrays' bytes, decimal MB), the file size, the worker's
 * split (sort / Arrow build / IPC / writeParquet; "other" is messaging and transfers), the
 * peak RSS of the whole process (worker included) sampled every 10 ms during the cell, and the
 * wasm heap after it. Then the row-ordering stage alone on three inputs, in this thread.
 */
import { performance } from "node:perf_hooks";
import type { Column, ColumnarBatch, StringColumn } from "../src/columnar/batch.js";
import { bitmapBytes, setBit } from "../src/columnar/batch.js";
import { orderRows } from "../flush/encode/sort.js";
import { type Compression, type EncodeTimings, type TimeEncoding, COMPRESSIONS, TIME_ENCODINGS } from "../flush/encode/types.js";
import { EncodeWorker } from "../flush/worker/client.js";
import { SLUICE_VERSION } from "../src/version.js";
import { seededRandom } from "../test/helpers/random.js";
import { positiveNumber } from "./lib/args.js";
import { firstUseDictionaryColumn } from "./lib/batches.js";
import { type Benchmark, type BenchOptions, progress } from "./lib/benchmark.js";
import { machineInfo, machineLine } from "./lib/machine.js";
import { type TableColumn, fixed, formatTable } from "./lib/output.js";
import { median } from "./lib/stats.js";

const SEED = 0xf1a5;
const DEFAULT_RUNS = 3;
const DEFAULT_ROWS = 1_000_000;
const BASE_TIME_NS = 1_700_000_000_000_000_000n;
const STEP_NS = 1_000_007n;
const RSS_SAMPLE_MS = 10;

const HOSTS = Array.from({ length: 100 }, (_, i) => `host-${String(i).padStart(3, "0")}.prod.example.net`);
const REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const SERVICES = Array.from({ length: 20 }, (_, i) => `service-${String.fromCharCode(97 + i)}`);
const FLOATS = ["usage_user", "usage_system", "usage_idle", "usage_iowait", "usage_steal"];

// ---------------------------------------------------------------------------------------------
// Data

/** A dictionary column whose row i holds `values[pick(i)]`. */
function seriesColumn(values: readonly string[], rows: number, pick: (row: number) => number): StringColumn {
    return { type: "s", dict: values, codes: Uint32Array.from({ length: rows }, (_, i) => pick(i)) };
}

export const SHAPES = ["round-robin", "random"] as const;
export type Shape = (typeof SHAPES)[number];
const ROUND_ROBIN_SERIES = 2_000;

export function telegrafBatch(rows: number, shape: Shape, seed = SEED): ColumnarBatch {
    const random = seededRandom(seed);
    const time = new BigInt64Array(rows);
    for (let i = 0; i < rows; i++) time[i] = BASE_TIME_NS + BigInt(i) * STEP_NS;
    const columns = new Map<string, Column>([["time", { type: "t", values: time }]]);
    if (shape === "random") {
        columns.set(
            "host",
            firstUseDictionaryColumn(HOSTS, rows, () => Math.floor(random() * HOSTS.length)),
        );
        columns.set(
            "region",
            firstUseDictionaryColumn(REGIONS, rows, () => Math.floor(random() * REGIONS.length)),
        );
        columns.set(
            "service",
            firstUseDictionaryColumn(SERVICES, rows, () => Math.floor(random() * SERVICES.length)),
        );
    } else {
        // Series s: host s mod 100, and (region, service) from s div 100: 100 × 20 = 2,000 series.
        columns.set(
            "host",
            seriesColumn(HOSTS, rows, (i) => (i % ROUND_ROBIN_SERIES) % 100),
        );
        columns.set(
            "region",
            seriesColumn(REGIONS, rows, (i) => Math.floor((i % ROUND_ROBIN_SERIES) / 100) % 4),
        );
        columns.set(
            "service",
            seriesColumn(SERVICES, rows, (i) => Math.floor((i % ROUND_ROBIN_SERIES) / 100) % 20),
        );
    }
    for (const name of FLOATS) columns.set(name, { type: "f", values: Float64Array.from({ length: rows }, () => Math.round(random() * 10000) / 100) });
    columns.set("count", { type: "i", values: BigInt64Array.from({ length: rows }, () => BigInt(Math.floor(random() * 1e9))) });
    const ok = new Uint8Array(bitmapBytes(rows));
    for (let i = 0; i < rows; i++) if (random() < 0.9) setBit(ok, i);
    columns.set("ok", { type: "b", values: ok });
    return { measurement: "cpu", rows, tags: ["host", "region", "service"], columns };
}

/** A copy whose arrays own their memory (the worker detaches what it is given). */
function copyBatch(batch: ColumnarBatch): ColumnarBatch {
    const columns = new Map<string, Column>();
    for (const [name, column] of batch.columns) columns.set(name, structuredClone(column));
    return { ...batch, columns };
}

function columnarBytes(batch: ColumnarBatch): number {
    let bytes = 0;
    for (const column of batch.columns.values()) {
        bytes += column.type === "s" ? column.codes.byteLength : column.values.byteLength;
        if (column.type !== "t" && column.valid !== undefined) bytes += column.valid.byteLength;
    }
    return bytes;
}

// ---------------------------------------------------------------------------------------------
// Cells

interface CellResult {
    readonly shape: Shape;
    readonly compression: Compression;
    readonly timeEncoding: TimeEncoding;
    readonly runs: number;
    readonly wallMs: { median: number; min: number; max: number };
    readonly rowsPerSec: number;
    readonly inputMBPerSec: number;
    readonly fileBytes: number;
    readonly files: number;
    /** Medians of the worker's split, and of wall − their sum. */
    readonly split: { sortMs: number; arrowMs: number; ipcMs: number; parquetMs: number; otherMs: number };
    readonly peakRssBytes: number;
    readonly wasmMemoryBytes: number;
    readonly problems: string[];
}

async function runCell(shape: Shape, batch: ColumnarBatch, compression: Compression, timeEncoding: TimeEncoding, runs: number): Promise<CellResult> {
    const worker = new EncodeWorker();
    const options = { compression, timeEncoding, sluiceVersion: SLUICE_VERSION };
    const walls: number[] = [];
    const timings: EncodeTimings[] = [];
    const problems: string[] = [];
    let fileBytes = 0;
    let files = 0;
    let peakRss = process.memoryUsage.rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), RSS_SAMPLE_MS);
    try {
        for (let run = 0; run <= runs; run++) {
            const input = { database: "bench", segments: [copyBatch(batch)], minSequence: 1, maxSequence: 1 };
            const started = performance.now();
            const result = await worker.encodeWithTimings(input, options);
            const wall = performance.now() - started;
            const rows = result.files.reduce((n, f) => n + f.rows, 0);
            if (rows !== batch.rows) problems.push(`run ${run}: ${rows} rows encoded, expected ${batch.rows}`);
            fileBytes = result.files.reduce((n, f) => n + f.bytes.length, 0);
            files = result.files.length;
            if (run === 0) continue; // warm-up: worker start, wasm compile, JIT
            walls.push(wall);
            timings.push(result.timings);
        }
    } finally {
        clearInterval(sampler);
        await worker.close();
    }
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    const wall = median(walls);
    const split = {
        sortMs: median(timings.map((t) => t.sortMs)),
        arrowMs: median(timings.map((t) => t.arrowMs)),
        ipcMs: median(timings.map((t) => t.ipcMs)),
        parquetMs: median(timings.map((t) => t.parquetMs)),
        otherMs: median(timings.map((t, i) => walls[i]! - t.sortMs - t.arrowMs - t.ipcMs - t.parquetMs)),
    };
    return {
        shape,
        compression,
        timeEncoding,
        runs,
        wallMs: { median: wall, min: Math.min(...walls), max: Math.max(...walls) },
        rowsPerSec: batch.rows / (wall / 1000),
        inputMBPerSec: columnarBytes(batch) / 1e6 / (wall / 1000),
        fileBytes,
        files,
        split,
        peakRssBytes: peakRss,
        wasmMemoryBytes: timings.at(-1)?.wasmMemoryBytes ?? 0,
        problems,
    };
}

const MB = (bytes: number) => fixed(bytes / 1e6, 1);

const TABLE: readonly TableColumn<CellResult>[] = [
    { title: "shape", align: "left", cell: (r) => r.shape },
    { title: "codec", align: "left", cell: (r) => r.compression },
    { title: "time enc", align: "left", cell: (r) => (r.timeEncoding === "delta" ? "DELTA_BINARY_PACKED" : "PLAIN") },
    { title: "wall ms median [min–max]", align: "right", cell: (r) => `${fixed(r.wallMs.median, 0)} [${fixed(r.wallMs.min, 0)}–${fixed(r.wallMs.max, 0)}]` },
    { title: "rows/s", align: "right", cell: (r) => `${fixed(r.rowsPerSec / 1000, 0)}k` },
    { title: "in MB/s", align: "right", cell: (r) => fixed(r.inputMBPerSec, 1) },
    { title: "file MB", align: "right", cell: (r) => MB(r.fileBytes) },
    { title: "sort", align: "right", cell: (r) => fixed(r.split.sortMs, 0) },
    { title: "arrow", align: "right", cell: (r) => fixed(r.split.arrowMs, 0) },
    { title: "ipc", align: "right", cell: (r) => fixed(r.split.ipcMs, 0) },
    { title: "parquet", align: "right", cell: (r) => fixed(r.split.parquetMs, 0) },
    { title: "other", align: "right", cell: (r) => fixed(r.split.otherMs, 0) },
    { title: "peak RSS MB", align: "right", cell: (r) => MB(r.peakRssBytes) },
    { title: "wasm MB", align: "right", cell: (r) => MB(r.wasmMemoryBytes) },
];

// ---------------------------------------------------------------------------------------------
// Row ordering alone

interface SortResult {
    readonly input: string;
    readonly ms: { median: number; min: number; max: number };
    readonly resortedGroups: number;
}

function sortInputs(batch: ColumnarBatch, random: ColumnarBatch): { name: string; batch: ColumnarBatch }[] {
    const rows = batch.rows;
    // Times reversed: every series out of order, so every group gets the (time, arrival) sort.
    const reversed = new BigInt64Array(rows);
    for (let i = 0; i < rows; i++) reversed[i] = BASE_TIME_NS + BigInt(rows - 1 - i) * STEP_NS;
    const reversedColumns = new Map(batch.columns);
    reversedColumns.set("time", { type: "t", values: reversed });
    // Five tags of 5,000 values each: cardinality product 3·10^18 > 2^53 (the re-numbering path).
    const next = seededRandom(SEED + 1);
    const wide = Array.from({ length: 5000 }, (_, i) => `v${String(i).padStart(4, "0")}`);
    const manyColumns = new Map<string, Column>([["time", batch.columns.get("time")!]]);
    const manyTags = ["t1", "t2", "t3", "t4", "t5"];
    for (const tag of manyTags)
        manyColumns.set(
            tag,
            firstUseDictionaryColumn(wide, rows, () => Math.floor(next() * wide.length)),
        );
    return [
        { name: "round-robin (2k series), time-ordered", batch },
        { name: "random (8k series), time-ordered", batch: random },
        { name: "round-robin, times reversed", batch: { ...batch, columns: reversedColumns } },
        { name: "5 tags × 5,000 values (~1M series)", batch: { ...batch, tags: manyTags, columns: manyColumns } },
    ];
}

function runSorts(batch: ColumnarBatch, random: ColumnarBatch, runs: number): SortResult[] {
    return sortInputs(batch, random).map(({ name, batch: input }) => {
        const times: number[] = [];
        let resortedGroups = 0;
        for (let run = 0; run <= runs; run++) {
            const started = performance.now();
            resortedGroups = orderRows(input).resortedGroups;
            if (run > 0) times.push(performance.now() - started);
        }
        return { input: name, ms: { median: median(times), min: Math.min(...times), max: Math.max(...times) }, resortedGroups };
    });
}

const SORT_TABLE: readonly TableColumn<SortResult>[] = [
    { title: "orderRows input", align: "left", cell: (r) => r.input },
    { title: "ms median [min–max]", align: "right", cell: (r) => `${fixed(r.ms.median, 0)} [${fixed(r.ms.min, 0)}–${fixed(r.ms.max, 0)}]` },
    { title: "groups time-sorted", align: "right", cell: (r) => String(r.resortedGroups) },
];

// ---------------------------------------------------------------------------------------------

async function run(options: BenchOptions): Promise<number> {
    let runs: number;
    let rows: number;
    try {
        runs = Math.round(positiveNumber(options.values["runs"], DEFAULT_RUNS, "--runs"));
        rows = Math.round(positiveNumber(options.values["rows"], DEFAULT_ROWS, "--rows"));
    } catch (error) {
        progress((error as Error).message);
        return 2;
    }
    const machine = await machineInfo(process.cwd());
    if (!options.json) process.stdout.write(`${machineLine(machine)}\n`);
    progress(`generating ${rows} rows (seeded)...`);
    const batch = telegrafBatch(rows, "round-robin");
    const random = telegrafBatch(rows, "random");
    const baselineRss = process.memoryUsage.rss();
    const results: CellResult[] = [];
    for (const compression of COMPRESSIONS) {
        for (const timeEncoding of TIME_ENCODINGS) {
            progress(`round-robin ${compression} / ${timeEncoding}...`);
            results.push(await runCell("round-robin", batch, compression, timeEncoding, runs));
        }
    }
    for (const timeEncoding of TIME_ENCODINGS) {
        progress(`random zstd / ${timeEncoding}...`);
        results.push(await runCell("random", random, "zstd", timeEncoding, runs));
    }
    progress("orderRows...");
    const sorts = runSorts(batch, random, runs);
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    if (options.json) {
        process.stdout.write(
            `${JSON.stringify({ benchmark: "flush", machine, settings: { runs, rows, seed: SEED, inputBytes: columnarBytes(batch) }, baselineRssBytes: baselineRss, peakRssBytes, results, sorts })}\n`,
        );
    } else {
        process.stdout.write(
            `rows=${rows} columnar input=${MB(columnarBytes(batch))} MB, runs=${runs} (+1 warm-up) per cell, RSS after generating=${MB(baselineRss)} MB, process peak RSS=${MB(peakRssBytes)} MB\n`,
        );
        process.stdout.write(`${formatTable(TABLE, results)}\n\n${formatTable(SORT_TABLE, sorts)}\n`);
        for (const r of results) for (const p of r.problems) process.stdout.write(`! ${r.shape} ${r.compression}/${r.timeEncoding}: ${p}\n`);
    }
    return results.some((r) => r.problems.length > 0) ? 1 : 0;
}

export const benchmark: Benchmark = {
    options: {
        runs: { type: "string" },
        rows: { type: "string" },
    },
    optionHelp: [
        "flush options:",
        `  --runs N     measured runs per cell, after one warm-up (default ${DEFAULT_RUNS})`,
        `  --rows N     rows in the batch (default ${DEFAULT_ROWS.toLocaleString("en-US")})`,
        "  (--seconds and --dir are not used)",
    ],
    run,
};

/**
 * Benchmark entry point: `npm run bench -- <name> [--seconds N] [--json] [--dir PATH] [...]`.
 * Benchmarks are never run by `npm test`. Add one as one line in BENCHMARKS.
 */
import { parseArgs } from "node:util";
import type { Benchmark, BenchOptionSpec } from "./lib/benchmark.js";

const BENCHMARKS: Readonly<Record<string, { readonly summary: string; load(): Promise<Benchmark> }>> = {
    wal: { summary: "WAL append throughput and latency per sync mode, payload shape and concurrency, vs dd", load: async () => (await import("./wal.bench.js")).benchmark },
    parse: { summary: "line-protocol parse MB/s and lines/s: Telegraf-like, 1k-line requests, string-heavy", load: async () => (await import("./parse.bench.js")).benchmark },
    flush: {
        summary: "batch → Parquet through the encode worker: 1M Telegraf-like rows per codec × time encoding, stage split, RSS",
        load: async () => (await import("./flush.bench.js")).benchmark,
    },
    http: {
        summary: "end to end: sluice serve per http.server adapter under bench/load.ts, lines/s, p50/p99, CPU, RSS; stored = acked (DuckDB); --cpu-prof",
        load: async () => (await import("./http.bench.js")).benchmark,
    },
    sustained: {
        summary: "minutes of full-speed ingest: does flushing keep up (buffered bytes flat), accepted lines/s, RSS",
        load: async () => (await import("./sustained.bench.js")).benchmark,
    },
    promwrite: {
        summary: "Prometheus remote write: Sluice (fdatasync) vs VictoriaMetrics (apt) on the same pre-encoded requests, C 4/16, samples/s, p50/p99, RSS",
        load: async () => (await import("./promwrite.bench.js")).benchmark,
    },
    hostile: {
        summary: "hostile clients (60 MiB bodies without a token, 2,000 idle connections under 1,024 descriptors): peak RSS, descriptors, /health and writes meanwhile",
        load: async () => (await import("./hostile.bench.js")).benchmark,
    },
    compact: {
        summary:
            "a day of Telegraf-like data flushed each minute (14,400 files): compaction time and RSS, files/bytes and DuckDB queries before/after, ingest with compaction on vs off",
        load: async () => (await import("./compact.bench.js")).benchmark,
    },
    replay: {
        summary: "WAL replay (sluice recover) with msgpackr's native string extractor and in plain JS, interleaved, ratio of medians",
        load: async () => (await import("./replay.bench.js")).benchmark,
    },
    manyflush: {
        summary: "10,000 one-row measurements in one request, then POST /api/v1/flush: flush time, /health meanwhile; --baseline DIR compares interleaved",
        load: async () => (await import("./manyflush.bench.js")).benchmark,
    },
    smallfile: {
        summary: "one flush file of 1-1,024 rows encoded by parquet-wasm vs hyparquet-writer (parquet.small_file_rows): CPU ms and bytes per file",
        load: async () => (await import("./smallfile.bench.js")).benchmark,
    },
    s3: {
        summary: "lines/s with the S3 lake (S3 test server, also with added latency) vs the local lake, interleaved, ratio of medians; Parquet upload MB/s, RSS; stored = acked",
        load: async () => (await import("./s3.bench.js")).benchmark,
    },
    peers: {
        summary: "scoreboard: Sluice (fdatasync, off) vs VictoriaMetrics vs InfluxDB 1.x (apt), C 4/16 × batch 1k/5k × 3, verified counts → bench/RESULTS.md",
        load: async () => (await import("./peers.bench.js")).benchmark,
    },
};

const COMMON_OPTIONS = {
    seconds: { type: "string" },
    json: { type: "boolean", default: false },
    dir: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
} as const satisfies BenchOptionSpec;

function usage(extra?: readonly string[]): string {
    const names = Object.entries(BENCHMARKS).map(([name, { summary }]) => `  ${name.padEnd(8)} ${summary}`);
    return [
        "usage: npm run bench -- <name> [--seconds N] [--json] [--dir PATH]",
        "",
        "benchmarks:",
        ...names,
        "",
        "options:",
        "  --seconds N  seconds per measured cell (each benchmark has a default)",
        "  --json       print one JSON object instead of the table",
        "  --dir PATH   parent of the scratch directory (default ./bench-tmp, removed afterwards)",
        ...(extra ?? []),
    ].join("\n");
}

async function main(argv: readonly string[]): Promise<number> {
    const [name, ...rest] = argv;
    const entry = name === undefined ? undefined : Object.hasOwn(BENCHMARKS, name) ? BENCHMARKS[name] : undefined;
    if (entry === undefined) {
        if (name === "--help" || name === "-h") {
            process.stdout.write(`${usage()}\n`);
            return 0;
        }
        process.stderr.write(`${name === undefined ? "missing benchmark name" : `unknown benchmark "${name}"`}\n\n${usage()}\n`);
        return 2;
    }
    const benchmark = await entry.load();
    let parsed;
    try {
        parsed = parseArgs({ args: [...rest], options: { ...COMMON_OPTIONS, ...benchmark.options }, strict: true, allowPositionals: false });
    } catch (error) {
        process.stderr.write(`${(error as Error).message}\n\n${usage(benchmark.optionHelp)}\n`);
        return 2;
    }
    const values = parsed.values as Record<string, string | boolean | undefined>;
    if (values["help"] === true) {
        process.stdout.write(`${usage(benchmark.optionHelp)}\n`);
        return 0;
    }
    let seconds: number | undefined;
    if (typeof values["seconds"] === "string") {
        seconds = Number(values["seconds"]);
        if (!Number.isFinite(seconds) || seconds <= 0) {
            process.stderr.write(`--seconds must be a positive number, got "${values["seconds"]}"\n`);
            return 2;
        }
    }
    return benchmark.run({
        seconds,
        json: values["json"] === true,
        dir: typeof values["dir"] === "string" ? values["dir"] : undefined,
        values,
    });
}

// Exit explicitly: a writer under test that never settles must not keep the process alive.
// (stdout/stderr are synchronous for files, pipes and TTYs on Linux, so nothing is lost.)
main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
        process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
        process.exit(1);
    },
);

/**
 * `npm run bench -- manyflush [--measurements N] [--rounds R] [--baseline DIR] [--variant K=V]`: the cost of
 * flushing many small measurements (issue 13 item 4). Each run starts a fresh `sluice serve`,
 * POSTs one request of N one-row measurements (as Prometheus remote write makes them), then
 * times `POST /api/v1/flush`, which writes N Parquet files (and N partition directories) and
 * answers once they are durable. While it runs, `GET /health` is probed every 50 ms.
 *
 * With `--baseline DIR` (a checkout with a built dist/, e.g. `git worktree add /tmp/mf-base
 * <commit>` then `npx tsc` there) the runs alternate between it and this checkout (interleaved,
 * so a machine that slows down slows both); the table gives each run, the medians and their
 * ratio. `--variant K=V` adds runs of this build with `--set K=V` (e.g. `parquet.small_file_rows=0`:
 * every file by parquet-wasm), interleaved the same way. Run under `flock /tmp/sluice-bench.lock` when other benchmarks may run.
 */
import { readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type Benchmark, type BenchOptions, progress, sleep } from "./lib/benchmark.js";
import { type BuildSnapshot, snapshotBuild } from "./lib/build-snapshot.js";
import { LatencyReservoir } from "./lib/latency.js";
import { machineInfo, machineLine } from "./lib/machine.js";
import { fixed, formatTable } from "./lib/output.js";
import { processMemory } from "./lib/procfs.js";
import { scratchDirectory } from "./lib/scratch.js";
import { startSluice } from "./lib/sluice.js";

const DEFAULT_MEASUREMENTS = 10_000;
const DEFAULT_ROUNDS = 3;
const DATABASE = "manyflush";
const MiB = 2 ** 20;

interface Build {
    readonly label: string;
    readonly cli: string;
    readonly description: string;
    /** `--set` pairs of this build's runs beyond the bench's own. */
    readonly sets: readonly string[];
}

interface RunResult {
    readonly build: string;
    readonly round: number;
    readonly flushMs: number;
    readonly files: number;
    readonly rows: number;
    /** Parquet files found on disk afterwards. */
    readonly filesOnDisk: number;
    readonly healthP99Ms: number;
    readonly healthMaxMs: number;
    readonly rssHwmMiB: number;
}

/** N one-row measurements, `m00000 value=0 <t>` …, all in the same hour. */
function body(measurements: number): string {
    const t = Date.UTC(2026, 0, 1, 12) * 1e6;
    return Array.from({ length: measurements }, (_, i) => `m${String(i).padStart(5, "0")},host=h1 value=${i} ${t + i}`).join("\n");
}

async function countParquet(dir: string): Promise<number> {
    const entries = await readdir(dir, { recursive: true }).catch(() => []);
    return entries.filter((name) => name.endsWith(".parquet")).length;
}

/** `ingest.max_measurements` when the default (100,000) is too few (a baseline older than the key gets it only then). */
function beyondTotalLimit(measurements: number): string[] {
    return measurements > 100_000 ? [`ingest.max_measurements=${measurements}`] : [];
}

async function runOnce(build: Build, round: number, measurements: number, payload: string, scratch: string): Promise<RunResult> {
    const dataDir = join(scratch, `${build.label}-${round}`);
    // Nothing flushes by itself during the run: only the timed POST /api/v1/flush.
    const sets = [
        "flush.max_age_ms=3600000",
        "compaction.enabled=false",
        `ingest.max_measurements_per_database=${Math.max(10_000, measurements)}`,
        ...beyondTotalLimit(measurements),
        ...build.sets,
    ];
    const sluice = await startSluice({ dataDir, sets, cli: build.cli });
    try {
        const write = await fetch(`${sluice.url}/write?db=${DATABASE}`, { method: "POST", body: payload, signal: AbortSignal.timeout(120_000) });
        if (write.status !== 204) throw new Error(`${build.label}: the write got ${write.status}: ${await write.text()}`);
        const health = new LatencyReservoir(100_000);
        let probing = true;
        const prober = (async () => {
            // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- cleared once the flush answers
            while (probing) {
                const t0 = performance.now();
                await fetch(`${sluice.url}/health`, { signal: AbortSignal.timeout(120_000) }).then((res) => res.arrayBuffer());
                health.record(performance.now() - t0);
                await sleep(50);
            }
        })();
        const t0 = performance.now();
        const res = await fetch(`${sluice.url}/api/v1/flush`, { method: "POST", signal: AbortSignal.timeout(600_000) });
        const flushMs = performance.now() - t0;
        probing = false;
        await prober;
        const text = await res.text();
        if (res.status !== 200) throw new Error(`${build.label}: POST /api/v1/flush got ${res.status}: ${text.slice(0, 500)}`);
        const answer = JSON.parse(text) as { files?: { rows: number }[] };
        const files = answer.files ?? [];
        health.sort();
        const memory = await processMemory(sluice.service.pid);
        const result: RunResult = {
            build: build.label,
            round,
            flushMs,
            files: files.length,
            rows: files.reduce((sum, file) => sum + file.rows, 0),
            filesOnDisk: await countParquet(join(dataDir, "parquet")),
            healthP99Ms: health.percentile(99),
            healthMaxMs: health.percentile(100),
            rssHwmMiB: (memory?.hwm ?? Number.NaN) / MiB,
        };
        progress(`${build.label} round ${round}: flush of ${measurements} measurements ${fixed(flushMs, 0)} ms, ${result.files} files, ${result.rows} rows`);
        return result;
    } finally {
        await sluice.service.stop(60_000);
    }
}

function median(values: readonly number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function run(options: BenchOptions): Promise<number> {
    const measurements = Number(options.values.measurements ?? DEFAULT_MEASUREMENTS);
    const rounds = Number(options.values.rounds ?? DEFAULT_ROUNDS);
    if (!Number.isInteger(measurements) || measurements < 1 || !Number.isInteger(rounds) || rounds < 1) {
        progress("--measurements and --rounds take positive integers");
        return 2;
    }
    const scratch = await scratchDirectory(options.dir, "sluice-manyflush");
    try {
        const machine = await machineInfo(scratch.path);
        progress(machineLine(machine));
        const current: BuildSnapshot = await snapshotBuild(scratch.path);
        const builds: Build[] = [{ label: "this", cli: current.cli, description: current.description, sets: [] }];
        if (typeof options.values.baseline === "string") {
            const root = resolve(options.values.baseline);
            builds.push({ label: "baseline", cli: join(root, "dist", "src", "cli", "main.js"), description: root, sets: [] });
        }
        const variant = options.values.variant;
        if (typeof variant === "string") builds.push({ label: "variant", cli: current.cli, description: `this build with --set ${variant}`, sets: [variant] });
        const payload = body(measurements);
        const results: RunResult[] = [];
        for (let round = 1; round <= rounds; round++) {
            // Alternate which build goes first, so neither always runs on a warmer page cache.
            const order = round % 2 === 1 ? builds : [...builds].reverse();
            for (const build of order) results.push(await runOnce(build, round, measurements, payload, scratch.path));
        }
        const exact = (r: RunResult) => r.rows === measurements && r.files === measurements && r.filesOnDisk === measurements;
        const medians = builds.map((build) => ({ build: build.label, flushMs: median(results.filter((r) => r.build === build.label).map((r) => r.flushMs)) }));
        const baselineMedian = medians.find((median) => median.build === "baseline");
        const ratio = baselineMedian === undefined ? undefined : baselineMedian.flushMs / medians[0]!.flushMs;
        if (options.json) {
            process.stdout.write(`${JSON.stringify({ machine, measurements, rounds, builds, results, medians, ratio })}\n`);
        } else {
            process.stdout.write(
                `${formatTable(
                    [
                        { title: "build", align: "left", cell: (r: RunResult) => r.build },
                        { title: "round", align: "right", cell: (r) => String(r.round) },
                        { title: "flush ms", align: "right", cell: (r) => fixed(r.flushMs, 0) },
                        { title: "files", align: "right", cell: (r) => String(r.files) },
                        { title: "rows", align: "right", cell: (r) => String(r.rows) },
                        { title: "on disk", align: "right", cell: (r) => String(r.filesOnDisk) },
                        { title: "/health p99 ms", align: "right", cell: (r) => fixed(r.healthP99Ms, 0) },
                        { title: "/health max ms", align: "right", cell: (r) => fixed(r.healthMaxMs, 0) },
                        { title: "peak RSS MiB", align: "right", cell: (r) => fixed(r.rssHwmMiB, 0) },
                        { title: "check", align: "left", cell: (r) => (exact(r) ? "ok" : "WRONG COUNT") },
                    ],
                    results,
                )}\n\n`,
            );
            for (const build of builds) process.stdout.write(`${build.label}: ${build.description}\n`);
            for (const { build, flushMs } of medians) process.stdout.write(`median flush (${build}): ${fixed(flushMs, 0)} ms for ${measurements} one-row measurements\n`);
            if (ratio !== undefined) process.stdout.write(`baseline / this: ${fixed(ratio, 1)}× (target ≥ 10×)\n`);
            for (const { build, flushMs } of medians.slice(1)) if (build !== "baseline") process.stdout.write(`${build} / this: ${fixed(flushMs / medians[0]!.flushMs, 2)}×\n`);
        }
        return results.every(exact) ? 0 : 1;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: { measurements: { type: "string" }, rounds: { type: "string" }, baseline: { type: "string" }, variant: { type: "string" } },
    optionHelp: [
        "  --measurements N  one-row measurements in the request (default 10,000)",
        "  --rounds R        runs per build, interleaved (default 3)",
        "  --baseline DIR    a checkout with a built dist/ to compare against",
        "  --variant K=V     also runs this build with --set K=V, interleaved (e.g. parquet.small_file_rows=0)",
    ],
    run,
};

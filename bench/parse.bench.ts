/**
 * Line-protocol parse benchmark: `npm run bench -- parse [--runs N] [--mb N] [--json]`.
 *
 * Bodies are generated from a seeded PRNG, then parsed in this process on one core (nothing
 * else runs), each run with a fresh schema registry:
 * - `telegraf`: ~50 MB of Telegraf-like `cpu` lines: 3 tags over 2,000 series, 7 fields (5
 *   floats with 2 decimals, 1 integer, 1 boolean), increasing ns timestamps, in one body.
 * - `telegraf-1k`: the same lines cut into 1,000-line bodies (Telegraf's default batch), parsed
 *   one after the other with one registry: the per-request cost, caches starting cold each body.
 * - `logs`: ~50 MB of a string-heavy `logs` measurement: 2 tags, 3 string fields of 20–200
 *   characters with escaped quotes and backslashes, commas, spaces and `=`.
 *
 * Reported per scenario: the median over the runs of MB/s (decimal MB of body) and lines/s, the
 * slowest and fastest run, MB per CPU-second of the process (robust to other load on a shared
 * machine), the typed-array bytes of one parse's batches, and the process's peak
 * RSS so far (the generated bodies, ~100 MB, included). Every run is checked: all lines
 * accepted, no errors, the row count right.
 */
import { performance } from "node:perf_hooks";
import type { ColumnarBatch } from "../src/columnar/batch.js";
import { type ParseResult, parseLineProtocol } from "../ingest/lp/index.js";
import { SchemaRegistry } from "../ingest/schema.js";
import { seededRandom } from "../test/helpers/random.js";
import { positiveNumber } from "./lib/args.js";
import { type Benchmark, type BenchOptions, progress } from "./lib/benchmark.js";
import { machineInfo, machineLine } from "./lib/machine.js";
import { type TableColumn, fixed, formatTable } from "./lib/output.js";
import { median } from "./lib/stats.js";

const SEED = 0x1b5eed;
const DEFAULT_RUNS = 5;
const DEFAULT_MB = 50;
const SERIES = 2_000;
const REQUEST_LINES = 1_000;
const BASE_TIME_NS = 1_700_000_000_000_000_000n;
const NOW_NS = 1_800_000_000_000_000_000n;

const REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];

/** Appends lines to one preallocated buffer (no per-line strings kept: the bench's RSS is the body's). */
class BodyWriter {
    readonly #bytes: Buffer;
    length = 0;
    lines = 0;

    constructor(capacity: number) {
        this.#bytes = Buffer.allocUnsafe(capacity);
    }

    get full(): boolean {
        return this.length >= this.#bytes.length - 64 * 1024;
    }

    write(line: string): void {
        this.length += this.#bytes.write(line, this.length, "utf8");
        this.lines++;
    }

    body(): { body: Buffer; lines: number } {
        return { body: this.#bytes.subarray(0, this.length), lines: this.lines };
    }
}

/** Telegraf-like `cpu` lines, about `targetBytes` in total, one body. */
export function telegrafBody(targetBytes: number, seed = SEED): { body: Buffer; lines: number } {
    const random = seededRandom(seed);
    const series = Array.from(
        { length: SERIES },
        (_, s) => `cpu,host=host-${String(s).padStart(4, "0")}.prod.example.net,region=${REGIONS[s % REGIONS.length]},service=service-${String.fromCharCode(97 + (s % 20))}`,
    );
    const two = (x: number) => (Math.round(x * 100) / 100).toFixed(2);
    const out = new BodyWriter(targetBytes + 64 * 1024);
    let time = BASE_TIME_NS;
    while (!out.full) {
        const user = random() * 80;
        const system = random() * 15;
        const iowait = random() * 5;
        out.write(
            `${series[Math.floor(random() * SERIES)]} usage_user=${two(user)},usage_system=${two(system)},usage_idle=${two(Math.max(0, 100 - user - system - iowait))},` +
                `usage_iowait=${two(iowait)},load1=${two(random() * 8)},mem_used=${Math.floor(random() * 2 ** 34)}i,healthy=${random() < 0.98 ? "true" : "false"} ${time}\n`,
        );
        time += BigInt(1 + Math.floor(random() * 1_000_000));
    }
    return out.body();
}

const WORDS = ["request", "served", "user", "cache", "miss", "timeout", "retry", "db", "query", "ok", "path=/api/v1", "a,b", "x\\y", 'say "hi"', "ünïcødé", "日本"];

/** A random string of 20–200 characters, escaped for a line-protocol string field. */
function logText(random: () => number): string {
    const target = 20 + Math.floor(random() * 181);
    let text = "";
    while (text.length < target) text += `${WORDS[Math.floor(random() * WORDS.length)]} `;
    return text.slice(0, target).replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/** A string-heavy `logs` body: 2 tags, 3 string fields. */
export function logsBody(targetBytes: number, seed = SEED + 1): { body: Buffer; lines: number } {
    const random = seededRandom(seed);
    const levels = ["debug", "info", "warn", "error"];
    const out = new BodyWriter(targetBytes + 64 * 1024);
    let time = BASE_TIME_NS;
    while (!out.full) {
        out.write(
            `logs,app=app-${Math.floor(random() * 50)},level=${levels[Math.floor(random() * levels.length)]} ` +
                `message="${logText(random)}",trace="${logText(random)}",detail="${logText(random)}" ${time}\n`,
        );
        time += 1_000n;
    }
    return out.body();
}

/** Cuts a body into bodies of `perBody` lines. */
function splitLines(body: Buffer, perBody: number): Buffer[] {
    const bodies: Buffer[] = [];
    let start = 0;
    let count = 0;
    for (let i = 0; i < body.length; i++) {
        if (body[i] === 0x0a && ++count === perBody) {
            bodies.push(body.subarray(start, i + 1));
            start = i + 1;
            count = 0;
        }
    }
    if (start < body.length) bodies.push(body.subarray(start));
    return bodies;
}

/** Bytes of the typed arrays behind a parse's batches (their allocated capacity, each buffer once). */
function batchBytes(batches: readonly ColumnarBatch[]): number {
    const buffers = new Set<ArrayBufferLike>();
    for (const batch of batches) {
        for (const column of batch.columns.values()) {
            buffers.add(column.type === "s" ? column.codes.buffer : column.values.buffer);
            if (column.type !== "t" && column.valid !== undefined) buffers.add(column.valid.buffer);
        }
    }
    let bytes = 0;
    for (const buffer of buffers) bytes += buffer.byteLength;
    return bytes;
}

interface ScenarioResult {
    readonly scenario: string;
    readonly bodyMB: number;
    readonly bodies: number;
    readonly lines: number;
    readonly runs: number;
    readonly medianMs: number;
    readonly mbPerSec: number;
    readonly linesPerSec: number;
    readonly minMbPerSec: number;
    readonly maxMbPerSec: number;
    /** MB per second of this process's CPU time (user + system, GC threads included): less sensitive to other load on the machine. */
    readonly mbPerCpuSec: number;
    /** Typed-array bytes of one parse's batches (allocated capacity), all bodies together. */
    readonly outputMB: number;
    readonly peakRssMB: number;
    readonly problems: string[];
}

/** Parses `bodies` (in order, one registry per run) `runs` times after one warm-up pass. */
function runScenario(scenario: string, bodies: readonly Buffer[], lines: number, runs: number): ScenarioResult {
    const totalBytes = bodies.reduce((sum, b) => sum + b.length, 0);
    const problems: string[] = [];
    let outputBytes = 0;
    const cpuTimes: number[] = [];
    const once = (): number => {
        const schema = new SchemaRegistry();
        let accepted = 0;
        let errors = 0;
        let rows = 0;
        const results: ParseResult[] = [];
        const cpuStart = process.cpuUsage();
        const start = performance.now();
        for (const body of bodies) {
            const result = parseLineProtocol(body, { database: "bench", precision: "ns", nowNs: NOW_NS, schema });
            accepted += result.accepted;
            errors += result.rejected;
            results.push(result);
        }
        const elapsed = performance.now() - start;
        const cpu = process.cpuUsage(cpuStart);
        cpuTimes.push((cpu.user + cpu.system) / 1000);
        outputBytes = 0;
        for (const result of results) {
            for (const batch of result.batches) rows += batch.rows;
            outputBytes += batchBytes(result.batches);
        }
        if (accepted !== lines || errors !== 0 || rows !== lines) {
            problems.push(`expected ${lines} lines accepted, got ${accepted} accepted, ${rows} rows, ${errors} errors`);
        }
        return elapsed;
    };
    once(); // warm-up: JIT and the first allocation of every array size
    cpuTimes.length = 0;
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
        times.push(once());
        progress(`  ${scenario} run ${r + 1}/${runs}: ${fixed(totalBytes / 1e6 / (times.at(-1)! / 1000), 1)} MB/s`);
    }
    const medianMs = median(times);
    return {
        scenario,
        bodyMB: totalBytes / 1e6,
        bodies: bodies.length,
        lines,
        runs,
        medianMs,
        mbPerSec: totalBytes / 1e6 / (medianMs / 1000),
        linesPerSec: lines / (medianMs / 1000),
        minMbPerSec: totalBytes / 1e6 / (Math.max(...times) / 1000),
        maxMbPerSec: totalBytes / 1e6 / (Math.min(...times) / 1000),
        mbPerCpuSec: totalBytes / 1e6 / (median(cpuTimes) / 1000),
        outputMB: outputBytes / 1e6,
        peakRssMB: process.resourceUsage().maxRSS / 1024,
        problems: [...new Set(problems)],
    };
}

const TABLE: readonly TableColumn<ScenarioResult>[] = [
    { title: "scenario", align: "left", cell: (r) => r.scenario },
    { title: "MB", align: "right", cell: (r) => fixed(r.bodyMB, 1) },
    { title: "bodies", align: "right", cell: (r) => String(r.bodies) },
    { title: "lines", align: "right", cell: (r) => String(r.lines) },
    { title: "runs", align: "right", cell: (r) => String(r.runs) },
    { title: "median ms", align: "right", cell: (r) => fixed(r.medianMs, 1) },
    { title: "MB/s", align: "right", cell: (r) => fixed(r.mbPerSec, 1) },
    { title: "lines/s", align: "right", cell: (r) => fixed(r.linesPerSec, 0) },
    { title: "MB/s min..max", align: "right", cell: (r) => `${fixed(r.minMbPerSec, 0)}..${fixed(r.maxMbPerSec, 0)}` },
    { title: "MB/CPU-s", align: "right", cell: (r) => fixed(r.mbPerCpuSec, 1) },
    { title: "output MB", align: "right", cell: (r) => fixed(r.outputMB, 1) },
    { title: "peak RSS MB", align: "right", cell: (r) => fixed(r.peakRssMB, 0) },
    { title: "!", align: "left", cell: (r) => (r.problems.length > 0 ? "!" : "") },
];

async function run(options: BenchOptions): Promise<number> {
    let runs: number;
    let mb: number;
    try {
        runs = Math.round(positiveNumber(options.values["runs"], DEFAULT_RUNS, "--runs"));
        mb = positiveNumber(options.values["mb"], DEFAULT_MB, "--mb");
    } catch (error) {
        progress((error as Error).message);
        return 2;
    }
    const machine = await machineInfo(process.cwd());
    if (!options.json) process.stdout.write(`${machineLine(machine)}\n`);
    progress("generating bodies (seeded)...");
    const telegraf = telegrafBody(mb * 1e6);
    const logs = logsBody(mb * 1e6);
    const requests = splitLines(telegraf.body, REQUEST_LINES);
    const results: ScenarioResult[] = [];
    progress("telegraf...");
    results.push(runScenario("telegraf", [telegraf.body], telegraf.lines, runs));
    progress("telegraf-1k...");
    results.push(runScenario(`telegraf-${REQUEST_LINES / 1000}k`, requests, telegraf.lines, runs));
    progress("logs...");
    results.push(runScenario("logs", [logs.body], logs.lines, runs));
    if (options.json) {
        process.stdout.write(`${JSON.stringify({ benchmark: "parse", machine, settings: { runs, mb, seed: SEED }, results })}\n`);
    } else {
        process.stdout.write(`${formatTable(TABLE, results)}\n`);
        for (const r of results) for (const p of r.problems) process.stdout.write(`! ${r.scenario}: ${p}\n`);
    }
    return results.some((r) => r.problems.length > 0) ? 1 : 0;
}

export const benchmark: Benchmark = {
    options: {
        runs: { type: "string" },
        mb: { type: "string" },
    },
    optionHelp: [
        "parse options:",
        `  --runs N     measured runs per scenario, after one warm-up (default ${DEFAULT_RUNS})`,
        `  --mb N       size of each generated body in MB (default ${DEFAULT_MB})`,
    ],
    run,
};

/**
 * What msgpackr's native part is worth: `npm run bench -- replay [--rounds N] [--mb N] [--json]`.
 *
 * msgpackr decodes strings with a native extractor (`msgpackr-extract`, an optional dependency
 * with prebuilt binaries per platform) when it can load it, and in plain JS otherwise. Sluice
 * decodes msgpack with msgpackr in one place, the WAL payload, so the difference is paid when the
 * WAL is read back: replay at start-up and in `sluice recover`, and a failed flush's read-back
 * (the msgpack write endpoint has its own decoder).
 *
 * Each scenario's WAL is written once (seeded line-protocol bodies, parsed by the real parser in
 * 5,000-line requests, appended with `wal.sync_mode = off`). Then each round measures both sides,
 * as installed and with `MSGPACKR_NATIVE_ACCELERATION_DISABLED=true` (msgpackr's own switch), the
 * order alternating from round to round, two ways:
 * - decode: a child process (bench/replay-child.ts) reads the whole WAL through recovery (read,
 *   CRC, decode), the batches only counted; the median CPU ms of 3 passes after a warm-up. CPU
 *   time, so that other load on a shared machine counts less. The child reports which decoder
 *   msgpackr used, checked against the side.
 * - recover: the real `sluice recover --json` on a fresh copy of the WAL; its `durationMs` (the
 *   replay into buffers, wall time, before the Parquet flush).
 * Reported per scenario and measure: the median per side and the ratio of the medians (plain JS
 * ÷ native), with the range of the per-round ratios. Every run must return every row.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isNativeAccelerationEnabled } from "msgpackr";
import { parseLineProtocol } from "../ingest/lp/index.js";
import { SchemaRegistry } from "../ingest/schema.js";
import { systemClock } from "../src/clock.js";
import { walWriterOptions } from "../src/config/components.js";
import { loadConfig } from "../src/config/load.js";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { WalWriter } from "../src/wal/writer.js";
import { SLUICE_CLI, shebangNodeFlags } from "../test/helpers/sluice-process.js";
import { type Benchmark, type BenchOptions, progress } from "./lib/benchmark.js";
import { machineInfo, machineLine } from "./lib/machine.js";
import { type TableColumn, fixed, formatTable } from "./lib/output.js";
import { scratchDirectory } from "./lib/scratch.js";
import { logsBody, telegrafBody } from "./parse.bench.js";

const DEFAULT_ROUNDS = 5;
const DEFAULT_MB = 40;
const REQUEST_LINES = 5_000;
const NOW_NS = 1_800_000_000_000_000_000n;
const DISABLED = { MSGPACKR_NATIVE_ACCELERATION_DISABLED: "true" } as const;
const DECODE_PASSES = 3;
const CHILD = fileURLToPath(new URL("./replay-child.js", import.meta.url));

type Side = "native" | "js";
type Measure = "decode" | "recover";

/** One measure of one scenario, both sides. */
interface Comparison {
    readonly nativeMs: number;
    readonly jsMs: number;
    /** Median plain-JS time ÷ median native time. */
    readonly ratio: number;
    readonly minRatio: number;
    readonly maxRatio: number;
}

interface ScenarioResult {
    readonly scenario: string;
    readonly lines: number;
    readonly walMB: number;
    /** CPU ms of one pass over the WAL (read, CRC, decode). */
    readonly decode: Comparison;
    /** Wall ms of `sluice recover`'s replay. */
    readonly recover: Comparison;
    readonly problems: string[];
}

function median(values: readonly number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Writes `body` into `<dataDir>/wal` as the write path does: one WAL request per 5,000 lines. */
async function writeWal(dataDir: string, body: Buffer): Promise<{ lines: number; bytes: number }> {
    const dir = join(dataDir, "wal");
    await mkdir(dir, { recursive: true });
    const writer = await WalWriter.open({ ...walWriterOptions(loadConfig({ env: {} }), dir, 0, { fileSystem: nodeFileSystem, clock: systemClock }), syncMode: "off" });
    const schema = new SchemaRegistry();
    let lines = 0;
    let start = 0;
    let count = 0;
    for (let i = 0; i <= body.length; i++) {
        if (i < body.length && (body[i] !== 0x0a || ++count < REQUEST_LINES)) continue;
        const result = parseLineProtocol(body.subarray(start, i), { database: "bench", precision: "ns", nowNs: NOW_NS, schema });
        if (result.errors.length > 0) throw new Error(`generated body rejected: ${result.errors[0]!.message}`);
        for (const batch of result.batches) await writer.append("bench", batch);
        lines += result.accepted;
        start = i + 1;
        count = 0;
    }
    const bytes = writer.stats.bytes;
    await writer.close();
    return { lines, bytes };
}

function runNode(args: readonly string[], side: Side): Promise<string> {
    const env = { PATH: process.env.PATH ?? "", ...(side === "js" ? DISABLED : {}) };
    return new Promise<string>((resolve, reject) => {
        execFile(process.execPath, args, { env, maxBuffer: 1 << 20 }, (error, out, err) => {
            if (error) reject(new Error(`${args.join(" ")} failed: ${err || error.message}`));
            else resolve(out);
        });
    });
}

/** CPU ms of one pass over `walDir` in a child process, or a problem. */
async function decodeOnce(walDir: string, side: Side, lines: number): Promise<number | string> {
    const report = JSON.parse(await runNode([CHILD, walDir, String(DECODE_PASSES)], side)) as { rows: number; native: boolean; cpuMs: number };
    if (report.native !== (side === "native")) return `${side}: msgpackr's native part was ${report.native ? "in use" : "not in use"}`;
    if (report.rows !== lines) return `${side}: decoded ${report.rows} rows of ${lines}`;
    return report.cpuMs;
}

/** `sluice recover --json` on a fresh copy of `walDir`: its replay time in ms, or a problem. */
async function recoverOnce(walDir: string, runDir: string, side: Side, lines: number): Promise<number | string> {
    await rm(runDir, { recursive: true, force: true });
    await cp(walDir, join(runDir, "wal"), { recursive: true });
    const stdout = await runNode([...shebangNodeFlags(SLUICE_CLI), SLUICE_CLI, "recover", "--json", "--data-dir", runDir], side);
    const report = JSON.parse(stdout) as { recoveredRows: number; durationMs: number };
    if (report.recoveredRows !== lines) return `${side}: recovered ${report.recoveredRows} rows of ${lines}`;
    return report.durationMs;
}

function compare(times: Record<Side, readonly number[]>, ratios: readonly number[]): Comparison {
    const nativeMs = median(times.native);
    const jsMs = median(times.js);
    return { nativeMs, jsMs, ratio: jsMs / nativeMs, minRatio: Math.min(...ratios), maxRatio: Math.max(...ratios) };
}

async function runScenario(scenario: string, body: Buffer, scratch: string, rounds: number): Promise<ScenarioResult> {
    const source = join(scratch, scenario);
    const walDir = join(source, "wal");
    const { lines, bytes } = await writeWal(source, body);
    const runDir = join(scratch, "run");
    const measures: Record<Measure, (side: Side) => Promise<number | string>> = {
        decode: (side) => decodeOnce(walDir, side, lines),
        recover: (side) => recoverOnce(walDir, runDir, side, lines),
    };
    const times: Record<Measure, Record<Side, number[]>> = { decode: { native: [], js: [] }, recover: { native: [], js: [] } };
    const ratios: Record<Measure, number[]> = { decode: [], recover: [] };
    const problems: string[] = [];
    // A warm-up pair (page cache, the CLI's modules), not counted.
    for (const side of ["native", "js"] as const) await recoverOnce(walDir, runDir, side, lines);
    for (let round = 0; round < rounds; round++) {
        const order: readonly Side[] = round % 2 === 0 ? ["native", "js"] : ["js", "native"];
        for (const measure of ["decode", "recover"] as const) {
            const got: Partial<Record<Side, number>> = {};
            for (const side of order) {
                const result = await measures[measure](side);
                if (typeof result === "string") problems.push(result);
                else {
                    times[measure][side].push(result);
                    got[side] = result;
                }
            }
            if (got.native !== undefined && got.js !== undefined) {
                ratios[measure].push(got.js / got.native);
                progress(`  ${scenario} round ${round + 1}/${rounds} ${measure}: native ${fixed(got.native, 0)} ms, js ${fixed(got.js, 0)} ms, ×${fixed(got.js / got.native, 2)}`);
            }
        }
    }
    await rm(runDir, { recursive: true, force: true });
    return {
        scenario,
        lines,
        walMB: bytes / 1e6,
        decode: compare(times.decode, ratios.decode),
        recover: compare(times.recover, ratios.recover),
        problems: [...new Set(problems)],
    };
}

const ratioCell = (c: Comparison) => `${fixed(c.ratio, 2)} [${fixed(c.minRatio, 2)}–${fixed(c.maxRatio, 2)}]`;

const TABLE: readonly TableColumn<ScenarioResult>[] = [
    { title: "WAL of", align: "left", cell: (r) => r.scenario },
    { title: "lines", align: "right", cell: (r) => r.lines.toLocaleString("en-US") },
    { title: "WAL MB", align: "right", cell: (r) => fixed(r.walMB, 1) },
    { title: "decode CPU ms native", align: "right", cell: (r) => fixed(r.decode.nativeMs, 0) },
    { title: "plain JS", align: "right", cell: (r) => fixed(r.decode.jsMs, 0) },
    { title: "JS ÷ native", align: "right", cell: (r) => ratioCell(r.decode) },
    { title: "recover ms native", align: "right", cell: (r) => fixed(r.recover.nativeMs, 0) },
    { title: "plain JS", align: "right", cell: (r) => fixed(r.recover.jsMs, 0) },
    { title: "JS ÷ native", align: "right", cell: (r) => ratioCell(r.recover) },
];

function positive(value: string | boolean | undefined, name: string, fallback: number): number {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (typeof value !== "string" || !Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${String(value)}"`);
    return n;
}

async function run(options: BenchOptions): Promise<number> {
    let rounds: number;
    let mb: number;
    try {
        rounds = Math.round(positive(options.values["rounds"], "--rounds", DEFAULT_ROUNDS));
        mb = positive(options.values["mb"], "--mb", DEFAULT_MB);
    } catch (error) {
        progress((error as Error).message);
        return 2;
    }
    if (!isNativeAccelerationEnabled) {
        progress("msgpackr's native part is not installed here (msgpackr-extract): there is nothing to compare");
        return 1;
    }
    const scratch = await scratchDirectory(options.dir, "sluice-replay");
    try {
        const machine = await machineInfo(scratch.path);
        if (!options.json) process.stdout.write(`${machineLine(machine)}\n`);
        const results: ScenarioResult[] = [];
        for (const [scenario, make] of [
            ["telegraf", telegrafBody],
            ["logs", logsBody],
        ] as const) {
            progress(`${scenario}: writing the WAL...`);
            results.push(await runScenario(scenario, make(mb * 1e6).body, scratch.path, rounds));
        }
        if (options.json) process.stdout.write(`${JSON.stringify({ benchmark: "replay", machine, settings: { rounds, mb }, results })}\n`);
        else {
            process.stdout.write(`${formatTable(TABLE, results)}\n`);
            for (const r of results) for (const p of r.problems) process.stdout.write(`! ${r.scenario}: ${p}\n`);
        }
        return results.some((r) => r.problems.length > 0) ? 1 : 0;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: {
        rounds: { type: "string" },
        mb: { type: "string" },
    },
    optionHelp: [
        "replay options:",
        `  --rounds N   rounds per scenario (each: decode and recover, both sides), after a warm-up (default ${DEFAULT_ROUNDS})`,
        `  --mb N       size of each scenario's line-protocol body in MB (default ${DEFAULT_MB})`,
    ],
    run,
};

/**
 * WAL benchmark: `npm run bench -- wal [--seconds N] [--json] [--dir PATH]`.
 *
 * For every sync mode × payload shape (10,000-row and 1-row Telegraf-like columnar batches) ×
 * concurrency (1 / 16 / 256 appenders, each looping `await writer.append(...)`), runs a fresh
 * WalWriter in a fresh directory for a few seconds and reports entries/s, rows/s, WAL MB/s,
 * syncs/s, mean group size and p50/p99 append latency (append() call → resolution). Then it
 * compares the best fdatasync 10k-row figure at 16+ appenders with dd's direct-I/O bandwidth
 * on the same file system (the target: ≥ 80%).
 *
 * Every cell is checked afterwards: each append resolved or the cell reports the failure, the
 * sequences handed out are contiguous, and the files on disk hold exactly that many entries
 * with valid CRCs.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type Column, type ColumnarBatch, setBit } from "../src/columnar/batch.js";
import { listWalFiles } from "../src/wal/files.js";
import { encodeEntryHeader, nowMicros } from "../src/wal/format.js";
import { decodePayload, encodePayload } from "../src/wal/payload.js";
import { WalFileReader } from "../src/wal/reader.js";
import { MAX_GROUP_BYTES, SYNC_MODES, type SyncMode, WalWriter, type WalWriterStats, isSyncMode } from "../src/wal/writer.js";
import { systemClock } from "../src/clock.js";
import { walWriterOptions } from "../src/config/components.js";
import { loadConfig } from "../src/config/load.js";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { seededRandom } from "../test/helpers/random.js";
import { byteCount, choiceList, seconds as secondsOption } from "./lib/args.js";
import { firstUseDictionaryColumn } from "./lib/batches.js";
import { type Benchmark, type BenchOptions, progress, sleep } from "./lib/benchmark.js";
import { LatencyReservoir } from "./lib/latency.js";
import { type DdResult, type MachineInfo, ddBandwidth, machineInfo, machineLine } from "./lib/machine.js";
import { type TableColumn, fixed, formatTable, jsonLine } from "./lib/output.js";
import { scratchDirectory } from "./lib/scratch.js";

const DEFAULT_SECONDS = 5;
const DEFAULT_APPENDERS = [1, 16, 256] as const;
const DATABASE = "bench";
const MEASUREMENT = "cpu";
const SEED = 0x51c3;
/** Latency samples kept per cell (32 MiB, allocated once); beyond that, a uniform reservoir. */
const LATENCY_CAPACITY = 1 << 22;
/** The target: fdatasync MB/s with 10k-row batches at 16+ appenders vs dd's. */
const TARGET_RATIO = 0.8;

// ---------------------------------------------------------------------------------------------
// Payloads: Telegraf-like rows (time, 3 dictionary-coded tags, 5 floats, 1 int, 1 bool)

interface Shape {
    readonly name: string;
    readonly rows: number;
    /** Distinct batches built up front; appenders cycle through them. */
    readonly pool: number;
}

const SHAPES: readonly Shape[] = [
    { name: "10k-row", rows: 10_000, pool: 8 },
    { name: "1-row", rows: 1, pool: 4096 },
];

const HOSTS = Array.from({ length: 100 }, (_, i) => `host-${String(i).padStart(3, "0")}.prod.example.net`);
const REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const SERVICES = Array.from({ length: 20 }, (_, i) => `service-${String.fromCharCode(97 + i)}`);
const BASE_TIME_NS = 1_700_000_000_000_000_000n;

const round2 = (x: number) => Math.round(x * 100) / 100;

/** `count` batches of `rows` rows each, rows 1 ms apart (with ns jitter) across the pool. */
export function buildBatches(rows: number, count: number, random: () => number): ColumnarBatch[] {
    const batches: ColumnarBatch[] = [];
    let row = 0;
    for (let b = 0; b < count; b++) {
        const time = new BigInt64Array(rows);
        const host = new Uint8Array(rows);
        const region = new Uint8Array(rows);
        const service = new Uint8Array(rows);
        const user = new Float64Array(rows);
        const system = new Float64Array(rows);
        const idle = new Float64Array(rows);
        const iowait = new Float64Array(rows);
        const load1 = new Float64Array(rows);
        const memUsed = new BigInt64Array(rows);
        const healthy = new Uint8Array((rows + 7) >>> 3);
        for (let i = 0; i < rows; i++, row++) {
            time[i] = BASE_TIME_NS + BigInt(row) * 1_000_000n + BigInt(Math.floor(random() * 1000));
            const h = Math.floor(random() * HOSTS.length);
            host[i] = h;
            region[i] = h % REGIONS.length;
            service[i] = Math.floor(random() * SERVICES.length);
            user[i] = round2(random() * 80);
            system[i] = round2(random() * 15);
            iowait[i] = round2(random() * 5);
            idle[i] = round2(Math.max(0, 100 - user[i]! - system[i]! - iowait[i]!));
            load1[i] = round2(random() * 8);
            memUsed[i] = BigInt(Math.floor(random() * 2 ** 34));
            if (random() < 0.98) setBit(healthy, i);
        }
        const columns = new Map<string, Column>([
            ["time", { type: "t", values: time }],
            ["host", firstUseDictionaryColumn(HOSTS, host.length, (row) => host[row]!)],
            ["region", firstUseDictionaryColumn(REGIONS, region.length, (row) => region[row]!)],
            ["service", firstUseDictionaryColumn(SERVICES, service.length, (row) => service[row]!)],
            ["usage_user", { type: "f", values: user }],
            ["usage_system", { type: "f", values: system }],
            ["usage_idle", { type: "f", values: idle }],
            ["usage_iowait", { type: "f", values: iowait }],
            ["load1", { type: "f", values: load1 }],
            ["mem_used", { type: "i", values: memUsed }],
            ["healthy", { type: "b", values: healthy }],
        ]);
        batches.push({ measurement: MEASUREMENT, rows, tags: ["host", "region", "service"], columns });
    }
    return batches;
}

/** WAL bytes of one entry of each batch (entry header + payload) and the event-loop cost of encoding it. */
interface EncodeCost {
    readonly shape: string;
    readonly entryBytes: number;
    /** Mean time of encodePayload + the CRC32 entry header, as append() does it synchronously. */
    readonly microsPerEntry: number;
    readonly mbPerSec: number;
}

function measureEncode(shape: Shape, batches: readonly ColumnarBatch[]): EncodeCost {
    const encodeOne = (batch: ColumnarBatch) => {
        const parts = encodePayload(DATABASE, batch);
        const header = encodeEntryHeader(parts, nowMicros());
        return header.length + parts[0].length + parts[1].length;
    };
    const iterations = Math.max(20, Math.round(2_000_000 / shape.rows / 10));
    for (let i = 0; i < Math.min(iterations, 50); i++) encodeOne(batches[i % batches.length]!);
    let bytes = 0;
    const start = performance.now();
    for (let i = 0; i < iterations; i++) bytes += encodeOne(batches[i % batches.length]!);
    const elapsed = performance.now() - start;
    return {
        shape: shape.name,
        entryBytes: bytes / iterations,
        microsPerEntry: (elapsed * 1000) / iterations,
        mbPerSec: bytes / 1e6 / (elapsed / 1000),
    };
}

// ---------------------------------------------------------------------------------------------
// One cell: one writer, N appenders, a warm-up, a measured window, a drain, a check

interface CellSpec {
    readonly mode: SyncMode;
    readonly shape: Shape;
    readonly appenders: number;
}

interface CellResult {
    readonly mode: SyncMode;
    readonly shape: string;
    readonly rowsPerEntry: number;
    readonly appenders: number;
    /** The measured window (after warm-up), seconds. */
    readonly seconds: number;
    readonly entries: number;
    readonly bytes: number;
    readonly syncs: number;
    readonly groups: number;
    readonly rotations: number;
    readonly entriesPerSec: number;
    readonly rowsPerSec: number;
    /** WAL bytes written per second (writer.stats.bytes), decimal MB. */
    readonly mbPerSec: number;
    readonly syncsPerSec: number;
    readonly meanGroup: number;
    readonly largestGroup: number;
    readonly latencySamples: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly maxMs: number;
    /** Empty when the cell ran clean; otherwise what went wrong (errors, hangs, check failures). */
    readonly problems: readonly string[];
}

/** Mutable per-cell state the appender loops share (plain fields: no allocation per append). */
interface CellState {
    readonly writer: WalWriter;
    readonly batches: readonly ColumnarBatch[];
    readonly latency: LatencyReservoir;
    measuring: boolean;
    stop: boolean;
    resolved: number;
    minSequence: number;
    maxSequence: number;
    errors: number;
    firstError: unknown;
    failed: () => void;
}

async function appenderLoop(state: CellState, id: number): Promise<void> {
    const { writer, batches, latency } = state;
    let next = id;
    while (!state.stop) {
        const batch = batches[next % batches.length]!;
        next++;
        const start = performance.now();
        let sequence: number;
        try {
            sequence = (await writer.append(DATABASE, batch)).sequence;
        } catch (error) {
            if (state.errors++ === 0) state.firstError = error;
            state.stop = true;
            state.failed();
            return;
        }
        const end = performance.now();
        if (state.measuring) latency.record(end - start);
        state.resolved++;
        if (sequence < state.minSequence) state.minSequence = sequence;
        if (sequence > state.maxSequence) state.maxSequence = sequence;
    }
}

/** Resolves to "timeout" when `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">(
        (resolve) =>
            (timer = setTimeout(() => {
                resolve("timeout");
            }, ms)),
    );
    try {
        return await Promise.race([promise, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

function describe(error: unknown): string {
    if (!(error instanceof Error)) return String(error);
    const code = (error as { code?: unknown }).code;
    const cause = error.cause instanceof Error ? ` (cause: ${error.cause.message})` : "";
    return `${error.name}${typeof code === "string" ? ` [${code}]` : ""}: ${error.message}${cause}`;
}

interface CellSettings {
    readonly warmupMs: number;
    readonly measureMs: number;
    readonly verify: boolean;
    readonly maxGroupBytes: number | undefined;
    readonly maxFileBytes: number | undefined;
}

async function runCell(spec: CellSpec, batches: readonly ColumnarBatch[], dir: string, latency: LatencyReservoir, settings: CellSettings): Promise<CellResult> {
    const problems: string[] = [];
    await mkdir(dir, { recursive: true });
    const writer = await WalWriter.open({
        ...walWriterOptions(loadConfig({ env: {} }), dir, 0, { fileSystem: nodeFileSystem, clock: systemClock }),
        syncMode: spec.mode,
        ...(settings.maxGroupBytes === undefined ? {} : { maxGroupBytes: settings.maxGroupBytes }),
        ...(settings.maxFileBytes === undefined ? {} : { maxFileBytes: settings.maxFileBytes }),
    });
    latency.reset();
    let signalFailure: () => void = () => undefined;
    const failure = new Promise<void>((resolve) => (signalFailure = resolve));
    const state: CellState = {
        writer,
        batches,
        latency,
        measuring: false,
        stop: false,
        resolved: 0,
        minSequence: Number.POSITIVE_INFINITY,
        maxSequence: Number.NEGATIVE_INFINITY,
        errors: 0,
        firstError: undefined,
        failed: signalFailure,
    };
    const loops: Promise<void>[] = [];
    for (let id = 0; id < spec.appenders; id++) loops.push(appenderLoop(state, id));

    await Promise.race([sleep(settings.warmupMs), failure]);
    const before: WalWriterStats = writer.stats;
    const t0 = performance.now();
    state.measuring = true;
    await Promise.race([sleep(settings.measureMs), failure]);
    state.measuring = false;
    const t1 = performance.now();
    const after: WalWriterStats = writer.stats;
    state.stop = true;

    // Drain: every append already made must settle; a promise that never does is a writer bug.
    const drainMs = Math.max(30_000, 10 * settings.measureMs);
    const drained = await within(Promise.all(loops), drainMs);
    let closed: "timeout" | undefined;
    if (drained === "timeout") {
        const stats = writer.stats;
        problems.push(
            `HANG: ${spec.appenders} appenders, ${state.resolved} appends resolved, stats.entries=${stats.entries}, ` +
                `some append() promise still unsettled ${drainMs / 1000}s after the run stopped`,
        );
    } else {
        const settled = await within(
            writer.close().catch((error: unknown) => {
                problems.push(`close() rejected: ${describe(error)}`);
            }),
            drainMs,
        );
        if (settled === "timeout") closed = "timeout";
        if (closed === "timeout") problems.push(`HANG: close() unsettled after ${drainMs / 1000}s`);
    }
    if (state.errors > 0) problems.push(`ERROR: ${state.errors} append(s) rejected; first: ${describe(state.firstError)}`);

    const final = writer.stats;
    if (drained !== "timeout" && state.errors === 0) {
        if (final.entries !== state.resolved) problems.push(`stats.entries=${final.entries} but ${state.resolved} appends resolved`);
        if (state.resolved > 0 && state.maxSequence - state.minSequence + 1 !== state.resolved) {
            problems.push(`sequences ${state.minSequence}..${state.maxSequence} are not ${state.resolved} contiguous numbers`);
        }
        if (final.syncs > 0 && spec.mode === "off") problems.push(`off mode counted ${final.syncs} syncs`);
    }
    if (settings.verify && drained !== "timeout" && closed !== "timeout") {
        problems.push(...(await verifyDirectory(dir, state.errors === 0 ? state.resolved : undefined, spec.shape.rows)));
    }

    latency.sort();
    const seconds = (t1 - t0) / 1000;
    if (spec.mode === "async" && state.errors === 0) {
        // DESIGN.md §2: async mode syncs every wal.sync_interval, also under load.
        const interval = loadConfig({ env: {} }).wal.sync_interval_ms;
        const expected = Math.floor((seconds * 1000) / interval);
        const made = after.syncs - before.syncs;
        if (expected >= 4 && made < expected / 2) {
            problems.push(`ASYNC: ${made} timed syncs in the ${seconds.toFixed(1)} s window, expected ~${expected} (syncIntervalMs ${interval})`);
        }
    }
    const entries = after.entries - before.entries;
    const groups = after.groups - before.groups;
    const bytes = after.bytes - before.bytes;
    const syncs = after.syncs - before.syncs;
    return {
        mode: spec.mode,
        shape: spec.shape.name,
        rowsPerEntry: spec.shape.rows,
        appenders: spec.appenders,
        seconds,
        entries,
        bytes,
        syncs,
        groups,
        rotations: after.rotations - before.rotations,
        entriesPerSec: entries / seconds,
        rowsPerSec: (entries * spec.shape.rows) / seconds,
        mbPerSec: bytes / 1e6 / seconds,
        syncsPerSec: syncs / seconds,
        meanGroup: groups === 0 ? Number.NaN : entries / groups,
        largestGroup: final.largestGroup,
        latencySamples: latency.seen,
        p50Ms: latency.percentile(50),
        p99Ms: latency.percentile(99),
        maxMs: latency.max(),
        problems,
    };
}

/** Reads the cell's WAL files back: entry count, CRCs, and one decoded payload. */
async function verifyDirectory(dir: string, expectedEntries: number | undefined, rows: number): Promise<string[]> {
    const problems: string[] = [];
    try {
        const files = await listWalFiles(dir);
        let entries = 0;
        let decodedOne = false;
        let expectedSequence: number | undefined;
        for (const file of files) {
            if (expectedSequence !== undefined && file.firstSequence !== expectedSequence) {
                problems.push(`${file.name} starts at ${file.firstSequence}, the previous file ended before ${expectedSequence}`);
            }
            const reader = new WalFileReader(file);
            for await (const record of reader.records()) {
                if (record.kind === "entry" && !decodedOne) {
                    decodedOne = true;
                    const { database, batch } = decodePayload(record.payload);
                    if (database !== DATABASE || batch.measurement !== MEASUREMENT || batch.rows !== rows) {
                        problems.push(`first entry decodes to ${database}/${batch.measurement} with ${batch.rows} rows`);
                    }
                }
            }
            const scan = reader.scan;
            entries += scan.entries;
            expectedSequence = file.firstSequence + scan.entries;
            if (scan.corrupted > 0) problems.push(`${file.name}: ${scan.corrupted} corrupt entries`);
            if (scan.badHeader !== undefined) problems.push(`${file.name}: bad header: ${scan.badHeader}`);
            if (scan.tornTailOffset !== undefined && scan.entries > 0) problems.push(`${file.name}: torn tail at ${scan.tornTailOffset}`);
            if (scan.stoppedBy !== undefined) problems.push(`${file.name}: ${scan.stoppedBy}`);
        }
        if (expectedEntries !== undefined && entries !== expectedEntries) {
            problems.push(`files hold ${entries} entries, ${expectedEntries} appends resolved`);
        }
    } catch (error) {
        problems.push(`reading the WAL back failed: ${describe(error)}`);
    }
    return problems.map((p) => `CHECK: ${p}`);
}

// ---------------------------------------------------------------------------------------------
// Options, report

interface Report {
    readonly benchmark: "wal";
    readonly machine: MachineInfo;
    readonly settings: {
        readonly secondsPerCell: number;
        readonly warmupSeconds: number;
        readonly seed: number;
        readonly maxGroupBytes: number;
        readonly maxFileBytes: number;
        readonly directory: string;
    };
    readonly encode: readonly EncodeCost[];
    readonly dd: readonly DdResult[];
    readonly rows: readonly CellResult[];
    /** Best fdatasync 10k-row MB/s at 16+ appenders, over dd's best MB/s. */
    readonly fdatasyncVsDd: {
        readonly walMbPerSec: number | undefined;
        readonly ddMbPerSec: number | undefined;
        readonly ratio: number | undefined;
        readonly target: number;
        readonly meetsTarget: boolean | undefined;
    };
}

const TABLE: readonly TableColumn<CellResult>[] = [
    { title: "mode", align: "left", cell: (r) => r.mode },
    { title: "shape", align: "left", cell: (r) => r.shape },
    { title: "appenders", align: "right", cell: (r) => String(r.appenders) },
    { title: "entries/s", align: "right", cell: (r) => fixed(r.entriesPerSec, 0) },
    { title: "rows/s", align: "right", cell: (r) => fixed(r.rowsPerSec, 0) },
    { title: "MB/s", align: "right", cell: (r) => fixed(r.mbPerSec, 1) },
    { title: "syncs/s", align: "right", cell: (r) => fixed(r.syncsPerSec, 1) },
    { title: "mean group", align: "right", cell: (r) => fixed(r.meanGroup, 1) },
    { title: "p50 ms", align: "right", cell: (r) => fixed(r.p50Ms, 3) },
    { title: "p99 ms", align: "right", cell: (r) => fixed(r.p99Ms, 3) },
    { title: "", align: "left", cell: (r) => (r.problems.length > 0 ? "!" : "") },
];

function printReport(report: Report): void {
    // The machine line was printed first, before the run.
    const out: string[] = [];
    const s = report.settings;
    out.push(
        `wal: ${s.secondsPerCell}s per cell after ${s.warmupSeconds}s warm-up, seed 0x${s.seed.toString(16)}, ` +
            `maxGroupBytes ${s.maxGroupBytes}, maxFileBytes ${s.maxFileBytes}, dir ${s.directory}`,
    );
    for (const e of report.encode) {
        out.push(`encode (event loop, per append): ${e.shape} entry ${fixed(e.entryBytes, 0)} B in ${fixed(e.microsPerEntry, 1)} µs (${fixed(e.mbPerSec, 0)} MB/s)`);
    }
    out.push("");
    out.push(formatTable(TABLE, report.rows));
    const flagged = report.rows.filter((r) => r.problems.length > 0);
    if (flagged.length > 0) {
        out.push("");
        out.push("problems (!):");
        for (const r of flagged) for (const p of r.problems) out.push(`  ${r.mode} ${r.shape} x${r.appenders}: ${p}`);
    }
    out.push("");
    report.dd.forEach((dd, i) =>
        out.push(`dd (${i === 0 ? "before" : "after"}): ${dd.command}: ${dd.summary}${dd.mbPerSec === undefined ? "" : ` => ${fixed(dd.mbPerSec, 1)} MB/s`}`),
    );
    const v = report.fdatasyncVsDd;
    out.push(
        v.ratio === undefined
            ? `fdatasync 10k-row (16+ appenders) vs dd: no ratio (WAL ${fixed(v.walMbPerSec, 1)} MB/s, dd ${fixed(v.ddMbPerSec, 1)} MB/s)`
            : `fdatasync 10k-row best at 16+ appenders: ${fixed(v.walMbPerSec, 1)} MB/s = ${fixed(v.ratio * 100, 1)}% of dd's ${fixed(v.ddMbPerSec, 1)} MB/s ` +
                  `(target ≥ ${v.target * 100}%: ${v.meetsTarget ? "met" : "NOT met"})`,
    );
    process.stdout.write(`${out.join("\n")}\n`);
}

async function run(options: BenchOptions): Promise<number> {
    const measureSeconds = options.seconds ?? DEFAULT_SECONDS;
    let modes: SyncMode[];
    let shapes: Shape[];
    let appenderCounts: number[];
    let maxGroupBytes: number | undefined;
    let maxFileBytes: number | undefined;
    let warmupSeconds: number;
    try {
        modes = choiceList(options.values["modes"], SYNC_MODES, (m) => (isSyncMode(m) ? m : undefined), "sync mode");
        shapes = choiceList(options.values["shapes"], SHAPES, (name) => SHAPES.find((s) => s.name === name || s.name === `${name}-row`), "shape");
        appenderCounts = choiceList(options.values["appenders"], DEFAULT_APPENDERS, (n) => (/^[1-9]\d*$/.test(n) ? Number(n) : undefined), "appender count");
        maxGroupBytes = byteCount(options.values["max-group-bytes"], "--max-group-bytes");
        maxFileBytes = byteCount(options.values["max-file-bytes"], "--max-file-bytes");
        warmupSeconds = secondsOption(options.values["warmup"], Math.min(1, measureSeconds / 5), "--warmup");
    } catch (error) {
        progress((error as Error).message);
        return 2;
    }

    const scratch = await scratchDirectory(options.dir, "sluice-wal");
    try {
        const machine = await machineInfo(scratch.path);
        if (!options.json) process.stdout.write(`${machineLine(machine)}\n`);

        progress("building batches (seeded)...");
        const random = seededRandom(SEED);
        const pools = new Map(shapes.map((shape) => [shape, buildBatches(shape.rows, shape.pool, random)] as const));
        const encode = shapes.map((shape) => measureEncode(shape, pools.get(shape)!));

        progress("dd baseline...");
        const dd: DdResult[] = [await ddBandwidth(scratch.path)];

        const latency = new LatencyReservoir(LATENCY_CAPACITY);
        const cells: CellSpec[] = [];
        for (const mode of modes) for (const shape of shapes) for (const appenders of appenderCounts) cells.push({ mode, shape, appenders });
        const rows: CellResult[] = [];
        for (const [index, spec] of cells.entries()) {
            const label = `[${index + 1}/${cells.length}] ${spec.mode} ${spec.shape.name} x${spec.appenders}`;
            progress(`${label} ...`);
            const dir = join(scratch.path, `cell-${index + 1}`);
            const result = await runCell(spec, pools.get(spec.shape)!, dir, latency, {
                warmupMs: warmupSeconds * 1000,
                measureMs: measureSeconds * 1000,
                verify: options.values["skip-verify"] !== true,
                maxGroupBytes,
                maxFileBytes,
            });
            await rm(dir, { recursive: true, force: true });
            rows.push(result);
            progress(
                `${label}: ${fixed(result.entriesPerSec, 0)} entries/s, ${fixed(result.mbPerSec, 1)} MB/s, group ${fixed(result.meanGroup, 1)}, ` +
                    `p50 ${fixed(result.p50Ms, 3)} ms, p99 ${fixed(result.p99Ms, 3)} ms${result.problems.map((p) => `\n    ${p}`).join("")}`,
            );
        }

        progress("dd again...");
        dd.push(await ddBandwidth(scratch.path));

        const candidates = rows.filter((r) => r.mode === "fdatasync" && r.rowsPerEntry === 10_000 && r.appenders >= 16 && r.problems.length === 0);
        const walMbPerSec = candidates.length === 0 ? undefined : Math.max(...candidates.map((r) => r.mbPerSec));
        const ddFigures = dd.flatMap((d) => (d.mbPerSec === undefined ? [] : [d.mbPerSec]));
        const ddMbPerSec = ddFigures.length === 0 ? undefined : Math.max(...ddFigures);
        const ratio = walMbPerSec === undefined || ddMbPerSec === undefined ? undefined : walMbPerSec / ddMbPerSec;
        const report: Report = {
            benchmark: "wal",
            machine,
            settings: {
                secondsPerCell: measureSeconds,
                warmupSeconds,
                seed: SEED,
                maxGroupBytes: maxGroupBytes ?? MAX_GROUP_BYTES,
                maxFileBytes: maxFileBytes ?? loadConfig({ env: {} }).wal.max_file_bytes,
                directory: scratch.path,
            },
            encode,
            dd,
            rows,
            fdatasyncVsDd: { walMbPerSec, ddMbPerSec, ratio, target: TARGET_RATIO, meetsTarget: ratio === undefined ? undefined : ratio >= TARGET_RATIO },
        };
        if (options.json) {
            process.stdout.write(jsonLine(report));
        } else {
            printReport(report);
        }
        return rows.some((r) => r.problems.length > 0) ? 1 : 0;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: {
        modes: { type: "string" },
        shapes: { type: "string" },
        appenders: { type: "string" },
        warmup: { type: "string" },
        "max-group-bytes": { type: "string" },
        "max-file-bytes": { type: "string" },
        "skip-verify": { type: "boolean" },
    },
    optionHelp: [
        "wal options:",
        `  --modes LIST            sync modes to run (default ${SYNC_MODES.join(",")})`,
        `  --shapes LIST           payload shapes (default ${SHAPES.map((s) => s.name).join(",")})`,
        `  --appenders LIST        concurrent appenders (default ${DEFAULT_APPENDERS.join(",")})`,
        "  --warmup S              warm-up seconds per cell, not measured (default min(1, seconds/5))",
        "  --max-group-bytes N     WalWriter maxGroupBytes override (e.g. 64MiB)",
        "  --max-file-bytes N      WalWriter maxFileBytes override (e.g. 256MiB)",
        "  --skip-verify           do not read each cell's WAL back (entry count, CRCs, one decode)",
    ],
    run,
};

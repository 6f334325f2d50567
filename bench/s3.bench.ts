/**
 * `npm run bench -- s3`: what the S3 lake costs ingest (issue 16's target: within 10 % of the
 * local lake), and how fast flushes upload.
 *
 * Each run is a fresh `sluice serve` (fdatasync WAL, compaction off, `flush.max_age_ms` 1.5 s so
 * that flushes run throughout) under the same full-speed load (bench/lib/http-load.ts:
 * Telegraf-like `cpu` lines, C connections, N-line requests), with one of these lakes:
 * - `local`: `storage.backend = "local"` (data_dir/parquet);
 * - `s3`: `storage.backend = "s3"` on the S3 test server (test/helpers/s3-server.ts, the real AWS
 *   SDK on the Sluice side) as a child process on 127.0.0.1, a fresh one per run;
 * - `s3 +L ms`: the same with L ms added to every S3 request (`--latency-ms`), like a bucket
 *   in another building.
 * The runs are interleaved (local, s3, s3 +L; then reversed; …) so the shared machine's drift
 * spreads over all; reported per lake: the median acknowledged lines/s and its ratio to local's
 * (with the range of the per-round ratios), p99 latency, the flushes (count, median ms), the
 * Parquet bytes flushed per second of the window (what the bucket receives) and per second of
 * writing (Σ bytes ÷ Σ (flush ms − encode ms): the upload rate while a flush uploads), the
 * Sluice process's peak RSS and the S3 server's CPU (it shares the two cores with Sluice here).
 *
 * The default, 3 rounds of 3 lakes at 15 s, takes about 5 minutes on a 2-vCPU machine (each run
 * also waits up to 10 s for the machine to calm down, and verifies).
 *
 * Every run is checked afterwards: a final `POST /api/v1/flush`, then every Parquet object is
 * read back (the bucket's through ListObjectsV2 and GetObject into a local copy) and DuckDB
 * counts the rows: stored = acknowledged, no (series, time) twice (bench/lib/verify.ts).
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { S3ObjectStore } from "../flush/storage/s3-store.js";
import { type ServiceProcess, startService } from "../test/helpers/processes.js";
import { positiveInteger, repeated } from "./lib/args.js";
import { type Benchmark, type BenchOptions, progress } from "./lib/benchmark.js";
import { FlushLog, type FlushTotals } from "./lib/flush-log.js";
import { type LoadResult, runLoad } from "./lib/http-load.js";
import { interleaved, type Ratio, ratioByRound } from "./lib/interleave.js";
import { lakeSize } from "./lib/lake-files.js";
import { LineSource } from "./lib/line-source.js";
import { type MachineInfo, machineInfo, machineLine, waitForQuiet } from "./lib/machine.js";
import { benchCommand, fixed, jsonLine, thousands, writeSection } from "./lib/output.js";
import { processCpu } from "./lib/procfs.js";
import { scratchDirectory } from "./lib/scratch.js";
import { scrapeMetrics, startSluice } from "./lib/sluice.js";
import { stat } from "./lib/stats.js";
import { type SluiceVerify, verifySluice } from "./lib/verify.js";

// The SDK (here and in the Sluice children, which inherit it) warns once per process that releases after January 2027 need Node 22.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const DEFAULT_SECONDS = 15;
const DEFAULT_ROUNDS = 3;
const DEFAULT_LATENCY_MS = 20;
const DEFAULT_CONNECTIONS = 8;
const DEFAULT_BATCH = 5000;
const DEFAULT_FLUSH_AGE_MS = 1500;
const WARMUP_SECONDS = 2;
const TARGET_WITHIN = 0.1;
const BUCKET = "lake";
const PREFIX = "bench-lake";
const NODE_ID = "bench";
/** The S3 test server accepts any access key and never checks the secret. */
const CREDENTIALS = { accessKeyId: "SLUICEBENCH", secretAccessKey: "sluice-bench-secret" } as const;
const S3_SERVER_CLI = fileURLToPath(new URL("../test/helpers/s3-server.js", import.meta.url));
/** Compaction would merge files during the run: off, so the runs measure ingest and flush alone. */
const COMMON_SETS = ["compaction.enabled=false", "wal.sync_mode=fdatasync"];

/** A lake: local, or the S3 test server with this much latency per request. */
type Lake = { readonly backend: "local" } | { readonly backend: "s3"; readonly latencyMs: number };

function lakeName(lake: Lake): string {
    return lake.backend === "local" ? "local" : lake.latencyMs === 0 ? "s3" : `s3 +${lake.latencyMs} ms`;
}

interface Settings {
    readonly seconds: number;
    readonly rounds: number;
    readonly latencyMs: number;
    readonly connections: number;
    readonly batch: number;
    readonly flushAgeMs: number;
    readonly sets: readonly string[];
}

interface Run {
    readonly lake: string;
    readonly round: number;
    readonly linesPerSec: number;
    readonly p99Ms: number;
    readonly serverCpuPct: number;
    readonly rssPeakBytes: number;
    /** Flushes that ended in the measured window. */
    readonly windowFlushes: FlushTotals;
    /** Parquet bytes flushed in the window ÷ its seconds (decimal MB/s). */
    readonly flushedMBps: number;
    /** What the lake holds after the final flush. */
    readonly lakeFiles: number;
    readonly lakeBytes: number;
    readonly flushFailures: number;
    /** CPU seconds the S3 server used over its life (the run), if there was one. */
    readonly s3ServerCpuSeconds: number | undefined;
    readonly verify: SluiceVerify | undefined;
    readonly busyBefore: number;
    readonly problems: readonly string[];
}

/** The S3 test server as a child process; resolves once it printed its endpoint. */
async function startS3Server(latencyMs: number): Promise<{ service: ServiceProcess; endpoint: string }> {
    const args = [S3_SERVER_CLI, "--port", "0", "--bucket", BUCKET, "--latency-ms", String(latencyMs)];
    const { service, match } = await startService("s3-server", process.execPath, args, /^(http:\/\/\S+)\n/);
    return { service, endpoint: match![1]! };
}

function s3Sets(endpoint: string): string[] {
    return [
        "storage.backend=s3",
        `node_id=${NODE_ID}`,
        `s3.endpoint=${endpoint}`,
        `s3.bucket=${BUCKET}`,
        `s3.prefix=${PREFIX}`,
        "s3.force_path_style=true",
        `s3.access_key_id=${CREDENTIALS.accessKeyId}`,
        `s3.secret_access_key=${CREDENTIALS.secretAccessKey}`,
    ];
}

/** Every Parquet object under the lake's prefix, downloaded to `<into>/parquet/<key>` (where verifySluice looks). */
async function copyBucket(endpoint: string, into: string): Promise<void> {
    const store = new S3ObjectStore({ endpoint, bucket: BUCKET, prefix: PREFIX, forcePathStyle: true, credentials: CREDENTIALS });
    try {
        const keys: string[] = [];
        for await (const info of store.list("")) if (info.key.endsWith(".parquet")) keys.push(info.key);
        for (const key of keys) {
            const object = await store.get(key);
            if (object === undefined) throw new Error(`${key} was listed but is gone`);
            const path = join(into, "parquet", key);
            await mkdir(dirname(path), { recursive: true });
            await writeFile(path, object.body);
        }
    } finally {
        store.destroy();
    }
}

function loadProblems(load: LoadResult): string[] {
    const problems: string[] = [];
    if (load.stoppedEarly !== undefined) problems.push(`load: ${load.stoppedEarly}`);
    for (const [status, count] of Object.entries(load.total.non2xx)) problems.push(`${count} × HTTP ${status}: ${load.total.samples[status] ?? ""}`);
    for (const [code, count] of Object.entries(load.total.errors)) problems.push(`${count} × ${code}`);
    return problems;
}

async function measure(lake: Lake, round: number, settings: Settings, source: LineSource, scratch: string): Promise<Run> {
    const name = lakeName(lake);
    const runDir = join(scratch, `${name.replace(/\W+/g, "-")}-${round}`);
    const dataDir = join(runDir, "data");
    const quiet = await waitForQuiet(25, 10_000);
    const problems: string[] = [];
    const s3 = lake.backend === "s3" ? await startS3Server(lake.latencyMs) : undefined;
    const flushLog = new FlushLog();
    let load: LoadResult | undefined;
    let verify: SluiceVerify | undefined;
    let window = { start: Number.NaN, end: Number.NaN };
    let stored = { files: Number.NaN, bytes: Number.NaN };
    let flushFailures = Number.NaN;
    let s3ServerCpuSeconds: number | undefined;
    try {
        const sets = [...COMMON_SETS, `flush.max_age_ms=${settings.flushAgeMs}`, ...(s3 === undefined ? [] : s3Sets(s3.endpoint)), ...settings.sets];
        const sluice = await startSluice({ dataDir, sets });
        sluice.service.child.stdout!.on("data", (chunk: Buffer) => {
            flushLog.onOutput(chunk);
        });
        try {
            load = await runLoad({
                url: sluice.writeUrl,
                connections: settings.connections,
                batchLines: settings.batch,
                seconds: settings.seconds,
                warmupSeconds: WARMUP_SECONDS,
                source,
                serverPid: sluice.service.pid,
                onWindow: (edge) => {
                    window = { ...window, [edge]: performance.now() };
                    return Promise.resolve();
                },
            });
            problems.push(...loadProblems(load));
            flushFailures = (await scrapeMetrics(sluice.url)).get("sluice_flush_failures_total") ?? Number.NaN;
            if (flushFailures > 0) problems.push(`${flushFailures} flush failures (sluice_flush_failures_total)`);
            if (s3 === undefined) verify = await verifySluice(sluice.url, dataDir, load);
            else {
                // The final flush first, then the copy: verifySluice's own flush then finds nothing to do.
                const flushed = await fetch(`${sluice.url}/api/v1/flush`, { method: "POST", signal: AbortSignal.timeout(600_000) });
                if (flushed.status !== 200) problems.push(`POST /api/v1/flush answered ${flushed.status}: ${(await flushed.text()).slice(0, 300)}`);
                const copy = join(runDir, "copy");
                await copyBucket(s3.endpoint, copy);
                verify = await verifySluice(sluice.url, copy, load);
            }
            problems.push(...verify.problems);
            stored = await lakeSize(join(s3 === undefined ? dataDir : join(runDir, "copy"), "parquet"));
        } finally {
            const stopped = await sluice.service.stop(120_000);
            if (stopped.code !== 0) problems.push(`sluice exited with ${stopped.code ?? stopped.signal}: ${sluice.service.output().slice(-500)}`);
        }
    } catch (error) {
        problems.push(`run failed: ${(error as Error).message.slice(0, 2000)}`);
    } finally {
        if (s3 !== undefined) {
            const cpu = await processCpu(s3.service.pid);
            s3ServerCpuSeconds = cpu === undefined ? undefined : cpu.user + cpu.system;
            await s3.service.stop(10_000);
        }
        await rm(runDir, { recursive: true, force: true });
    }
    const windowFlushes = flushLog.totals(window.start, window.end);
    const windowSeconds = (window.end - window.start) / 1000;
    return {
        lake: name,
        round,
        linesPerSec: load?.window.linesPerSec ?? Number.NaN,
        p99Ms: load?.window.p99Ms ?? Number.NaN,
        serverCpuPct: load?.server?.cpuPct ?? Number.NaN,
        rssPeakBytes: load?.server?.rssPeakBytes ?? Number.NaN,
        windowFlushes,
        flushedMBps: windowFlushes.bytes / 1e6 / windowSeconds,
        lakeFiles: stored.files,
        lakeBytes: stored.bytes,
        flushFailures,
        s3ServerCpuSeconds,
        verify,
        busyBefore: quiet.busyPct,
        problems,
    };
}

// ---------------------------------------------------------------------------------------------
// Report

interface LakeSummary {
    readonly lake: string;
    readonly runs: number;
    readonly linesPerSec: ReturnType<typeof stat>;
    /** Median lines/s ÷ local's, with the range of the per-round ratios (undefined for local). */
    readonly vsLocal: Ratio | undefined;
    readonly p99Ms: number;
    readonly serverCpuPct: number;
    /** Sluice's CPU per acknowledged line, in µs: less sensitive than lines/s to what else runs on the machine. */
    readonly cpuUsPerLine: number;
    readonly flushesPerRun: number;
    readonly flushMedianMs: number;
    readonly flushedMBps: number;
    readonly writeMBps: number;
    readonly bytesPerRow: number;
    readonly rssPeakMiB: number;
    readonly s3ServerCpuPct: number | undefined;
    readonly storedEqualsAcked: boolean;
}

/**
 * The target against the s3 ÷ local ratio: met (the ratio of the medians within it), missed (every
 * round's ratio outside it too), or unsettled (the median outside, some rounds within: noise).
 */
type Verdict = "met" | "missed" | "unsettled";

function verdictOf(ratio: Ratio): Verdict {
    if (ratio.ofMedians >= 1 - TARGET_WITHIN) return "met";
    return ratio.max < 1 - TARGET_WITHIN ? "missed" : "unsettled";
}

interface Report {
    readonly benchmark: "s3";
    readonly date: string;
    readonly command: string;
    readonly machine: MachineInfo;
    readonly settings: Settings;
    readonly lakes: readonly LakeSummary[];
    readonly runs: readonly Run[];
    readonly verdict: { readonly s3WithinTarget: Verdict | undefined };
    readonly problems: readonly string[];
}

function summarize(lake: string, runs: readonly Run[], local: readonly Run[], settings: Settings): LakeSummary {
    const pairs = (list: readonly Run[]) => list.map((run) => ({ repeat: run.round, value: run.linesPerSec }));
    const med = (pick: (run: Run) => number) => stat(runs.map(pick)).median;
    const runSeconds = settings.seconds + WARMUP_SECONDS;
    return {
        lake,
        runs: runs.length,
        linesPerSec: stat(runs.map((run) => run.linesPerSec)),
        vsLocal: lake === "local" ? undefined : ratioByRound(pairs(runs), pairs(local)),
        p99Ms: med((run) => run.p99Ms),
        serverCpuPct: med((run) => run.serverCpuPct),
        cpuUsPerLine: med((run) => (run.serverCpuPct / 100 / run.linesPerSec) * 1e6),
        flushesPerRun: med((run) => run.windowFlushes.flushes),
        flushMedianMs: med((run) => run.windowFlushes.medianMs),
        flushedMBps: med((run) => run.flushedMBps),
        writeMBps: med((run) => run.windowFlushes.writeMBps),
        bytesPerRow: med((run) => run.lakeBytes / (run.verify?.rows ?? Number.NaN)),
        rssPeakMiB: Math.max(...runs.map((run) => run.rssPeakBytes)) / 2 ** 20,
        s3ServerCpuPct: runs.some((run) => run.s3ServerCpuSeconds !== undefined) ? med((run) => ((run.s3ServerCpuSeconds ?? Number.NaN) / runSeconds) * 100) : undefined,
        storedEqualsAcked: runs.every((run) => run.verify?.ok === true),
    };
}

function markdown(report: Report): string {
    const s = report.settings;
    const out: string[] = [];
    out.push(`## S3 lake vs local lake: \`${report.command}\``);
    out.push("");
    out.push(`Generated by bench/s3.bench.ts on ${report.date}. ${machineLine(report.machine)}.`);
    out.push("");
    out.push(
        `Each run: a fresh \`sluice serve\` (\`${[...COMMON_SETS, `flush.max_age_ms=${s.flushAgeMs}`, ...s.sets].join("`, `")}\`) under bench/lib/http-load.ts at full speed ` +
            `(Telegraf-like \`cpu\` lines, C=${s.connections}, batch ${thousands(s.batch)}, ${s.seconds} s after ${WARMUP_SECONDS} s warm-up); the s3 lakes on the S3 test server ` +
            `(test/helpers/s3-server.ts, a child process on 127.0.0.1, in memory, a fresh one per run). ${s.rounds} round(s), the lakes interleaved, the order reversed every other round. ` +
            `Medians over the rounds; "vs local" is the ratio of the medians [range of the per-round ratios]; flushes, MB/s and p99 over the measured window.`,
    );
    out.push("");
    out.push(
        "| lake | lines/s median [min–max] | vs local | p99 ms | Sluice CPU % | CPU µs/line | flushes | flush ms | Parquet MB/s flushed | MB/s while writing | B/row | Sluice RSS peak MiB | S3 server CPU % | stored = acked |",
    );
    out.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const l of report.lakes) {
        const ratio = l.vsLocal === undefined ? "1" : `**${fixed(l.vsLocal.ofMedians, 3)}** [${fixed(l.vsLocal.min, 2)}–${fixed(l.vsLocal.max, 2)}]`;
        out.push(
            `| ${l.lake} | ${thousands(l.linesPerSec.median)} [${thousands(l.linesPerSec.min)}–${thousands(l.linesPerSec.max)}] | ${ratio} | ${fixed(l.p99Ms, 1)} | ${fixed(l.serverCpuPct, 0)} | ${fixed(l.cpuUsPerLine, 2)} | ` +
                `${fixed(l.flushesPerRun, 0)} | ${fixed(l.flushMedianMs, 0)} | ${fixed(l.flushedMBps, 2)} | ${fixed(l.writeMBps, 1)} | ${fixed(l.bytesPerRow, 1)} | ${fixed(l.rssPeakMiB, 0)} | ` +
                `${l.s3ServerCpuPct === undefined ? "-" : fixed(l.s3ServerCpuPct, 0)} | ${l.storedEqualsAcked ? "yes" : "**no**"} |`,
        );
    }
    out.push("");
    out.push(
        '"MB/s while writing" is Σ Parquet bytes ÷ Σ (flush ms − encode ms) from the `flushed` log lines: the rate of writing + fdatasync (local) or uploading with `If-None-Match: *` (s3) and committing, while a flush does it. ' +
            "The S3 server shares the machine's two cores with Sluice and the load generator (MD5 and SHA-256 of every body): a remote bucket would not take that CPU.",
    );
    const verdict = report.verdict.s3WithinTarget;
    out.push("");
    const verdictText = {
        met: "**met**",
        missed: "**missed** (in every round)",
        unsettled: "**not settled**: the ratio of the medians is outside it, some rounds' ratios within; more rounds (`--rounds`) or a quieter machine",
    } as const;
    out.push(`Target (issue 16): s3 within ${TARGET_WITHIN * 100} % of local: ${verdict === undefined ? "not measured" : verdictText[verdict]}.`);
    if (report.problems.length > 0) {
        out.push("");
        out.push("Problems:");
        for (const problem of report.problems) out.push(`- ${problem}`);
    }
    return out.join("\n");
}

// ---------------------------------------------------------------------------------------------

/** `--latency-ms`: a whole number of ms ≥ 0 (0: no latency lake). */
function latencyOption(value: string | boolean | undefined): number {
    if (typeof value !== "string") return DEFAULT_LATENCY_MS;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--latency-ms must be a whole number ≥ 0, got "${value}"`);
    return n;
}

function parseSettings(options: BenchOptions): Settings {
    const v = options.values;
    return {
        seconds: options.seconds ?? DEFAULT_SECONDS,
        rounds: positiveInteger(v["rounds"], DEFAULT_ROUNDS, "--rounds"),
        latencyMs: latencyOption(v["latency-ms"]),
        connections: positiveInteger(v["connections"], DEFAULT_CONNECTIONS, "--connections"),
        batch: positiveInteger(v["batch"], DEFAULT_BATCH, "--batch"),
        flushAgeMs: positiveInteger(v["flush-age-ms"], DEFAULT_FLUSH_AGE_MS, "--flush-age-ms"),
        sets: repeated(v["set"]),
    };
}

async function run(options: BenchOptions): Promise<number> {
    let settings: Settings;
    try {
        settings = parseSettings(options);
    } catch (error) {
        process.stderr.write(`${(error as Error).message}\n`);
        return 2;
    }
    const scratch = await scratchDirectory(options.dir, "sluice-s3");
    try {
        const machine = await machineInfo(scratch.path);
        progress(machineLine(machine));
        const lakes: Lake[] = [
            { backend: "local" },
            { backend: "s3", latencyMs: 0 },
            ...(settings.latencyMs > 0 ? [{ backend: "s3", latencyMs: settings.latencyMs } as const] : []),
        ];
        const source = new LineSource(settings.batch);
        const runs: Run[] = [];
        for (const { repeat, item, index, total } of interleaved(lakes, settings.rounds, { alternate: true })) {
            progress(`[${index + 1}/${total}] ${lakeName(item)}, round ${repeat}...`);
            const result = await measure(item, repeat, settings, source, scratch.path);
            runs.push(result);
            progress(
                `  ${thousands(result.linesPerSec)} lines/s, p99 ${fixed(result.p99Ms, 1)} ms; ${result.windowFlushes.flushes} flushes (median ${fixed(result.windowFlushes.medianMs, 0)} ms), ` +
                    `${fixed(result.flushedMBps, 2)} MB/s flushed, ${fixed(result.windowFlushes.writeMBps, 1)} MB/s while writing; lake ${result.lakeFiles} files, ${fixed(result.lakeBytes / 1e6, 1)} MB; ` +
                    `RSS peak ${fixed(result.rssPeakBytes / 2 ** 20, 0)} MiB; ${result.verify?.ok === true ? `stored = acked (${thousands(result.verify.rows)} rows)` : "NOT VERIFIED"}` +
                    result.problems.map((p) => `\n    PROBLEM: ${p}`).join(""),
            );
        }
        const local = runs.filter((r) => r.lake === "local");
        const summaries = lakes.map((lake) =>
            summarize(
                lakeName(lake),
                runs.filter((r) => r.lake === lakeName(lake)),
                local,
                settings,
            ),
        );
        const s3 = summaries.find((l) => l.lake === "s3")?.vsLocal;
        const report: Report = {
            benchmark: "s3",
            date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            command: benchCommand(),
            machine,
            settings,
            lakes: summaries,
            runs,
            verdict: { s3WithinTarget: s3 === undefined ? undefined : verdictOf(s3) },
            problems: runs.flatMap((r) => r.problems.map((p) => `${r.lake} #${r.round}: ${p}`)),
        };
        const text = markdown(report);
        process.stdout.write(options.json ? jsonLine(report) : `${text}\n`);
        const resultsPath = options.values["results"];
        if (typeof resultsPath === "string") {
            await writeSection(resultsPath, "s3", text);
            progress(`section "s3" written to ${resultsPath}`);
        }
        return report.problems.length > 0 ? 1 : 0;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: {
        rounds: { type: "string" },
        "latency-ms": { type: "string" },
        connections: { type: "string" },
        batch: { type: "string" },
        "flush-age-ms": { type: "string" },
        set: { type: "string", multiple: true },
        results: { type: "string" },
    },
    optionHelp: [
        "s3 options:",
        `  --rounds R          rounds, each lake once per round, interleaved (default ${DEFAULT_ROUNDS})`,
        `  --latency-ms L      a third lake: the S3 server adds L ms to every request (default ${DEFAULT_LATENCY_MS}; 0: leave it out)`,
        `  --connections C     (default ${DEFAULT_CONNECTIONS})`,
        `  --batch N           lines per request (default ${DEFAULT_BATCH})`,
        `  --flush-age-ms MS   flush.max_age_ms of every run (default ${DEFAULT_FLUSH_AGE_MS})`,
        "  --set k=v           another Sluice setting for every run (repeatable)",
        '  --results PATH      also put the report into PATH as the marked section "s3", e.g. bench/RESULTS.md',
        `  --seconds N         measured seconds per run (default ${DEFAULT_SECONDS})`,
    ],
    run,
};

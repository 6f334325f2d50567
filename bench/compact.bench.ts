/**
 * Compaction (issue 12): `npm run bench -- compact [--hosts N] [--hours H] [--runs R]
 * [--repeats R] [--seconds S] [--set key=value] [--steady] [--no-ingest] [--cpu-prof] [--results PATH] [--json]`.
 * The defaults take 6–8 minutes on a 2-vCPU VM: ~1.5 min to write the day, 1–2 min to compact
 * it, ~1 min of queries, 6 ingest runs of 22 s; `--no-ingest` or `--hours 6` for less.
 *
 * 1. A day (`--hours`, default 24) of Telegraf-like data (bench/lib/telegraf-day.ts: cpu, mem,
 *    disk, diskio, net, system, processes, swap, kernel, netstat; `--hosts` 100 hosts, 10 s
 *    interval) is written through Sluice's own write and flush path with one flush a minute
 *    (bench/lib/offline-lake.ts): 10 files a minute, 14,400 a day, in the lake's real layout.
 * 2. A fresh `sluice serve` on that directory (background compaction off) is asked
 *    `POST /api/v1/compact` (with the `--set`s): its wall time, the server's CPU and peak RSS meanwhile (VmRSS every
 *    50 ms, and VmHWM), files and bytes before and after, and what it answered (rows in = rows
 *    out: every point of the day is distinct). `--cpu-prof` profiles that server (both threads).
 * 3. DuckDB queries over the lake before (hard links kept of the files compaction deletes) and
 *    after, in the same run: count(*), group by host, the last hour, a filtered range, count(*)
 *    over all 10 measurements; each a median over `--runs` interleaved runs, the answers equal.
 * 4. Sustained ingest (bench/lib/http-load.ts, Telegraf-like `cpu` lines as fast as answered)
 *    against a fresh server with compaction on and with it off (`compaction.interval_ms` 200,
 *    `compaction.min_files` 2 and `flush.max_rows` 100,000 on both, so compaction has work),
 *    interleaved, `--repeats` runs each; every run's store checked (rows = acknowledged lines,
 *    no key twice), the compactions counted from the server's log.
 *
 * Targets (issue 12): queries ≥ 10× faster, the lake ≥ 10× smaller, ingest with compaction
 * within 10 % of ingest without.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { runCommand } from "../test/helpers/processes.js";
import { integerList, positiveInteger, repeated, seconds as secondsOption } from "./lib/args.js";
import { type Benchmark, type BenchOptions, progress, sleep } from "./lib/benchmark.js";
import { snapshotBuild } from "./lib/build-snapshot.js";
import { type CompactedPartition, CompactionLog } from "./lib/compaction-log.js";
import { type LoadResult, runLoad } from "./lib/http-load.js";
import { interleaved, ratioByRound, type Ratio } from "./lib/interleave.js";
import { type LakeSize, lakeSize, linkSnapshot } from "./lib/lake-files.js";
import { LineSource } from "./lib/line-source.js";
import { type MachineInfo, machineInfo, machineLine, waitForQuiet } from "./lib/machine.js";
import { type OfflineLakeReport, writeLakeOffline } from "./lib/offline-lake.js";
import { benchCommand, fixed, jsonLine, thousands, writeSection } from "./lib/output.js";
import { processCpu, processMemory } from "./lib/procfs.js";
import { type ProfileSummary, formatProfile, summarizeProfiles } from "./lib/profile.js";
import { type LakeQuery, type QueryTiming, timeQueries } from "./lib/query-timing.js";
import { scratchDirectory } from "./lib/scratch.js";
import { postAdmin, startSluice } from "./lib/sluice.js";
import { type Stat, stat } from "./lib/stats.js";
import { TELEGRAF_MEASUREMENTS, TelegrafDay, hostName } from "./lib/telegraf-day.js";
import { type SluiceVerify, sqlString, verifySluice } from "./lib/verify.js";
import { PeakRss } from "./lib/window.js";

const DATABASE = "telegraf";
const DEFAULT_HOSTS = 100;
const DEFAULT_HOURS = 24;
const DEFAULT_RUNS = 3;
const DEFAULT_REPEATS = 3;
const DEFAULT_SECONDS = 20;
const DEFAULT_WARMUP = 2;
const DEFAULT_CONNECTIONS = 16;
const DEFAULT_BATCH = 5_000;
/**
 * On and off alike. Flushes of 100,000 rows leave compaction many small files to merge while the
 * load runs (with the default 1,000,000 a 30 s run leaves it almost nothing).
 */
const INGEST_SETS = ["compaction.interval_ms=200", "compaction.min_files=2", "flush.max_rows=100000"];
const RSS_EVERY_MS = 50;
const TARGET_FASTER = 10;
const TARGET_SMALLER = 10;
const TARGET_INGEST_WITHIN = 0.1;
const HOUR_MS = 3_600_000;

interface Settings {
    readonly hosts: number;
    readonly hours: number;
    readonly runs: number;
    readonly repeats: number;
    readonly seconds: number;
    readonly warmupSeconds: number;
    readonly connections: number;
    readonly batch: number;
    readonly sets: readonly string[];
    readonly cpuProf: boolean;
    readonly ingest: boolean;
    /** Every field keeps its first value (`--steady`). */
    readonly steady: boolean;
}

// ---------------------------------------------------------------------------------------------
// 2. Compaction

interface CompactionRun {
    readonly ms: number;
    readonly status: number;
    /** What POST /api/v1/compact answered. */
    readonly answer: Readonly<Record<string, number>> | string;
    readonly serverCpuSeconds: number;
    readonly rssIdleBytes: number;
    readonly rssPeakBytes: number;
    readonly hwmBytes: number;
    readonly partitionMs: Stat;
    readonly slowest: CompactedPartition | undefined;
    readonly exitCode: number | null;
    readonly profiles: readonly ProfileSummary[];
}

async function compactLake(dataDir: string, cli: string, sets: readonly string[], profileDir: string | undefined): Promise<CompactionRun> {
    const sluice = await startSluice({ dataDir, cli, sets: ["compaction.enabled=false", ...sets], ...(profileDir === undefined ? {} : { profileDir }) });
    const log = new CompactionLog();
    sluice.service.child.stdout!.on("data", (chunk: Buffer) => {
        log.onOutput(chunk);
    });
    const pid = sluice.service.pid;
    try {
        const rssIdleBytes = (await processMemory(pid))?.rss ?? Number.NaN;
        const cpu0 = await processCpu(pid);
        const rss = new PeakRss(pid);
        await rss.sample();
        rss.every(RSS_EVERY_MS);
        const monotonicStart = Number(process.hrtime.bigint() / 1000n);
        const started = performance.now();
        const { status, body } = await postAdmin(sluice.url, "/api/v1/compact");
        const ms = performance.now() - started;
        const monotonicEnd = Number(process.hrtime.bigint() / 1000n);
        rss.stop();
        await rss.sample();
        const cpu1 = await processCpu(pid);
        const hwmBytes = (await processMemory(pid))?.hwm ?? Number.NaN;
        let answer: CompactionRun["answer"];
        try {
            answer = JSON.parse(body) as Record<string, number>;
        } catch {
            answer = body.slice(0, 500);
        }
        const stopped = await sluice.service.stop(120_000);
        const profiles = profileDir === undefined ? [] : await summarizeProfiles(profileDir, { start: monotonicStart, end: monotonicEnd });
        const slowest = [...log.partitions].sort((a, b) => b.ms - a.ms)[0];
        return {
            ms,
            status,
            answer,
            serverCpuSeconds: cpu0 === undefined || cpu1 === undefined ? Number.NaN : cpu1.user + cpu1.system - cpu0.user - cpu0.system,
            rssIdleBytes,
            rssPeakBytes: rss.peak,
            hwmBytes,
            partitionMs: stat(log.partitions.map((p) => p.ms)),
            slowest,
            exitCode: stopped.code,
            profiles,
        };
    } finally {
        if (!sluice.service.exited()) await sluice.service.stop(10_000);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Queries

function queries(startMs: number, hours: number): LakeQuery[] {
    const iso = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
    const end = startMs + hours * HOUR_MS;
    // The time column is TIMESTAMP_NS (UTC, no zone): compared with one, so its statistics prune.
    const at = (ms: number) => `'${iso(ms)}'::TIMESTAMP_NS`;
    const lastHour = `time >= ${at(end - HOUR_MS)}`;
    // A quarter of the data's span, from its middle: one host's total CPU.
    const from = startMs + Math.floor(hours / 2) * HOUR_MS;
    const range = `time >= ${at(from)} AND time < ${at(from + Math.max(1, Math.floor(hours / 4)) * HOUR_MS)}`;
    return [
        { name: "count(*)", sql: (source) => `SELECT count(*) AS n FROM ${source("cpu")}` },
        {
            name: "group by host",
            sql: (source) => `SELECT host, avg(usage_user) AS user, max(usage_system) AS system FROM ${source("cpu")} WHERE cpu = 'cpu-total' GROUP BY host ORDER BY host`,
        },
        { name: "last hour", sql: (source) => `SELECT host, count(*) AS n, avg(usage_idle) AS idle FROM ${source("cpu")} WHERE ${lastHour} GROUP BY host ORDER BY host` },
        {
            name: "filtered range",
            sql: (source) =>
                `SELECT count(*) AS n, avg(usage_user) AS user, max(usage_iowait) AS iowait FROM ${source("cpu")} WHERE host = '${hostName(42)}' AND cpu = 'cpu-total' AND ${range}`,
        },
        { name: "count(*), 10 measurements", sql: (source) => `SELECT count(*) AS n FROM ${source("*")}` },
    ];
}

/** `read_parquet` over a measurement (or `*`: all) of a lake root (`<data>/parquet`). */
function sourceOf(root: string): (measurement: string) => string {
    return (measurement) => `read_parquet(${sqlString(join(root, DATABASE, measurement, "**", "*.parquet"))}${measurement === "*" ? ", union_by_name = true" : ""})`;
}

// ---------------------------------------------------------------------------------------------
// 4. Ingest with compaction on and off

interface IngestRun {
    readonly compaction: "on" | "off";
    readonly repeat: number;
    readonly load: LoadResult | undefined;
    readonly verify: SluiceVerify | undefined;
    readonly compacted: ReturnType<CompactionLog["totals"]>;
    readonly busyBefore: number;
    readonly problems: readonly string[];
}

/** verifySluice, again when a query met a file that a compaction had just swapped out (README: retry). */
async function verifyRetrying(url: string, dataDir: string, load: LoadResult): Promise<SluiceVerify> {
    for (let attempt = 1; ; attempt++) {
        try {
            return await verifySluice(url, dataDir, load);
        } catch (error) {
            if (attempt >= 5 || !/No such file|not found|Could not open|does not exist/i.test((error as Error).message)) throw error;
            await sleep(200);
        }
    }
}

async function ingestRun(compaction: "on" | "off", repeat: number, settings: Settings, source: LineSource, scratch: string, cli: string): Promise<IngestRun> {
    const dataDir = join(scratch, `ingest-${compaction}-${repeat}`);
    const quiet = await waitForQuiet(25, 10_000);
    const sluice = await startSluice({ dataDir, cli, sets: [`compaction.enabled=${compaction === "on"}`, ...INGEST_SETS, ...settings.sets] });
    const log = new CompactionLog();
    sluice.service.child.stdout!.on("data", (chunk: Buffer) => {
        log.onOutput(chunk);
    });
    const problems: string[] = [];
    let load: LoadResult | undefined;
    let verify: SluiceVerify | undefined;
    try {
        load = await runLoad({
            url: sluice.writeUrl,
            connections: settings.connections,
            batchLines: settings.batch,
            seconds: settings.seconds,
            warmupSeconds: settings.warmupSeconds,
            source,
            serverPid: sluice.service.pid,
        });
        verify = await verifyRetrying(sluice.url, dataDir, load);
        problems.push(...verify.problems);
        if (load.stoppedEarly !== undefined) problems.push(`load: ${load.stoppedEarly}`);
        for (const [status, count] of Object.entries(load.total.non2xx)) problems.push(`${count} × HTTP ${status}: ${load.total.samples[status] ?? ""}`);
        for (const [code, count] of Object.entries(load.total.errors)) problems.push(`${count} × ${code}`);
    } catch (error) {
        problems.push(`run failed: ${(error as Error).message.slice(0, 2000)}`);
    } finally {
        const stopped = await sluice.service.stop(120_000);
        if (stopped.code !== 0) problems.push(`sluice exited with ${stopped.code ?? stopped.signal}: ${sluice.service.output().slice(-500)}`);
        await rm(dataDir, { recursive: true, force: true });
    }
    return { compaction, repeat, load, verify, compacted: log.totals(), busyBefore: quiet.busyPct, problems };
}

// ---------------------------------------------------------------------------------------------
// Report

interface Report {
    readonly benchmark: "compact";
    readonly date: string;
    readonly command: string;
    readonly machine: MachineInfo;
    readonly git: string;
    readonly settings: Settings & { readonly measurements: readonly string[]; readonly startIso: string; readonly rowsPerMinute: number };
    readonly generated: OfflineLakeReport;
    readonly before: LakeSize;
    readonly after: LakeSize;
    readonly compaction: CompactionRun;
    readonly queries: readonly QueryTiming[];
    readonly ingest: readonly IngestRun[];
    readonly ingestRatio: Ratio | undefined;
    readonly verdict: { readonly smaller: number; readonly slowestSpeedup: number; readonly ingestWithin: boolean | undefined };
    readonly problems: readonly string[];
}

const MB = (bytes: number) => fixed(bytes / 1e6, 1);
const MiB = (bytes: number) => fixed(bytes / 2 ** 20, 0);
const range = (s: Stat, digits: number) => `${fixed(s.median, digits)} [${fixed(s.min, digits)}–${fixed(s.max, digits)}]`;
const thousandsRange = (s: Stat) => `${thousands(s.median)} [${thousands(s.min)}–${thousands(s.max)}]`;
const met = (ok: boolean) => (ok ? "met" : "**NOT met**");

function speedup(timing: QueryTiming): number {
    return timing.ms.before!.median / timing.ms.after!.median;
}

function markdown(report: Report): string {
    const s = report.settings;
    const c = report.compaction;
    const out: string[] = [];
    out.push(`## Compaction: \`${report.command}\``);
    out.push("");
    out.push(`Generated by bench/compact.bench.ts on ${report.date}. ${machineLine(report.machine)}. Sluice: ${report.git}.`);
    out.push("");
    out.push(
        `Data: ${s.hours} h of Telegraf-like data${s.steady ? " (**steady**: every field keeps its first value)" : ""} from ${s.startIso} (${s.measurements.length} measurements: ${s.measurements.join(", ")}; ${s.hosts} hosts, 10 s interval, ` +
            `${thousands(s.rowsPerMinute)} rows a minute, ${thousands(report.generated.rows)} rows), written through Sluice's write and flush path with one flush a minute ` +
            `(${thousands(report.generated.flushes)} flushes in ${fixed(report.generated.seconds, 0)} s, fsync skipped).`,
    );
    out.push("");
    out.push("| lake | Parquet files | MB | partitions (measurement × hour) |");
    out.push("|---|---|---|---|");
    out.push(`| before compaction | ${thousands(report.before.files)} | ${MB(report.before.bytes)} | ${report.before.partitions} |`);
    out.push(`| after | ${thousands(report.after.files)} | ${MB(report.after.bytes)} | ${report.after.partitions} |`);
    out.push(`| before ÷ after | **${fixed(report.before.files / report.after.files, 1)}× fewer** | **${fixed(report.verdict.smaller, 1)}× smaller** | |`);
    out.push("");
    // What merging saves is per-file overhead (footer, page headers, dictionaries) and what a
    // longer column compresses better; rows that are mostly noise keep their bytes.
    const savedPerFile = (report.before.bytes - report.after.bytes) / (report.before.files - report.after.files);
    out.push(
        `Bytes: ${fixed(report.before.bytes / report.generated.rows, 1)} per row before, ${fixed(report.after.bytes / report.generated.rows, 1)} after; ` +
            (report.before.files > report.after.files ? `merging saved ${fixed(savedPerFile / 1000, 1)} kB per file removed.` : "no file was merged."),
    );
    out.push("");
    const answer = typeof c.answer === "string" ? c.answer : JSON.stringify(c.answer);
    out.push(
        `Compaction (\`POST /api/v1/compact\` to a fresh \`sluice serve\` on the data directory, default settings but \`compaction.enabled=false\` (no background pass)${s.sets.length === 0 ? "" : `, \`${s.sets.join("`, `")}\``}): **${fixed(c.ms / 1000, 1)} s** (HTTP ${c.status}: \`${answer}\`), ` +
            `server CPU ${fixed(c.serverCpuSeconds, 1)} s; per partition ${range(c.partitionMs, 0)} ms${c.slowest === undefined ? "" : ` (slowest: ${c.slowest.partition}, ${c.slowest.filesIn} files, ${thousands(c.slowest.rowsIn)} rows)`}; ` +
            `server RSS idle ${MiB(c.rssIdleBytes)} MiB → **peak ${MiB(c.rssPeakBytes)} MiB** (VmRSS every ${RSS_EVERY_MS} ms; VmHWM over its life ${MiB(c.hwmBytes)} MiB); exit ${c.exitCode ?? "?"}.`,
    );
    out.push("");
    out.push(
        `DuckDB (\`@duckdb/node-api\`, a fresh in-memory instance per run, \`read_parquet('<data>/parquet/${DATABASE}/cpu/**/*.parquet')\`; the last query over every measurement), ` +
            `median [min–max] ms of ${s.runs} runs after one warm-up, before and after interleaved; the answers ${report.queries.every((q) => q.disagreeing.length === 0) ? "are equal" : "**differ**"}:`,
    );
    out.push("");
    out.push("| query | before ms | after ms | faster |");
    out.push("|---|---|---|---|");
    for (const q of report.queries) out.push(`| ${q.name} | ${range(q.ms.before!, 1)} | ${range(q.ms.after!, 1)} | **${fixed(speedup(q), 1)}×** |`);
    out.push("");
    if (report.ingest.length > 0) {
        out.push(
            `Ingest with compaction on and off (\`${INGEST_SETS.concat(s.sets).join("`, `")}\` on both; bench/lib/http-load.ts: Telegraf-like \`cpu\` lines, C=${s.connections}, ` +
                `batch ${thousands(s.batch)}, ${s.seconds} s after ${s.warmupSeconds} s warm-up, a fresh server each run, ${s.repeats} run(s) each, interleaved):`,
        );
        out.push("");
        out.push("| compaction | lines/s median [min–max] | p99 ms | server CPU % | RSS peak MiB | compacted during the runs (partitions, files in → out) | stored = acked |");
        out.push("|---|---|---|---|---|---|---|");
        for (const setting of ["off", "on"] as const) {
            const runs = report.ingest.filter((r) => r.compaction === setting);
            const loads = runs.flatMap((r) => (r.load === undefined ? [] : [r.load]));
            const compacted = runs.reduce((sum, r) => ({ p: sum.p + r.compacted.partitions, i: sum.i + r.compacted.filesIn, o: sum.o + r.compacted.filesOut }), {
                p: 0,
                i: 0,
                o: 0,
            });
            out.push(
                `| ${setting} | **${thousandsRange(stat(loads.map((l) => l.window.linesPerSec)))}** | ${fixed(stat(loads.map((l) => l.window.p99Ms)).median, 1)} | ` +
                    `${fixed(stat(loads.map((l) => l.server?.cpuPct ?? Number.NaN)).median, 0)} | ${fixed(stat(loads.map((l) => (l.server?.rssPeakBytes ?? Number.NaN) / 2 ** 20)).median, 0)} | ` +
                    `${compacted.p}, ${compacted.i} → ${compacted.o} | ${runs.filter((r) => r.verify?.ok === true).length}/${runs.length} |`,
            );
        }
        const r = report.ingestRatio;
        out.push("");
        out.push(`On ÷ off (lines/s): **${fixed(r?.ofMedians, 3)}×** (per-round ratios ${fixed(r?.min, 3)}–${fixed(r?.max, 3)}).`);
        out.push("");
    }
    const slowest = Math.min(...report.queries.map(speedup));
    out.push(
        `Targets: queries ≥ ${TARGET_FASTER}× faster: ${met(slowest >= TARGET_FASTER)} (the least, ${fixed(slowest, 1)}×); ` +
            `≥ ${TARGET_SMALLER}× smaller: ${met(report.verdict.smaller >= TARGET_SMALLER)} (${fixed(report.verdict.smaller, 1)}×)` +
            (report.verdict.ingestWithin === undefined ? "." : `; ingest within ${TARGET_INGEST_WITHIN * 100} %: ${met(report.verdict.ingestWithin)}.`),
    );
    for (const problem of report.problems) out.push(`- PROBLEM: ${problem}`);
    for (const [i, profile] of c.profiles.entries()) {
        out.push("");
        out.push("```text");
        out.push(formatProfile(profile, `compaction server profile #${i + 1} (${profile.file.split("/").at(-1)})`));
        out.push("```");
    }
    return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

function parseSettings(options: BenchOptions): Settings {
    return {
        hosts: positiveInteger(options.values["hosts"], DEFAULT_HOSTS, "--hosts"),
        hours: positiveInteger(options.values["hours"], DEFAULT_HOURS, "--hours"),
        runs: positiveInteger(options.values["runs"], DEFAULT_RUNS, "--runs"),
        repeats: integerList(options.values["repeats"], [DEFAULT_REPEATS], "--repeats")[0]!,
        seconds: options.seconds ?? DEFAULT_SECONDS,
        warmupSeconds: secondsOption(options.values["warmup"], DEFAULT_WARMUP, "--warmup"),
        connections: positiveInteger(options.values["connections"], DEFAULT_CONNECTIONS, "--connections"),
        batch: positiveInteger(options.values["batch"], DEFAULT_BATCH, "--batch"),
        sets: repeated(options.values["set"]),
        cpuProf: options.values["cpu-prof"] === true,
        ingest: options.values["no-ingest"] !== true,
        steady: options.values["steady"] === true,
    };
}

async function run(options: BenchOptions): Promise<number> {
    let settings: Settings;
    try {
        settings = parseSettings(options);
    } catch (error) {
        progress((error as Error).message);
        return 2;
    }
    const scratch = await scratchDirectory(options.dir, "sluice-compact");
    try {
        const build = await snapshotBuild(scratch.path);
        const machine = await machineInfo(scratch.path);
        if (!options.json) process.stdout.write(`${machineLine(machine)}\n`);
        const problems: string[] = [];

        // 1. A day of files, one flush a minute.
        const dataDir = join(scratch.path, "data");
        const startMs = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000;
        const day = new TelegrafDay(settings.hosts, startMs, { steady: settings.steady });
        const minutes = settings.hours * 60;
        progress(
            `writing ${minutes} minutes of ${TELEGRAF_MEASUREMENTS.length} measurements from ${settings.hosts} hosts (${thousands(day.rowsPerMinute)} rows a minute), one flush a minute...`,
        );
        const generated = await writeLakeOffline({
            dataDir,
            database: DATABASE,
            startMs,
            minutes,
            batchesOf: (minute) => day.minute(minute),
            onProgress: (done, so) => {
                if (done % 60 === 0) progress(`  ${done / 60} h: ${thousands(so.files)} files, ${MB(so.bytes)} MB, ${fixed(so.seconds, 0)} s`);
            },
        });
        await runCommand("sync", []);
        const lakeRoot = join(dataDir, "parquet");
        const before = await lakeSize(join(lakeRoot, DATABASE));
        const beforeRoot = join(scratch.path, "before", "parquet");
        await linkSnapshot(lakeRoot, beforeRoot);
        progress(`before: ${thousands(before.files)} files, ${MB(before.bytes)} MB in ${before.partitions} partitions (written in ${fixed(generated.seconds, 0)} s)`);

        // 2. Compaction.
        progress("compacting (POST /api/v1/compact)...");
        await waitForQuiet(25, 10_000);
        const profileDir = settings.cpuProf ? join(scratch.path, "profiles") : undefined;
        const compaction = await compactLake(dataDir, build.cli, settings.sets, profileDir);
        const after = await lakeSize(join(lakeRoot, DATABASE));
        progress(`after: ${thousands(after.files)} files, ${MB(after.bytes)} MB in ${fixed(compaction.ms / 1000, 1)} s, server RSS peak ${MiB(compaction.rssPeakBytes)} MiB`);
        if (compaction.status !== 200) problems.push(`POST /api/v1/compact answered ${compaction.status}: ${JSON.stringify(compaction.answer)}`);
        if (compaction.exitCode !== 0) problems.push(`the compacting server exited with ${compaction.exitCode}`);
        if (typeof compaction.answer !== "string" && (compaction.answer.rows_in !== generated.rows || compaction.answer.rows_out !== generated.rows)) {
            problems.push(`compaction merged ${compaction.answer.rows_in} rows into ${compaction.answer.rows_out}; ${generated.rows} were written (all distinct)`);
        }

        // 3. Queries, before and after.
        progress(`DuckDB, ${settings.runs} runs per query and lake...`);
        const timings = await timeQueries(queries(startMs, settings.hours), { before: sourceOf(beforeRoot), after: sourceOf(lakeRoot) }, settings.runs, progress);
        for (const timing of timings) if (timing.disagreeing.length > 0) problems.push(`${timing.name}: the lakes answer differently`);

        // 4. Ingest, compaction on and off.
        const ingest: IngestRun[] = [];
        if (settings.ingest) {
            const source = new LineSource(settings.batch);
            for (const { repeat, item, index, total } of interleaved(["off", "on"] as const, settings.repeats, { alternate: true })) {
                progress(`[${index + 1}/${total}] ingest, compaction ${item}, repeat ${repeat}...`);
                const result = await ingestRun(item, repeat, settings, source, scratch.path, build.cli);
                ingest.push(result);
                progress(
                    `  ${fixed(result.load?.window.linesPerSec, 0)} lines/s; compacted ${result.compacted.partitions} partitions (${result.compacted.filesIn} → ${result.compacted.filesOut} files, ${result.compacted.ms} ms)` +
                        result.problems.map((p) => `\n    PROBLEM: ${p}`).join(""),
                );
                problems.push(...result.problems.map((p) => `ingest ${item} #${repeat}: ${p}`));
            }
        }
        const pick = (setting: "on" | "off") =>
            ingest.flatMap((r) => (r.compaction === setting && r.load !== undefined ? [{ repeat: r.repeat, value: r.load.window.linesPerSec }] : []));
        const ingestRatio = ratioByRound(pick("on"), pick("off"));

        const report: Report = {
            benchmark: "compact",
            date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            command: benchCommand(),
            machine,
            git: build.description,
            settings: { ...settings, measurements: TELEGRAF_MEASUREMENTS, startIso: new Date(startMs).toISOString(), rowsPerMinute: day.rowsPerMinute },
            generated,
            before,
            after,
            compaction,
            queries: timings,
            ingest,
            ingestRatio,
            verdict: {
                smaller: before.bytes / after.bytes,
                slowestSpeedup: Math.min(...timings.map(speedup)),
                ingestWithin: ingestRatio === undefined ? undefined : Math.abs(ingestRatio.ofMedians - 1) <= TARGET_INGEST_WITHIN,
            },
            problems,
        };
        const text = markdown(report);
        process.stdout.write(options.json ? jsonLine(report) : `${text}\n`);
        const resultsPath = options.values["results"];
        if (typeof resultsPath === "string") {
            const section = settings.steady ? "compact-steady" : "compact";
            await writeSection(resultsPath, section, text);
            progress(`section "${section}" written to ${resultsPath}`);
        }
        return problems.length > 0 ? 1 : 0;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: {
        hosts: { type: "string" },
        hours: { type: "string" },
        runs: { type: "string" },
        repeats: { type: "string" },
        warmup: { type: "string" },
        connections: { type: "string" },
        batch: { type: "string" },
        set: { type: "string", multiple: true },
        "cpu-prof": { type: "boolean" },
        "no-ingest": { type: "boolean" },
        steady: { type: "boolean" },
        results: { type: "string" },
    },
    optionHelp: [
        "compact options:",
        `  --hosts N         hosts reporting (default ${DEFAULT_HOSTS})`,
        `  --hours H         hours of data, one flush a minute (default ${DEFAULT_HOURS}: ${DEFAULT_HOURS * 60 * TELEGRAF_MEASUREMENTS.length} files)`,
        `  --runs R          DuckDB runs per query and lake, after one warm-up (default ${DEFAULT_RUNS})`,
        `  --repeats R       ingest runs with compaction on and off each, interleaved (default ${DEFAULT_REPEATS})`,
        `  --warmup S        unmeasured seconds of load before each ingest window (default ${DEFAULT_WARMUP})`,
        `  --connections C   ingest connections (default ${DEFAULT_CONNECTIONS})`,
        `  --batch N         ingest lines per request (default ${DEFAULT_BATCH})`,
        `  --set key=value   more Sluice configuration for the compacting server and the ingest runs, on and off alike (repeatable)`,
        "  --cpu-prof        run the compacting server under node --cpu-prof and summarise the compaction's self time",
        "  --no-ingest       leave out the ingest runs",
        "  --steady          every field keeps its first value (the most regular data: compaction's best case for bytes)",
        '  --results PATH    also put the report into PATH as the marked section "compact" ("compact-steady" with --steady), e.g. bench/RESULTS.md',
        `  (--seconds: measured seconds per ingest run, default ${DEFAULT_SECONDS})`,
    ],
    run,
};

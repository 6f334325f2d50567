/**
 * End-to-end HTTP ingest benchmark: `npm run bench -- http [--seconds N] [--connections C]
 * [--batch N] [--adapters node,hyper-express] [--rate L | --shares P,...] [--cpu-prof] [--sink] [--gzip]
 * [--json]`.
 *
 * For each `http.server` adapter, a fresh `sluice serve` process (the built CLI, 127.0.0.1, a
 * free port, a fresh data directory under the scratch directory on the working disk, default
 * configuration: `wal.sync_mode = fdatasync`) is loaded by `bench/lib/http-load.ts` (batches of 5,000
 * Telegraf-like lines over 16 keep-alive connections to `/write?db=bench`, 30 s after a 2 s
 * warm-up). Reported: acknowledged lines/s and field values/s, p50/p99 request latency, the
 * server's CPU (all threads, and the busiest threads) and RSS (idle, and peak sampled every
 * 100 ms), the client's CPU, what else used the machine (other processes' user time, system
 * time charged to neither process such as loopback softirqs and writeback, steal), and from the
 * server's /metrics over the window: WAL MB/s, syncs/s, entries per group commit, rows flushed.
 *
 * Then every run is checked: `POST /api/v1/flush`, and DuckDB counts the rows of
 * `<data>/parquet/**\/*.parquet`: the count must equal the acknowledged lines (every line the
 * generator sends is a distinct (series, time) point), no (series, time) key twice, every field
 * value present, the times within those sent. The server is then stopped with SIGTERM (a
 * graceful shutdown) and its exit checked.
 *
 * `--cpu-prof` runs the server under `node --cpu-prof` and summarises the profiles' self time
 * over the measured window (samples outside it are left out): by area (Sluice module folder,
 * npm package, Node internals, GC, wasm) and by function, for each thread that wrote one.
 * `--sink` first measures the load generator alone against a do-nothing node:http server (its
 * ceiling on this machine). `--shares 50,60,70,80` then runs each server again, paced at those
 * shares of its own unpaced lines/s (fresh data each time), for latency by load. The issue's
 * targets: ≥ 500,000 lines/s durable (fdatasync); p99 < 50 ms at 80 % of the maximum.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { processMemory } from "./lib/procfs.js";
import { startService } from "../test/helpers/processes.js";
import { choiceList, positiveInteger, repeated, seconds as secondsOption } from "./lib/args.js";
import { type Benchmark, type BenchOptions, progress } from "./lib/benchmark.js";
import { snapshotBuild } from "./lib/build-snapshot.js";
import { FlushTimeline, type LatencySplit } from "./lib/flush-timeline.js";
import { type LoadOptions, type LoadResult, runLoad } from "./lib/http-load.js";
import { LineSource } from "./lib/line-source.js";
import { machineInfo, machineLine, waitForQuiet } from "./lib/machine.js";
import { type TableColumn, benchCommand, fixed, formatTable, jsonLine, writeSection } from "./lib/output.js";
import { DEFAULT_TOP, type ProfileSummary, formatProfile, summarizeProfiles } from "./lib/profile.js";
import { scratchDirectory } from "./lib/scratch.js";
import { BENCH_DATABASE, scrapeMetrics, startSluice } from "./lib/sluice.js";
import { type SluiceVerify, verifySluice } from "./lib/verify.js";

const DEFAULT_SECONDS = 30;
const DEFAULT_WARMUP = 2;
const DEFAULT_CONNECTIONS = 16;
const DEFAULT_BATCH = 5_000;
const ADAPTERS = ["node", "hyper-express"] as const;
type Adapter = (typeof ADAPTERS)[number];
const TARGET_LINES_PER_SEC = 500_000;

// ---------------------------------------------------------------------------------------------
// A do-nothing sink (the load generator's ceiling)

const SINK_SCRIPT = `
const { createServer } = require("node:http");
const server = createServer((req, res) => { req.resume(); req.on("end", () => { res.writeHead(204); res.end(); }); });
server.keepAliveTimeout = 65000;
server.listen(0, "127.0.0.1", () => console.log("listening on http://127.0.0.1:" + server.address().port));
process.on("SIGTERM", () => process.exit(0));
`;

// ---------------------------------------------------------------------------------------------
// Runs

interface WindowMetrics {
    readonly walMBps: number;
    readonly walEntriesPerSec: number;
    readonly syncsPerSec: number;
    readonly entriesPerGroup: number;
    readonly flushes: number;
    readonly flushedRows: number;
    readonly flushedRowsPerSec: number;
    readonly bufferedRowsAtEnd: number;
    readonly flushFailures: number;
    readonly linesAccepted: number;
}

interface RunResult {
    readonly name: string;
    readonly load: LoadResult;
    readonly idleRssBytes: number;
    readonly metrics: WindowMetrics | undefined;
    readonly verify: SluiceVerify | undefined;
    readonly shutdown: { readonly ms: number; readonly code: number | null; readonly killed: boolean } | undefined;
    readonly profiles: readonly ProfileSummary[];
    readonly quiet: { readonly busyPct: number; readonly waitedMs: number };
    /** Sluice only: window latency split by whether a flush ran meanwhile (from its `flushed` log lines). */
    readonly flushSplit: LatencySplit | undefined;
    readonly problems: readonly string[];
}

function windowMetrics(before: Map<string, number>, after: Map<string, number>, seconds: number): WindowMetrics {
    const d = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    const groups = d("sluice_wal_groups_total");
    return {
        walMBps: d("sluice_wal_bytes_total") / 1e6 / seconds,
        walEntriesPerSec: d("sluice_wal_entries_total") / seconds,
        syncsPerSec: d("sluice_wal_syncs_total") / seconds,
        entriesPerGroup: groups === 0 ? Number.NaN : d("sluice_wal_entries_total") / groups,
        flushes: d("sluice_flushes_total"),
        flushedRows: d("sluice_flushed_rows_total"),
        flushedRowsPerSec: d("sluice_flushed_rows_total") / seconds,
        bufferedRowsAtEnd: after.get("sluice_buffered_rows") ?? Number.NaN,
        flushFailures: d("sluice_flush_failures_total"),
        linesAccepted: d("sluice_lines_accepted_total"),
    };
}

interface Settings {
    readonly seconds: number;
    readonly warmupSeconds: number;
    readonly connections: number;
    readonly batch: number;
    readonly gzip: boolean;
    readonly cpuProf: boolean;
    readonly top: number;
    readonly sets: readonly string[];
    /** Offered lines/s (`--rate`); unset: as fast as the server answers. */
    readonly rate: number | undefined;
    /** `--shares`: after each adapter's unpaced run, one paced run at each of these % of its lines/s. */
    readonly shares: readonly number[];
}

/** The load every run of this benchmark offers, against `url`, sampling server `pid`. */
function loadOptions(settings: Settings, source: LineSource, url: string, pid: number): LoadOptions {
    return {
        url,
        connections: settings.connections,
        batchLines: settings.batch,
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
        gzip: settings.gzip,
        source,
        serverPid: pid,
        ...(settings.rate === undefined ? {} : { linesPerSecond: settings.rate }),
    };
}

async function runAdapter(adapter: Adapter, settings: Settings, scratch: string, source: LineSource, profileRoot: string | undefined, cli: string): Promise<RunResult> {
    const dataDir = join(scratch, `data-${adapter}${settings.rate === undefined ? "" : `-${settings.rate}`}`);
    const profileDir = profileRoot === undefined ? undefined : join(profileRoot, adapter);
    if (profileDir !== undefined) await mkdir(profileDir, { recursive: true });
    const quiet = await waitForQuiet();
    const sluice = await startSluice({ dataDir, adapter, ...(profileDir === undefined ? {} : { profileDir }), sets: settings.sets, cli });
    const problems: string[] = [];
    let shutdown: RunResult["shutdown"];
    try {
        const idleRssBytes = (await processMemory(sluice.service.pid))?.rss ?? Number.NaN;
        let before = new Map<string, number>();
        let after = new Map<string, number>();
        const timeline = new FlushTimeline();
        sluice.service.child.stdout!.on("data", (chunk: Buffer) => {
            timeline.onOutput(chunk);
        });
        const load = await runLoad({
            ...loadOptions(settings, source, sluice.writeUrl, sluice.service.pid),
            onWindow: async (edge) => {
                if (edge === "start") before = await scrapeMetrics(sluice.url);
                else after = await scrapeMetrics(sluice.url);
            },
            onAnswer: (sentMs, latencyMs) => {
                timeline.record(sentMs, latencyMs);
            },
        });
        const flushSplit = timeline.split();
        const metrics = windowMetrics(before, after, load.seconds);
        progress(`  ${adapter}: ${fixed(load.window.linesPerSec, 0)} lines/s; flushing and counting...`);
        const verify = await verifySluice(sluice.url, dataDir, load);
        problems.push(...verify.problems);
        const stopped = await sluice.service.stop(120_000);
        shutdown = { ms: stopped.ms, code: stopped.code, killed: stopped.killed };
        if (stopped.code !== 0)
            problems.push(`sluice exited with ${stopped.code ?? stopped.signal}${stopped.killed ? " (SIGKILL after 120 s)" : ""}: ${sluice.service.output().slice(-500)}`);
        if (load.stoppedEarly !== undefined) problems.push(`load: ${load.stoppedEarly}`);
        if (Object.keys(load.total.errors).length > 0) problems.push(`errors: ${JSON.stringify(load.total.errors)}`);
        for (const [status, count] of Object.entries(load.total.non2xx)) problems.push(`${count} × ${status}: ${load.total.samples[status] ?? ""}`);
        const profiles = profileDir === undefined ? [] : await summarizeProfiles(profileDir, load.windowMonotonicUs, settings.top);
        return { name: adapter, load, idleRssBytes, metrics, verify, shutdown, profiles, quiet, flushSplit, problems };
    } finally {
        if (!sluice.service.exited()) await sluice.service.stop(10_000);
    }
}

async function runSink(settings: Settings, source: LineSource): Promise<RunResult> {
    const quiet = await waitForQuiet();
    const { service, match } = await startService("sink", process.execPath, ["-e", SINK_SCRIPT], /listening on (http:\/\/\S+)/);
    try {
        const idleRssBytes = (await processMemory(service.pid))?.rss ?? Number.NaN;
        const load = await runLoad(loadOptions(settings, source, `${match![1]}/write?db=${BENCH_DATABASE}`, service.pid));
        return {
            name: "sink (no-op node:http)",
            load,
            idleRssBytes,
            metrics: undefined,
            verify: undefined,
            shutdown: undefined,
            profiles: [],
            quiet,
            flushSplit: undefined,
            problems: [],
        };
    } finally {
        await service.stop(5_000);
    }
}

// ---------------------------------------------------------------------------------------------
// Report

const MB = (bytes: number) => fixed(bytes / 2 ** 20, 0);

const MAIN_TABLE: readonly TableColumn<RunResult>[] = [
    { title: "server", align: "left", cell: (r) => r.name },
    { title: "lines/s", align: "right", cell: (r) => fixed(r.load.window.linesPerSec, 0) },
    { title: "values/s", align: "right", cell: (r) => fixed(r.load.window.fieldValuesPerSec, 0) },
    { title: "MB/s", align: "right", cell: (r) => fixed(r.load.window.wireMBps, 1) },
    { title: "p50 ms", align: "right", cell: (r) => fixed(r.load.window.p50Ms, 1) },
    { title: "p99 ms", align: "right", cell: (r) => fixed(r.load.window.p99Ms, 1) },
    { title: "non-2xx", align: "right", cell: (r) => String(Object.values(r.load.total.non2xx).reduce((a, b) => a + b, 0)) },
    { title: "errors", align: "right", cell: (r) => String(Object.values(r.load.total.errors).reduce((a, b) => a + b, 0)) },
    { title: "server CPU %", align: "right", cell: (r) => fixed(r.load.server?.cpuPct, 0) },
    { title: "client CPU %", align: "right", cell: (r) => fixed(r.load.client.cpuPct, 0) },
    { title: "other procs %", align: "right", cell: (r) => fixed(Math.max(0, r.load.machine?.otherUserPct ?? Number.NaN), 0) },
    { title: "unattributed sys %", align: "right", cell: (r) => fixed(Math.max(0, (r.load.machine?.otherPct ?? Number.NaN) - (r.load.machine?.otherUserPct ?? Number.NaN)), 0) },
    { title: "steal %", align: "right", cell: (r) => fixed(r.load.machine?.stealPct, 0) },
    { title: "RSS idle→peak MB", align: "right", cell: (r) => `${MB(r.idleRssBytes)}→${MB(r.load.server?.rssPeakBytes ?? Number.NaN)}` },
    {
        title: "stored = acked",
        align: "left",
        cell: (r) => (r.verify === undefined ? "-" : r.verify.ok ? `yes (${r.verify.rows})` : `NO (${r.verify.rows} / ${r.load.total.ackedLines})`),
    },
];

const COST_TABLE: readonly TableColumn<RunResult>[] = [
    { title: "server", align: "left", cell: (r) => r.name },
    { title: "server µs CPU/line", align: "right", cell: (r) => fixed(((r.load.server?.cpuSeconds ?? Number.NaN) * 1e6) / r.load.window.ackedLines, 2) },
    { title: "client µs CPU/line", align: "right", cell: (r) => fixed((r.load.client.cpuSeconds * 1e6) / r.load.window.ackedLines, 2) },
    { title: "main thread %", align: "right", cell: (r) => fixed(r.load.server?.threads.find((t) => t.main)?.cpuPct, 0) },
    {
        title: "other threads % (busiest)",
        align: "left",
        cell: (r) =>
            r.load.server?.threads
                .filter((t) => !t.main)
                .slice(0, 4)
                .map((t) => fixed(t.cpuPct, 0))
                .join(" ") ?? "-",
    },
    { title: "WAL MB/s", align: "right", cell: (r) => fixed(r.metrics?.walMBps, 1) },
    { title: "syncs/s", align: "right", cell: (r) => fixed(r.metrics?.syncsPerSec, 1) },
    { title: "entries/group", align: "right", cell: (r) => fixed(r.metrics?.entriesPerGroup, 1) },
    { title: "flushed rows/s", align: "right", cell: (r) => fixed(r.metrics?.flushedRowsPerSec, 0) },
    { title: "flushes", align: "right", cell: (r) => (r.metrics === undefined ? "-" : String(r.metrics.flushes)) },
    { title: "buffered at end", align: "right", cell: (r) => fixed(r.metrics?.bufferedRowsAtEnd, 0) },
    { title: "flush call ms", align: "right", cell: (r) => fixed(r.verify?.flushMs, 0) },
    { title: "shutdown ms", align: "right", cell: (r) => fixed(r.shutdown?.ms, 0) },
];

/** A paced run at a share of an adapter's unpaced lines/s. */
interface SweepRun {
    readonly sharePct: number;
    readonly offered: number;
    readonly run: RunResult;
}

function shareCell(share: LatencySplit["duringFlush"] | undefined): string {
    return share === undefined ? "-" : `${share.requests}, ${fixed(share.p99Ms, 1)}`;
}

const SWEEP_TABLE: readonly TableColumn<SweepRun>[] = [
    { title: "server", align: "left", cell: (r) => r.run.name },
    { title: "load % of max", align: "right", cell: (r) => String(r.sharePct) },
    { title: "offered lines/s", align: "right", cell: (r) => fixed(r.offered, 0) },
    { title: "acked lines/s", align: "right", cell: (r) => fixed(r.run.load.window.linesPerSec, 0) },
    { title: "p50 ms", align: "right", cell: (r) => fixed(r.run.load.window.p50Ms, 1) },
    { title: "p99 ms", align: "right", cell: (r) => fixed(r.run.load.window.p99Ms, 1) },
    { title: "max ms", align: "right", cell: (r) => fixed(r.run.load.window.maxMs, 0) },
    { title: "during a flush: requests, p99 ms", align: "right", cell: (r) => shareCell(r.run.flushSplit?.duringFlush) },
    { title: "otherwise: requests, p99 ms", align: "right", cell: (r) => shareCell(r.run.flushSplit?.otherwise) },
    { title: "main thread %", align: "right", cell: (r) => fixed(r.run.load.server?.threads.find((t) => t.main)?.cpuPct, 0) },
    { title: "RSS peak MB", align: "right", cell: (r) => MB(r.run.load.server?.rssPeakBytes ?? Number.NaN) },
    { title: "stored = acked", align: "left", cell: (r) => (r.run.verify === undefined ? "-" : r.run.verify.ok ? "yes" : "NO") },
];

interface Report {
    readonly benchmark: "http";
    readonly machine: Awaited<ReturnType<typeof machineInfo>>;
    readonly settings: Settings & { readonly meanLineBytes: number; readonly directory: string };
    readonly git: string;
    readonly runs: readonly RunResult[];
    readonly sweep: readonly SweepRun[];
    readonly target: { readonly linesPerSec: number; readonly best: number; readonly met: boolean };
}

function reportText(report: Report): string {
    const s = report.settings;
    const out: string[] = [];
    out.push(
        `http: ${s.seconds}s measured after ${s.warmupSeconds}s warm-up, ${s.connections} connections, ${s.batch} lines per request (${fixed(s.meanLineBytes, 1)} B/line)` +
            `${s.gzip ? ", gzip" : ""}, wal.sync_mode=fdatasync${s.sets.length > 0 ? `, --set ${s.sets.join(" --set ")}` : ""}${s.cpuProf ? ", under --cpu-prof" : ""}, dir ${s.directory}`,
    );
    out.push(`sluice: ${report.git}`);
    out.push("");
    out.push(formatTable(MAIN_TABLE, report.runs));
    out.push("");
    out.push("where the time goes (window):");
    out.push(
        formatTable(
            COST_TABLE,
            report.runs.filter((r) => r.metrics !== undefined),
        ),
    );
    for (const run of report.runs) {
        if (run.quiet.busyPct >= 25)
            out.push(
                `note: ${run.name}: the machine was busy before the run (${fixed(run.quiet.busyPct, 0)}% of a core after ${fixed(run.quiet.waitedMs / 1000, 0)} s of waiting)`,
            );
        if ((run.load.machine?.otherUserPct ?? 0) > 25) {
            const others = run.load.others.map((o) => `${o.name} ${fixed(o.cpuPct, 0)}% (${o.command ?? "?"})`).join("; ");
            out.push(
                `note: ${run.name}: DISTURBED: other processes used ${fixed(run.load.machine?.otherUserPct, 0)}% of a core (user time) during the window${others === "" ? "" : `: ${others}`}`,
            );
        }
        if (run.verify !== undefined) {
            out.push(
                `check ${run.name}: ${run.verify.files} Parquet files, ${run.verify.rows} rows, ${run.verify.series} series, ${run.verify.duplicateKeys} duplicate keys, ` +
                    `${run.verify.fieldValues} field values; acknowledged ${run.load.total.ackedLines} lines in ${run.load.total.ackedRequests} requests`,
            );
        }
        for (const problem of run.problems) out.push(`  PROBLEM ${run.name}: ${problem}`);
    }
    if (report.sweep.length > 0) {
        out.push("");
        out.push("latency by load (paced at a share of each server's unpaced lines/s above):");
        out.push(formatTable(SWEEP_TABLE, report.sweep));
        for (const { run } of report.sweep) for (const problem of run.problems) out.push(`  PROBLEM ${run.name} at ${run.load.window.linesPerSec.toFixed(0)} lines/s: ${problem}`);
    }
    for (const run of report.runs) {
        for (const [i, profile] of run.profiles.entries()) {
            out.push("");
            out.push(formatProfile(profile, `profile ${run.name} #${i + 1} (${profile.file.split("/").at(-1)})`));
        }
    }
    out.push("");
    const t = report.target;
    out.push(
        `target ≥ ${t.linesPerSec.toLocaleString("en-US")} lines/s durable (fdatasync): best ${fixed(t.best, 0)} lines/s → ${t.met ? "met" : "NOT met"} (${fixed((t.best / t.linesPerSec) * 100, 0)}% of it)`,
    );
    return out.join("\n");
}

async function run(options: BenchOptions): Promise<number> {
    let settings: Settings;
    let adapters: Adapter[];
    try {
        const warmupSeconds = secondsOption(options.values["warmup"], DEFAULT_WARMUP, "--warmup");
        settings = {
            seconds: options.seconds ?? DEFAULT_SECONDS,
            warmupSeconds,
            connections: positiveInteger(options.values["connections"], DEFAULT_CONNECTIONS, "--connections"),
            batch: positiveInteger(options.values["batch"], DEFAULT_BATCH, "--batch"),
            gzip: options.values["gzip"] === true,
            cpuProf: options.values["cpu-prof"] === true,
            top: positiveInteger(options.values["top"], DEFAULT_TOP, "--top"),
            sets: repeated(options.values["set"]),
            rate: options.values["rate"] === undefined ? undefined : positiveInteger(options.values["rate"], 1, "--rate"),
            shares: typeof options.values["shares"] === "string" ? options.values["shares"].split(",").map((share) => positiveInteger(share.trim(), 1, "--shares")) : [],
        };
        if (settings.shares.length > 0 && settings.rate !== undefined) throw new Error("--shares measures each server's maximum first: leave out --rate");
        if (settings.shares.some((share) => share > 100)) throw new Error("--shares are percentages of the maximum, at most 100");
        adapters = choiceList(options.values["adapters"], ADAPTERS, (name) => ADAPTERS.find((a) => a === name), "adapter", ` (use ${ADAPTERS.join(", ")})`);
    } catch (error) {
        progress((error as Error).message);
        return 2;
    }

    const scratch = await scratchDirectory(options.dir, "sluice-http");
    try {
        const build = await snapshotBuild(scratch.path);
        const machine = await machineInfo(scratch.path);
        if (!options.json) process.stdout.write(`${machineLine(machine)}\n`);
        const keepProfiles = options.values["profile-dir"];
        const profileRoot = !settings.cpuProf ? undefined : typeof keepProfiles === "string" ? keepProfiles : join(scratch.path, "profiles");
        progress("generating bodies (seeded)...");
        const source = new LineSource(settings.batch);
        const runs: RunResult[] = [];
        if (options.values["sink"] === true) {
            progress("sink (the load generator alone)...");
            runs.push(await runSink(settings, source));
        }
        for (const adapter of adapters) {
            progress(`${adapter}: ${settings.warmupSeconds + settings.seconds}s of load...`);
            runs.push(await runAdapter(adapter, settings, scratch.path, source, profileRoot, build.cli));
        }
        const sweep: SweepRun[] = [];
        // The maximum is what was acknowledged (and stored): 503s under overload do not disqualify it.
        for (const max of runs.filter((r) => r.verify?.ok === true)) {
            for (const sharePct of settings.shares) {
                const offered = Math.round((max.load.window.linesPerSec * sharePct) / 100);
                progress(`${max.name}: ${settings.warmupSeconds + settings.seconds}s at ${sharePct}% of ${fixed(max.load.window.linesPerSec, 0)} lines/s...`);
                const paced = await runAdapter(max.name as Adapter, { ...settings, rate: offered }, scratch.path, source, undefined, build.cli);
                sweep.push({ sharePct, offered, run: paced });
            }
        }
        const sluiceRuns = runs.filter((r) => r.verify !== undefined);
        // Acknowledged and stored lines/s: a run with 503s (backpressure) still counts, its refusals are reported.
        const best = Math.max(0, ...sluiceRuns.filter((r) => r.verify?.ok === true).map((r) => r.load.window.linesPerSec));
        const report: Report = {
            benchmark: "http",
            machine,
            settings: { ...settings, meanLineBytes: source.meanLineBytes, directory: scratch.path },
            git: build.description,
            runs,
            sweep,
            target: { linesPerSec: TARGET_LINES_PER_SEC, best, met: best >= TARGET_LINES_PER_SEC },
        };
        if (options.json) {
            process.stdout.write(jsonLine(report));
        } else {
            process.stdout.write(`${reportText(report)}\n`);
            if (typeof keepProfiles === "string") process.stdout.write(`profiles kept in ${keepProfiles}\n`);
        }
        const resultsPath = options.values["results"];
        if (typeof resultsPath === "string") {
            const name = settings.cpuProf ? "http-profile" : settings.shares.length > 0 ? "http-latency" : "http";
            const command = benchCommand();
            await writeSection(
                resultsPath,
                name,
                [
                    `## End to end over HTTP${settings.cpuProf ? ", under the CPU profiler" : ""}: \`${command}\``,
                    "",
                    `Generated by bench/http.bench.ts on ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}. ${machineLine(machine)}`,
                    "",
                    "```text",
                    reportText(report),
                    "```",
                ].join("\n"),
            );
            if (!options.json) process.stdout.write(`section "${name}" written to ${resultsPath}\n`);
        }
        return [...runs, ...sweep.map((s) => s.run)].some((r) => r.problems.length > 0) ? 1 : 0;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: {
        connections: { type: "string" },
        batch: { type: "string" },
        adapters: { type: "string" },
        warmup: { type: "string" },
        gzip: { type: "boolean" },
        sink: { type: "boolean" },
        "cpu-prof": { type: "boolean" },
        "profile-dir": { type: "string" },
        rate: { type: "string" },
        shares: { type: "string" },
        top: { type: "string" },
        set: { type: "string", multiple: true },
        results: { type: "string" },
    },
    optionHelp: [
        "http options:",
        `  --connections C   concurrent keep-alive connections (default ${DEFAULT_CONNECTIONS})`,
        `  --batch N         lines per request (default ${DEFAULT_BATCH})`,
        "  --rate L          offer L lines/s, paced evenly over the connections (default: as fast as answered)",
        "  --shares P,P,...  then, per server, a paced run at each P % of its unpaced lines/s (latency by load), e.g. 50,60,70,80",
        `  --adapters LIST   http.server adapters to run (default ${ADAPTERS.join(",")})`,
        `  --warmup S        seconds of load before the measured window (default ${DEFAULT_WARMUP})`,
        "  --gzip            send gzip bodies (pre-compressed before the run)",
        "  --sink            first measure the load generator against a do-nothing node:http server",
        "  --cpu-prof        run the server under node --cpu-prof and summarise the window's self time",
        "  --profile-dir D   keep the .cpuprofile files in D (default: deleted with the scratch directory)",
        `  --top N           functions listed per profile (default ${DEFAULT_TOP})`,
        "  --set key=value   more Sluice configuration (repeatable), e.g. --set flush.max_rows=2000000",
        "  --results PATH    also put the report into PATH as a marked section (bench/RESULTS.md keeps it when peers rewrites the file)",
        `  (the default --seconds is ${DEFAULT_SECONDS})`,
    ],
    run,
};

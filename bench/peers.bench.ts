/**
 * The peers scoreboard (issue 5): `npm run bench -- peers [--seconds N] [--quick] [--repeats R]
 * [--systems LIST] [--variant NAME:key=value,…]… [--connections LIST] [--batches LIST] [--results PATH] [--json]`.
 *
 * On this machine, in one run, one system at a time, each run against a fresh server with an
 * empty data directory under the scratch directory (working disk), all on 127.0.0.1:
 * - `sluice-fdatasync`: `sluice serve` (built CLI), defaults: `wal.sync_mode = fdatasync`;
 * - `sluice-off`: the same with `wal.sync_mode = off` (acknowledged from the page cache, never synced);
 * - `victoriametrics`: Debian `victoria-metrics` (`-httpListenAddr 127.0.0.1:PORT
 *   -storageDataPath DIR -retentionPeriod 1y`), loaded through `/write`;
 * - `influxdb`: Debian `influxdb` 1.x (`influxd -config` generated: HTTP and RPC on 127.0.0.1,
 *   meta/data/wal under DIR, reporting/monitor store/HTTP log off), database `bench` created
 *   with `CREATE DATABASE` over `/query`, loaded through `/write?db=bench`.
 * - `--variant NAME:key=value,key=value` (repeatable): one more system, `sluice serve` in
 *   `fdatasync` mode with those `--set`s (e.g. `--variant b128:ingest.max_buffered_bytes=128MiB,flush.max_rows=250000`),
 *   run in the same interleaved rounds and compared with the peers like the built-in Sluice systems.
 * The Debian packages are installed with `apt-get update` + `apt-get install -y` when missing
 * (as root); if that fails the peer is skipped with the reason, the rest runs.
 *
 * Load: `bench/load.ts`, the same seeded lines for every system (distinct (series, time) points,
 * timestamps from now − 24 h), a 2 s warm-up, then `--seconds` (default 20) measured. Matrix:
 * connections 4 and 16 × batches of 1,000 (Telegraf's default) and 5,000 lines, 3 repeats,
 * interleaved (repeat → cell → system) so the VM's drift spreads over every system. `--quick`:
 * one repeat of 16 connections × 5,000 lines.
 *
 * Every run is verified: Sluice by `POST /api/v1/flush` and a DuckDB count of the Parquet
 * files; VictoriaMetrics by `/internal/force_flush` then
 * `sum(count_over_time({__name__=~"cpu_.+"}[3d]))` at a time after the last point (= 7 ×
 * acknowledged lines); InfluxDB by `SELECT count(*) FROM cpu` (= acknowledged lines per field).
 *
 * Reported per system × cell: median [min–max] over the repeats of lines/s, field values/s,
 * p50/p99 latency, server CPU and peak RSS, client CPU; non-2xx and errors; whether every
 * run's store held exactly what was acknowledged; and the ratios Sluice ÷ peer of the medians
 * of lines/s and of peak RSS (with the range of the per-repeat ratios). Written to `bench/RESULTS.md` (full runs; a
 * `--quick` run only with `--results PATH`) with the date, the machine and the command.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { choiceList, integerList, repeated, seconds as secondsOption } from "./lib/args.js";
import { type Benchmark, type BenchOptions, progress } from "./lib/benchmark.js";
import { snapshotBuild } from "./lib/build-snapshot.js";
import { type LoadResult, runLoad } from "./lib/http-load.js";
import { cells as combinations, interleaved, ratioByRound } from "./lib/interleave.js";
import { LineSource } from "./lib/line-source.js";
import { type MachineInfo, machineInfo, machineLine, waitForQuiet } from "./lib/machine.js";
import { fixed, jsonLine, markedSections, benchCommand, thousands } from "./lib/output.js";
import { type Running, type SluiceVariant, type System, type SystemKey, type Verification, SYSTEMS, SYSTEM_KEYS, parseVariant, sluiceVariant } from "./lib/peers.js";
import { scratchDirectory } from "./lib/scratch.js";
import { type Stat, stat } from "./lib/stats.js";

const DEFAULT_SECONDS = 20;
const DEFAULT_WARMUP = 2;
const DEFAULT_REPEATS = 3;
const DEFAULT_CONNECTIONS = [4, 16] as const;
const DEFAULT_BATCHES = [1_000, 5_000] as const;
const RESULTS_PATH = fileURLToPath(new URL("../../bench/RESULTS.md", import.meta.url));
/** A run during which other work used more than this (% of one core) is flagged. */
const DISTURBED_PCT = 25;
/** How many times a disturbed run is run again (the last attempt is kept). */
const DEFAULT_RETRIES = 1;
/** The systems Sluice is compared with. */
const PEERS: readonly SystemKey[] = ["victoriametrics", "influxdb"];

// ---------------------------------------------------------------------------------------------
// Runs

interface RunRecord {
    /** A `SystemKey` or a `--variant` name. */
    readonly system: string;
    readonly connections: number;
    readonly batch: number;
    readonly repeat: number;
    readonly load: LoadResult | undefined;
    readonly verification: Verification | undefined;
    readonly stop: { readonly ms: number; readonly code: number | null; readonly signal: string | null; readonly killed: boolean } | undefined;
    /** Busy % of one core on the machine just before the run (nothing of ours running). */
    readonly busyBefore: number;
    readonly problems: readonly string[];
    /** Earlier attempts of this run, discarded because other work disturbed them. */
    readonly discarded: readonly { readonly linesPerSec: number; readonly otherPct: number; readonly others: string }[];
}

/** Other processes' CPU (user time, % of one core) during the run; ≥ 0 (tick rounding can make it a little negative). */
function disturbance(record: RunRecord): number {
    return Math.max(0, record.load?.machine?.otherUserPct ?? 0);
}

function othersText(load: LoadResult | undefined): string {
    return (load?.others ?? []).map((o) => `${o.name} ${fixed(o.cpuPct, 0)}% (${o.command ?? "?"})`).join("; ");
}

async function runOne(
    system: System,
    connections: number,
    batch: number,
    repeat: number,
    source: LineSource,
    dir: string,
    seconds: number,
    warmupSeconds: number,
): Promise<RunRecord> {
    const quiet = await waitForQuiet(DISTURBED_PCT, 60_000);
    const problems: string[] = [];
    let running: Running | undefined;
    let load: LoadResult | undefined;
    let verification: Verification | undefined;
    let stop: RunRecord["stop"];
    try {
        running = await system.start(dir);
        load = await runLoad({ url: running.writeUrl, connections, batchLines: batch, seconds, warmupSeconds, source, serverPid: running.service.pid });
        verification = await running.verify(load);
        problems.push(...verification.problems);
        if (load.stoppedEarly !== undefined) problems.push(`load: ${load.stoppedEarly}`);
        for (const [status, count] of Object.entries(load.total.non2xx)) problems.push(`${count} × HTTP ${status}: ${load.total.samples[status] ?? ""}`);
        for (const [code, count] of Object.entries(load.total.errors)) problems.push(`${count} × ${code}`);
    } catch (error) {
        problems.push(`run failed: ${(error as Error).message.slice(0, 2000)}`);
    } finally {
        if (running !== undefined) {
            const stopped = await running.service.stop(60_000);
            stop = { ms: stopped.ms, code: stopped.code, signal: stopped.signal, killed: stopped.killed };
            if (stopped.killed || (stopped.code !== 0 && stopped.signal !== "SIGTERM")) {
                problems.push(
                    `${system.key} did not stop cleanly: exit ${stopped.code ?? stopped.signal}${stopped.killed ? " (SIGKILL after 60 s)" : ""}: ${running.service.output().slice(-300)}`,
                );
            }
        }
        await rm(dir, { recursive: true, force: true });
    }
    return { system: system.key, connections, batch, repeat, load, verification, stop, busyBefore: quiet.busyPct, problems, discarded: [] };
}

// ---------------------------------------------------------------------------------------------
// Aggregation

interface CellSummary {
    readonly system: string;
    readonly connections: number;
    readonly batch: number;
    readonly runs: number;
    readonly linesPerSec: Stat;
    readonly fieldValuesPerSec: Stat;
    readonly p50Ms: Stat;
    readonly p99Ms: Stat;
    readonly serverCpuPct: Stat;
    readonly clientCpuPct: Stat;
    readonly rssPeakMB: Stat;
    readonly otherPct: Stat;
    readonly stealPct: Stat;
    readonly non2xx: number;
    readonly errors: number;
    readonly verified: number;
}

function summarize(records: readonly RunRecord[], system: string, connections: number, batch: number): CellSummary | undefined {
    const runs = records.filter((r) => r.system === system && r.connections === connections && r.batch === batch);
    if (runs.length === 0) return undefined;
    const loads = runs.flatMap((r) => (r.load === undefined ? [] : [r.load]));
    return {
        system,
        connections,
        batch,
        runs: runs.length,
        linesPerSec: stat(loads.map((l) => l.window.linesPerSec)),
        fieldValuesPerSec: stat(loads.map((l) => l.window.fieldValuesPerSec)),
        p50Ms: stat(loads.map((l) => l.window.p50Ms)),
        p99Ms: stat(loads.map((l) => l.window.p99Ms)),
        serverCpuPct: stat(loads.map((l) => l.server?.cpuPct ?? Number.NaN)),
        clientCpuPct: stat(loads.map((l) => l.client.cpuPct)),
        rssPeakMB: stat(loads.map((l) => (l.server?.rssPeakBytes ?? Number.NaN) / 2 ** 20)),
        otherPct: stat(loads.map((l) => Math.max(0, l.machine?.otherUserPct ?? Number.NaN))),
        stealPct: stat(loads.map((l) => l.machine?.stealPct ?? Number.NaN)),
        non2xx: loads.reduce((sum, l) => sum + Object.values(l.total.non2xx).reduce((a, b) => a + b, 0), 0),
        errors: loads.reduce((sum, l) => sum + Object.values(l.total.errors).reduce((a, b) => a + b, 0), 0),
        // What the column says: the store held exactly the acknowledged lines (503s and other
        // problems have their own column and list).
        verified: runs.filter((r) => r.verification?.ok === true).length,
    };
}

/** Sluice ÷ peer of a run's figure: the ratio of the medians, and the range of the per-repeat ratios. */
function ratio(
    records: readonly RunRecord[],
    ours: string,
    peer: string,
    connections: number,
    batch: number,
    figure: (load: LoadResult) => number,
): { ofMedians: number; min: number; max: number } | undefined {
    const pick = (system: string) =>
        records.flatMap((r) =>
            r.system === system && r.connections === connections && r.batch === batch && r.load !== undefined ? [{ repeat: r.repeat, value: figure(r.load) }] : [],
        );
    return ratioByRound(pick(ours), pick(peer));
}

// ---------------------------------------------------------------------------------------------
// Report

function compact(value: number): string {
    if (!Number.isFinite(value)) return "-";
    if (Math.abs(value) >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
    if (Math.abs(value) >= 1e4) return `${Math.round(value / 1e3)} k`;
    return thousands(value);
}
const range = (s: Stat, format: (v: number) => string, single: boolean) => (single ? format(s.median) : `${format(s.median)} [${format(s.min)}–${format(s.max)}]`);

interface Report {
    readonly benchmark: "peers";
    readonly date: string;
    readonly command: string;
    readonly machine: MachineInfo;
    readonly git: string;
    readonly settings: {
        readonly seconds: number;
        readonly warmupSeconds: number;
        readonly repeats: number;
        readonly connections: readonly number[];
        readonly batches: readonly number[];
        readonly meanLineBytes: number;
    };
    readonly systems: readonly {
        readonly key: string;
        readonly label: string;
        readonly version: string | undefined;
        readonly skipped: string | undefined;
        readonly ack: string;
    }[];
    readonly cells: readonly CellSummary[];
    readonly ratios: readonly {
        readonly connections: number;
        readonly batch: number;
        readonly ours: string;
        readonly peer: string;
        readonly ofMedians: number;
        readonly min: number;
        readonly max: number;
        /** The same for the server's peak RSS. */
        readonly rss: { readonly ofMedians: number; readonly min: number; readonly max: number } | undefined;
    }[];
    readonly records: readonly RunRecord[];
    readonly elapsedSeconds: number;
}

function labelOf(report: Report, key: string): string {
    return report.systems.find((s) => s.key === key)?.label ?? key;
}

function markdown(report: Report): string {
    const s = report.settings;
    const single = s.repeats === 1;
    const out: string[] = [];
    out.push("# Peers scoreboard: Sluice vs VictoriaMetrics vs InfluxDB, line protocol over HTTP");
    out.push("");
    out.push(`Generated by \`${report.command}\` (bench/peers.bench.ts) on ${report.date}, in ${fixed(report.elapsedSeconds / 60, 1)} min. Do not edit by hand: rerun it.`);
    out.push("");
    out.push("## Machine and setup");
    out.push("");
    const m = report.machine;
    out.push(`- Machine: nproc=${m.nproc}, memory ${fixed(m.totalMemoryBytes / 2 ** 30, 1)} GiB, CPU "${m.cpuModel}", kernel ${m.kernel}, Node ${m.node}.`);
    out.push(`- Disk (scratch directory, \`df -PhT\`): \`${m.df}\`.`);
    out.push(`- Sluice: ${report.git}.`);
    for (const system of report.systems) {
        out.push(`- ${system.label}: ${system.skipped === undefined ? (system.version ?? "?") : `**skipped**: ${system.skipped}`}. A 2xx means: ${system.ack}.`);
    }
    out.push(
        `- Load (\`bench/load.ts\`, in the runner's process): node:http keep-alive agent, one request in flight per connection, Telegraf-like \`cpu\` lines ` +
            `(3 tags, 2,000 series, 5 float + 1 int + 1 bool fields, ${fixed(s.meanLineBytes, 0)} B per line), every line a distinct (series, time) point, ` +
            `timestamps from now − 24 h. Each run: a fresh server and data directory, ${s.warmupSeconds} s warm-up, then ${s.seconds} s measured. ` +
            `${s.repeats} repeat(s), interleaved (repeat → cell → system).`,
    );
    out.push(
        "- Verified after every run: Sluice `POST /api/v1/flush` + DuckDB `count(*)` over the Parquet files (and no duplicate (series, time)); " +
            'VictoriaMetrics `/internal/force_flush` + `sum(count_over_time({__name__=~"cpu_.+"}[3d]))` = 7 × acknowledged lines; ' +
            "InfluxDB `SELECT count(*) FROM cpu` = acknowledged lines for each field.",
    );
    out.push(
        "- Columns: lines/s and field values/s are acknowledged (2xx) lines in the measured window; p50/p99 per request; server CPU from `/proc/PID/stat` " +
            "(all threads, 100 % = one core, 200 % = the whole machine); RSS peak = VmRSS sampled every 100 ms; client = the load generator's process; " +
            "other procs = user CPU time of other processes on the machine during the window (high values: the run was disturbed); unattributed sys = system/softirq time charged to neither process (loopback networking, writeback, journal).",
    );
    out.push("");
    out.push(`## Results (median${single ? "" : " [min–max]"} over ${s.repeats} run${single ? "" : "s"})`);
    out.push("");
    out.push(
        "| system | C | batch | lines/s | field values/s | p50 / p99 ms | server CPU % | client CPU % | server RSS peak MB | non-2xx / errors | stored = acked | other procs % |",
    );
    out.push("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const c of report.cells) {
        out.push(
            `| ${labelOf(report, c.system)} | ${c.connections} | ${thousands(c.batch)} | **${range(c.linesPerSec, thousands, single)}** | ${range(c.fieldValuesPerSec, compact, single)} | ` +
                `${fixed(c.p50Ms.median, 1)} / ${fixed(c.p99Ms.median, 1)} | ${range(c.serverCpuPct, (v) => fixed(v, 0), single)} | ${fixed(c.clientCpuPct.median, 0)} | ` +
                `${range(c.rssPeakMB, (v) => fixed(v, 0), single)} | ${c.non2xx} / ${c.errors} | ${c.verified}/${c.runs} | ${fixed(c.otherPct.median, 0)} |`,
        );
    }
    out.push("");
    const peers = [...new Set(report.ratios.map((r) => r.peer))];
    const ours = [...new Set(report.ratios.map((r) => r.ours))];
    const header = ours.flatMap((o) => peers.map((p) => `${labelOf(report, o)} ÷ ${labelOf(report, p)}`));
    const ratioTable = (title: string, pick: (r: Report["ratios"][number]) => { ofMedians: number; min: number; max: number } | undefined) => {
        out.push(`## Sluice ÷ peer (${title}, same run)`);
        out.push("");
        out.push(`Ratio of the medians${single ? "" : ", with [min–max] of the per-repeat ratios (runs of the same repeat and cell)"}.`);
        out.push("");
        out.push(`| C | batch | ${header.join(" | ")} |`);
        out.push(`|---|---|${header.map(() => "---|").join("")}`);
        for (const connections of s.connections) {
            for (const batch of s.batches) {
                const cells = ours.flatMap((o) =>
                    peers.map((p) => {
                        const found = report.ratios.find((x) => x.ours === o && x.peer === p && x.connections === connections && x.batch === batch);
                        const r = found === undefined ? undefined : pick(found);
                        return r === undefined ? "-" : single ? `**${fixed(r.ofMedians, 2)}×**` : `**${fixed(r.ofMedians, 2)}×** [${fixed(r.min, 2)}–${fixed(r.max, 2)}]`;
                    }),
                );
                out.push(`| ${connections} | ${thousands(batch)} | ${cells.join(" | ")} |`);
            }
        }
        out.push("");
    };
    ratioTable("lines/s", (r) => r);
    ratioTable("server RSS peak", (r) => r.rss);
    const flagged = report.records.filter((r) => r.problems.length > 0);
    const disturbed = report.records.filter((r) => disturbance(r) > DISTURBED_PCT || r.busyBefore >= DISTURBED_PCT);
    out.push("## Problems and disturbances");
    out.push("");
    if (flagged.length === 0) out.push("- No run had a problem: every store held exactly the acknowledged lines, no non-2xx, no errors.");
    for (const r of flagged) out.push(`- ${labelOf(report, r.system)} C=${r.connections} batch=${r.batch} repeat ${r.repeat}: ${r.problems.join("; ")}`);
    const retried = report.records.filter((r) => r.discarded.length > 0);
    if (retried.length > 0) {
        out.push(
            `- ${retried.length} run(s) were disturbed by other work (> ${DISTURBED_PCT} % of a core) and run again; the discarded attempts: ` +
                retried
                    .flatMap((r) =>
                        r.discarded.map(
                            (d) =>
                                `${labelOf(report, r.system)} C=${r.connections} b=${r.batch} #${r.repeat}: ${thousands(d.linesPerSec)} lines/s with other processes at ${fixed(d.otherPct, 0)} % (${d.others || "not attributed"})`,
                        ),
                    )
                    .join("; ") +
                ".",
        );
    }
    if (disturbed.length > 0) {
        out.push(
            `- ${disturbed.length} of ${report.records.length} kept runs still had other work on the machine above ${DISTURBED_PCT} % of a core (during the run, or just before it after waiting up to 60 s): ` +
                disturbed
                    .map(
                        (r) =>
                            `${labelOf(report, r.system)} C=${r.connections} b=${r.batch} #${r.repeat} (other processes ${fixed(disturbance(r), 0)} %, machine busy before ${fixed(r.busyBefore, 0)} %: ${othersText(r.load) || "not attributed"})`,
                    )
                    .join("; ") +
                ".",
        );
    }
    out.push("");
    out.push("## Every run");
    out.push("");
    out.push("<details><summary>per-run figures</summary>");
    out.push("");
    out.push(
        "| # | system | C | batch | lines/s | p50 / p99 ms | server CPU % | client CPU % | RSS peak MB | other procs % | unattributed sys % | steal % | stored lines | stop ms | attempts | check |",
    );
    out.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const r of report.records) {
        const l = r.load;
        out.push(
            `| ${r.repeat} | ${labelOf(report, r.system)} | ${r.connections} | ${thousands(r.batch)} | ${thousands(l?.window.linesPerSec ?? Number.NaN)} | ${fixed(l?.window.p50Ms, 1)} / ${fixed(l?.window.p99Ms, 1)} | ` +
                `${fixed(l?.server?.cpuPct, 0)} | ${fixed(l?.client.cpuPct, 0)} | ${fixed((l?.server?.rssPeakBytes ?? Number.NaN) / 2 ** 20, 0)} | ${fixed(Math.max(0, l?.machine?.otherUserPct ?? Number.NaN), 0)} | ${fixed(Math.max(0, (l?.machine?.otherPct ?? Number.NaN) - (l?.machine?.otherUserPct ?? Number.NaN)), 0)} | ${fixed(l?.machine?.stealPct, 0)} | ` +
                `${thousands(r.verification?.storedLines ?? Number.NaN)} | ${fixed(r.stop?.ms, 0)} | ${r.discarded.length + 1} | ${r.problems.length === 0 ? "ok" : "PROBLEM"} |`,
        );
    }
    out.push("");
    out.push("</details>");
    out.push("");
    return out.join("\n");
}

function consoleTable(report: Report): string {
    // The same tables, without the prose: markdown reads fine in a terminal.
    const text = markdown(report);
    const start = text.indexOf("## Results");
    const end = text.indexOf("## Every run");
    return text.slice(start, end).trimEnd();
}

// ---------------------------------------------------------------------------------------------
// Options, main

async function run(options: BenchOptions): Promise<number> {
    const started = Date.now();
    const quick = options.values["quick"] === true;
    let connectionsList: number[];
    let batches: number[];
    let repeats: number;
    let warmupSeconds: number;
    let systemKeys: SystemKey[];
    let variants: SluiceVariant[];
    let retries: number;
    try {
        const retryOption = options.values["retries"];
        retries = typeof retryOption === "string" ? Number(retryOption) : DEFAULT_RETRIES;
        if (!Number.isSafeInteger(retries) || retries < 0) throw new Error(`--retries must be an integer ≥ 0, got "${String(retryOption)}"`);
        connectionsList = quick && options.values["connections"] === undefined ? [16] : integerList(options.values["connections"], DEFAULT_CONNECTIONS, "--connections");
        batches = quick && options.values["batches"] === undefined ? [5_000] : integerList(options.values["batches"], DEFAULT_BATCHES, "--batches");
        repeats = quick && options.values["repeats"] === undefined ? 1 : integerList(options.values["repeats"], [DEFAULT_REPEATS], "--repeats")[0]!;
        warmupSeconds = secondsOption(options.values["warmup"], DEFAULT_WARMUP, "--warmup");
        systemKeys = choiceList(options.values["systems"], SYSTEM_KEYS, (name) => SYSTEM_KEYS.find((k) => k === name), "system", ` (use ${SYSTEM_KEYS.join(", ")})`);
        variants = repeated(options.values["variant"]).map(parseVariant);
        const names = variants.map((v) => v.name);
        const twice = names.find((name, i) => names.indexOf(name) !== i);
        if (twice !== undefined) throw new Error(`--variant ${twice} is given twice`);
    } catch (error) {
        progress((error as Error).message);
        return 2;
    }
    const seconds = options.seconds ?? DEFAULT_SECONDS;
    const resultsOption = options.values["results"];
    const resultsPath = typeof resultsOption === "string" ? resultsOption : quick ? undefined : RESULTS_PATH;

    const scratch = await scratchDirectory(options.dir, "sluice-peers");
    try {
        const build = await snapshotBuild(scratch.path);
        const machine = await machineInfo(scratch.path);
        if (!options.json) process.stdout.write(`${machineLine(machine)}\n`);
        const systems: System[] = [];
        const described: { key: string; label: string; version: string | undefined; skipped: string | undefined; ack: string }[] = [];
        for (const system of [...systemKeys.map((key) => SYSTEMS[key](build)), ...variants.map((variant) => sluiceVariant(variant, build))]) {
            const key = system.key;
            try {
                const version = await system.prepare();
                systems.push(system);
                described.push({ key, label: system.label, version, skipped: undefined, ack: system.ack });
            } catch (error) {
                progress(`SKIPPING ${system.label}: ${(error as Error).message}`);
                described.push({ key, label: system.label, version: undefined, skipped: (error as Error).message, ack: system.ack });
            }
        }
        if (systems.length === 0) {
            progress("no system can run");
            return 1;
        }
        progress("generating bodies (seeded)...");
        const sources = new Map(batches.map((batch) => [batch, new LineSource(batch)] as const));
        const records: RunRecord[] = [];
        const plan = interleaved(combinations(combinations(connectionsList, batches), systems), repeats);
        for (const {
            repeat,
            item: [[connections, batch], system],
            index,
            total,
        } of plan) {
            const label = `[${index + 1}/${total}] ${system.label} C=${connections} batch=${batch} repeat ${repeat}`;
            progress(`${label} ...`);
            const dir = join(scratch.path, `${system.key}-c${connections}-b${batch}-r${repeat}`);
            let record = await runOne(system, connections, batch, repeat, sources.get(batch)!, dir, seconds, warmupSeconds);
            const discarded: RunRecord["discarded"][number][] = [];
            while (disturbance(record) > DISTURBED_PCT && discarded.length < retries) {
                discarded.push({ linesPerSec: record.load?.window.linesPerSec ?? Number.NaN, otherPct: disturbance(record), others: othersText(record.load) });
                progress(
                    `${label}: disturbed (other processes used ${fixed(disturbance(record), 0)}% of a core: ${othersText(record.load) || "not attributed"}); running it again`,
                );
                record = await runOne(system, connections, batch, repeat, sources.get(batch)!, dir, seconds, warmupSeconds);
            }
            record = { ...record, discarded };
            records.push(record);
            const l = record.load;
            progress(
                `${label}: ${thousands(l?.window.linesPerSec ?? Number.NaN)} lines/s, p50 ${fixed(l?.window.p50Ms, 1)} ms, p99 ${fixed(l?.window.p99Ms, 1)} ms, ` +
                    `server ${fixed(l?.server?.cpuPct, 0)}% CPU, ${fixed((l?.server?.rssPeakBytes ?? Number.NaN) / 2 ** 20, 0)} MB, other processes ${fixed(Math.max(0, l?.machine?.otherUserPct ?? Number.NaN), 0)}%; ` +
                    `${record.verification?.detail ?? "not verified"}${record.problems.map((p) => `\n    PROBLEM: ${p}`).join("")}`,
            );
        }
        const cells: CellSummary[] = [];
        const ratios: Report["ratios"][number][] = [];
        for (const connections of connectionsList) {
            for (const batch of batches) {
                for (const system of systems) {
                    const summary = summarize(records, system.key, connections, batch);
                    if (summary !== undefined) cells.push(summary);
                }
                for (const ours of systems.filter((system) => !PEERS.includes(system.key as SystemKey))) {
                    for (const peer of PEERS) {
                        const r = ratio(records, ours.key, peer, connections, batch, (load) => load.window.linesPerSec);
                        const rss = ratio(records, ours.key, peer, connections, batch, (load) => load.server?.rssPeakBytes ?? Number.NaN);
                        if (r !== undefined) ratios.push({ connections, batch, ours: ours.key, peer, ...r, rss });
                    }
                }
            }
        }
        const command = benchCommand();
        const report: Report = {
            benchmark: "peers",
            date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            command,
            machine,
            git: build.description,
            settings: { seconds, warmupSeconds, repeats, connections: connectionsList, batches, meanLineBytes: sources.values().next().value!.meanLineBytes },
            systems: described,
            cells,
            ratios,
            records,
            elapsedSeconds: (Date.now() - started) / 1000,
        };
        if (resultsPath !== undefined) {
            await mkdir(join(resultsPath, ".."), { recursive: true });
            // Sections other benchmarks put into the file (npm run bench -- http --results …) stay.
            const kept = markedSections(await readFile(resultsPath, "utf8").catch(() => ""));
            await writeFile(resultsPath, [markdown(report), ...kept].join("\n"));
        }
        if (options.json) {
            process.stdout.write(jsonLine(report));
        } else {
            process.stdout.write(
                `${consoleTable(report)}\n${resultsPath === undefined ? "(not written to a file: --quick; give --results PATH to write one)" : `written to ${resultsPath}`}\n`,
            );
        }
        return records.some((r) => r.problems.length > 0) ? 1 : 0;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: {
        quick: { type: "boolean" },
        repeats: { type: "string" },
        systems: { type: "string" },
        variant: { type: "string", multiple: true },
        connections: { type: "string" },
        batches: { type: "string" },
        warmup: { type: "string" },
        results: { type: "string" },
        retries: { type: "string" },
    },
    optionHelp: [
        "peers options:",
        `  --quick           one repeat of 16 connections × 5,000-line batches (not written to RESULTS.md unless --results)`,
        `  --repeats R       runs per system × cell (default ${DEFAULT_REPEATS})`,
        `  --systems LIST    default ${SYSTEM_KEYS.join(",")}`,
        "  --variant NAME:key=value,key=value  (repeatable) one more system: Sluice (fdatasync) with these --set",
        "                    settings, e.g. b128:ingest.max_buffered_bytes=128MiB,flush.max_rows=250000",
        `  --connections L   default ${DEFAULT_CONNECTIONS.join(",")}`,
        `  --batches L       lines per request, default ${DEFAULT_BATCHES.join(",")}`,
        `  --warmup S        unmeasured seconds of load before each window (default ${DEFAULT_WARMUP})`,
        "  --results PATH    where to write the markdown report (default bench/RESULTS.md for full runs)",
        `  --retries N       run a run again when other work used > ${DISTURBED_PCT}% of a core during it, up to N times (default ${DEFAULT_RETRIES})`,
        `  (the default --seconds is ${DEFAULT_SECONDS} per run)`,
    ],
    run,
};

/**
 * `npm run e2e -- prometheus [--seconds N]`: a real Prometheus (Debian's `prometheus`, installed
 * with apt-get when missing) scrapes itself every second for N s (default 20) with two
 * `remote_write` blocks to one Sluice started with a token: `/api/v1/write` with
 * `authorization` (Bearer) into the default database, `/api/v1/prom/write?db=influx` with
 * `basic_auth` into `influx`. Then its target is removed (SIGHUP with a config without it:
 * Prometheus writes stale markers for the ended series) and, once its remote-write queues have
 * sent everything, every sample it holds for `up` and `prometheus_tsdb_head_series` (asked of
 * its HTTP API) must be in Sluice's Parquet files in both databases exactly once, with the same
 * value and millisecond time, and nothing else; the stale markers must have been dropped and
 * counted. Exit 0 when all of that holds.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { ensurePackage } from "../helpers/debian.js";
import { type ServiceProcess, freePort, startService } from "../helpers/processes.js";
import { SLUICE_CLI, spawnSluice } from "../helpers/sluice-process.js";
import type { EndToEnd } from "./run.js";

const TOKEN = "e2e-remote-write-token";
const METRICS = ["up", "prometheus_tsdb_head_series"] as const;
const DATABASES = [
    { name: "prometheus", path: "/api/v1/write", auth: `    authorization:\n      credentials: ${TOKEN}` },
    { name: "influx", path: "/api/v1/prom/write?db=influx", auth: `    basic_auth:\n      username: prometheus\n      password: ${TOKEN}` },
] as const;

function log(message: string): void {
    process.stderr.write(`[prometheus e2e] ${message}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function prometheusConfig(promPort: number, sluiceUrl: string, scraping: boolean): string {
    const remoteWrite = DATABASES.map(
        (db) =>
            `  - url: ${sluiceUrl}${db.path}\n    name: sluice-${db.name}\n${db.auth}\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s`,
    ).join("\n");
    // The job stays with no target: a target that goes away gets stale markers (a job that goes away does not).
    const scrape = `scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [${scraping ? `"127.0.0.1:${promPort}"` : ""}]\n`;
    return `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n${scrape}remote_write:\n${remoteWrite}\n`;
}

/** A sample as both sides describe it: series labels (instance, job), ms time, value. */
type Key = string;
const key = (metric: string, instance: string, job: string, ms: bigint | number) => `${metric}{instance=${instance},job=${job}} @${ms}`;

async function prometheusJson(base: string, path: string): Promise<unknown> {
    const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(30_000) });
    const json = (await response.json()) as { status: string; data: unknown; error?: string };
    if (json.status !== "success") throw new Error(`${path}: ${json.error ?? response.status}`);
    return json.data;
}

/** Prometheus's own metrics as it exposes them now (its TSDB holds them only while it scrapes itself): name → values of its series. */
async function ownMetrics(base: string): Promise<Map<string, number[]>> {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const metrics = new Map<string, number[]>();
    for (const line of text.split("\n")) {
        const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
        if (match === null) continue;
        metrics.set(match[1]!, [...(metrics.get(match[1]!) ?? []), Number(match[2])]);
    }
    return metrics;
}

/** Stale markers Sluice has dropped (its /metrics). */
async function staleMarkers(sluiceUrl: string, headers: Record<string, string>): Promise<number> {
    const text = await (await fetch(`${sluiceUrl}/metrics`, { headers, signal: AbortSignal.timeout(10_000) })).text();
    return Number(/sluice_prometheus_skipped_total\{kind="stale_marker"\} (\d+)/.exec(text)?.[1] ?? 0);
}

/** Every raw sample Prometheus holds for the metrics (range selectors return raw samples; stale markers are not samples). */
async function prometheusSamples(base: string, windowSeconds: number): Promise<Map<Key, number>> {
    const samples = new Map<Key, number>();
    for (const metric of METRICS) {
        const data = (await prometheusJson(base, `/api/v1/query?query=${encodeURIComponent(`${metric}[${windowSeconds}s]`)}`)) as {
            result: { metric: Record<string, string>; values: [number, string][] }[];
        };
        for (const series of data.result) {
            for (const [seconds, value] of series.values)
                samples.set(key(metric, series.metric.instance ?? "", series.metric.job ?? "", Math.round(seconds * 1000)), Number(value));
        }
    }
    return samples;
}

/** Every row Sluice stored for the metrics in `database`, read from Parquet with DuckDB; a key seen twice is listed in `duplicates`. */
async function sluiceSamples(dataDir: string, database: string): Promise<{ samples: Map<Key, number>; duplicates: Key[]; badTimes: number }> {
    const samples = new Map<Key, number>();
    const duplicates: Key[] = [];
    let badTimes = 0;
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
        for (const metric of METRICS) {
            const glob = join(dataDir, "parquet", database, metric, "**", "*.parquet").replaceAll("'", "''");
            const reader = await connection.runAndReadAll(`SELECT instance, job, epoch_ns(time) AS ns, value FROM read_parquet('${glob}', union_by_name = true)`);
            for (const row of reader.getRowObjects()) {
                const ns = row.ns as bigint;
                if (ns % 1_000_000n !== 0n) badTimes++;
                const k = key(metric, String(row.instance), String(row.job), ns / 1_000_000n);
                if (samples.has(k)) duplicates.push(k);
                samples.set(k, Number(row.value));
            }
        }
    } finally {
        connection.closeSync();
        instance.closeSync();
    }
    return { samples, duplicates, badTimes };
}

function compare(expected: Map<Key, number>, stored: { samples: Map<Key, number>; duplicates: Key[]; badTimes: number }, database: string): string[] {
    const problems: string[] = [];
    const missing = [...expected.keys()].filter((k) => !stored.samples.has(k));
    const extra = [...stored.samples.keys()].filter((k) => !expected.has(k));
    const wrong = [...expected].filter(([k, v]) => stored.samples.has(k) && stored.samples.get(k) !== v);
    if (missing.length > 0) problems.push(`${database}: ${missing.length} samples Prometheus holds are not in Parquet, e.g. ${missing.slice(0, 3).join("; ")}`);
    if (extra.length > 0) problems.push(`${database}: ${extra.length} rows in Parquet Prometheus does not hold, e.g. ${extra.slice(0, 3).join("; ")}`);
    if (wrong.length > 0)
        problems.push(
            `${database}: ${wrong.length} values differ, e.g. ${wrong
                .slice(0, 3)
                .map(([k, v]) => `${k} Prometheus ${v}, Sluice ${stored.samples.get(k)}`)
                .join("; ")}`,
        );
    if (stored.duplicates.length > 0) problems.push(`${database}: ${stored.duplicates.length} samples stored more than once, e.g. ${stored.duplicates.slice(0, 3).join("; ")}`);
    if (stored.badTimes > 0) problems.push(`${database}: ${stored.badTimes} times are not whole milliseconds`);
    return problems;
}

async function run(args: readonly string[]): Promise<number> {
    const { values } = parseArgs({ args: [...args], options: { seconds: { type: "string", default: "20" } } });
    const seconds = Number(values.seconds);
    if (!(seconds >= 5)) {
        log("--seconds must be at least 5");
        return 2;
    }
    const { path: binary, version } = await ensurePackage("prometheus", "prometheus");
    log(`${version}; Sluice from ${SLUICE_CLI}`);
    const dir = await mkdtemp(join(tmpdir(), "sluice-e2e-prometheus-"));
    let sluice: ServiceProcess | undefined;
    let prometheus: ServiceProcess | undefined;
    try {
        const started = await spawnSluice({ dataDir: join(dir, "sluice"), sets: [`auth.tokens=${TOKEN}`] });
        sluice = started.service;
        const auth = { authorization: `Bearer ${TOKEN}` };
        const promPort = await freePort();
        const base = `http://127.0.0.1:${promPort}`;
        const config = join(dir, "prometheus.yml");
        await writeFile(config, prometheusConfig(promPort, started.url, true));
        prometheus = (
            await startService(
                "prometheus",
                binary,
                [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "tsdb")}`, `--web.listen-address=127.0.0.1:${promPort}`],
                async () => (await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(2_000) })).ok,
            )
        ).service;
        const t0 = Date.now();
        log(`Prometheus on ${base} scrapes itself every second, remote-writing to ${started.url} (two endpoints) for ${seconds} s`);
        await sleep(seconds * 1000);

        // Stop scraping (Prometheus marks the ended series stale), keep remote write, wait until it sent everything.
        await writeFile(config, prometheusConfig(promPort, started.url, false));
        const reloadAsked = Date.now() / 1000;
        prometheus.child.kill("SIGHUP");
        let drained = false;
        let failed = 0;
        for (let attempt = 0; attempt < 120 && !drained; attempt++) {
            await sleep(1_000);
            const own = await ownMetrics(base);
            const reloaded = (own.get("prometheus_config_last_reload_success_timestamp_seconds")?.[0] ?? 0) >= Math.floor(reloadAsked);
            const pending = (own.get("prometheus_remote_storage_samples_pending") ?? []).reduce((a, b) => a + b, 0);
            const highest = Math.max(...(own.get("prometheus_remote_storage_highest_timestamp_in_seconds") ?? [Infinity]));
            const sent = Math.min(...(own.get("prometheus_remote_storage_queue_highest_sent_timestamp_seconds") ?? [0]));
            failed = (own.get("prometheus_remote_storage_samples_failed_total") ?? []).reduce((a, b) => a + b, 0);
            // The stale markers follow the target's end by two intervals, and reach the queues when Prometheus's WAL watcher next reads (up to 15 s).
            drained = reloaded && pending === 0 && sent >= highest && (await staleMarkers(started.url, auth)) > 0;
        }
        if (!drained) throw new Error("within 120 s Prometheus did not reload, or its remote-write queues did not drain, or no stale marker reached Sluice");
        const windowSeconds = Math.ceil((Date.now() - t0) / 1000) + 60;
        const expected = await prometheusSamples(base, windowSeconds);
        log(`Prometheus holds ${expected.size} samples of ${METRICS.join(" and ")}; failed sends reported by Prometheus: ${failed}`);
        const stopped = await prometheus.stop(60_000);
        prometheus = undefined;
        if (stopped.killed) log("Prometheus did not stop within 60 s: killed");

        const flushed = await fetch(`${started.url}/api/v1/flush`, { method: "POST", headers: auth });
        if (flushed.status !== 200) throw new Error(`POST /api/v1/flush answered ${flushed.status}: ${await flushed.text()}`);
        const stale = await staleMarkers(started.url, auth);
        const problems: string[] = [];
        if (expected.size < seconds) problems.push(`Prometheus holds only ${expected.size} samples after ${seconds} s of 1 s scrapes`);
        for (const database of DATABASES) {
            const stored = await sluiceSamples(join(dir, "sluice"), database.name);
            log(`${database.name} (${database.path}): ${stored.samples.size} samples in Parquet`);
            problems.push(...compare(expected, stored, database.name));
        }
        if (stale === 0) problems.push("Sluice counted no stale markers, though Prometheus ended its series by removing the target");
        else log(`stale markers dropped and counted by Sluice: ${stale}`);
        for (const problem of problems) log(`PROBLEM: ${problem}`);
        log(problems.length === 0 ? `OK: every sample Prometheus holds is in Parquet exactly once, in both databases` : `FAILED (${problems.length} problems)`);
        return problems.length === 0 ? 0 : 1;
    } finally {
        if (prometheus !== undefined) await prometheus.stop(30_000);
        if (sluice !== undefined) {
            const stopped = await sluice.stop(60_000);
            if (stopped.code !== 0) log(`Sluice exited with ${stopped.code ?? stopped.signal}: ${sluice.output().slice(-2000)}`);
        }
        await rm(dir, { recursive: true, force: true });
    }
}

export const check: EndToEnd = {
    about: "a real Prometheus (apt: prometheus) remote-writes to Sluice for 20 s; every sample it holds is in Parquet exactly once",
    run,
};

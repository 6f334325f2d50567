/**
 * Prometheus remote write, Sluice vs VictoriaMetrics (issue 14): `npm run bench -- promwrite
 * [--seconds N] [--warmup S] [--connections 4,16] [--repeats R] [--systems LIST] [--rate R]
 * [--results PATH] [--profile] [--json]`.
 *
 * One run per system × connection count × repeat, interleaved (repeat → C → system), each against
 * a fresh server and data directory in the scratch directory:
 * - `sluice`: `sluice serve` (built CLI), defaults: `wal.sync_mode = fdatasync`, so a 204 means
 *   the request's WAL entries are on stable storage; `POST /api/v1/write?db=bench`.
 * - `victoriametrics`: Debian's `victoria-metrics` (installed with apt-get when missing, as the
 *   peers scoreboard does), `POST /api/v1/write`; its 204 means the samples are in memory (it
 *   writes them to disk within about a second, without an fsync per request).
 *
 * Requests, built once per connection count before any run and sent byte for byte to both
 * (Prometheus-like): 1,000 metric names × 100 targets = 100,000 series, 8 to 10 labels each
 * (`__name__` included; sorted, as Prometheus sends them), one sample per series per 15 s scrape,
 * timestamps from now − 24 h. Series refs are numbered in scrape order (target-major, then
 * name) and sharded as Prometheus shards its queues, ref mod C, one connection per shard, so a
 * 2,000-sample request holds each of its series once, for 250 (C=4) or 125 (C=16) metric names;
 * every sample sent is a distinct (series, time) point, so the stores can be checked by counting.
 * Bodies: protobuf encoded by hand from pre-encoded label fields (checked against protobufjs),
 * snappy block format (the native binding), enough for `--rate` samples/s over the run; a run
 * that uses them all stops there and says so.
 *
 * Measured over the window (after `--warmup`): acknowledged samples/s, p50/p99 per request,
 * server CPU and peak RSS (VmRSS every 100 ms). Verified after every run: Sluice by `POST
 * /api/v1/flush` (timed: it writes one Parquet file per metric name) and a DuckDB `count(*)`;
 * VictoriaMetrics by `/internal/force_flush` and `sum(count_over_time(...))`; each must hold
 * exactly the acknowledged samples. Written to bench/RESULTS.md as a marked section (`--results`
 * to choose another file).
 */
import { mkdir, readFile, readdir, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import protobuf from "protobufjs";
import snappy from "snappy";
import type { ServiceProcess } from "../test/helpers/processes.js";
import { seededRandom } from "../test/helpers/random.js";
import { type Benchmark, type BenchOptions, progress, sleep } from "./lib/benchmark.js";
import { type BuildSnapshot, snapshotBuild } from "./lib/build-snapshot.js";
import { LatencyReservoir } from "./lib/latency.js";
import { type MachineInfo, machineInfo, machineLine, waitForQuiet } from "./lib/machine.js";
import { fixed, writeSection } from "./lib/output.js";
import { clockTicksPerSecond, processCpu, processMemory } from "./lib/procfs.js";
import { formatProfile, summarizeProfiles } from "./lib/profile.js";
import { scratchDirectory } from "./lib/scratch.js";
import { scrapeMetrics, startSluice } from "./lib/sluice.js";
import { findVictoriaMetrics, startVictoriaMetrics } from "./lib/victoria-metrics.js";

const NAMES = 1_000;
const TARGETS = 100;
const SERIES = NAMES * TARGETS;
const SAMPLES_PER_REQUEST = 2_000;
const SCRAPE_MS = 15_000;
const DATABASE = "bench";
const DEFAULT_SECONDS = 20;
const DEFAULT_WARMUP = 5;
const DEFAULT_REPEATS = 1;
const DEFAULT_CONNECTIONS = [4, 16] as const;
/** Samples/s the pre-built bodies cover for the whole run (a faster run stops when they run out; 900k: ~0.5 GB of bodies per C). */
const DEFAULT_RATE = 900_000;
const RESULTS_PATH = fileURLToPath(new URL("../../bench/RESULTS.md", import.meta.url));
const METRIC_PREFIX = "app_";
const HEADERS = { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" } as const;

// ---------------------------------------------------------------------------------------------
// Requests

/** Labels of series `ref` (ref = target × NAMES + name): 8 to 10, sorted by name. */
function seriesLabels(ref: number): [string, string][] {
    const target = Math.floor(ref / NAMES);
    const name = ref % NAMES;
    const labels: [string, string][] = [
        ["__name__", `${METRIC_PREFIX}${["http", "db", "cache", "queue"][name % 4]}_metric_${String(name).padStart(4, "0")}_total`],
        ["cluster", `cluster-${target % 3}`],
        ["env", "production"],
        ["instance", `10.1.${Math.floor(target / 10)}.${target % 10}:9100`],
        ["job", ["api", "worker", "frontend", "batch"][target % 4]!],
        ["namespace", `team-${target % 7}`],
        ["pod", `pod-${target}-${(target * 2_654_435_761) % 100_000}`],
        ["region", ["us-east-1", "eu-west-1"][target % 2]!],
    ];
    if (name % 3 >= 1) labels.push(["status", ["ok", "error"][name % 2]!]);
    if (name % 3 === 2) labels.push(["zone", `zone-${target % 4}`]);
    return labels.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function varint(value: number, out: Buffer, at: number): number {
    let v = value;
    while (v >= 0x80) {
        out[at++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
    }
    out[at++] = v;
    return at;
}

/** Every series' Label fields, encoded once: TimeSeries.labels (field 1), each a Label {name = 1, value = 2}. */
function encodeLabelFields(): Buffer[] {
    const field = (key: number, bytes: Buffer) => {
        const head = Buffer.allocUnsafe(6);
        head[0] = key;
        return Buffer.concat([head.subarray(0, varint(bytes.length, head, 1)), bytes]);
    };
    return Array.from({ length: SERIES }, (_, ref) =>
        Buffer.concat(seriesLabels(ref).map(([name, value]) => field(0x0a, Buffer.concat([field(0x0a, Buffer.from(name)), field(0x12, Buffer.from(value))])))),
    );
}

/** One WriteRequest: the given series, one sample each (Sample {value = 1 double, timestamp = 2 int64}). */
function encodeRequest(labelFields: readonly Buffer[], refs: ArrayLike<number>, times: ArrayLike<number>, values: ArrayLike<number>): Buffer {
    let size = 0;
    for (let i = 0; i < refs.length; i++) size += labelFields[refs[i]!]!.length + 40;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    const sample = Buffer.allocUnsafe(20);
    for (let i = 0; i < refs.length; i++) {
        sample[0] = 0x09;
        sample.writeDoubleLE(values[i]!, 1);
        sample[9] = 0x10;
        const sampleEnd = varint(times[i]!, sample, 10);
        const labels = labelFields[refs[i]!]!;
        const seriesLength = labels.length + 2 + sampleEnd;
        out[at++] = 0x0a;
        at = varint(seriesLength, out, at);
        at += labels.copy(out, at);
        out[at++] = 0x12;
        out[at++] = sampleEnd;
        at += sample.copy(out, at, 0, sampleEnd);
    }
    return out.subarray(0, at);
}

/** The shape an independent decoder (protobufjs, from prompb's field numbers) reads back from a body. */
function checkWithProtobufjs(body: Buffer, refs: ArrayLike<number>, times: ArrayLike<number>): void {
    const root = protobuf.parse(`syntax = "proto3";
message WriteRequest { repeated TimeSeries timeseries = 1; }
message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
message Label { string name = 1; string value = 2; }
message Sample { double value = 1; int64 timestamp = 2; }`).root;
    const decoded = root.lookupType("WriteRequest").toObject(root.lookupType("WriteRequest").decode(body), { longs: Number }) as {
        timeseries: { labels: { name: string; value: string }[]; samples: { timestamp: number }[] }[];
    };
    for (const i of [0, 1, refs.length - 1]) {
        const series = decoded.timeseries[i]!;
        const expected = seriesLabels(refs[i]!).map(([name, value]) => ({ name, value }));
        if (JSON.stringify(series.labels) !== JSON.stringify(expected) || series.samples[0]?.timestamp !== times[i]) {
            throw new Error(`bench encoder disagrees with protobufjs on series ${i}: ${JSON.stringify(series)}`);
        }
    }
    if (decoded.timeseries.length !== refs.length) throw new Error(`protobufjs read ${decoded.timeseries.length} series, ${refs.length} were encoded`);
}

/** The requests of one connection count: per shard (= connection), in the order that shard sends them. */
interface RequestPool {
    readonly connections: number;
    /** shards[c][k]: the k-th body connection c sends. */
    readonly shards: readonly (readonly Buffer[])[];
    readonly baseMs: number;
    readonly lastMs: number;
    readonly measurementsPerRequest: number;
    readonly meanBodyBytes: number;
    readonly meanUncompressedBytes: number;
}

async function buildPool(labelFields: readonly Buffer[], connections: number, requestsPerShard: number, baseMs: number): Promise<RequestPool> {
    const random = seededRandom(0x9e0d + connections);
    const shards: Buffer[][] = [];
    let bodyBytes = 0;
    let rawBytes = 0;
    let lastMs = baseMs;
    let measurements = 0;
    for (let shard = 0; shard < connections; shard++) {
        // The shard's series in ref order: the order its samples leave each scrape.
        const own: number[] = [];
        for (let ref = shard; ref < SERIES; ref += connections) own.push(ref);
        const bodies: Promise<Buffer>[] = [];
        for (let k = 0; k < requestsPerShard; k++) {
            const refs = new Uint32Array(SAMPLES_PER_REQUEST);
            const times = new Float64Array(SAMPLES_PER_REQUEST);
            const values = new Float64Array(SAMPLES_PER_REQUEST);
            for (let i = 0; i < SAMPLES_PER_REQUEST; i++) {
                const position = k * SAMPLES_PER_REQUEST + i;
                const ref = own[position % own.length]!;
                const tick = Math.floor(position / own.length);
                refs[i] = ref;
                times[i] = baseMs + tick * SCRAPE_MS + Math.floor(ref / NAMES) * 10;
                values[i] = Math.round(random() * 1e6) / 100;
                lastMs = Math.max(lastMs, times[i]!);
            }
            const raw = encodeRequest(labelFields, refs, times, values);
            if (shard === 0 && k === 0) {
                checkWithProtobufjs(raw, refs, times);
                measurements = new Set(Array.from(refs, (ref) => ref % NAMES)).size;
            }
            rawBytes += raw.length;
            bodies.push(snappy.compress(raw));
        }
        const compressed = await Promise.all(bodies);
        for (const body of compressed) bodyBytes += body.length;
        shards.push(compressed);
    }
    const count = connections * requestsPerShard;
    return { connections, shards, baseMs, lastMs, measurementsPerRequest: measurements, meanBodyBytes: bodyBytes / count, meanUncompressedBytes: rawBytes / count };
}

// ---------------------------------------------------------------------------------------------
// Load

/** Busy CPU seconds of the whole machine so far (all CPUs, /proc/stat: everything but idle, iowait and steal). */
async function machineBusySeconds(): Promise<number> {
    const fields = (await readFile("/proc/stat", "utf8")).split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - (fields[3] ?? 0) - (fields[4] ?? 0) - (fields[7] ?? 0)) / clockTicksPerSecond();
}

interface LoadResult {
    readonly windowSeconds: number;
    readonly ackedSamples: number;
    readonly samplesPerSec: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly non2xx: Readonly<Record<string, number>>;
    readonly errors: number;
    /** Every sample acknowledged, warm-up included: what the store must hold. */
    readonly totalAckedSamples: number;
    /** Samples of requests sent but not answered 2xx (they may or may not be stored). */
    readonly unansweredSamples: number;
    readonly firstNon2xx: string | undefined;
    readonly serverCpuPct: number;
    readonly serverRssPeakMB: number;
    readonly clientCpuPct: number;
    /** CPU of everything else on the machine over the window (% of one core): other work disturbing the run. */
    readonly otherCpuPct: number;
    readonly poolExhausted: string | undefined;
}

async function runLoad(url: string, pool: RequestPool, pid: number, seconds: number, warmupSeconds: number): Promise<LoadResult> {
    const target = new URL(url);
    const agent = new Agent({ keepAlive: true, maxSockets: pool.connections, maxFreeSockets: pool.connections });
    const latency = new LatencyReservoir(1 << 18);
    const non2xx: Record<string, number> = {};
    let firstNon2xx: string | undefined;
    let errors = 0;
    let acked = 0;
    let windowAcked = 0;
    let unanswered = 0;
    let measuring = false;
    let poolExhausted: string | undefined;
    const tStart = performance.now();
    const tWindow = tStart + warmupSeconds * 1000;
    let tEnd = tWindow + seconds * 1000;
    let rssPeak = 0;
    let cpu0: { user: number; system: number } | undefined;
    let busy0 = 0;
    let client0 = process.cpuUsage();
    const rssTimer = setInterval(() => {
        if (!measuring) return;
        void processMemory(pid).then((memory) => {
            if (memory !== undefined) rssPeak = Math.max(rssPeak, memory.rss);
        });
    }, 100);
    const windowStart = (async () => {
        await sleep(Math.max(0, tWindow - performance.now()));
        cpu0 = await processCpu(pid);
        busy0 = await machineBusySeconds();
        client0 = process.cpuUsage();
        measuring = true;
    })();
    const post = (body: Buffer) =>
        new Promise<{ status: number; text: string } | undefined>((resolve) => {
            const req = request(
                {
                    host: target.hostname,
                    port: target.port,
                    path: `${target.pathname}${target.search}`,
                    method: "POST",
                    agent,
                    headers: { ...HEADERS, "content-length": String(body.length) },
                },
                (res) => {
                    let text = "";
                    res.setEncoding("utf8").on("data", (chunk: string) => (text.length < 500 ? (text += chunk) : undefined));
                    res.on("end", () => {
                        resolve({ status: res.statusCode ?? 0, text });
                    });
                },
            );
            req.on("error", () => {
                resolve(undefined);
            });
            req.end(body);
        });
    const loop = async (shard: number) => {
        const bodies = pool.shards[shard]!;
        for (let k = 0; ;) {
            const sent = performance.now();
            if (sent >= tEnd) return;
            if (k >= bodies.length) {
                poolExhausted ??= `the ${bodies.length} pre-built requests of a connection ran out after ${((sent - tStart) / 1000).toFixed(1)} s (raise --rate)`;
                tEnd = Math.min(tEnd, sent);
                return;
            }
            const answer = await post(bodies[k]!);
            const now = performance.now();
            const inWindow = measuring && now <= tEnd;
            if (answer !== undefined && answer.status >= 200 && answer.status < 300) {
                acked += SAMPLES_PER_REQUEST;
                if (inWindow) {
                    windowAcked += SAMPLES_PER_REQUEST;
                    latency.record(now - sent);
                }
                k++;
                continue;
            }
            // Not acknowledged: Prometheus would resend the same request after a back-off.
            unanswered += SAMPLES_PER_REQUEST;
            if (answer === undefined) errors++;
            else {
                non2xx[answer.status] = (non2xx[answer.status] ?? 0) + 1;
                firstNon2xx ??= `${answer.status}: ${answer.text}`;
            }
            await sleep(100);
        }
    };
    await Promise.all(Array.from({ length: pool.connections }, (_, shard) => loop(shard)));
    await windowStart;
    measuring = false;
    clearInterval(rssTimer);
    const windowSeconds = (Math.min(tEnd, performance.now()) - tWindow) / 1000;
    const cpu1 = await processCpu(pid);
    const client = process.cpuUsage(client0);
    const busy = (await machineBusySeconds()) - busy0;
    const memory = await processMemory(pid);
    rssPeak = Math.max(rssPeak, memory?.rss ?? 0);
    agent.destroy();
    latency.sort();
    const serverSeconds = cpu0 === undefined || cpu1 === undefined ? Number.NaN : cpu1.user + cpu1.system - cpu0.user - cpu0.system;
    const clientSeconds = (client.user + client.system) / 1e6;
    return {
        windowSeconds,
        ackedSamples: windowAcked,
        samplesPerSec: windowAcked / windowSeconds,
        p50Ms: latency.percentile(50),
        p99Ms: latency.percentile(99),
        non2xx,
        errors,
        totalAckedSamples: acked,
        unansweredSamples: unanswered,
        firstNon2xx,
        serverCpuPct: (serverSeconds / windowSeconds) * 100,
        serverRssPeakMB: rssPeak / 2 ** 20,
        clientCpuPct: (clientSeconds / windowSeconds) * 100,
        otherCpuPct: Math.max(0, ((busy - serverSeconds - clientSeconds) / windowSeconds) * 100),
        poolExhausted,
    };
}

// ---------------------------------------------------------------------------------------------
// Systems

interface Verification {
    readonly stored: number;
    readonly detail: string;
    /** Sluice: how long the flush after the run took (one Parquet file per metric name). */
    readonly flushMs?: number;
    /** Sluice, from /metrics before that flush: what the run cost the WAL and how much the flush loop did meanwhile. */
    readonly sluice?: { readonly walBytesPerSample: number; readonly syncs: number; readonly flushes: number; readonly flushedRows: number };
}

interface Running {
    readonly service: ServiceProcess;
    readonly writeUrl: string;
    /** Checks the store after a run in which `acked` samples were acknowledged. */
    verify(pool: RequestPool, acked: number): Promise<Verification>;
}

interface System {
    readonly key: SystemKey;
    readonly label: string;
    readonly ack: string;
    prepare(): Promise<string>;
    start(dir: string, profileDir: string | undefined): Promise<Running>;
}

const SYSTEM_KEYS = ["sluice", "victoriametrics"] as const;
type SystemKey = (typeof SYSTEM_KEYS)[number];

function sluiceSystem(build: BuildSnapshot, syncMode: string): System {
    return {
        key: "sluice",
        label: `Sluice (${syncMode})`,
        ack: syncMode === "fdatasync" ? "the request's WAL entries are fdatasync'ed" : `wal.sync_mode = ${syncMode} (see the durability contract)`,
        prepare: async () => build.description,
        start: async (dir, profileDir) => {
            const sluice = await startSluice({ dataDir: dir, syncMode, cli: build.cli, ...(profileDir === undefined ? {} : { profileDir }) });
            return {
                service: sluice.service,
                writeUrl: `${sluice.url}/api/v1/write?db=${DATABASE}`,
                verify: async (_pool, acked) => {
                    const metrics = await scrapeMetrics(sluice.url);
                    const stats = {
                        walBytesPerSample: (metrics.get("sluice_wal_bytes_total") ?? Number.NaN) / acked,
                        syncs: metrics.get("sluice_wal_syncs_total") ?? Number.NaN,
                        flushes: metrics.get("sluice_flushes_total") ?? Number.NaN,
                        flushedRows: metrics.get("sluice_flushed_rows_total") ?? Number.NaN,
                    };
                    const t0 = performance.now();
                    const flushed = await fetch(`${sluice.url}/api/v1/flush`, { method: "POST", signal: AbortSignal.timeout(1_800_000) });
                    const flushMs = performance.now() - t0;
                    if (flushed.status !== 200) throw new Error(`POST /api/v1/flush answered ${flushed.status}: ${(await flushed.text()).slice(0, 300)}`);
                    await flushed.arrayBuffer();
                    const root = join(dir, "parquet", DATABASE);
                    const files = (await readdir(root, { recursive: true }).catch(() => [] as string[])).filter((name) => name.endsWith(".parquet"));
                    if (files.length === 0) return { stored: 0, detail: "no Parquet files", flushMs, sluice: stats };
                    const instance = await DuckDBInstance.create(":memory:", { threads: "2" });
                    const connection = await instance.connect();
                    try {
                        const glob = join(root, "**", "*.parquet").replaceAll("'", "''");
                        const row = (await connection.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${glob}', union_by_name = true)`)).getRowObjects()[0]!;
                        return {
                            stored: Number(row.n),
                            detail:
                                `${files.length} Parquet files, ${Number(row.n)} rows; during the run: WAL ${fixed(stats.walBytesPerSample, 0)} B/sample, ${stats.syncs} syncs, ` +
                                `${stats.flushes} flushes (${stats.flushedRows} rows); flush after the run ${fixed(flushMs / 1000, 1)} s`,
                            flushMs,
                            sluice: stats,
                        };
                    } finally {
                        connection.closeSync();
                        instance.closeSync();
                    }
                },
            };
        },
    };
}

function victoriaMetrics(): System {
    let binary = "victoria-metrics";
    return {
        key: "victoriametrics",
        label: "VictoriaMetrics",
        ack: "the samples are in memory (on disk within about a second, no fsync per request)",
        prepare: async () => {
            const found = await findVictoriaMetrics();
            binary = found.path;
            return found.version;
        },
        start: async (dir) => {
            const { service, base } = await startVictoriaMetrics(binary, dir, ["-search.maxUniqueTimeseries", "1000000"]);
            return {
                service,
                writeUrl: `${base}/api/v1/write`,
                verify: async (pool) => {
                    const time = Math.ceil(pool.lastMs / 1000) + 60;
                    const window = `${Math.ceil((pool.lastMs - pool.baseMs) / 1000) + 600}s`;
                    let stored = 0;
                    for (let attempt = 0; attempt < 20; attempt++) {
                        await (await fetch(`${base}/internal/force_flush`, { signal: AbortSignal.timeout(60_000) })).arrayBuffer();
                        const query = `sum(count_over_time({__name__=~"${METRIC_PREFIX}.+"}[${window}]))`;
                        const response = await fetch(`${base}/api/v1/query?nocache=1&time=${time}&query=${encodeURIComponent(query)}`, { signal: AbortSignal.timeout(300_000) });
                        const json = (await response.json()) as { data?: { result?: { value?: [number, string] }[] } };
                        stored = Number(json.data?.result?.[0]?.value?.[1] ?? 0);
                        if (stored > 0) break;
                        await sleep(1_000);
                    }
                    return { stored, detail: `${stored} samples by sum(count_over_time(…[${window}]))` };
                },
            };
        },
    };
}

// ---------------------------------------------------------------------------------------------
// Runs and report

interface RunRecord {
    readonly system: SystemKey;
    readonly connections: number;
    readonly repeat: number;
    readonly load: LoadResult | undefined;
    readonly verification: Verification | undefined;
    readonly problems: readonly string[];
    readonly profile?: string;
}

async function runOne(system: System, pool: RequestPool, repeat: number, dir: string, seconds: number, warmup: number, profile: boolean): Promise<RunRecord> {
    await waitForQuiet(25, 60_000);
    const problems: string[] = [];
    let running: Running | undefined;
    let load: LoadResult | undefined;
    let verification: Verification | undefined;
    let profileText: string | undefined;
    const profileDir = profile && system.key === "sluice" ? join(dir, "..", `profile-${system.key}-c${pool.connections}-r${repeat}`) : undefined;
    try {
        running = await system.start(join(dir, "data"), profileDir);
        load = await runLoad(running.writeUrl, pool, running.service.pid, seconds, warmup);
        verification = await running.verify(pool, load.totalAckedSamples);
        const { totalAckedSamples, unansweredSamples } = load;
        const exact =
            unansweredSamples === 0
                ? verification.stored === totalAckedSamples
                : verification.stored >= totalAckedSamples && verification.stored <= totalAckedSamples + unansweredSamples;
        if (!exact)
            problems.push(
                `stores ${verification.stored} samples, ${totalAckedSamples} were acknowledged${unansweredSamples > 0 ? ` (+ ${unansweredSamples} not acknowledged)` : ""}`,
            );
        for (const [status, count] of Object.entries(load.non2xx)) problems.push(`${count} × HTTP ${status} (first: ${load.firstNon2xx ?? ""})`);
        if (load.errors > 0) problems.push(`${load.errors} requests without an answer`);
        if (load.poolExhausted !== undefined) problems.push(load.poolExhausted);
    } catch (error) {
        problems.push(`run failed: ${(error as Error).message.slice(0, 2000)}`);
    } finally {
        if (running !== undefined) {
            const stopped = await running.service.stop(120_000);
            if (stopped.killed) problems.push(`${system.key} did not stop within 120 s: killed`);
        }
        if (profileDir !== undefined) {
            const summaries = await summarizeProfiles(profileDir, undefined).catch(() => []);
            profileText = summaries.map((summary) => formatProfile(summary, `${system.label} C=${pool.connections}`)).join("\n");
            await rm(profileDir, { recursive: true, force: true });
        }
        await rm(dir, { recursive: true, force: true });
    }
    return { system: system.key, connections: pool.connections, repeat, load, verification, problems, ...(profileText === undefined ? {} : { profile: profileText }) };
}

function median(values: readonly number[]): number {
    const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
    if (sorted.length === 0) return Number.NaN;
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const thousands = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "-");

interface Report {
    readonly date: string;
    readonly command: string;
    readonly machine: MachineInfo;
    readonly systems: readonly { key: SystemKey; label: string; version: string | undefined; skipped: string | undefined; ack: string }[];
    readonly pools: readonly { connections: number; requests: number; measurementsPerRequest: number; meanBodyBytes: number; meanUncompressedBytes: number }[];
    readonly settings: { seconds: number; warmup: number; repeats: number; rate: number };
    readonly records: readonly RunRecord[];
}

function markdown(report: Report): string {
    const out: string[] = [];
    out.push("## Prometheus remote write: Sluice vs VictoriaMetrics");
    out.push("");
    out.push(`Generated by \`${report.command}\` (bench/promwrite.bench.ts) on ${report.date}. Do not edit by hand: rerun it.`);
    out.push("");
    const m = report.machine;
    out.push(`- Machine: nproc=${m.nproc}, ${fixed(m.totalMemoryBytes / 2 ** 30, 1)} GiB, "${m.cpuModel}", kernel ${m.kernel}, Node ${m.node}; disk \`${m.df}\`.`);
    for (const s of report.systems) out.push(`- ${s.label}: ${s.skipped === undefined ? (s.version ?? "?") : `**skipped**: ${s.skipped}`}. A 2xx means: ${s.ack}.`);
    out.push(
        `- Requests (the same bytes to both): 1,000 metric names × 100 targets = 100,000 series, 8–10 labels, 2,000 samples per request, one sample per series per 15 s scrape, ` +
            `sharded by series ref mod C (one connection per shard, one request in flight each) as Prometheus shards its queues. ` +
            report.pools
                .map(
                    (p) =>
                        `C=${p.connections}: ${thousands(p.requests)} requests built, ${p.measurementsPerRequest} metric names per request, ${thousands(p.meanBodyBytes)} B snappy (${thousands(p.meanUncompressedBytes)} B protobuf)`,
                )
                .join("; ") +
            ".",
    );
    out.push(
        `- Each run: a fresh server and data directory, ${report.settings.warmup} s warm-up, ${report.settings.seconds} s measured, ${report.settings.repeats} repeat(s), interleaved; checked afterwards: the store holds exactly the acknowledged samples.`,
    );
    out.push("");
    out.push("| system | C | samples/s | p50 / p99 ms | server CPU % | peak RSS MB | other procs CPU % | stored = acked | notes |");
    out.push("|---|---|---|---|---|---|---|---|---|");
    const connections = [...new Set(report.records.map((r) => r.connections))];
    for (const c of connections) {
        for (const s of report.systems) {
            const runs = report.records.filter((r) => r.system === s.key && r.connections === c);
            if (runs.length === 0) continue;
            const loads = runs.flatMap((r) => (r.load === undefined ? [] : [r.load]));
            const ok = runs.filter((r) => r.problems.length === 0).length;
            const notes = runs.flatMap((r) => {
                const v = r.verification;
                const stats = v?.sluice;
                const sluice =
                    stats === undefined
                        ? []
                        : [
                              `WAL ${fixed(stats.walBytesPerSample, 0)} B/sample, ${thousands(stats.syncs)} syncs, ${thousands(stats.flushes)} flushes in the run; flush after it ${fixed((v?.flushMs ?? Number.NaN) / 1000, 1)} s`,
                          ];
                return [...r.problems, ...sluice];
            });
            out.push(
                `| ${s.label} | ${c} | **${thousands(median(loads.map((l) => l.samplesPerSec)))}** | ${fixed(median(loads.map((l) => l.p50Ms)), 1)} / ${fixed(median(loads.map((l) => l.p99Ms)), 1)} | ` +
                    `${fixed(median(loads.map((l) => l.serverCpuPct)), 0)} | ${fixed(median(loads.map((l) => l.serverRssPeakMB)), 0)} | ${fixed(median(loads.map((l) => l.otherCpuPct)), 0)} | ${ok}/${runs.length} | ${notes.join("; ")} |`,
            );
        }
        const ours = median(report.records.filter((r) => r.system === "sluice" && r.connections === c).map((r) => r.load?.samplesPerSec ?? Number.NaN));
        const theirs = median(report.records.filter((r) => r.system === "victoriametrics" && r.connections === c).map((r) => r.load?.samplesPerSec ?? Number.NaN));
        if (Number.isFinite(ours) && Number.isFinite(theirs)) out.push(`| **Sluice ÷ VictoriaMetrics** | ${c} | **${fixed(ours / theirs, 2)}×** | | | | | | target ≥ 1.5× |`);
    }
    const profiles = report.records.flatMap((r) => (r.profile === undefined ? [] : [r.profile]));
    if (profiles.length > 0) {
        out.push("");
        out.push("<details><summary>Sluice CPU profiles (--profile)</summary>");
        out.push("");
        out.push("```");
        out.push(...profiles);
        out.push("```");
        out.push("");
        out.push("</details>");
    }
    return out.join("\n");
}

function list(text: string | boolean | undefined, fallback: readonly number[], what: string): number[] {
    if (typeof text !== "string") return [...fallback];
    return text.split(",").map((item) => {
        const n = Number(item.trim());
        if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${what}: "${item}" is not a positive integer`);
        return n;
    });
}

async function run(options: BenchOptions): Promise<number> {
    let connectionsList: number[];
    let repeats: number;
    let rate: number;
    let warmup: number;
    let systemKeys: SystemKey[];
    try {
        connectionsList = list(options.values["connections"], DEFAULT_CONNECTIONS, "--connections");
        repeats = list(options.values["repeats"], [DEFAULT_REPEATS], "--repeats")[0]!;
        rate = list(options.values["rate"], [DEFAULT_RATE], "--rate")[0]!;
        warmup = typeof options.values["warmup"] === "string" ? Number(options.values["warmup"]) : DEFAULT_WARMUP;
        if (!Number.isFinite(warmup) || warmup < 0) throw new Error(`--warmup must be a number of seconds ≥ 0`);
        const systems = options.values["systems"];
        systemKeys =
            typeof systems === "string"
                ? systems.split(",").map((name) => {
                      const key = SYSTEM_KEYS.find((k) => k === name.trim());
                      if (key === undefined) throw new Error(`unknown system "${name}" (use ${SYSTEM_KEYS.join(", ")})`);
                      return key;
                  })
                : [...SYSTEM_KEYS];
    } catch (error) {
        progress((error as Error).message);
        return 2;
    }
    const seconds = options.seconds ?? DEFAULT_SECONDS;
    const profile = options.values["profile"] === true;
    const syncMode = typeof options.values["sync"] === "string" ? options.values["sync"] : "fdatasync";
    const resultsOption = options.values["results"];
    const resultsPath = typeof resultsOption === "string" ? resultsOption : RESULTS_PATH;
    const scratch = await scratchDirectory(options.dir, "sluice-promwrite");
    try {
        const build = await snapshotBuild(scratch.path);
        const machine = await machineInfo(scratch.path);
        if (!options.json) process.stdout.write(`${machineLine(machine)}\n`);
        const factories: Record<SystemKey, () => System> = { sluice: () => sluiceSystem(build, syncMode), victoriametrics: victoriaMetrics };
        const systems: System[] = [];
        const described: Report["systems"][number][] = [];
        for (const key of systemKeys) {
            const system = factories[key]();
            try {
                described.push({ key, label: system.label, version: await system.prepare(), skipped: undefined, ack: system.ack });
                systems.push(system);
            } catch (error) {
                progress(`SKIPPING ${system.label}: ${(error as Error).message}`);
                described.push({ key, label: system.label, version: undefined, skipped: (error as Error).message, ack: system.ack });
            }
        }
        if (systems.length === 0) return 1;
        progress("encoding label sets...");
        const labelFields = encodeLabelFields();
        const baseMs = (Math.floor(Date.now() / 1000) - 86_400) * 1000;
        const pools = new Map<number, RequestPool>();
        for (const connections of connectionsList) {
            const requestsPerShard = Math.ceil((rate * (seconds + warmup)) / SAMPLES_PER_REQUEST / connections);
            progress(`building ${thousands(requestsPerShard * connections)} requests for C=${connections}...`);
            pools.set(connections, await buildPool(labelFields, connections, requestsPerShard, baseMs));
        }
        const records: RunRecord[] = [];
        const total = repeats * connectionsList.length * systems.length;
        for (let repeat = 1; repeat <= repeats; repeat++) {
            for (const connections of connectionsList) {
                for (const system of systems) {
                    const label = `[${records.length + 1}/${total}] ${system.label} C=${connections} repeat ${repeat}`;
                    progress(`${label} ...`);
                    await mkdir(join(scratch.path, "runs"), { recursive: true });
                    const record = await runOne(
                        system,
                        pools.get(connections)!,
                        repeat,
                        join(scratch.path, "runs", `${system.key}-c${connections}-r${repeat}`),
                        seconds,
                        warmup,
                        profile,
                    );
                    records.push(record);
                    const l = record.load;
                    progress(
                        `${label}: ${thousands(l?.samplesPerSec ?? Number.NaN)} samples/s, p50 ${fixed(l?.p50Ms, 1)} ms, p99 ${fixed(l?.p99Ms, 1)} ms, server ${fixed(l?.serverCpuPct, 0)}% CPU, ` +
                            `${fixed(l?.serverRssPeakMB, 0)} MB, other processes ${fixed(l?.otherCpuPct, 0)}%; ${record.verification?.detail ?? "not verified"}${record.problems.map((p) => `\n    PROBLEM: ${p}`).join("")}`,
                    );
                }
            }
        }
        const report: Report = {
            date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            command: `npm run bench -- promwrite ${process.argv.slice(3).join(" ")}`.trimEnd(),
            machine,
            systems: described,
            pools: [...pools.values()].map((p) => ({
                connections: p.connections,
                requests: p.shards.reduce((sum, shard) => sum + shard.length, 0),
                measurementsPerRequest: p.measurementsPerRequest,
                meanBodyBytes: p.meanBodyBytes,
                meanUncompressedBytes: p.meanUncompressedBytes,
            })),
            settings: { seconds, warmup, repeats, rate },
            records,
        };
        const text = markdown(report);
        await writeSection(resultsPath, "promwrite", text);
        if (options.json) process.stdout.write(`${JSON.stringify(report, (_, value: unknown) => (typeof value === "number" && !Number.isFinite(value) ? null : value))}\n`);
        else process.stdout.write(`${text}\nwritten to ${resultsPath}\n`);
        return records.some((r) => r.problems.length > 0) ? 1 : 0;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: {
        connections: { type: "string" },
        repeats: { type: "string" },
        systems: { type: "string" },
        warmup: { type: "string" },
        rate: { type: "string" },
        results: { type: "string" },
        profile: { type: "boolean" },
        sync: { type: "string" },
    },
    optionHelp: [
        "promwrite options:",
        `  --connections L   Prometheus shards = connections, default ${DEFAULT_CONNECTIONS.join(",")}`,
        `  --repeats R       runs per system × C (default ${DEFAULT_REPEATS})`,
        `  --systems LIST    default ${SYSTEM_KEYS.join(",")}`,
        `  --warmup S        unmeasured seconds before each window (default ${DEFAULT_WARMUP})`,
        `  --rate R          samples/s the pre-built requests cover over the run (default ${DEFAULT_RATE}); a faster run stops when they run out`,
        "  --results PATH    the markdown file to put the section in (default bench/RESULTS.md)",
        "  --profile         run Sluice under --cpu-prof and append its top functions",
        "  --sync MODE       Sluice's wal.sync_mode (default fdatasync: acknowledged = durable, the comparison the issue asks for)",
        `  (the default --seconds is ${DEFAULT_SECONDS} per run)`,
    ],
    run,
};

/**
 * The load generator the `http` and `peers` benchmarks drive servers with (and a small CLI:
 * `node dist/bench/load.js URL [--seconds S] [--connections C] [--batch N] [--gzip] [--pid PID]`,
 * one JSON object on stdout).
 *
 * Load: C concurrent loops over one node:http keep-alive agent (at most C sockets), each
 * POSTing batches of N Telegraf-like lines and awaiting the answer before sending the next.
 * Lines: measurement `cpu`, tags host (100) / region (4, from the host) / service (20) = 2,000
 * series reporting round-robin, 7 fields (5 floats with 2 decimals, 1 int, 1 bool), about 176 B
 * each (the research notes' `lpload.mjs` had the same shape at about 162 B). Timestamps are
 * whole seconds in ns: they start at now − 24 h and advance one second per series tick (every
 * 2,000 lines), so the global line number g has series g mod 2000 and time base + ⌊g / 2000⌋ s:
 * **every line sent is a distinct (series, time) point**, and a store can be checked afterwards
 * by counting.
 *
 * The generator's own CPU is kept low: the bodies are generated once from a seeded PRNG (a
 * pool of distinct templates; batch k uses template k mod P), and before a batch is sent only
 * the 10 seconds digits of each timestamp are patched into a copy of its template. With
 * `gzip`, bodies are pre-compressed before the load starts (gzip output cannot be patched), so
 * the pool holds every batch the run may send: the run stops early, and says so, if it is
 * used up.
 *
 * Counted: lines of 2xx-answered requests (`acked*`); non-2xx answers by status; errors (no
 * answer) by code. Rates and latencies cover the measured window (after an optional warm-up);
 * `total` covers the whole run (what a store must hold). Also the client's CPU seconds
 * (`process.cpuUsage`) and, given a server pid, the server's CPU seconds (utime + stime from
 * `/proc/PID/stat`, all threads, per thread too) and RSS (VmRSS sampled every 100 ms, and
 * VmHWM), the machine's steal time and busy time (`/proc/stat`) over the window, and which other
 * processes used the CPU meanwhile (on a shared 2-vCPU machine they show up in every figure).
 *
 * node:http rather than undici: against a do-nothing node:http server this generator sends
 * over 5 M lines/s for about 0.1 µs of its own CPU per line (5 % of a core at 500 k lines/s),
 * so a cheaper client would not move the figures.
 *
 * Bounded: no request starts after warm-up + S seconds; requests then in flight get at most
 * `drainTimeoutMs` (then are destroyed and counted as errors). Loopback targets only.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { Agent, request } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs, promisify } from "node:util";
import { gzip as gzipCallback } from "node:zlib";
import { LatencyReservoir, seededRandom, sleep } from "./common.js";

const gzipAsync = promisify(gzipCallback);

export const SERIES = 2_000;
export const HOSTS = 100;
export const SERVICES = 20;
/** Field values per line: usage_user, usage_system, usage_idle, usage_iowait, load1 (floats), procs (int), healthy (bool). */
export const FIELDS_PER_LINE = 7;
export const FIELD_NAMES = ["usage_user", "usage_system", "usage_idle", "usage_iowait", "load1", "procs", "healthy"] as const;
export const MEASUREMENT = "cpu";
const REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const DEFAULT_SEED = 0x10ad;
const NS_SUFFIX = "000000000";
const LATENCY_CAPACITY = 1 << 20;

/** The tags of series s: host s mod 100, service ⌊s / 100⌋, region from the host. */
export function seriesTags(series: number): { host: string; region: string; service: string } {
    const host = series % HOSTS;
    return { host: `host-${String(host).padStart(3, "0")}`, region: REGIONS[host % REGIONS.length]!, service: `svc-${String(Math.floor(series / HOSTS)).padStart(2, "0")}` };
}

// ---------------------------------------------------------------------------------------------
// Bodies

function gcd(a: number, b: number): number {
    while (b !== 0) [a, b] = [b, a % b];
    return a;
}

interface Template {
    readonly bytes: Buffer;
    /** Byte offset of each line's 10 seconds digits. */
    readonly offsets: Uint32Array;
    /** Each line's tick relative to the template's first use: ⌊(t·N + j) / 2000⌋. */
    readonly ticks: Uint32Array;
}

/**
 * The lines of the run. Batch k holds global lines k·N … k·N + N − 1; template k mod P has
 * their series and field values, and `fill` writes their timestamps. P is a multiple of
 * 2000 / gcd(N, 2000), so P·N lines are whole series ticks and a template fits every batch
 * that uses it.
 */
export class LineSource {
    readonly batchLines: number;
    readonly baseSeconds: number;
    readonly templates: readonly Template[];
    /** Series ticks covered by one round through the pool. */
    readonly ticksPerRound: number;

    constructor(batchLines: number, options: { seed?: number; baseSeconds?: number; minTemplates?: number; maxTemplateBytes?: number } = {}) {
        if (!Number.isSafeInteger(batchLines) || batchLines < 1) throw new Error(`batch must be a positive integer, got ${batchLines}`);
        this.batchLines = batchLines;
        this.baseSeconds = options.baseSeconds ?? Math.floor(Date.now() / 1000) - 86_400;
        const period = SERIES / gcd(batchLines, SERIES);
        // Distinct bodies: at least `minTemplates`, within ~64 MB of templates.
        const wanted = Math.max(options.minTemplates ?? 16, 1);
        const bytesPerTemplate = batchLines * 170;
        const cap = Math.max(1, Math.floor((options.maxTemplateBytes ?? 64 * 2 ** 20) / bytesPerTemplate));
        const count = period * Math.max(1, Math.ceil(Math.min(wanted, Math.max(cap, period)) / period));
        this.ticksPerRound = (count * batchLines) / SERIES;
        const random = seededRandom(options.seed ?? DEFAULT_SEED);
        const prefixes = Array.from({ length: SERIES }, (_, s) => {
            const t = seriesTags(s);
            return `${MEASUREMENT},host=${t.host},region=${t.region},service=${t.service} `;
        });
        const templates: Template[] = [];
        const placeholder = "0".repeat(10);
        for (let t = 0; t < count; t++) {
            const parts: string[] = [];
            const offsets = new Uint32Array(batchLines);
            const ticks = new Uint32Array(batchLines);
            let length = 0;
            for (let j = 0; j < batchLines; j++) {
                const g = t * batchLines + j;
                const user = random() * 80;
                const system = random() * 15;
                const iowait = random() * 5;
                const idle = Math.max(0, 100 - user - system - iowait);
                const line =
                    `${prefixes[g % SERIES]}usage_user=${user.toFixed(2)},usage_system=${system.toFixed(2)},usage_idle=${idle.toFixed(2)},` +
                    `usage_iowait=${iowait.toFixed(2)},load1=${(random() * 8).toFixed(2)},procs=${100 + Math.floor(random() * 900)}i,` +
                    `healthy=${random() < 0.98 ? "true" : "false"} `;
                offsets[j] = length + line.length;
                ticks[j] = Math.floor(g / SERIES);
                const full = `${line}${placeholder}${NS_SUFFIX}\n`;
                parts.push(full);
                length += full.length;
            }
            templates.push({ bytes: Buffer.from(parts.join(""), "latin1"), offsets, ticks });
        }
        this.templates = templates;
    }

    get meanLineBytes(): number {
        return this.templates[0]!.bytes.length / this.batchLines;
    }

    /** The time (s) of global line g. */
    secondsOf(line: number): number {
        return this.baseSeconds + Math.floor(line / SERIES);
    }

    /** Writes batch k into `target` (at least `bodyBytes(k)` long) and returns the body slice. */
    fill(k: number, target: Buffer): Buffer {
        const template = this.templates[k % this.templates.length]!;
        const round = Math.floor(k / this.templates.length);
        const body = target.subarray(0, template.bytes.length);
        template.bytes.copy(body);
        const { offsets, ticks } = template;
        let lastTick = -1;
        const digits = new Uint8Array(10);
        for (let j = 0; j < offsets.length; j++) {
            const tick = ticks[j]!;
            if (tick !== lastTick) {
                lastTick = tick;
                let value = this.baseSeconds + round * this.ticksPerRound + tick;
                for (let d = 9; d >= 0; d--) {
                    digits[d] = 48 + (value % 10);
                    value = Math.floor(value / 10);
                }
            }
            body.set(digits, offsets[j]);
        }
        return body;
    }

    bodyBytes(k: number): number {
        return this.templates[k % this.templates.length]!.bytes.length;
    }

    get maxBodyBytes(): number {
        return Math.max(...this.templates.map((t) => t.bytes.length));
    }
}

/** Batches 0 … count − 1, gzipped (level 6, as Go's gzip default), compressed on the threadpool. */
async function gzipPool(source: LineSource, count: number): Promise<Buffer[]> {
    const out: Buffer[] = new Array<Buffer>(count);
    let next = 0;
    const worker = async () => {
        const scratch = Buffer.allocUnsafe(source.maxBodyBytes);
        for (let k = next++; k < count; k = next++) out[k] = await gzipAsync(source.fill(k, scratch));
    };
    await Promise.all(Array.from({ length: Math.max(1, availableParallelism()) }, worker));
    return out;
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

let clockTicks: number | undefined;
/** USER_HZ (`getconf CLK_TCK`), 100 when that cannot run. */
export function clockTicksPerSecond(): number {
    if (clockTicks === undefined) {
        try {
            clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
        } catch {
            clockTicks = 100;
        }
    }
    return clockTicks;
}

/** utime + stime (in clock ticks) from a /proc …/stat line. */
function ticksOfStat(text: string): number {
    const { user, system } = splitTicksOfStat(text);
    return user + system;
}

function splitTicksOfStat(text: string): { user: number; system: number } {
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // After the comm: state is field 3, utime field 14, stime field 15 (1-based, man proc).
    return { user: Number(fields[11]), system: Number(fields[12]) };
}

/** User and system CPU seconds of a process (all its threads). */
export async function processCpu(pid: number): Promise<{ user: number; system: number } | undefined> {
    try {
        const { user, system } = splitTicksOfStat(await readFile(`/proc/${pid}/stat`, "utf8"));
        return { user: user / clockTicksPerSecond(), system: system / clockTicksPerSecond() };
    } catch {
        return undefined;
    }
}

export async function processCpuSeconds(pid: number): Promise<number | undefined> {
    const cpu = await processCpu(pid);
    return cpu === undefined ? undefined : cpu.user + cpu.system;
}

/** CPU seconds of each thread of a process, by tid. */
export async function threadCpuSeconds(pid: number): Promise<Map<number, number>> {
    const result = new Map<number, number>();
    let tids: string[];
    try {
        tids = await readdir(`/proc/${pid}/task`);
    } catch {
        return result;
    }
    await Promise.all(
        tids.map(async (tid) => {
            try {
                result.set(Number(tid), ticksOfStat(await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8")) / clockTicksPerSecond());
            } catch {
                // The thread ended meanwhile.
            }
        }),
    );
    return result;
}

/** VmRSS and VmHWM in bytes. */
export async function processMemory(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
    try {
        const text = await readFile(`/proc/${pid}/status`, "utf8");
        const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN) * 1024;
        return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
    } catch {
        return undefined;
    }
}

/** CPU seconds and name of every process but `exclude`, by pid. */
async function allProcesses(exclude: ReadonlySet<number>): Promise<Map<number, { name: string; seconds: number }>> {
    const result = new Map<number, { name: string; seconds: number }>();
    const pids = (await readdir("/proc").catch(() => [] as string[])).filter((name) => /^\d+$/.test(name)).map(Number);
    await Promise.all(
        pids
            .filter((pid) => !exclude.has(pid))
            .map(async (pid) => {
                try {
                    const text = await readFile(`/proc/${pid}/stat`, "utf8");
                    const name = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
                    result.set(pid, { name, seconds: ticksOfStat(text) / clockTicksPerSecond() });
                } catch {
                    // Gone meanwhile.
                }
            }),
    );
    return result;
}

async function commandLine(pid: number): Promise<string | undefined> {
    try {
        return (await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ").trim().slice(0, 160);
    } catch {
        return undefined;
    }
}

/** Machine-wide steal and total CPU ticks (all CPUs) from /proc/stat. */
async function machineTicks(): Promise<{ steal: number; busy: number; user: number; total: number } | undefined> {
    try {
        const line = (await readFile("/proc/stat", "utf8")).split("\n")[0]!;
        const v = line.trim().split(/\s+/).slice(1).map(Number);
        const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
        const idle = (v[3] ?? 0) + (v[4] ?? 0);
        const steal = v[7] ?? 0;
        // user + nice (guest time is included in user).
        return { steal, busy: total - idle - steal, user: (v[0] ?? 0) + (v[1] ?? 0), total };
    } catch {
        return undefined;
    }
}

// ---------------------------------------------------------------------------------------------
// The run

export interface LoadOptions {
    /** The write URL, e.g. `http://127.0.0.1:8086/write?db=bench` (loopback only). */
    readonly url: string;
    readonly connections: number;
    readonly batchLines: number;
    /** Measured seconds (after the warm-up). */
    readonly seconds: number;
    readonly warmupSeconds?: number;
    readonly gzip?: boolean;
    /** With gzip: how many lines to pre-compress (default 400,000 per second of the run). */
    readonly gzipLines?: number;
    readonly seed?: number;
    /** First timestamp (s); default now − 24 h. */
    readonly baseSeconds?: number;
    /** A server process to sample (CPU, RSS). */
    readonly serverPid?: number;
    /** How long requests in flight at the end may take before they are destroyed (default 60 s). */
    readonly drainTimeoutMs?: number;
    /** Extra request headers (e.g. Authorization). */
    readonly headers?: Readonly<Record<string, string>>;
    /** A prepared LineSource to reuse (its batch size must match). */
    readonly source?: LineSource;
    /** Awaited at the measured window's start and end (e.g. to scrape the server's metrics). */
    readonly onWindow?: (edge: "start" | "end") => Promise<void>;
    /** Called for each answered request of the window: when it was sent (`performance.now()`) and its latency, in ms. */
    readonly onAnswer?: (sentMs: number, latencyMs: number) => void;
    /**
     * Offered load in lines/s, spread evenly over the connections (each sends a batch every
     * connections × batchLines / rate seconds, at once when it is behind); unset: as fast as
     * the server answers.
     */
    readonly linesPerSecond?: number;
}

export interface ServerSample {
    readonly pid: number;
    readonly cpuSeconds: number;
    /** Of one core (200 % = both cores of a 2-vCPU machine). */
    readonly cpuPct: number;
    /** Peak of VmRSS sampled every 100 ms over the window. */
    readonly rssPeakBytes: number;
    readonly rssStartBytes: number;
    /** VmHWM at the end (peak since the process started). */
    readonly hwmBytes: number;
    /** Busiest threads over the window: tid, CPU % of one core; tid = pid is the main thread. */
    readonly threads: readonly { readonly tid: number; readonly main: boolean; readonly cpuPct: number }[];
}

export interface LoadResult {
    readonly url: string;
    readonly connections: number;
    readonly batchLines: number;
    readonly gzip: boolean;
    readonly meanLineBytes: number;
    readonly warmupSeconds: number;
    /** The measured window as it ran. */
    readonly seconds: number;
    /** The window's edges on CLOCK_MONOTONIC in µs (the clock of V8's CPU profiles). */
    readonly windowMonotonicUs: { readonly start: number; readonly end: number };
    readonly window: {
        readonly ackedLines: number;
        readonly ackedRequests: number;
        readonly linesPerSec: number;
        readonly fieldValuesPerSec: number;
        /** Request-body bytes of acknowledged requests per second (decimal MB). */
        readonly wireMBps: number;
        readonly p50Ms: number;
        readonly p99Ms: number;
        readonly maxMs: number;
        readonly non2xx: number;
        readonly errors: number;
    };
    /** The whole run, warm-up and drain included: what the store must hold. */
    readonly total: {
        readonly sentRequests: number;
        readonly ackedRequests: number;
        readonly ackedLines: number;
        /** Status → requests. */
        readonly non2xx: Readonly<Record<string, number>>;
        readonly non2xxLines: number;
        /** Error code → requests (no answer: what the server made of them is unknown). */
        readonly errors: Readonly<Record<string, number>>;
        readonly errorLines: number;
        /** First answer body of each non-2xx status (truncated). */
        readonly samples: Readonly<Record<string, string>>;
        /** Timestamps (s) of the first and last line sent. */
        readonly firstSeconds: number;
        readonly lastSeconds: number;
    };
    readonly client: { readonly cpuSeconds: number; readonly cpuPct: number; readonly userSeconds: number; readonly systemSeconds: number };
    readonly server: ServerSample | undefined;
    /**
     * Over the window, in % of one core: steal (the host took the CPU), all CPUs busy, and what
     * neither the client nor the server used (other processes, kernel work not charged to them).
     */
    readonly machine:
        | {
              readonly stealPct: number;
              readonly busyPct: number;
              /** Busy time neither the client nor the server was charged (other processes, kernel work such as loopback softirqs and writeback). */
              readonly otherPct: number | undefined;
              /** User time of other processes: the sign of a disturbed run (kernel work is not in it). */
              readonly otherUserPct: number | undefined;
          }
        | undefined;
    /** Other processes that used ≥ 5 % of a core over the window (processes started meanwhile count from zero). */
    readonly others: readonly { readonly pid: number; readonly name: string; readonly cpuPct: number; readonly command: string | undefined }[];
    /** Why the run ended before its time, if it did. */
    readonly stoppedEarly: string | undefined;
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

type Outcome = { status: number; body: string } | { error: string };

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
    const url = new URL(options.url);
    if (url.protocol !== "http:") throw new Error(`only http:// targets, got ${options.url}`);
    if (!LOOPBACK_HOSTS.has(url.hostname)) throw new Error(`the load generator only targets loopback addresses, got ${url.hostname}`);
    const { connections, batchLines, seconds } = options;
    if (!Number.isSafeInteger(connections) || connections < 1) throw new Error(`connections must be a positive integer, got ${connections}`);
    if (!(seconds > 0)) throw new Error(`seconds must be positive, got ${seconds}`);
    const warmupSeconds = options.warmupSeconds ?? 0;
    const drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
    const source =
        options.source ??
        new LineSource(batchLines, {
            ...(options.seed === undefined ? {} : { seed: options.seed }),
            ...(options.baseSeconds === undefined ? {} : { baseSeconds: options.baseSeconds }),
        });
    if (source.batchLines !== batchLines) throw new Error(`the LineSource has ${source.batchLines}-line batches, not ${batchLines}`);

    let gzipped: Buffer[] | undefined;
    if (options.gzip === true) {
        const lines = options.gzipLines ?? Math.ceil((seconds + warmupSeconds) * 400_000);
        gzipped = await gzipPool(source, Math.max(connections, Math.ceil(lines / batchLines)));
    }

    const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: "fifo" });
    const baseHeaders: Record<string, string> = {
        "content-type": "text/plain; charset=utf-8",
        ...(gzipped === undefined ? {} : { "content-encoding": "gzip" }),
        ...(options.headers ?? {}),
    };
    const path = `${url.pathname}${url.search}`;
    const inFlight = new Set<ReturnType<typeof request>>();

    const post = (body: Buffer): Promise<Outcome> =>
        new Promise((resolve) => {
            let settled = false;
            const settle = (outcome: Outcome) => {
                if (settled) return;
                settled = true;
                inFlight.delete(req);
                resolve(outcome);
            };
            const req = request(
                { agent, host: url.hostname.replace(/^\[|\]$/g, ""), port: url.port, path, method: "POST", headers: { ...baseHeaders, "content-length": String(body.length) } },
                (res) => {
                    const status = res.statusCode ?? 0;
                    let text = "";
                    if (status >= 200 && status < 300) res.resume();
                    else res.setEncoding("utf8").on("data", (chunk: string) => (text.length < 300 ? (text += chunk) : undefined));
                    res.on("end", () => {
                        settle({ status, body: text.slice(0, 300) });
                    });
                    res.on("error", (error: NodeJS.ErrnoException) => {
                        settle({ error: error.code ?? error.message });
                    });
                },
            );
            inFlight.add(req);
            req.on("error", (error: NodeJS.ErrnoException) => {
                settle({ error: error.code ?? error.message });
            });
            req.end(body);
        });

    // Counters
    let nextBatch = 0;
    let sentRequests = 0;
    let ackedRequests = 0;
    let ackedLines = 0;
    let winAckedLines = 0;
    let winAckedRequests = 0;
    let winBytes = 0;
    let winNon2xx = 0;
    let winErrors = 0;
    const non2xx: Record<string, number> = {};
    const samples: Record<string, string> = {};
    const errors: Record<string, number> = {};
    let non2xxLines = 0;
    let errorLines = 0;
    let stoppedEarly: string | undefined;
    const latency = new LatencyReservoir(LATENCY_CAPACITY);

    const tStart = performance.now();
    const tWindowStart = tStart + warmupSeconds * 1000;
    const tEnd = tWindowStart + seconds * 1000;

    // Sampling (the window's edges are taken by a timer, so they do not wait for a response).
    let cpuAtWindow: NodeJS.CpuUsage | undefined;
    let cpuAtEnd: NodeJS.CpuUsage | undefined;
    let serverCpu0: { user: number; system: number } | undefined;
    let serverCpu1: { user: number; system: number } | undefined;
    let threads0 = new Map<number, number>();
    let threads1 = new Map<number, number>();
    const exclude = new Set([process.pid, ...(options.serverPid === undefined ? [] : [options.serverPid])]);
    let others0 = new Map<number, { name: string; seconds: number }>();
    let others1 = new Map<number, { name: string; seconds: number }>();
    let machine0: Awaited<ReturnType<typeof machineTicks>>;
    let machine1: Awaited<ReturnType<typeof machineTicks>>;
    let windowStartedAt = tWindowStart;
    let windowEndedAt = tEnd;
    /** Set by the timers at the window's edges: answers arriving meanwhile are measured. */
    let measuring = false;
    let monotonicStart = 0;
    let monotonicEnd = 0;
    let rssPeak = 0;
    let rssStart = Number.NaN;
    let hwm = Number.NaN;
    const pid = options.serverPid;
    let sampling = false;
    const sampleRss = async () => {
        if (pid === undefined || sampling) return;
        sampling = true;
        const memory = await processMemory(pid);
        sampling = false;
        if (memory !== undefined) {
            rssPeak = Math.max(rssPeak, memory.rss);
            if (Number.isNaN(rssStart)) rssStart = memory.rss;
        }
    };
    const windowStarted = (async () => {
        await sleep(Math.max(0, tWindowStart - performance.now()));
        measuring = true;
        windowStartedAt = performance.now();
        monotonicStart = Number(process.hrtime.bigint() / 1000n);
        cpuAtWindow = process.cpuUsage();
        [machine0, serverCpu0, threads0, others0] = await Promise.all([
            machineTicks(),
            pid === undefined ? undefined : processCpu(pid),
            pid === undefined ? new Map<number, number>() : threadCpuSeconds(pid),
            allProcesses(exclude),
        ]);
        await Promise.all([sampleRss(), options.onWindow?.("start")]);
    })();
    const rssTimer = setInterval(() => {
        if (measuring) void sampleRss();
    }, 100);
    const windowEnded = (async () => {
        await sleep(Math.max(0, tEnd - performance.now()));
        await windowStarted;
        measuring = false;
        windowEndedAt = performance.now();
        monotonicEnd = Number(process.hrtime.bigint() / 1000n);
        cpuAtEnd = process.cpuUsage(cpuAtWindow);
        [machine1, serverCpu1, threads1, others1] = await Promise.all([
            machineTicks(),
            pid === undefined ? undefined : processCpu(pid),
            pid === undefined ? new Map<number, number>() : threadCpuSeconds(pid),
            allProcesses(exclude),
        ]);
        if (pid !== undefined) {
            const memory = await processMemory(pid);
            if (memory !== undefined) {
                rssPeak = Math.max(rssPeak, memory.rss);
                hwm = memory.hwm;
            }
        }
        await options.onWindow?.("end");
    })();

    const scratchSize = source.maxBodyBytes;
    const pacingMs = options.linesPerSecond === undefined ? undefined : (1000 * connections * batchLines) / options.linesPerSecond;
    const loop = async (index: number) => {
        let scratch = Buffer.allocUnsafe(scratchSize);
        let due = performance.now() + (pacingMs === undefined ? 0 : (pacingMs * index) / connections);
        for (;;) {
            if (pacingMs !== undefined) {
                const wait = due - performance.now();
                if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
                due += pacingMs;
            }
            const started = performance.now();
            if (started >= tEnd) return;
            const k = nextBatch++;
            let body: Buffer;
            if (gzipped !== undefined) {
                if (k >= gzipped.length) {
                    stoppedEarly ??= `the ${gzipped.length} pre-compressed gzip bodies were used up after ${((started - tStart) / 1000).toFixed(1)} s (raise gzipLines)`;
                    return;
                }
                body = gzipped[k]!;
            } else body = source.fill(k, scratch);
            sentRequests++;
            const outcome = await post(body);
            const now = performance.now();
            const inWindow = measuring;
            if ("error" in outcome) {
                errors[outcome.error] = (errors[outcome.error] ?? 0) + 1;
                errorLines += batchLines;
                if (inWindow) winErrors++;
                // The socket may still hold this body: never refill it; and do not spin on a dead server.
                scratch = Buffer.allocUnsafe(scratchSize);
                await new Promise((resolve) => setTimeout(resolve, 50));
                continue;
            }
            if (outcome.status >= 200 && outcome.status < 300) {
                ackedRequests++;
                ackedLines += batchLines;
                if (inWindow) {
                    winAckedRequests++;
                    winAckedLines += batchLines;
                    winBytes += body.length;
                    latency.record(now - started);
                    options.onAnswer?.(started, now - started);
                }
            } else {
                const key = String(outcome.status);
                non2xx[key] = (non2xx[key] ?? 0) + 1;
                samples[key] ??= outcome.body;
                non2xxLines += batchLines;
                if (inWindow) {
                    winNon2xx++;
                    latency.record(now - started);
                    options.onAnswer?.(started, now - started);
                }
            }
        }
    };
    const loops = Promise.all(Array.from({ length: connections }, (_, index) => loop(index)));
    await windowEnded;
    clearInterval(rssTimer);
    // Drain: bounded.
    let drainTimer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
        loops.then(() => true),
        new Promise<false>((resolve) => {
            drainTimer = setTimeout(() => {
                resolve(false);
            }, drainTimeoutMs);
        }),
    ]);
    clearTimeout(drainTimer);
    if (!drained) {
        stoppedEarly ??= `${inFlight.size} requests still unanswered ${drainTimeoutMs} ms after the end: destroyed`;
        for (const req of inFlight) req.destroy(new Error("drain-timeout"));
        await loops;
    }
    agent.destroy();

    const windowSeconds = (windowEndedAt - windowStartedAt) / 1000;
    latency.sort();
    const cpu = cpuAtEnd ?? { user: 0, system: 0 };
    const clientCpu = (cpu.user + cpu.system) / 1e6;
    let server: ServerSample | undefined;
    if (pid !== undefined && serverCpu0 !== undefined && serverCpu1 !== undefined) {
        const threadRows = [...threads1].map(([tid, after]) => ({ tid, main: tid === pid, cpuPct: ((after - (threads0.get(tid) ?? 0)) / windowSeconds) * 100 }));
        threadRows.sort((a, b) => b.cpuPct - a.cpuPct);
        server = {
            pid,
            cpuSeconds: serverCpu1.user + serverCpu1.system - serverCpu0.user - serverCpu0.system,
            cpuPct: ((serverCpu1.user + serverCpu1.system - serverCpu0.user - serverCpu0.system) / windowSeconds) * 100,
            rssPeakBytes: rssPeak,
            rssStartBytes: rssStart,
            hwmBytes: hwm,
            threads: threadRows.filter((t) => t.cpuPct >= 0.5),
        };
    }
    const machine =
        machine0 !== undefined && machine1 !== undefined && machine1.total > machine0.total
            ? {
                  stealPct: ((machine1.steal - machine0.steal) / clockTicksPerSecond() / windowSeconds) * 100,
                  busyPct: ((machine1.busy - machine0.busy) / clockTicksPerSecond() / windowSeconds) * 100,
                  otherPct: server === undefined ? undefined : (((machine1.busy - machine0.busy) / clockTicksPerSecond() - server.cpuSeconds - clientCpu) / windowSeconds) * 100,
                  otherUserPct:
                      serverCpu0 === undefined || serverCpu1 === undefined
                          ? undefined
                          : (((machine1.user - machine0.user) / clockTicksPerSecond() - (serverCpu1.user - serverCpu0.user) - cpu.user / 1e6) / windowSeconds) * 100,
              }
            : undefined;
    const lastLine = nextBatch * batchLines - 1;
    const busyOthers = [...others1]
        .map(([otherPid, after]) => ({ pid: otherPid, name: after.name, cpuPct: ((after.seconds - (others0.get(otherPid)?.seconds ?? 0)) / windowSeconds) * 100 }))
        .filter((o) => o.cpuPct >= 5)
        .sort((a, b) => b.cpuPct - a.cpuPct)
        .slice(0, 5);
    const others = await Promise.all(busyOthers.map(async (o) => ({ ...o, command: await commandLine(o.pid) })));
    return {
        url: options.url,
        connections,
        batchLines,
        gzip: gzipped !== undefined,
        meanLineBytes: source.meanLineBytes,
        warmupSeconds,
        seconds: windowSeconds,
        windowMonotonicUs: { start: monotonicStart, end: monotonicEnd },
        window: {
            ackedLines: winAckedLines,
            ackedRequests: winAckedRequests,
            linesPerSec: winAckedLines / windowSeconds,
            fieldValuesPerSec: (winAckedLines * FIELDS_PER_LINE) / windowSeconds,
            wireMBps: winBytes / 1e6 / windowSeconds,
            p50Ms: latency.percentile(50),
            p99Ms: latency.percentile(99),
            maxMs: latency.max(),
            non2xx: winNon2xx,
            errors: winErrors,
        },
        total: {
            sentRequests,
            ackedRequests,
            ackedLines,
            non2xx,
            non2xxLines,
            errors,
            errorLines,
            samples,
            firstSeconds: source.secondsOf(0),
            lastSeconds: source.secondsOf(Math.max(0, lastLine)),
        },
        client: { cpuSeconds: clientCpu, cpuPct: (clientCpu / windowSeconds) * 100, userSeconds: cpu.user / 1e6, systemSeconds: cpu.system / 1e6 },
        server,
        machine,
        others,
        stoppedEarly,
    };
}

// ---------------------------------------------------------------------------------------------
// Target processes: free ports, start and stop, a quiet machine

/** A TCP port free on 127.0.0.1 right now (for servers that cannot be told to pick one). */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createNetServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as AddressInfo;
            server.close(() => {
                resolve(port);
            });
        });
    });
}

export interface ServiceProcess {
    readonly name: string;
    readonly child: ChildProcess;
    readonly pid: number;
    /** What the process printed (stdout and stderr, the last 64 KiB). */
    output(): string;
    /** Whether it has exited. */
    exited(): boolean;
    /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended and how long it took. */
    stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; killed: boolean }>;
}

/**
 * Spawns `command args` and resolves once `ready` says so: a pattern matched against its output,
 * or a probe polled every 100 ms (e.g. an HTTP health check). Rejects, after killing it, when
 * it exits first or is not ready within `timeoutMs`.
 */
export async function startService(
    name: string,
    command: string,
    args: readonly string[],
    ready: RegExp | (() => Promise<boolean>),
    options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<{ service: ServiceProcess; match: RegExpExecArray | undefined }> {
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const onData = (chunk: Buffer) => {
        output += chunk.toString("utf8");
        if (output.length > 65_536) output = output.slice(-65_536);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once("close", (code, signal) => {
            resolve({ code, signal });
        }),
    );
    const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
    let done = false;
    closed.then(
        () => (done = true),
        () => undefined,
    );
    const service: ServiceProcess = {
        name,
        child,
        pid: child.pid ?? -1,
        output: () => output,
        exited: () => done,
        stop: async (graceMs = 60_000) => {
            const t0 = performance.now();
            let killed = false;
            if (!done) child.kill("SIGTERM");
            const timer = setTimeout(() => {
                if (!done) {
                    killed = true;
                    child.kill("SIGKILL");
                }
            }, graceMs);
            const ended = await closed;
            clearTimeout(timer);
            return { ...ended, ms: performance.now() - t0, killed };
        },
    };
    const deadline = performance.now() + (options.timeoutMs ?? 60_000);
    try {
        const match = await Promise.race([
            spawnError,
            (async () => {
                for (;;) {
                    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by a callback, which the rule cannot see
                    if (done) throw new Error(`${name} exited before it was ready:\n${output.slice(-4000)}`);
                    if (ready instanceof RegExp) {
                        const found = ready.exec(output);
                        if (found !== null) return found;
                    } else if (await ready().catch(() => false)) return undefined;
                    if (performance.now() > deadline) throw new Error(`${name} was not ready after ${options.timeoutMs ?? 60_000} ms:\n${output.slice(-4000)}`);
                    await new Promise((resolve) => setTimeout(resolve, ready instanceof RegExp ? 20 : 100));
                }
            })(),
        ]);
        return { service, match };
    } catch (error) {
        await service.stop(5_000);
        throw error;
    }
}

/**
 * Waits until the machine is quiet (all CPUs together busy below `thresholdPct` of one core,
 * measured over 1 s) or `maxWaitMs` passed; returns the last figure. On a shared 2-vCPU box,
 * anything else running shows up in every number.
 */
export async function waitForQuiet(thresholdPct = 25, maxWaitMs = 60_000): Promise<{ busyPct: number; waitedMs: number }> {
    const t0 = performance.now();
    for (;;) {
        const a = await machineTicks();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const b = await machineTicks();
        const busyPct = a === undefined || b === undefined ? 0 : ((b.busy - a.busy) / clockTicksPerSecond()) * 100;
        const waitedMs = performance.now() - t0;
        if (busyPct < thresholdPct || waitedMs >= maxWaitMs) return { busyPct, waitedMs };
    }
}

// ---------------------------------------------------------------------------------------------
// CLI

async function cli(argv: readonly string[]): Promise<number> {
    const { values, positionals } = parseArgs({
        args: [...argv],
        allowPositionals: true,
        options: {
            seconds: { type: "string", default: "10" },
            warmup: { type: "string", default: "0" },
            connections: { type: "string", default: "16" },
            batch: { type: "string", default: "5000" },
            gzip: { type: "boolean", default: false },
            pid: { type: "string" },
            seed: { type: "string" },
        },
    });
    const target = positionals[0];
    if (target === undefined) {
        process.stderr.write("usage: node dist/bench/load.js URL [--seconds S] [--warmup S] [--connections C] [--batch N] [--gzip] [--pid PID] [--seed N]\n");
        return 2;
    }
    const result = await runLoad({
        url: target,
        seconds: Number(values.seconds),
        warmupSeconds: Number(values.warmup),
        connections: Number(values.connections),
        batchLines: Number(values.batch),
        gzip: values.gzip,
        ...(values.pid === undefined ? {} : { serverPid: Number(values.pid) }),
        ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
    });
    process.stdout.write(`${JSON.stringify(result, (_, value: unknown) => (typeof value === "number" && !Number.isFinite(value) ? null : value))}\n`);
    return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
    cli(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (error: unknown) => {
            process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
            process.exit(1);
        },
    );
}

/**
 * `npm run bench -- hostile [--only NAME] [--seconds S] [--adapter node|hyper-express]`: Sluice
 * under hostile clients (issue 13 item 5), one fresh server per scenario, default configuration
 * plus `auth.tokens`. While the hostile clients run, probes check that Sluice still serves: every
 * 250 ms a `GET /health` and an authorized 100-line write (keep-alive, as agents send them), and
 * every 2 s `POST /api/v1/flush` (a flush opens files: it fails first when descriptors run out).
 * Reported per scenario: the server's peak RSS (VmHWM over its whole life, and VmRSS sampled every
 * 100 ms during the attack), its peak open descriptors, what the hostile clients got, and the
 * probes' outcomes.
 *
 * Target: peak RSS ≤ ingest.max_buffered_bytes + a fixed overhead (aim: ≤ 300 MiB). `bodies` and
 * `idle` fill no buffers, so they measure the overhead itself; `measurements` (100,000 one-row
 * measurements in one 4 MB request) and `series` (a million series at full speed) are accepted
 * and may use the default budget on top. Add a scenario as one entry of
 * SCENARIOS: a name, the server's settings, and an `attack` that runs until `stopAt`.
 */
import { request as httpRequest, Agent } from "node:http";
import { readFile, readdir } from "node:fs/promises";
import { connect } from "node:net";
import { CONFIG_SCHEMA } from "../src/config/schema.js";
import { type ServiceProcess, startService } from "../test/helpers/processes.js";
import { SLUICE_CLI, shebangNodeFlags } from "../test/helpers/sluice-process.js";
import { type Benchmark, type BenchOptions, progress, sleep } from "./lib/benchmark.js";
import { LatencyReservoir } from "./lib/latency.js";
import { machineInfo, machineLine } from "./lib/machine.js";
import { fixed, formatTable } from "./lib/output.js";
import { processMemory } from "./lib/procfs.js";
import { scratchDirectory } from "./lib/scratch.js";

const DEFAULT_SECONDS = 20;
const TOKEN = "hostile-bench-token";
const MiB = 2 ** 20;
/** The aim for the fixed overhead above ingest.max_buffered_bytes (issue 13 item 5). */
const OVERHEAD_AIM_MIB = 300;
/** ingest.max_buffered_bytes by default: what scenarios that fill the buffers may add to the overhead. */
const DEFAULT_BUFFERED_MIB = CONFIG_SCHEMA["ingest.max_buffered_bytes"].default / MiB;

/** A running Sluice as the hostile clients and the probes see it. */
export interface Target {
    readonly url: string;
    readonly host: string;
    readonly port: number;
    /** A token `auth.tokens` accepts. */
    readonly token: string;
    readonly pid: number;
}

/** What the hostile clients got: a line for the table, and figures for --json. */
export interface AttackReport {
    readonly summary: string;
    readonly figures: Readonly<Record<string, number>>;
}

export interface HostileScenario {
    readonly name: string;
    /** One line: what the hostile clients do. */
    readonly about: string;
    /** RLIMIT_NOFILE (soft and hard) the server runs under, set with prlimit. */
    readonly nofile?: number;
    /** More `--set key=value` for the server (auth.tokens is always set). */
    readonly sets?: readonly string[];
    /** Whether its writes are accepted and fill the buffers (then the target is the budget plus the overhead). */
    readonly fillsBuffers?: boolean;
    /** Runs the hostile clients until `stopAt` (a `performance.now()` time), then stops them. */
    attack(target: Target, stopAt: number): Promise<AttackReport>;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/** Counts of strings: `{"401": 24, "ECONNRESET": 3}` → "24×401, 3×ECONNRESET". */
function tally(counts: ReadonlyMap<string, number>): string {
    return [...counts].map(([key, n]) => `${n}×${key}`).join(", ") || "none";
}

function bump(counts: Map<string, number>, key: string): void {
    counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** 24 clients, each POSTing 60 MiB bodies without a token, one after another, on new connections. */
const unauthenticatedBodies: HostileScenario = {
    name: "bodies",
    about: "24 concurrent clients POST 60 MiB bodies without a token, again and again",
    async attack(target, stopAt) {
        const body = Buffer.alloc(60 * MiB, "m f=1 1\n");
        const outcomes = new Map<string, number>();
        const answerMs = new LatencyReservoir(10_000);
        const one = () =>
            new Promise<void>((resolve) => {
                const t0 = performance.now();
                let settled = false;
                const settle = (outcome: string) => {
                    if (settled) return;
                    settled = true;
                    bump(outcomes, outcome);
                    resolve();
                };
                const req = httpRequest({
                    host: target.host,
                    port: target.port,
                    method: "POST",
                    path: "/write?db=hostile",
                    agent: false,
                    headers: { "content-length": body.length },
                });
                req.on("response", (res) => {
                    answerMs.record(performance.now() - t0);
                    res.resume();
                    settle(String(res.statusCode));
                });
                req.on("error", (error: NodeJS.ErrnoException) => {
                    settle(error.code ?? error.message);
                });
                req.end(body);
            });
        await Promise.all(
            Array.from({ length: 24 }, async () => {
                while (performance.now() < stopAt) await one();
            }),
        );
        answerMs.sort();
        const requests = [...outcomes.values()].reduce((a, b) => a + b, 0);
        return {
            summary: `${requests} requests: ${tally(outcomes)}; answer p50 ${fixed(answerMs.percentile(50), 0)} ms, p99 ${fixed(answerMs.percentile(99), 0)} ms`,
            figures: {
                requests,
                answerP50Ms: answerMs.percentile(50),
                answerP99Ms: answerMs.percentile(99),
                ...Object.fromEntries(outcomes),
            },
        };
    },
};

/** 2,000 connections that never send a byte, each reopened 1 s after the server closes it. */
const idleConnections: HostileScenario = {
    name: "idle",
    about: "2,000 connections that send nothing (each reopened 1 s after it is closed), server under a 1,024-descriptor limit",
    nofile: 1024,
    async attack(target, stopAt) {
        const CONNECTIONS = 2000;
        let opened = 0;
        let closedAtOnce = 0;
        let closedLater = 0;
        let failed = 0;
        let open = 0;
        let peakOpen = 0;
        const lifetimes = new LatencyReservoir(100_000);
        const sockets = new Set<ReturnType<typeof connect>>();
        const keep = async (): Promise<void> => {
            while (performance.now() < stopAt) {
                const socket = connect({ host: target.host, port: target.port });
                sockets.add(socket);
                const t0 = performance.now();
                let connected = false;
                socket.on("connect", () => {
                    connected = true;
                    opened++;
                    open++;
                    peakOpen = Math.max(peakOpen, open);
                });
                await new Promise<void>((resolve) => {
                    socket.on("error", () => undefined);
                    socket.on("close", () => {
                        sockets.delete(socket);
                        if (!connected) failed++;
                        else {
                            open--;
                            const ms = performance.now() - t0;
                            lifetimes.record(ms);
                            if (ms < 1000) closedAtOnce++;
                            else closedLater++;
                        }
                        resolve();
                    });
                });
                await sleep(1000);
            }
        };
        const keepers = Array.from({ length: CONNECTIONS }, () => keep());
        await sleep(Math.max(0, stopAt - performance.now()));
        for (const socket of sockets) socket.destroy();
        await Promise.all(keepers);
        lifetimes.sort();
        return {
            summary: `${opened} connections opened (at most ${peakOpen} open at once), ${failed} failed to connect; the server closed ${closedAtOnce} within 1 s and ${closedLater} later (median life ${fixed(lifetimes.percentile(50) / 1000, 1)} s)`,
            figures: { opened, peakOpen, failed, closedAtOnce, closedLater, medianLifeMs: lifetimes.percentile(50) },
        };
    },
};

/** POSTs `body()` with the token, again and again on `clients` keep-alive connections; tallies the statuses. */
async function authorizedWrites(target: Target, stopAt: number, clients: number, body: () => { path: string; text: string; lines: number }): Promise<AttackReport> {
    const agent = new Agent({ keepAlive: true, maxSockets: clients });
    const outcomes = new Map<string, number>();
    const answerMs = new LatencyReservoir(100_000);
    let acceptedLines = 0;
    let bytes = 0;
    const one = (payload: { path: string; text: string; lines: number }) =>
        new Promise<void>((resolve) => {
            const t0 = performance.now();
            const req = httpRequest(
                {
                    host: target.host,
                    port: target.port,
                    method: "POST",
                    path: payload.path,
                    agent,
                    timeout: 120_000,
                    headers: { authorization: `Token ${target.token}`, "content-length": Buffer.byteLength(payload.text) },
                },
                (res) => {
                    let answer = "";
                    res.setEncoding("utf8");
                    res.on("data", (chunk: string) => (answer += chunk));
                    res.on("end", () => {
                        answerMs.record(performance.now() - t0);
                        bump(outcomes, String(res.statusCode));
                        acceptedLines += linesStored(res.statusCode, answer, payload.lines);
                        resolve();
                    });
                },
            );
            req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
            req.on("error", (error: NodeJS.ErrnoException) => {
                bump(outcomes, error.code ?? error.message);
                resolve();
            });
            bytes += Buffer.byteLength(payload.text);
            req.end(payload.text);
        });
    await Promise.all(
        Array.from({ length: clients }, async () => {
            while (performance.now() < stopAt) {
                const status = outcomes.get("503") ?? 0;
                await one(body());
                // Told to retry later: wait as Retry-After says, as a well-behaved agent would.
                if ((outcomes.get("503") ?? 0) > status) await sleep(1000);
            }
        }),
    );
    agent.destroy();
    answerMs.sort();
    const requests = [...outcomes.values()].reduce((a, b) => a + b, 0);
    return {
        summary: `${requests} requests (${fixed(bytes / MiB, 0)} MiB): ${tally(outcomes)}; ${acceptedLines.toLocaleString("en-US")} lines accepted; answer p50 ${fixed(answerMs.percentile(50), 0)} ms, p99 ${fixed(answerMs.percentile(99), 0)} ms`,
        figures: { requests, acceptedLines, mib: bytes / MiB, answerP50Ms: answerMs.percentile(50), answerP99Ms: answerMs.percentile(99), ...Object.fromEntries(outcomes) },
    };
}

/** Lines a write stored: all of them on 204, all but the `dropped=N` of a partial write's 400, none otherwise. */
function linesStored(status: number | undefined, answer: string, lines: number): number {
    if (status === 204) return lines;
    const dropped = status === 400 ? /partial write:[^]*dropped=(\d+)/.exec(answer)?.[1] : undefined;
    return dropped === undefined ? 0 : lines - Number(dropped);
}

/** One client, one 4 MB request of 100,000 one-row measurements after another, each to a new database. */
const manyMeasurements: HostileScenario = {
    name: "measurements",
    about: "one client POSTs 4 MB requests of 100,000 one-row measurements each (a new database each time), again and again",
    fillsBuffers: true,
    attack(target, stopAt) {
        const t = BigInt(Date.now()) * 1_000_000n;
        const lines = Array.from({ length: 100_000 }, (_, i) => `m${String(i).padStart(6, "0")},host=h1 value=${i} ${t + BigInt(i)}`).join("\n");
        let request = 0;
        return authorizedWrites(target, stopAt, 1, () => ({ path: `/write?db=many${++request}`, text: lines, lines: 100_000 }));
    },
};

/** Four clients writing 10,000 new series a request, at full speed: a million series in total, then the same ones again. */
const millionSeries: HostileScenario = {
    name: "series",
    about: "4 clients POST 10,000-line requests, each line a new series (host=s0 … s999999, then again), as fast as answered",
    fillsBuffers: true,
    attack(target, stopAt) {
        const SERIES = 1_000_000;
        const PER_REQUEST = 10_000;
        let next = 0;
        return authorizedWrites(target, stopAt, 4, () => {
            const t = BigInt(Date.now()) * 1_000_000n;
            const lines: string[] = [];
            for (let i = 0; i < PER_REQUEST; i++, next = (next + 1) % SERIES)
                lines.push(`cpu,host=s${next},region=r${next % 16} usage=${i % 100},idle=${(next * 7) % 100} ${t + BigInt(i)}`);
            return { path: "/write?db=series", text: lines.join("\n"), lines: PER_REQUEST };
        });
    },
};

export const SCENARIOS: readonly HostileScenario[] = [unauthenticatedBodies, idleConnections, manyMeasurements, millionSeries];

// ---------------------------------------------------------------------------------------------
// Probes: does Sluice still serve while under attack?

interface ProbeReport {
    readonly health: { ok: number; total: number; p99Ms: number; failures: string };
    readonly writes: { ok: number; total: number; p99Ms: number; failures: string };
    readonly flushes: { ok: number; total: number; failures: string };
}

async function probe(target: Target, stopAt: number): Promise<ProbeReport> {
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    const lines = Array.from({ length: 100 }, (_, i) => `probe,host=h${i % 10} value=${i}`).join("\n");
    const call = (method: string, path: string, body?: string) =>
        new Promise<number | string>((resolve) => {
            const req = httpRequest(
                {
                    host: target.host,
                    port: target.port,
                    method,
                    path,
                    agent,
                    timeout: 10_000,
                    headers: { authorization: `Token ${target.token}`, ...(body === undefined ? {} : { "content-length": Buffer.byteLength(body) }) },
                },
                (res) => {
                    res.resume();
                    res.on("end", () => {
                        resolve(res.statusCode ?? 0);
                    });
                },
            );
            req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
            req.on("error", (error: NodeJS.ErrnoException) => {
                resolve(error.code ?? error.message);
            });
            req.end(body);
        });
    const kinds = {
        health: { latency: new LatencyReservoir(10_000), failures: new Map<string, number>(), ok: 0, total: 0 },
        writes: { latency: new LatencyReservoir(10_000), failures: new Map<string, number>(), ok: 0, total: 0 },
        flushes: { latency: new LatencyReservoir(1_000), failures: new Map<string, number>(), ok: 0, total: 0 },
    };
    const loop = async (kind: keyof typeof kinds, everyMs: number, send: () => Promise<number | string>, expected: number) => {
        const stats = kinds[kind];
        while (performance.now() < stopAt) {
            const t0 = performance.now();
            const outcome = await send();
            stats.latency.record(performance.now() - t0);
            stats.total++;
            if (outcome === expected) stats.ok++;
            else bump(stats.failures, String(outcome));
            await sleep(Math.max(0, everyMs - (performance.now() - t0)));
        }
    };
    await Promise.all([
        loop("health", 250, () => call("GET", "/health"), 200),
        loop("writes", 250, () => call("POST", "/write?db=probe", lines), 204),
        loop("flushes", 2000, () => call("POST", "/api/v1/flush"), 200),
    ]);
    agent.destroy();
    const summary = (kind: keyof typeof kinds) => {
        const stats = kinds[kind];
        stats.latency.sort();
        return { ok: stats.ok, total: stats.total, p99Ms: stats.latency.percentile(99), failures: tally(stats.failures) };
    };
    return { health: summary("health"), writes: summary("writes"), flushes: summary("flushes") };
}

// ---------------------------------------------------------------------------------------------
// Running one scenario

interface ScenarioResult {
    readonly name: string;
    readonly about: string;
    readonly nofile: number | undefined;
    /** The peak RSS aimed at: the overhead aim, plus the buffer budget when the scenario fills it. */
    readonly aimMiB: number;
    readonly rssBeforeMiB: number;
    /** VmRSS sampled every 100 ms during the attack. */
    readonly rssPeakSampledMiB: number;
    /** VmHWM: the peak over the server's whole life. */
    readonly rssHwmMiB: number;
    readonly fdsPeak: number;
    /** What the server read during the attack (sockets and files), in MiB. */
    readonly readMiB: number;
    readonly attack: AttackReport;
    readonly probes: ProbeReport;
    /** The server's warnings and errors during the run (EMFILE would show here). */
    readonly serverProblems: readonly string[];
}

async function startServer(scenario: HostileScenario, dataDir: string, adapter: string): Promise<ServiceProcess & { url: string }> {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith("SLUICE_")) env[name] = value;
    const sets = [`http.server=${adapter}`, `auth.tokens=${TOKEN}`, ...(scenario.sets ?? [])];
    const node = [...shebangNodeFlags(SLUICE_CLI), SLUICE_CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, ...sets.flatMap((set) => ["--set", set])];
    const [command, args] = scenario.nofile === undefined ? [process.execPath, node] : ["prlimit", [`--nofile=${scenario.nofile}:${scenario.nofile}`, process.execPath, ...node]];
    const { service, match } = await startService("sluice", command, args, /listening on (http:\/\/\S+)/, { env });
    return Object.assign(service, { url: match![1]! });
}

/** Bytes the process read through read(2) and friends, sockets included (`rchar` of /proc/PID/io). */
async function bytesRead(pid: number): Promise<number> {
    const io = await readFile(`/proc/${pid}/io`, "utf8").catch(() => "");
    return Number(/^rchar: (\d+)$/m.exec(io)?.[1] ?? Number.NaN);
}

async function openDescriptors(pid: number): Promise<number> {
    return (await readdir(`/proc/${pid}/fd`).catch(() => [])).length;
}

async function runScenario(scenario: HostileScenario, seconds: number, scratch: string, adapter: string): Promise<ScenarioResult> {
    progress(`${scenario.name}: ${scenario.about} (${seconds} s)`);
    const server = await startServer(scenario, `${scratch}/${scenario.name}`, adapter);
    try {
        const { hostname, port } = new URL(server.url);
        const target: Target = { url: server.url, host: hostname, port: Number(port), token: TOKEN, pid: server.pid };
        // Settle: the encode worker loads, a first write and flush go through.
        await probe(target, performance.now() + 2000);
        const before = await processMemory(server.pid);
        let rssPeak = before?.rss ?? 0;
        let fdsPeak = await openDescriptors(server.pid);
        let sampling = true;
        const sampler = (async () => {
            // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by a callback, which the rule cannot see
            while (sampling) {
                const memory = await processMemory(server.pid);
                if (memory !== undefined) rssPeak = Math.max(rssPeak, memory.rss);
                fdsPeak = Math.max(fdsPeak, await openDescriptors(server.pid));
                await sleep(100);
            }
        })();
        const stopAt = performance.now() + seconds * 1000;
        const readBefore = await bytesRead(server.pid);
        const [attack, probes] = await Promise.all([scenario.attack(target, stopAt), probe(target, stopAt)]);
        const readMiB = ((await bytesRead(server.pid)) - readBefore) / MiB;
        sampling = false;
        await sampler;
        const after = await processMemory(server.pid);
        return {
            name: scenario.name,
            about: scenario.about,
            nofile: scenario.nofile,
            aimMiB: OVERHEAD_AIM_MIB + (scenario.fillsBuffers === true ? DEFAULT_BUFFERED_MIB : 0),
            rssBeforeMiB: (before?.rss ?? Number.NaN) / MiB,
            rssPeakSampledMiB: rssPeak / MiB,
            rssHwmMiB: (after?.hwm ?? Number.NaN) / MiB,
            fdsPeak,
            readMiB,
            attack,
            probes,
            serverProblems: [
                ...server
                    .output()
                    .split("\n")
                    .filter((line) => /^(warn|error):/.test(line)),
                ...(server.exited() ? [`the server died during the run: ${server.output().trim().split("\n").slice(-6).join(" / ")}`] : []),
            ],
        };
    } finally {
        const stopped = await server.stop(60_000);
        progress(`${scenario.name}: server stopped in ${fixed(stopped.ms, 0)} ms (exit ${stopped.code ?? stopped.signal})`);
    }
}

async function run(options: BenchOptions): Promise<number> {
    const seconds = options.seconds ?? DEFAULT_SECONDS;
    const only = typeof options.values.only === "string" ? options.values.only.split(",") : undefined;
    const adapter = typeof options.values.adapter === "string" ? options.values.adapter : "node";
    const scenarios = SCENARIOS.filter((scenario) => only === undefined || only.includes(scenario.name));
    if (scenarios.length === 0) {
        progress(`no scenario named ${only?.join(", ")}; there are ${SCENARIOS.map((s) => s.name).join(", ")}`);
        return 2;
    }
    const scratch = await scratchDirectory(options.dir, "sluice-hostile");
    try {
        const machine = await machineInfo(scratch.path);
        progress(machineLine(machine));
        const results: ScenarioResult[] = [];
        for (const scenario of scenarios) results.push(await runScenario(scenario, seconds, scratch.path, adapter));
        const within = (result: ScenarioResult) => Math.max(result.rssHwmMiB, result.rssPeakSampledMiB) <= result.aimMiB;
        const served = (result: ScenarioResult) => result.probes.health.ok === result.probes.health.total && result.probes.writes.ok === result.probes.writes.total;
        if (options.json) {
            process.stdout.write(
                `${JSON.stringify({ machine, adapter, seconds, overheadAimMiB: OVERHEAD_AIM_MIB, results }, (_, value: unknown) => (typeof value === "number" && !Number.isFinite(value) ? null : value))}\n`,
            );
        } else {
            const probeCell = (p: { ok: number; total: number; p99Ms?: number; failures: string }) =>
                `${p.ok}/${p.total}${p.p99Ms === undefined ? "" : ` p99 ${fixed(p.p99Ms, 0)} ms`}${p.ok === p.total ? "" : ` (${p.failures})`}`;
            process.stdout.write(
                `${formatTable(
                    [
                        { title: "scenario", align: "left", cell: (r: ScenarioResult) => r.name },
                        { title: "RSS before MiB", align: "right", cell: (r) => fixed(r.rssBeforeMiB, 0) },
                        { title: "peak RSS MiB", align: "right", cell: (r) => fixed(Math.max(r.rssHwmMiB, r.rssPeakSampledMiB), 0) },
                        { title: "aim MiB", align: "right", cell: (r) => fixed(r.aimMiB, 0) },
                        { title: "peak fds", align: "right", cell: (r) => `${r.fdsPeak}${r.nofile === undefined ? "" : ` / ${r.nofile}`}` },
                        { title: "/health 200", align: "left", cell: (r) => probeCell(r.probes.health) },
                        { title: "writes 204", align: "left", cell: (r) => probeCell(r.probes.writes) },
                        { title: "flushes 200", align: "left", cell: (r) => probeCell(r.probes.flushes) },
                        { title: "verdict", align: "left", cell: (r) => (within(r) && served(r) ? "ok" : "MISSED") },
                    ],
                    results,
                )}\n\n`,
            );
            for (const result of results) {
                process.stdout.write(
                    `${result.name}: ${result.about}\n  hostile clients got: ${result.attack.summary}\n  the server read ${fixed(result.readMiB, 0)} MiB meanwhile (rchar: read(2) on sockets and files; uWS reads with recv(2), not counted)\n`,
                );
                if (result.serverProblems.length > 0)
                    process.stdout.write(
                        `  server logged: ${result.serverProblems.slice(0, 5).join(" | ")}${result.serverProblems.length > 5 ? ` (and ${result.serverProblems.length - 5} more)` : ""}\n`,
                    );
            }
            process.stdout.write(
                `\nadapter ${adapter}, ${seconds} s per scenario, default configuration plus auth.tokens; target: peak RSS ≤ ingest.max_buffered_bytes + overhead, overhead aim ≤ ${OVERHEAD_AIM_MIB} MiB (bodies and idle fill no buffers: their peak is the overhead; measurements and series may add the default budget, ${DEFAULT_BUFFERED_MIB} MiB)\n`,
            );
        }
        return results.every((result) => within(result) && served(result)) ? 0 : 1;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: { only: { type: "string" }, adapter: { type: "string" } },
    optionHelp: [
        `  --only NAMES      comma-separated scenarios (${SCENARIOS.map((scenario) => scenario.name).join(", ")}; default all)`,
        "  --adapter NAME    http.server of the server: node (default) or hyper-express",
        `  --seconds N       seconds of attack per scenario (default ${DEFAULT_SECONDS})`,
    ],
    run,
};

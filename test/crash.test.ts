/**
 * Crash and fault tests (DESIGN.md §3): the built `sluice` process killed with SIGKILL at random
 * instants under write load and at every named crash point of the commit protocol, flushes made
 * to fail for real, `sluice recover` run twice, graceful shutdown under load. Every point the
 * load generator sent is accounted for in the Parquet files read back with DuckDB: acknowledged
 * → exactly once; answered 5xx → absent; no answer → at most once; nothing never sent.
 *
 * The random schedule comes from a seeded PRNG: the seed is printed, and `SLUICE_CRASH_SEED=<seed>`
 * replays it. No assertion depends on timing; every wait and loop is bounded.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CRASH_POINTS, type CrashPoint } from "../flush/crash-points.js";
import { tempDir } from "./helpers/batches.js";
import { CLI } from "./helpers/cli.js";
import { seededRandom } from "../bench/common.js";
import type { RecoverReport } from "../src/cli/recover-command.js";
import { BASE_TIME_NS, Ledger, LoadGenerator, type LoadOptions, type VerifyReport, problemsOf, seedFromEnv, sleep, waitFor } from "./helpers/load.js";
import { type ParquetFileInfo, parquetFiles, readParquet, walFiles } from "./helpers/parquet.js";

// ---------------------------------------------------------------------------------------------
// Processes: every child is registered at spawn and SIGKILLed in afterEach, whatever happened.

interface Exit {
    readonly code: number | null;
    readonly signal: NodeJS.Signals | null;
}

interface Proc {
    readonly child: ChildProcess;
    readonly exited: Promise<Exit>;
    output(): string;
}

interface Server {
    readonly proc: Proc;
    readonly url: string;
}

const children = new Set<Proc>();
const generators = new Set<LoadGenerator>();

function spawnCli(args: string[], env: Record<string, string>): Proc {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<Exit>((resolve) =>
        child.once("close", (code, signal) => {
            resolve({ code, signal });
        }),
    );
    const proc: Proc = { child, exited, output: () => output };
    children.add(proc);
    return proc;
}

async function killHard(proc: Proc): Promise<Exit> {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGKILL");
    return proc.exited;
}

/** Resolves with the exit, or SIGKILLs the process and throws after `timeoutMs`. */
async function exitWithin(proc: Proc, timeoutMs: number, what: string): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">(
        (resolve) =>
            (timer = setTimeout(() => {
                resolve("timeout");
            }, timeoutMs)),
    );
    const result = await Promise.race([proc.exited, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
        await killHard(proc);
        throw new Error(`${what} did not exit within ${timeoutMs} ms:\n${proc.output().slice(-2000)}`);
    }
    return result;
}

/** `sluice serve` on 127.0.0.1 and a free port; resolves once it listens (after recovery). */
async function serve(env: Record<string, string>, timeoutMs = 30_000): Promise<Server> {
    const proc = spawnCli(["serve", "--host", "127.0.0.1", "--port", "0"], env);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const match = /listening on (http:\/\/\S+)/.exec(proc.output());
        if (match) return { proc, url: match[1]! };
        if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
            const exit = await proc.exited;
            throw new Error(`sluice serve exited (code ${exit.code}, signal ${exit.signal}) before listening:\n${proc.output().slice(-2000)}`);
        }
        if (Date.now() >= deadline) {
            await killHard(proc);
            throw new Error(`sluice serve did not listen within ${timeoutMs} ms:\n${proc.output().slice(-2000)}`);
        }
        await sleep(10);
    }
}

/** Graceful stop: SIGTERM and the exit. */
async function terminate(server: Server, timeoutMs = 30_000): Promise<Exit> {
    server.proc.child.kill("SIGTERM");
    return exitWithin(server.proc, timeoutMs, "sluice serve after SIGTERM");
}

/** `sluice recover --json`: the exit, and the stats object when it printed one. */
async function recover(env: Record<string, string>): Promise<{ exit: Exit; stats: RecoverReport | undefined; output: string }> {
    const proc = spawnCli(["recover", "--json"], env);
    const exit = await exitWithin(proc, 60_000, "sluice recover");
    const line = proc
        .output()
        .split("\n")
        .find((text) => text.startsWith("{"));
    return { exit, stats: line === undefined ? undefined : (JSON.parse(line) as RecoverReport), output: proc.output() };
}

function track(generator: LoadGenerator): LoadGenerator {
    generators.add(generator);
    return generator;
}

// ---------------------------------------------------------------------------------------------
// The data directory and what is in it.

let data: string;
let cleanup: () => Promise<void>;

beforeEach(async () => ({ path: data, cleanup } = await tempDir("sluice-crash-")));
afterEach(async () => {
    for (const generator of generators) generator.setTarget(undefined);
    await Promise.all([...children].map(killHard));
    await Promise.all([...generators].map((generator) => generator.stop()));
    children.clear();
    generators.clear();
    await cleanup();
});

/** The environment of a server on this test's data directory (`compact`: aggressive background compaction). */
function config(settings: {
    maxRows: number;
    maxAgeMs: number;
    walMaxFileBytes?: number;
    crashAt?: CrashPoint | `${CrashPoint}:${number}`;
    compact?: boolean;
}): Record<string, string> {
    return {
        SLUICE_DATA_DIR: data,
        SLUICE_FLUSH_MAX_ROWS: String(settings.maxRows),
        SLUICE_FLUSH_MAX_AGE_MS: String(settings.maxAgeMs),
        SLUICE_WAL_MAX_FILE_BYTES: String(settings.walMaxFileBytes ?? 64 * 1024),
        ...(settings.compact === true ? { SLUICE_COMPACTION_INTERVAL_MS: "200", SLUICE_COMPACTION_MIN_FILES: "2" } : {}),
        ...(settings.crashAt === undefined ? {} : { SLUICE_TEST_CRASH_AT: settings.crashAt }),
    };
}

/** Flushes constantly: every few hundred rows, every 50 ms. */
const SMALL = { maxRows: 500, maxAgeMs: 50 } as const;
/** A WAL file size no test reaches: no rotation. */
const ONE_WAL_FILE = 64 * 1024 * 1024;
/** Never flushes by itself during a test: everything stays in the buffers and the WAL. */
const NEVER = { maxRows: 1_000_000, maxAgeMs: 600_000 } as const;

const tempFiles = async () => (await readdir(join(data, "flush", "tmp")).catch(() => [] as string[])).filter((name) => name.endsWith(".tmp"));
const manifestCommits = async () =>
    (await readFile(join(data, "flush", "manifest.log"), "utf8").catch(() => "")).split("\n").filter((line) => line.includes('"type":"change"')).length;

interface Accounting {
    readonly report: VerifyReport;
    readonly files: ParquetFileInfo[];
    /** Problems found; `{}` when every point is where it must be. */
    readonly problems: Record<string, string>;
}

/** Reads every Parquet file and checks the ledger against it (exactly once, nothing never sent). */
async function account(ledger: Ledger): Promise<Accounting> {
    const { files, points, duplicateKeys } = await readParquet(data);
    const report = ledger.verify(points);
    const problems = problemsOf(report);
    if (duplicateKeys.length > 0) problems.duplicateKeysByDuckDB = `${duplicateKeys.length}: ${duplicateKeys.slice(0, 5).join("; ")}`;
    return { report, files, problems };
}

function load(options: Partial<LoadOptions> & Pick<LoadOptions, "seed">): LoadOptions {
    return { writers: 2, databases: ["crashdb"], measurements: ["crash"], batchPoints: [20, 60], ...options };
}

async function health(url: string): Promise<{ status: string; checks: { name: string; status: string; message: string }[] }> {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) });
    return (await response.json()) as { status: string; checks: { name: string; status: string; message: string }[] };
}

async function flushNow(url: string): Promise<{ status: number; retryAfter: string | null; body: string }> {
    const response = await fetch(`${url}/api/v1/flush`, { method: "POST", signal: AbortSignal.timeout(30_000) });
    return { status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.text() };
}

/** Writes `requests` requests per writer and expects every one acknowledged. */
async function writeAcked(url: string, ledger: Ledger, options: Partial<LoadOptions> & { requests: number }): Promise<void> {
    const before = ledger.requests.acked;
    await LoadGenerator.burst(url, { ...load({ seed: 1 }), ...options, ledger });
    const sent = (options.writers ?? 2) * options.requests;
    expect(ledger.requests.acked - before, `all ${sent} requests acknowledged; outcomes ${JSON.stringify(ledger.requests)}`).toBe(sent);
}

// ---------------------------------------------------------------------------------------------

describe("crash: random SIGKILL under write load", () => {
    it("keeps every acknowledged point exactly once across 5 kill -9 / restart cycles with compaction every 200 ms, then stops cleanly", { timeout: 120_000 }, async () => {
        const seed = seedFromEnv();
        console.log(`[crash] random SIGKILL seed ${seed} (replay: SLUICE_CRASH_SEED=${seed})`);
        const random = seededRandom(seed);
        const env = config({ ...SMALL, compact: true });
        const generator = track(
            new LoadGenerator({
                writers: 4,
                databases: ["crashdb", "otherdb"],
                measurements: ["crash", "crash_b", "crash_c"],
                batchPoints: [1, 120],
                seed,
            }),
        );
        generator.start();
        const cycles = 5;
        const startFailures: string[] = [];
        /** A failed start is recorded, then the start is tried again (bounded), to see what it cost. */
        const restart = async (): Promise<Server> => {
            for (let attempt = 1; ; attempt++) {
                try {
                    return await serve(env);
                } catch (error) {
                    startFailures.push((error as Error).message.slice(0, 600));
                    if (attempt === 3) throw error;
                }
            }
        };
        const timeline: string[] = [];
        let kills = 0;
        for (let cycle = 1; cycle <= cycles; cycle++) {
            if (cycle > 1 && random() < 0.4) {
                // Now and then a kill while the process starts: opening, recovering, replaying.
                const early = Math.floor(50 + random() * 400);
                const starting = spawnCli(["serve", "--host", "127.0.0.1", "--port", "0"], env);
                await sleep(early);
                const exit = await killHard(starting);
                kills++;
                timeline.push(
                    `cycle ${cycle}: killed while starting, ${early} ms after spawn (${exit.signal ?? `exit ${exit.code}`}${/listening on/.test(starting.output()) ? ", was listening" : ""})`,
                );
            }
            const server = await restart();
            generator.setTarget(server.url);
            await generator.acknowledged(3);
            const delay = Math.floor(random() * 800);
            await sleep(delay);
            await killHard(server.proc);
            kills++;
            generator.setTarget(undefined);
            timeline.push(`cycle ${cycle}: killed ${delay} ms after 3 acks, ${generator.ledger.counts.acked} points acked so far`);
        }
        const final = await restart();
        generator.setTarget(final.url);
        await generator.acknowledged(10);
        await generator.stop();
        const exit = await terminate(final);
        const leftover = await walFiles(data);
        const { report, files, problems } = await account(generator.ledger);
        console.log(`[crash] ${timeline.join("; ")}`);
        console.log(
            `[crash] seed ${seed}: ${kills} kills in ${cycles} cycles, ${report.counts.acked} points acked (${generator.ledger.requests.acked} requests), ${report.counts.unknown} unanswered, ${report.counts.refused} refused; ${report.counts.rows} rows in ${files.length} Parquet files`,
        );
        expect(report.counts.acked).toBeGreaterThan(0);
        expect({ seed, exit, leftoverWal: leftover, startFailures, problems }).toEqual({ seed, exit: { code: 0, signal: null }, leftoverWal: [], startFailures: [], problems: {} });
    });
});

/** Writes to a server started with a crash point until it kills itself there; the load's ledger. */
async function loadUntilCrash(env: Record<string, string>, seed: number): Promise<LoadGenerator> {
    const server = await serve(env);
    const generator = track(new LoadGenerator(load({ seed })));
    generator.setTarget(server.url);
    generator.start();
    const exit = await exitWithin(server.proc, 20_000, `sluice serve with SLUICE_TEST_CRASH_AT=${env.SLUICE_TEST_CRASH_AT}`);
    generator.setTarget(undefined);
    await generator.stop();
    expect(exit, server.proc.output()).toEqual({ code: null, signal: "SIGKILL" });
    return generator;
}

const FLUSH_STEPS: readonly CrashPoint[] = ["after-temp-fsync", "before-commit-record", "after-commit-record", "after-rename"];
/** Steps of compaction's swap and retention's drop (the commit steps above are shared with flushes). */
const LAKE_STEPS: readonly CrashPoint[] = ["before-exchange", "after-exchange", "after-drop"];

describe("crash: SIGKILL at each crash point of the commit protocol and recovery", () => {
    it("covers every crash point", () => {
        expect([...CRASH_POINTS].sort()).toEqual([...FLUSH_STEPS, ...LAKE_STEPS, "before-purge", "after-purge", "during-recovery"].sort());
    });

    it.each(FLUSH_STEPS)("%s: dies at its first flush; recover finishes or discards it; exactly once", { timeout: 60_000 }, async (step) => {
        // One WAL file (no rotation), so the restart's replay meets only what this crash point left.
        const generator = await loadUntilCrash(config({ maxRows: 200, maxAgeMs: 50, walMaxFileBytes: ONE_WAL_FILE, crashAt: step }), 7);
        expect(generator.ledger.counts.acked).toBeGreaterThan(0);

        // What the crash left, before anything repairs it.
        const temps = await tempFiles();
        const visible = await parquetFiles(data);
        const commits = await manifestCommits();
        if (step === "after-rename") {
            expect(visible.length).toBeGreaterThanOrEqual(1);
            expect(commits).toBeGreaterThanOrEqual(1);
        } else {
            // The first flush died before its files were renamed into place: none is visible.
            expect(visible).toEqual([]);
            expect(temps.length).toBeGreaterThanOrEqual(1);
            expect(commits).toBe(step === "after-commit-record" ? 1 : 0);
        }

        const result = await recover(config({ maxRows: 200, maxAgeMs: 50, walMaxFileBytes: ONE_WAL_FILE }));
        expect(result.exit, result.output).toEqual({ code: 0, signal: null });
        const stats = result.stats!;
        if (step === "after-commit-record") expect(stats.finishedCommits).toBeGreaterThanOrEqual(1);
        else expect(stats.finishedCommits).toBe(0);
        if (step === "after-temp-fsync" || step === "before-commit-record") expect(stats.discardedTemps).toBeGreaterThanOrEqual(1);
        if (step === "after-commit-record" || step === "after-rename") expect(stats.alreadyFlushedEntries).toBeGreaterThanOrEqual(1);
        expect(await tempFiles()).toEqual([]);
        expect(await walFiles(data)).toEqual([]);
        const { report, files, problems } = await account(generator.ledger);
        console.log(`[crash] ${step}: ${report.counts.acked} points acked, ${report.counts.unknown} unanswered; recover ${JSON.stringify(stats)}; ${files.length} Parquet files`);
        expect(problems).toEqual({});
    });

    it.each(["before-exchange", "after-exchange"] as const)(
        "%s: a server dies in its first compaction; the next start finishes or undoes it; every point once",
        { timeout: 60_000 },
        async (step) => {
            const generator = await loadUntilCrash(config({ ...SMALL, compact: true, crashAt: step }), 13);
            const result = await recover(config(SMALL));
            expect(result.exit, result.output).toEqual({ code: 0, signal: null });
            expect(await readdir(join(data, "flush", "stage")).catch(() => [])).toEqual([]);
            const { report, files, problems } = await account(generator.ledger);
            console.log(`[crash] ${step}: ${report.counts.acked} points acked; ${files.length} Parquet files after recover`);
            expect(problems).toEqual({});
            // A second start finds nothing to finish.
            const again = await recover(config(SMALL));
            expect(again.stats).toMatchObject({ finishedCommits: 0, discardedTemps: 0, recoveredEntries: 0 });
        },
    );

    it("after-drop: a server dies while retention drops an hour; the next start finishes the drop and keeps the rest", { timeout: 60_000 }, async () => {
        const nowNs = BigInt(Date.now()) * 1_000_000n;
        const env = { ...config(NEVER), SLUICE_RETENTION_PERIOD: "365d", SLUICE_RETENTION_CHECK_INTERVAL_MS: "100" };
        // Without retention: with it, the first server could drop the hour itself, between the flush and its stop.
        const first = await serve(config(NEVER));
        const body = [`m,host=old v=1 ${BASE_TIME_NS}`, `m,host=new v=2 ${nowNs}`].join("\n");
        expect((await fetch(`${first.url}/write?db=keep`, { method: "POST", body })).status).toBe(204);
        expect((await flushNow(first.url)).status).toBe(200);
        expect(await terminate(first)).toEqual({ code: 0, signal: null });
        const dying = await serve({ ...env, SLUICE_TEST_CRASH_AT: "after-drop" });
        expect(await exitWithin(dying.proc, 20_000, "sluice serve dying at after-drop")).toEqual({ code: null, signal: "SIGKILL" });
        const result = await recover(config(NEVER));
        expect(result.exit, result.output).toEqual({ code: 0, signal: null });
        expect(await readdir(join(data, "flush", "stage")).catch(() => [])).toEqual([]);
        const instance = await DuckDBInstance.create(":memory:");
        const connection = await instance.connect();
        try {
            const rows = (await connection.runAndReadAll(`select host from read_parquet('${join(data, "parquet", "keep", "m")}/**/*.parquet')`)).getRowObjects();
            expect(rows).toEqual([{ host: "new" }]);
        } finally {
            connection.closeSync();
            instance.closeSync();
        }
    });

    it.each(["before-purge:2", "after-purge:2"] as const)(
        "%s: a running server dies at its first purge after a flush; a restart loses and duplicates nothing",
        { timeout: 60_000 },
        async (step) => {
            // The first purge ends the start; the second is the one after the server's first flush.
            const generator = await loadUntilCrash(config({ maxRows: 200, maxAgeMs: 50, walMaxFileBytes: 64 * 1024, crashAt: step }), 11);
            const result = await recover(config({ maxRows: 200, maxAgeMs: 50, walMaxFileBytes: 64 * 1024 }));
            expect(result.exit, result.output).toEqual({ code: 0, signal: null });
            expect(await walFiles(data)).toEqual([]);
            const { problems } = await account(generator.ledger);
            expect(problems).toEqual({});
        },
    );

    it.each(["before-purge", "after-purge", "during-recovery"] as const)(
        "%s: a backlog replayed at start with the crash point set dies there; the next start loses and duplicates nothing",
        { timeout: 60_000 },
        async (step) => {
            // A backlog of 900 acknowledged rows over several 4 KiB WAL files, never flushed.
            const small = { maxRows: 200, maxAgeMs: 50, walMaxFileBytes: 4096 } as const;
            const first = await serve(config({ ...NEVER, walMaxFileBytes: 4096 }));
            const ledger = new Ledger();
            await writeAcked(first.url, ledger, { writers: 1, requests: 30, batchPoints: [30, 30] });
            await killHard(first.proc);
            expect((await walFiles(data)).length).toBeGreaterThan(1);

            // Replaying it flushes every 200 rows; then the purge that ends the start (before-purge,
            // after-purge) or the first replayed entry (during-recovery) kills the process.
            const dying = spawnCli(["serve", "--host", "127.0.0.1", "--port", "0"], config({ ...small, crashAt: step }));
            const death = await exitWithin(dying, 30_000, `sluice serve with SLUICE_TEST_CRASH_AT=${step}`);
            expect(death, dying.output()).toEqual({ code: null, signal: "SIGKILL" });
            expect(dying.output()).not.toMatch(/listening on/);
            const visible = await parquetFiles(data);
            if (step === "during-recovery") expect(visible).toEqual([]);
            else expect(visible.length).toBeGreaterThanOrEqual(1);

            let detail: string;
            if (step === "during-recovery") {
                // Third start, without the crash point: serves, then stops cleanly.
                const third = await serve(config(small));
                expect(await terminate(third), third.proc.output()).toEqual({ code: 0, signal: null });
                const again = await recover(config(small));
                expect(again.exit, again.output).toEqual({ code: 0, signal: null });
                expect(again.stats).toMatchObject({ recoveredEntries: 0, flushedFiles: 0 });
                detail = "third start served and stopped cleanly";
            } else {
                const result = await recover(config(small));
                expect(result.exit, result.output).toEqual({ code: 0, signal: null });
                detail = `recover ${JSON.stringify(result.stats)}`;
            }
            expect(await walFiles(data)).toEqual([]);
            const { report, files, problems } = await account(ledger);
            console.log(`[crash] ${step}: ${report.counts.acked} points acked; ${detail}; ${files.length} Parquet files, ${report.counts.rows} rows`);
            expect(problems).toEqual({});
        },
    );
});

describe("crash: recovery", () => {
    it("sluice recover after a SIGKILL replays the unflushed points once; run again it changes nothing", { timeout: 60_000 }, async () => {
        const server = await serve(config(NEVER));
        const ledger = new Ledger();
        await writeAcked(server.url, ledger, { writers: 2, requests: 15, databases: ["crashdb", "otherdb"], measurements: ["crash", "crash_b"], batchPoints: [10, 100] });
        await killHard(server.proc);
        expect(await walFiles(data)).not.toEqual([]);

        const first = await recover(config(NEVER));
        expect(first.exit, first.output).toEqual({ code: 0, signal: null });
        expect(first.stats).toMatchObject({
            recoveredEntries: ledger.requests.acked,
            recoveredRows: ledger.counts.acked,
            alreadyFlushedEntries: 0,
            corruptedEntries: 0,
            flushedRows: ledger.counts.acked,
        });
        expect(first.stats!.flushedFiles).toBeGreaterThanOrEqual(1);
        expect(await walFiles(data)).toEqual([]);
        const after = await parquetFiles(data);
        expect(after.length).toBe(first.stats!.flushedFiles);

        const second = await recover(config(NEVER));
        expect(second.exit, second.output).toEqual({ code: 0, signal: null });
        expect(second.stats).toMatchObject({ recoveredEntries: 0, recoveredRows: 0, finishedCommits: 0, discardedTemps: 0, flushedFiles: 0, flushedRows: 0 });
        expect(await parquetFiles(data)).toEqual(after);
        const { report, problems } = await account(ledger);
        console.log(
            `[crash] recover: ${report.counts.acked} points in ${ledger.requests.acked} entries recovered into ${after.length} files; second run ${JSON.stringify(second.stats)}`,
        );
        expect(problems).toEqual({});
    });

    it("a backlog larger than flush.max_rows over several WAL files is replayed in full", { timeout: 60_000 }, async () => {
        // 800 rows in 4 KiB WAL files (several files), never flushed; then a start that flushes every 100 rows.
        const first = await serve(config({ ...NEVER, walMaxFileBytes: 4096 }));
        const ledger = new Ledger();
        await writeAcked(first.url, ledger, { writers: 1, requests: 40, batchPoints: [20, 20] });
        await killHard(first.proc);
        const walBefore = await walFiles(data);
        expect(walBefore.length).toBeGreaterThan(2);

        const env = config({ maxRows: 100, maxAgeMs: 600_000, walMaxFileBytes: 4096 });
        let startFailure: string | undefined;
        let second: Server;
        try {
            second = await serve(env);
        } catch (error) {
            startFailure = (error as Error).message.slice(0, 600);
            second = await serve(env);
        }
        const exit = await terminate(second);
        const { report, problems } = await account(ledger);
        console.log(`[crash] backlog: ${report.counts.acked} rows acked in ${walBefore.length} WAL files; ${report.counts.stored} in Parquet after the restart`);
        expect({ startFailure, exit, problems }).toEqual({ startFailure: undefined, exit: { code: 0, signal: null }, problems: {} });
    });
});

describe("faults: flushes that fail for real", () => {
    /**
     * Makes every flush of `database` fail: a regular file where its directory must go, so the
     * mkdir of the partition fails (ENOTDIR) — unlike chmod, this holds when tests run as root.
     */
    async function blockDatabase(database: string): Promise<() => Promise<void>> {
        await mkdir(join(data, "parquet"), { recursive: true });
        const path = join(data, "parquet", database);
        await writeFile(path, "not a directory: flushes of this database fail until it is removed\n");
        return () => rm(path);
    }

    it(
        "while flushes fail: writes get 204, /health warns, /api/v1/flush answers 503, no WAL file is purged; once cleared the retry stores everything once",
        { timeout: 90_000 },
        async () => {
            const unblock = await blockDatabase("faultdb");
            const server = await serve(config({ maxRows: 200, maxAgeMs: 50, walMaxFileBytes: 4096 }));
            const ledger = new Ledger();
            await writeAcked(server.url, ledger, { databases: ["faultdb"], requests: 10 });
            const walAtFirstFailure = await walFiles(data);
            const warned = await waitFor("/health to warn about faultdb", async () => {
                const body = await health(server.url);
                return body.status === "warn" && body.checks.some((check) => check.name === "flush faultdb/crash" && check.status === "warn") ? body : undefined;
            });
            expect(warned.checks.find((check) => check.name === "flush faultdb/crash")!.message).toMatch(/ENOTDIR|EEXIST|not a directory/i);
            const refused = await flushNow(server.url);
            expect(refused.status).toBe(503);
            expect(refused.retryAfter).not.toBeNull();

            // Other databases go on flushing; faultdb's writes are still acknowledged and kept.
            await writeAcked(server.url, ledger, { databases: ["okdb"], requests: 5, writers: 1, firstWriter: 5 });
            await waitFor("okdb to reach Parquet", async () => (await parquetFiles(data)).some((file) => file.path.startsWith("okdb")));
            await writeAcked(server.url, ledger, { databases: ["faultdb"], requests: 5 });
            const walWhileFailing = await walFiles(data);
            expect(walWhileFailing.length).toBeGreaterThan(1);
            for (const name of walAtFirstFailure) expect(walWhileFailing, `${name} was purged while its rows were not in Parquet`).toContain(name);
            expect((await parquetFiles(data)).filter((file) => !file.path.startsWith("okdb"))).toEqual([]);
            expect((await health(server.url)).status).toBe("warn");

            await unblock();
            const cleared = await waitFor("the flush retry to succeed (/health pass)", async () => ((await health(server.url)).status === "pass" ? true : undefined), 40_000, 100);
            expect(cleared).toBe(true);
            const flushed = await flushNow(server.url);
            expect(flushed.status).toBe(200);
            expect(await terminate(server)).toEqual({ code: 0, signal: null });
            expect(await walFiles(data)).toEqual([]);
            const { report, files, problems } = await account(ledger);
            console.log(
                `[crash] flush failure: ${report.counts.acked} points acked while failing, ${walWhileFailing.length} WAL files kept, ${files.length} Parquet files after the retry`,
            );
            expect(problems).toEqual({});
        },
    );

    it("SIGTERM while flushes fail exits non-zero and keeps the WAL; the next start recovers all of it", { timeout: 90_000 }, async () => {
        // One WAL file, so the next start's replay does not depend on purges between WAL files.
        const unblock = await blockDatabase("faultdb");
        const env = config({ maxRows: 200, maxAgeMs: 50, walMaxFileBytes: ONE_WAL_FILE });
        const server = await serve(env);
        const ledger = new Ledger();
        await writeAcked(server.url, ledger, { databases: ["faultdb"], requests: 10 });
        await waitFor("/health to warn", async () => ((await health(server.url)).status === "warn" ? true : undefined));
        const exit = await terminate(server);
        expect(exit.code, server.proc.output()).not.toBe(0);
        expect(exit.code).not.toBeNull();
        expect(server.proc.output()).toMatch(/shutdown could not flush everything; the WAL is kept/);
        const kept = await walFiles(data);
        expect(kept).not.toEqual([]);

        await unblock();
        const next = await serve(env);
        expect(await terminate(next), next.proc.output()).toEqual({ code: 0, signal: null });
        expect(await walFiles(data)).toEqual([]);
        const { report, files, problems } = await account(ledger);
        console.log(
            `[crash] SIGTERM while failing: ${report.counts.acked} points acked, ${kept.length} WAL files kept; after the next start ${report.counts.stored} in ${files.length} Parquet files`,
        );
        expect(problems).toEqual({});
    });

    it("a flush that fails on one of its hour files publishes none of them: no duplicate after the retry", { timeout: 60_000 }, async () => {
        // One writer, 500 points a request, ~1 s apart: seq 0–2799 fall in hour 22, 2800+ in hour 23.
        const partition = join(data, "parquet", "faultdb", "crash", "date=2023-11-14");
        await mkdir(partition, { recursive: true });
        await writeFile(join(partition, "hour=23"), "not a directory\n");
        const server = await serve(config(NEVER));
        const ledger = new Ledger();
        await writeAcked(server.url, ledger, { databases: ["faultdb"], writers: 1, requests: 7, batchPoints: [500, 500] });
        const failed = await flushNow(server.url);
        expect(failed.status).toBe(503);
        const visibleAfterFailure = (await parquetFiles(data)).map((file) => file.path);
        // More rows before the retry, as under live load: the retry's files get other names.
        await writeAcked(server.url, ledger, { databases: ["faultdb"], writers: 1, requests: 1, batchPoints: [500, 500] });
        await rm(join(partition, "hour=23"));
        expect((await flushNow(server.url)).status).toBe(200);
        expect(await terminate(server)).toEqual({ code: 0, signal: null });
        const { report, files, problems } = await account(ledger);
        console.log(
            `[crash] partial flush failure: ${report.counts.acked} points; visible after the failed flush: ${JSON.stringify(visibleAfterFailure)}; ${files.length} files at the end`,
        );
        expect({ visibleAfterFailure, problems }).toEqual({ visibleAfterFailure: [], problems: {} });
    });
});

describe("graceful shutdown", () => {
    it("SIGTERM after write load exits 0, leaves no WAL file, keeps every acknowledged point once; a restart replays nothing", { timeout: 60_000 }, async () => {
        const server = await serve(config(SMALL));
        const generator = track(new LoadGenerator(load({ seed: 11, writers: 4, databases: ["crashdb", "otherdb"], measurements: ["crash", "crash_b"], batchPoints: [1, 120] })));
        generator.setTarget(server.url);
        generator.start();
        await generator.acknowledged(40);
        // The writers stop (their keep-alive connections go idle) just before the SIGTERM: whatever
        // was acknowledged up to then sits in buffers, in flushes under way and in the WAL.
        await generator.stop();
        const exit = await terminate(server);
        expect(exit, server.proc.output()).toEqual({ code: 0, signal: null });
        expect(server.proc.output()).toMatch(/shut down cleanly/);
        expect(await walFiles(data)).toEqual([]);
        const before = await parquetFiles(data);
        const { report, problems } = await account(generator.ledger);

        const restart = await recover(config(SMALL));
        expect(restart.exit, restart.output).toEqual({ code: 0, signal: null });
        expect(restart.stats).toMatchObject({ recoveredEntries: 0, recoveredRows: 0, finishedCommits: 0, discardedTemps: 0, flushedFiles: 0 });
        expect(await parquetFiles(data)).toEqual(before);
        console.log(
            `[crash] graceful: ${report.counts.acked} points acked in ${generator.ledger.requests.acked} requests; ${before.length} Parquet files; restart ${JSON.stringify(restart.stats)}`,
        );
        expect(problems).toEqual({});
    });

    it("SIGTERM while clients keep writing: writes get 503, the process exits 0 once they stop, every acknowledged point once", { timeout: 60_000 }, async () => {
        const server = await serve(config(SMALL));
        const generator = track(new LoadGenerator(load({ seed: 13, writers: 4, databases: ["crashdb"], measurements: ["crash", "crash_b"], batchPoints: [1, 120] })));
        generator.setTarget(server.url);
        generator.start();
        await generator.acknowledged(40);
        server.proc.child.kill("SIGTERM");
        // Clients go on writing for a while over their keep-alive connections (Telegraf does),
        // then stop; shutdown must not wait for them to close their idle connections.
        await sleep(1000);
        generator.setTarget(undefined);
        await generator.stop();
        const exit = await exitWithin(server.proc, 15_000, "sluice serve after SIGTERM, 15 s after its clients stopped writing");
        expect(exit, server.proc.output()).toEqual({ code: 0, signal: null });
        expect(await walFiles(data)).toEqual([]);
        const { report, files, problems } = await account(generator.ledger);
        console.log(
            `[crash] SIGTERM under load: ${report.counts.acked} points acked, ${report.counts.refused} refused (5xx while stopping), ${report.counts.unknown} unanswered; ${files.length} Parquet files`,
        );
        expect(problems).toEqual({});
    });
});

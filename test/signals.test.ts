/**
 * Stopping Sluice as a supervisor does (issue 13 items 6-7): the server is started with
 * `npm start -- --data-dir D --port 0`, and only the PID that gave is signalled (except where a
 * test says it plays a terminal or an operator signalling the server itself). A graceful stop
 * leaves every acknowledged point in Parquet and no WAL file; SIGHUP never kills the server.
 * Needs `npm run build` first (as `npm test` does): `npm start` must not rebuild a current build.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "./helpers/batches.js";
import { readParquet, walFiles } from "./helpers/parquet.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STAMP = join(ROOT, "dist", ".build-stamp");
const POINTS = 50;

interface Exit {
    readonly code: number | null;
    readonly signal: NodeJS.Signals | null;
}

interface NpmStart {
    /** The PID `npm start` gave: what a supervisor signals. */
    readonly npm: ChildProcess;
    /** The server process npm started (the shell `exec`s it). */
    readonly serverPid: number;
    readonly url: string;
    /** npm's exit. */
    readonly exited: Promise<Exit>;
    /** Resolves once every process writing to the output pipe (npm and the server) is gone. */
    readonly drained: Promise<void>;
    output(): string;
}

const started = new Set<NpmStart>();
const dirs: { cleanup(): Promise<void> }[] = [];

/** Running, not gone and not a zombie (an orphan's exit waits for whoever adopted it to reap it). */
function alive(pid: number): boolean {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
    } catch {
        return false;
    }
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, output?: () => string): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
        const value = await probe();
        if (value !== undefined) return value;
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}${output === undefined ? "" : `:\n${output()}`}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

async function npmStart(args: string[]): Promise<NpmStart> {
    const npm = spawn("npm", ["start", "--", ...args], { cwd: ROOT, env: process.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    npm.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    npm.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<Exit>((resolve) =>
        npm.once("exit", (code, signal) => {
            resolve({ code, signal });
        }),
    );
    const drained = new Promise<void>((resolve) =>
        npm.once("close", () => {
            resolve();
        }),
    );
    const url = await until(
        "npm start to listen",
        () => /listening on (http:\/\/\S+)/.exec(output)?.[1],
        60_000,
        () => output,
    );
    const children = (await readFile(`/proc/${npm.pid}/task/${npm.pid}/children`, "utf8")).trim().split(/\s+/).map(Number);
    expect(children).toHaveLength(1);
    const serverPid = children[0]!;
    expect((await readFile(`/proc/${serverPid}/cmdline`, "utf8")).split("\0")).toContain("serve");
    const handle: NpmStart = { npm, serverPid, url, exited, drained, output: () => output };
    started.add(handle);
    return handle;
}

afterEach(async () => {
    for (const handle of started) {
        if (alive(handle.serverPid)) process.kill(handle.serverPid, "SIGKILL");
        if (handle.npm.exitCode === null && handle.npm.signalCode === null) handle.npm.kill("SIGKILL");
        await handle.drained;
    }
    started.clear();
    for (const dir of dirs.splice(0)) await dir.cleanup();
});

async function dataDir(): Promise<string> {
    const dir = await tempDir("sluice-signals-");
    dirs.push(dir);
    return dir.path;
}

/** Writes POINTS points (writer w, seq 0…POINTS-1), each acknowledged with 204. */
async function writePoints(url: string, headers: Record<string, string> = {}): Promise<void> {
    for (let i = 0; i < POINTS; i += 10) {
        const lines = Array.from({ length: 10 }, (_, k) => `m,writer=w seq=${i + k}i,v=${i + k} ${1_700_000_000_000_000_000n + BigInt(i + k)}`);
        const response = await fetch(`${url}/write?db=sig`, { method: "POST", body: lines.join("\n"), headers });
        expect(response.status).toBe(204);
    }
}

/** Every point is in Parquet exactly once and the WAL is purged: the shutdown flush happened. */
async function expectFlushedAndPurged(dir: string): Promise<void> {
    const { points, duplicateKeys } = await readParquet(dir);
    expect(points.map((point) => Number(point.seq)).sort((a, b) => a - b)).toEqual(Array.from({ length: POINTS }, (_, i) => i));
    expect(duplicateKeys).toEqual([]);
    expect(await walFiles(dir)).toEqual([]);
}

describe("npm start under a supervisor", () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
        it(`${signal} to the PID npm start gave shuts down gracefully: exit 0, everything in Parquet, WAL purged`, { timeout: 120_000 }, async () => {
            const stampBefore = (await stat(STAMP)).mtimeMs;
            const dir = await dataDir();
            const server = await npmStart(["--data-dir", dir, "--port", "0"]);
            expect((await stat(STAMP)).mtimeMs, "npm start rebuilt a current build (or dist was stale: npm run build)").toBe(stampBefore);
            await writePoints(server.url);
            server.npm.kill(signal);
            expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
            await server.drained;
            expect(alive(server.serverPid)).toBe(false);
            expect(server.output()).toContain(`${signal} received: refusing new writes, flushing everything, then exiting`);
            expect(server.output()).toContain("shut down cleanly: every acknowledged write is in Parquet");
            await expectFlushedAndPurged(dir);
        });
    }

    it("SIGHUP to the server reloads auth.tokens and never stops it; a bad file is refused and the running configuration stays", { timeout: 120_000 }, async () => {
        const dir = await dataDir();
        const config = join(dir, "sluice.toml");
        await writeFile(config, `[auth]\ntokens = ["old"]\n`);
        const server = await npmStart(["--config", config, "--data-dir", join(dir, "data"), "--port", "0"]);
        const write = (token: string) => fetch(`${server.url}/write?db=sig`, { method: "POST", body: "m,writer=x seq=0i,v=0 1", headers: { authorization: `Token ${token}` } });
        expect((await write("old")).status).toBe(204);

        await writeFile(config, `[auth]\ntokens = ["new"]\n[flush]\nmax_rows = 10\n`);
        process.kill(server.serverPid, "SIGHUP");
        await until(
            "the reload",
            () => (server.output().includes("SIGHUP: configuration reloaded") ? true : undefined),
            30_000,
            () => server.output(),
        );
        expect(server.output()).toContain("SIGHUP: configuration reloaded (now in effect: auth.tokens; changed but waiting for a restart: flush.max_rows)");
        expect((await write("old")).status).toBe(401);
        expect((await write("new")).status).toBe(204);

        await writeFile(config, `[auth]\ntokens = "not a list"\n`);
        process.kill(server.serverPid, "SIGHUP");
        await until(
            "the refused reload",
            () => (server.output().includes("SIGHUP: configuration not reloaded") ? true : undefined),
            30_000,
            () => server.output(),
        );
        expect((await write("new")).status).toBe(204);
        expect((await fetch(`${server.url}/health`)).status).toBe(200);
        expect(alive(server.serverPid)).toBe(true);

        server.npm.kill("SIGTERM");
        expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
    });

    it("SIGHUP to the PID npm start gave (npm dies of it): the server notices it lost npm and shuts down gracefully", { timeout: 120_000 }, async () => {
        const dir = await dataDir();
        const server = await npmStart(["--data-dir", dir, "--port", "0"]);
        await writePoints(server.url);
        server.npm.kill("SIGHUP");
        expect(await server.exited).toEqual({ code: null, signal: "SIGHUP" });
        await server.drained;
        expect(alive(server.serverPid)).toBe(false);
        expect(server.output()).toMatch(
            new RegExp(`the process that started Sluice from an npm script \\(pid ${server.npm.pid}\\) is gone: refusing new writes, flushing everything, then exiting`),
        );
        expect(server.output()).toContain("shut down cleanly: every acknowledged write is in Parquet");
        await expectFlushedAndPurged(dir);
    });
});

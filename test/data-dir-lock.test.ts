/**
 * The data-directory lock (DESIGN.md §3 invariant 8): a kernel lock on an open file, so a second
 * process is refused whatever PID namespace the first runs in, the lock goes with its holder's
 * death, and nothing left in the lock file (empty after a power cut, a reused PID) blocks a start.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DataDirLockedError, LOCK_FILE, lockDataDir } from "../src/data-dir.js";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { tempDir } from "./helpers/batches.js";
import { CLI, runCli, startServe } from "./helpers/cli.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataDir(): Promise<string> {
    const dir = await tempDir("sluice-lock-");
    cleanups.push(dir.cleanup);
    return dir.path;
}

/** A PID no process of this (the host's) namespace has: what a lock naming a container's PID looks like here. */
function deadHostPid(): number {
    for (let pid = 30_001; pid < 32_000; pid++) if (!existsSync(`/proc/${pid}`)) return pid;
    throw new Error("no free PID between 30001 and 32000");
}

/**
 * Runs `sluice serve` in a new PID namespace (as a container would) under a PID that no process
 * of this namespace has; resolves with the shell that is the namespace's init once it listens.
 */
async function serveInOwnPidNamespace(data: string): Promise<{ child: ChildProcess; pid: number }> {
    const pid = deadHostPid();
    const serve = [process.execPath, CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", data].map((arg) => `'${arg}'`).join(" ");
    const script = `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid && ${serve}`;
    const child = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", "sh", "-c", script], {
        env: { PATH: process.env.PATH ?? "" },
        stdio: ["ignore", "pipe", "pipe"],
    });
    const closed = once(child, "close");
    cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        await closed;
    });
    let output = "";
    await new Promise<void>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
            output += chunk.toString();
            if (output.includes("listening on")) resolve();
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        void closed.then(() => {
            reject(new Error(`serve in its own PID namespace exited before listening:\n${output}`));
        });
    });
    return { child, pid };
}

describe("data-directory lock", () => {
    it("refuses a second holder in the same process and lets the next one in once released", async () => {
        const data = await dataDir();
        const first = await lockDataDir(nodeFileSystem, data);
        await expect(lockDataDir(nodeFileSystem, data)).rejects.toBeInstanceOf(DataDirLockedError);
        await first.release();
        const second = await lockDataDir(nodeFileSystem, data);
        await second.release();
    });

    it("starts on a data directory whose lock file came back empty or names a live or reused PID", async () => {
        const data = await dataDir();
        // What a power cut leaves (the repro of issue 10 item 1), and a PID that is alive now (ours).
        for (const content of ["", `${process.pid}\n`, "1\n", "not a pid at all \u0000\u0001"]) {
            await writeFile(join(data, LOCK_FILE), content);
            const recovered = await runCli(["recover", "--data-dir", data, "--json"]);
            expect(recovered.stderr).toBe("");
            expect(recovered.code).toBe(0);
        }
    });

    it("refuses a second server while the first runs in another PID namespace, and lets one in as soon as it is killed", async () => {
        const data = await dataDir();
        const first = await serveInOwnPidNamespace(data);
        const second = await runCli(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", data]);
        expect(second.code).toBe(2);
        // The holder's PID means nothing here (no such process in this namespace): the kernel's lock decides.
        expect(existsSync(`/proc/${first.pid}`)).toBe(false);
        expect(second.stderr).toMatch(new RegExp(`is in use by another sluice process \\(pid ${first.pid} on `));
        const offline = await runCli(["recover", "--data-dir", data]);
        expect(offline.code).toBe(2);
        expect(offline.stderr).toMatch(/in use by another sluice process/);

        first.child.kill("SIGKILL");
        await once(first.child, "close");
        const next = await startServe(["--data-dir", data]);
        cleanups.push(() => next.stop("SIGKILL"));
        expect((await fetch(`${next.url}/ping`)).status).toBe(204);
        expect(await next.stop("SIGTERM")).toBe(0);
    });
});

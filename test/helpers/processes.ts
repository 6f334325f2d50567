/**
 * Outside processes for end-to-end checks and benchmarks: run a command to completion, find a
 * free port, start a service and wait until it is ready, stop it (SIGTERM, then SIGKILL).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { performance } from "node:perf_hooks";

/** Runs `command args` to completion (LC_ALL=C), its output kept. */
export function runCommand(command: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolvePromise, reject) => {
        const child = spawn(command, args, { env: { ...process.env, LC_ALL: "C" }, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        child.on("error", reject);
        child.on("close", (code) => {
            resolvePromise({ code, stdout, stderr });
        });
    });
}

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

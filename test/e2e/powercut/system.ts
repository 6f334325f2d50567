/**
 * What the opt-in end-to-end checks need from the machine: root, Debian packages installed when
 * missing (and said so), commands run to completion with their output kept, the repository's
 * paths from compiled code, and a teardown stack that undoes mounts, loop devices and processes
 * whatever happens (failure, Ctrl-C, SIGTERM).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SluiceError } from "../../../src/errors.js";

/** The repository root: the first directory above this file that holds package.json (from src or dist). */
export function repoRoot(): string {
    for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
        if (existsSync(join(dir, "package.json"))) return dir;
        if (dirname(dir) === dir) throw new Error("no package.json above the e2e checks");
    }
}

/** The built CLI (`npm run e2e` builds first). */
export const SLUICE_CLI = join(repoRoot(), "dist", "src", "cli", "main.js");

export function say(message: string): void {
    process.stdout.write(`${message}\n`);
}

export interface Finished {
    readonly code: number | null;
    readonly signal: NodeJS.Signals | null;
    readonly stdout: string;
    readonly stderr: string;
}

export class CommandFailedError extends SluiceError {
    readonly code = "command-failed";
    constructor(
        readonly command: string,
        readonly result: Finished,
    ) {
        super(`${command} failed (exit ${result.code ?? result.signal}): ${(result.stderr || result.stdout).trim().slice(-2000)}`);
    }
}

/** Runs a command to completion; throws CommandFailedError on a non-zero exit unless `allowFailure`. */
export async function run(command: string, args: readonly string[], options: { allowFailure?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
    const result = await finished(child);
    if (!options.allowFailure && result.code !== 0) throw new CommandFailedError(`${command} ${args.join(" ")}`, result);
    return result;
}

/** Collects a child's output until it exits (a spawn error counts as exit 127). */
export function finished(child: ChildProcess): Promise<Finished> {
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => {
        child.once("error", (error) => {
            resolve({ code: 127, signal: null, stdout, stderr: `${stderr}${error.message}` });
        });
        child.once("close", (code, signal) => {
            resolve({ code, signal, stdout, stderr });
        });
    });
}

/** `promise`'s value, or undefined once `ms` have passed first (the timer never outlives the race). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<undefined>(
        (resolve) =>
            (timer = setTimeout(() => {
                resolve(undefined);
            }, ms)),
    );
    try {
        return await Promise.race([promise, expired]);
    } finally {
        clearTimeout(timer);
    }
}

export function requireRoot(what: string): void {
    if (process.getuid?.() !== 0) throw new Error(`${what} needs root (it mounts file systems and sets up loop devices)`);
}

export interface DebianNeed {
    /** The Debian package that provides it. */
    readonly debian: string;
    /** A command whose success means it is there. */
    readonly probe: readonly [string, ...string[]];
}

/** Installs (apt-get update, then apt-get install) every package whose probe fails, saying so. */
export async function ensureDebianPackages(needs: readonly DebianNeed[]): Promise<void> {
    const missing: string[] = [];
    for (const need of needs) {
        const [command, ...args] = need.probe;
        if ((await run(command, args, { allowFailure: true })).code !== 0) missing.push(need.debian);
    }
    if (missing.length === 0) return;
    say(`installing Debian packages: ${missing.join(" ")} (apt-get update; apt-get install -y)`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    await run("apt-get", ["update", "-qq"], { env });
    await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env });
    for (const need of needs) {
        const [command, ...args] = need.probe;
        if ((await run(command, args, { allowFailure: true })).code !== 0) throw new Error(`${need.debian} is installed but \`${need.probe.join(" ")}\` still fails`);
    }
}

interface Step {
    readonly what: string;
    readonly undo: () => Promise<unknown>;
}

/**
 * Undo steps run last-in first-out: every mount, loop device, daemon and server registers its
 * undo when it is made, and `runAll` (on success, failure or a signal) undoes what is left.
 */
export class Teardown {
    readonly #steps: Step[] = [];
    #running: Promise<void> | undefined;

    /** Registers an undo step; the returned function runs it now (once) and forgets it. */
    add(what: string, undo: () => Promise<unknown>): () => Promise<void> {
        const step: Step = { what, undo };
        this.#steps.push(step);
        return async () => {
            const index = this.#steps.indexOf(step);
            if (index < 0) return;
            this.#steps.splice(index, 1);
            await undo();
        };
    }

    /** Undoes every step left, newest first; a failing step is reported and the rest still run. */
    runAll(): Promise<void> {
        this.#running ??= (async () => {
            for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
                try {
                    await step.undo();
                } catch (error) {
                    process.stderr.write(`teardown: ${step.what} failed: ${(error as Error).message}\n`);
                }
            }
        })().finally(() => (this.#running = undefined));
        return this.#running;
    }

    /** Runs `body`, then the teardown, also on SIGINT/SIGTERM (exit 130/143 after undoing everything). */
    async around<T>(body: () => Promise<T>): Promise<T> {
        const onSignal = (signal: NodeJS.Signals) => {
            process.stderr.write(`\n${signal}: undoing mounts, loop devices and processes…\n`);
            void this.runAll().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
        try {
            return await body();
        } finally {
            await this.runAll();
            process.off("SIGINT", onSignal);
            process.off("SIGTERM", onSignal);
        }
    }
}

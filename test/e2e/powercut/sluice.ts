/**
 * The built `sluice` CLI as a real process: `serve` (up once it logs `listening on`), `recover
 * --json`, each killed by the teardown if the check ends first, each bounded in time.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { RecoverReport } from "../../../src/cli/recover-command.js";
import { sleep } from "../../helpers/load.js";
import { SLUICE_CLI, type Teardown, within } from "./system.js";

export interface Exit {
    readonly code: number | null;
    readonly signal: NodeJS.Signals | null;
}

export function describeExit(exit: Exit | undefined): string {
    if (exit === undefined) return "-";
    return exit.signal === null ? String(exit.code) : exit.signal;
}

export class SluiceProcess {
    #output = "";
    readonly exited: Promise<Exit>;

    constructor(
        readonly child: ChildProcess,
        teardown: Teardown,
    ) {
        child.stdout?.on("data", (chunk: Buffer) => (this.#output += chunk.toString()));
        child.stderr?.on("data", (chunk: Buffer) => (this.#output += chunk.toString()));
        const forget = teardown.add(`kill sluice ${child.pid}`, () => this.kill("SIGKILL"));
        this.exited = new Promise<Exit>((resolve) => {
            child.once("close", (code, signal) => {
                resolve({ code, signal });
            });
        }).finally(() => void forget());
    }

    get output(): string {
        return this.#output;
    }

    get running(): boolean {
        return this.child.exitCode === null && this.child.signalCode === null;
    }

    async kill(signal: NodeJS.Signals): Promise<Exit> {
        if (this.running) this.child.kill(signal);
        return this.exited;
    }

    /** The exit, or SIGKILL and `undefined` after `timeoutMs`. */
    async exitWithin(timeoutMs: number): Promise<Exit | undefined> {
        const exit = await within(this.exited, timeoutMs);
        if (exit === undefined) await this.kill("SIGKILL");
        return exit;
    }

    /** The last lines of its output, for a report. */
    tail(lines = 3): string {
        return this.#output.trim().split("\n").slice(-lines).join(" | ");
    }
}

/** Spawns `node <cli> ARGS` (or under `wrapper`, e.g. strace) with only PATH and the given environment. */
export function spawnSluice(args: readonly string[], env: Record<string, string>, teardown: Teardown, wrapper: readonly string[] = []): SluiceProcess {
    const command = [...wrapper, process.execPath, SLUICE_CLI, ...args];
    const child = spawn(command[0]!, command.slice(1), { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    return new SluiceProcess(child, teardown);
}

export interface Serving {
    readonly process: SluiceProcess;
    readonly url: string;
}

/** `sluice serve` on 127.0.0.1 and a free port: resolves once it listens, or with its exit when it does not. */
export async function serve(
    env: Record<string, string>,
    teardown: Teardown,
    timeoutMs: number,
    wrapper: readonly string[] = [],
): Promise<Serving | { process: SluiceProcess; exit: Exit | undefined }> {
    const proc = spawnSluice(["serve", "--host", "127.0.0.1", "--port", "0"], env, teardown, wrapper);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const match = /listening on (http:\/\/\S+)/.exec(proc.output);
        if (match) return { process: proc, url: match[1]! };
        if (!proc.running) return { process: proc, exit: await proc.exited };
        if (Date.now() >= deadline) return { process: proc, exit: await proc.exitWithin(0) };
        await sleep(20);
    }
}

export function isServing(result: Serving | { exit: Exit | undefined }): result is Serving {
    return "url" in result;
}

export interface Recovered {
    readonly exit: Exit | undefined;
    readonly report: RecoverReport | undefined;
    readonly process: SluiceProcess;
}

/** `sluice recover --json`: its exit (undefined when it hung and was killed) and the report it printed. */
export async function recover(env: Record<string, string>, teardown: Teardown, timeoutMs: number): Promise<Recovered> {
    const proc = spawnSluice(["recover", "--json"], env, teardown);
    const exit = await proc.exitWithin(timeoutMs);
    const line = proc.output.split("\n").find((text) => text.startsWith("{"));
    return { exit, report: line === undefined ? undefined : (JSON.parse(line) as RecoverReport), process: proc };
}

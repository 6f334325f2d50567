import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

/** The built CLI (npm test builds before it runs vitest), from test/helpers or, in an e2e run, from dist/test/helpers. */
export const CLI = fileURLToPath(new URL(import.meta.url.includes("/dist/test/") ? "../../src/cli/main.js" : "../../dist/src/cli/main.js", import.meta.url));

export interface CliResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** Runs `sluice ARGS` to completion, with only the given SLUICE_* environment. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, "close")) as [number | null];
    return { code, stdout, stderr };
}

export interface ServerProcess {
    readonly url: string;
    readonly child: ChildProcess;
    output(): string;
    /** Sends the signal and resolves with the exit code. */
    stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `sluice serve` on 127.0.0.1 and a free port; resolves once it logs that it listens. */
export function startServe(args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
    return startServer([process.execPath, CLI, "serve", "--host", "127.0.0.1", "--port", "0", ...args], env);
}

/** Runs a command line that starts a Sluice server (with only the given environment); resolves once it logs that it listens. */
export async function startServer(commandLine: readonly string[], env: Record<string, string>, cwd?: string): Promise<ServerProcess> {
    const [command, ...args] = commandLine;
    const child = spawn(command!, args, { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"], ...(cwd === undefined ? {} : { cwd }) });
    let output = "";
    const closed = once(child, "close") as Promise<[number | null]>;
    const url = await new Promise<string>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
            output += chunk.toString();
            const match = /listening on (https?:\/\/\S+)/.exec(output);
            if (match) resolve(match[1]!);
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        void closed.then(([code]) => {
            reject(new Error(`${commandLine.join(" ")} exited with ${code} before listening:\n${output}`));
        });
    });
    return {
        url,
        child,
        output: () => output,
        stop: async (signal = "SIGTERM") => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            const [code] = await closed;
            return code;
        },
    };
}

/**
 * The deployment files (issue 15.7), as far as they can be tested without systemd or a container
 * runtime: the systemd unit's ExecStart and the Dockerfile's ENTRYPOINT + CMD are parsed, run
 * here as written (install paths mapped onto this checkout, a temporary data directory, a free
 * port), written to, and stopped with the file's own stop signal: the shutdown must be clean
 * (exit 0, the point in Parquet, no WAL file left) within the unit's TimeoutStopSec.
 * `npm run e2e -- deployment` also checks the unit with systemd-analyze.
 */
import { spawn } from "node:child_process";
import { cp, readFile, readdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CONFIG_SCHEMA } from "../src/config/schema.js";
import { tempDir } from "./helpers/batches.js";
import { CLI, type ServerProcess, startServer } from "./helpers/cli.js";
import { readParquet } from "./helpers/parquet.js";
import { shebangNodeFlags } from "./helpers/sluice-process.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const ENTRY = "dist/src/cli/main.js";

/** The directives of a systemd unit, by section, each with its values in order (Environment= repeats). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
    const sections = new Map<string, Map<string, string[]>>();
    let section: Map<string, string[]> | undefined;
    for (const raw of text.split("\n")) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
        const header = /^\[(\w+)\]$/.exec(line);
        if (header !== null) {
            section = new Map();
            sections.set(header[1]!, section);
            continue;
        }
        const at = line.indexOf("=");
        if (section === undefined || at <= 0) throw new Error(`not a unit line: ${line}`);
        const key = line.slice(0, at);
        section.set(key, [...(section.get(key) ?? []), line.slice(at + 1)]);
    }
    return sections;
}

/** One Dockerfile instruction: its keyword and its argument text (continuation lines joined). */
interface Instruction {
    readonly keyword: string;
    readonly args: string;
}

function parseDockerfile(text: string): Instruction[] {
    const instructions: Instruction[] = [];
    for (const line of text.replace(/\\\n/g, " ").split("\n")) {
        const match = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
        if (match !== null) instructions.push({ keyword: match[1]!, args: match[2]!.trim() });
    }
    return instructions;
}

/** An exec-form argument (a JSON array of strings); a shell-form one is refused. */
function execForm(instruction: Instruction | undefined): string[] {
    expect(instruction?.args, "exec form: a JSON array").toMatch(/^\[.*\]$/);
    const value = JSON.parse(instruction!.args) as unknown;
    expect(Array.isArray(value) && value.every((item) => typeof item === "string")).toBe(true);
    return value as string[];
}

/** `KEY=value KEY2=value2` of an ENV instruction. */
function envPairs(args: string): [string, string][] {
    return args.split(/\s+/).map((pair) => {
        const at = pair.indexOf("=");
        return [pair.slice(0, at), pair.slice(at + 1)];
    });
}

/** Seconds of a systemd time span such as `45`, `45s`, `1min 30s`. */
function timeSpanSeconds(text: string): number {
    const units: Record<string, number> = { "": 1, s: 1, sec: 1, min: 60, m: 60, h: 3600 };
    let total = 0;
    for (const part of text.trim().split(/\s+/)) {
        const match = /^(\d+)([a-z]*)$/.exec(part);
        const unit = match === null ? undefined : units[match[2]!];
        if (match === null || unit === undefined) throw new Error(`not a time span: ${text}`);
        total += Number(match[1]) * unit;
    }
    return total;
}

let data: { path: string; cleanup: () => Promise<void> };
let server: ServerProcess | undefined;
beforeEach(async () => {
    data = await tempDir("sluice-deploy-");
});
afterEach(async () => {
    await server?.stop("SIGKILL");
    server = undefined;
    await data.cleanup();
});

/** Writes a point, stops the server with `signal`, and checks the clean shutdown: exit 0, the point in Parquet, no WAL file. */
async function writeAndStop(running: ServerProcess, dataDir: string, signal: NodeJS.Signals, withinMs: number): Promise<void> {
    const response = await fetch(`${running.url}/write?db=deploy`, { method: "POST", body: "m,writer=unit seq=1i,v=4.5 1732260000000000000" });
    expect(response.status).toBe(204);
    const exit = await Promise.race([running.stop(signal), new Promise<string>((resolve) => setTimeout(resolve, withinMs, "still running").unref())]);
    expect(exit, running.output()).toBe(0);
    expect(running.output()).toContain("shut down cleanly");
    const { points } = await readParquet(dataDir);
    expect(points.map(({ database, seq, v }) => ({ database, seq, v }))).toEqual([{ database: "deploy", seq: 1n, v: 4.5 }]);
    expect((await readdir(join(dataDir, "wal")).catch(() => [])).filter((name) => name.endsWith(".wal"))).toEqual([]);
}

describe("config/sluice.service", () => {
    it("runs node on dist/src/cli/main.js, and SIGTERM within TimeoutStopSec shuts it down cleanly", { timeout: 120_000 }, async () => {
        const unit = parseUnit(await readFile(join(REPO, "config", "sluice.service"), "utf8"));
        const service = unit.get("Service")!;
        const one = (key: string) => {
            const values = service.get(key) ?? [];
            expect(values, key).toHaveLength(1);
            return values[0]!;
        };
        const killSignal = one("KillSignal") as NodeJS.Signals;
        expect(killSignal).toBe("SIGTERM");
        const timeoutMs = timeSpanSeconds(one("TimeoutStopSec")) * 1000;
        expect(timeoutMs).toBeGreaterThan(CONFIG_SCHEMA.shutdown_timeout_ms.default);
        const workingDirectory = one("WorkingDirectory");
        const environment = new Map(service.get("Environment")!.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
        expect(environment.get("SLUICE_DATA_DIR")).toBe(`/var/lib/${one("StateDirectory")}`);

        const execStart = one("ExecStart");
        expect(execStart).not.toMatch(/["'\\]/);
        const [node, ...rest] = execStart.split(/\s+/);
        expect(node).toMatch(/^\/.*\/node$/);
        const flags = shebangNodeFlags(CLI);
        expect(rest.slice(0, flags.length)).toEqual(flags);
        const [script, command, configFlag, configFile, ...more] = rest.slice(flags.length);
        expect([script, command, configFlag, more]).toEqual([`${workingDirectory}/${ENTRY}`, "serve", "--config", []]);

        // As installed: the checkout at WorkingDirectory, the config file a copy of config/default.toml.
        const config = join(data.path, "sluice.toml");
        await cp(join(REPO, "config", "default.toml"), config);
        const dataDir = join(data.path, "data");
        const mapped = [process.execPath, ...rest.map((arg) => (arg === configFile ? config : arg.replace(`${workingDirectory}/`, REPO)))];
        server = await startServer(mapped, { ...Object.fromEntries(environment), SLUICE_DATA_DIR: dataDir, SLUICE_HTTP_PORT: "0" }, REPO);
        await writeAndStop(server, dataDir, killSignal, timeoutMs);
    });
});

describe("Dockerfile", () => {
    it("runs node as PID 1 on dist/src/cli/main.js (exec form), its data on the volume; STOPSIGNAL shuts it down cleanly", { timeout: 120_000 }, async () => {
        const instructions = parseDockerfile(await readFile(join(REPO, "Dockerfile"), "utf8"));
        const stages = instructions.filter((instruction) => instruction.keyword === "FROM");
        expect(stages.length).toBeGreaterThanOrEqual(1);
        const runs = instructions.filter((instruction) => instruction.keyword === "RUN").map((instruction) => instruction.args);
        expect(runs).toContain("npm ci");
        expect(runs).toContain("npm run build");
        // The final stage: from its FROM on.
        const final = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));
        const last = (keyword: string) => final.filter((instruction) => instruction.keyword === keyword).at(-1);
        const entrypoint = execForm(last("ENTRYPOINT"));
        const cmd = execForm(last("CMD"));
        const flags = shebangNodeFlags(CLI);
        expect(entrypoint).toEqual(["node", ...flags, ENTRY]);
        expect(cmd).toEqual(["serve"]);
        const stopSignal = (last("STOPSIGNAL")?.args ?? "SIGTERM") as NodeJS.Signals;
        expect(stopSignal).toBe("SIGTERM");
        const env = new Map(final.filter((instruction) => instruction.keyword === "ENV").flatMap((instruction) => envPairs(instruction.args)));
        const volumes = final.filter((instruction) => instruction.keyword === "VOLUME").map((instruction) => instruction.args);
        expect(volumes).toEqual([env.get("SLUICE_DATA_DIR")]);
        const workdir = last("WORKDIR")!.args;

        // The image's /app: package.json, the dist/ folders the final stage copies, and config/.
        const app = join(data.path, "app");
        const copies = final.filter((instruction) => instruction.keyword === "COPY" && instruction.args.startsWith("--from="));
        for (const { args } of copies) {
            const [, source, target] = args.split(/\s+/);
            await cp(join(REPO, source!.replace(`${workdir}/`, "")), join(app, target!), { recursive: true });
        }
        await cp(join(REPO, "config"), join(app, "config"), { recursive: true });
        await cp(join(REPO, "package.json"), join(app, "package.json"));
        await symlink(join(REPO, "node_modules"), join(app, "node_modules"));
        const dataDir = join(data.path, "volume");
        const commandLine = [process.execPath, ...entrypoint.slice(1), ...cmd];
        const imageEnv = { ...Object.fromEntries(env), SLUICE_DATA_DIR: dataDir };

        // As the image says, beyond loopback without a token: refused, saying why.
        const refused = await runInImage(commandLine, imageEnv, app);
        expect(refused.code).toBe(2);
        expect(refused.stderr).toContain("refusing to listen on 0.0.0.0 without auth.tokens");

        server = await startServer(commandLine, { ...imageEnv, SLUICE_HTTP_HOST: "127.0.0.1", SLUICE_HTTP_PORT: "0" }, app);
        await writeAndStop(server, dataDir, stopSignal, 60_000);
    });
});

/** Runs a command line to its end in `cwd`. */
async function runInImage(commandLine: readonly string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stderr: string }> {
    const [command, ...args] = commandLine;
    const child = spawn(command!, args, { env: { PATH: process.env.PATH ?? "", ...env }, cwd, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    return { code, stderr };
}

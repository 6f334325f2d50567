/**
 * The built `sluice serve` as a child process, run as its bin runs (the node flags of its `#!`
 * line), on 127.0.0.1 and a free port: for end-to-end checks and benchmarks, from the sources
 * (vitest) or from dist/ alike.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ServiceProcess, startService } from "./processes.js";

/** The repository root: the first directory above this file that holds package.json. */
function repoRoot(): string {
    for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
        if (existsSync(join(dir, "package.json"))) return dir;
        if (dirname(dir) === dir) throw new Error("no package.json above test/helpers");
    }
}

/** The built CLI (`npm test`, `npm run bench` and `npm run e2e` build first). */
export const SLUICE_CLI = join(repoRoot(), "dist", "src", "cli", "main.js");

/** The node flags of a script's `#!/usr/bin/env -S node ...` line (the server runs as its bin would). */
export function shebangNodeFlags(script: string): string[] {
    const first = readFileSync(script, "utf8").split("\n", 1)[0]!;
    const match = /^#!\S*env(?: -S)? node((?: -\S+)*)\s*$/.exec(first);
    if (match === null) throw new Error(`${script} does not start with a "#!/usr/bin/env -S node" line: ${first}`);
    return match[1]!.split(" ").filter((flag) => flag !== "");
}

export interface SpawnedSluice {
    readonly service: ServiceProcess;
    /** `http://127.0.0.1:PORT` */
    readonly url: string;
}

/**
 * `sluice serve --data-dir DIR --set …` on 127.0.0.1 and a free port; resolves once it logs
 * `listening on …`. SLUICE_* variables are not passed on, so only `sets` configure it.
 */
export async function spawnSluice(options: {
    readonly dataDir: string;
    readonly sets?: readonly string[];
    /** The CLI to run, default the checkout's dist/. */
    readonly cli?: string;
    /** More node flags (after the `#!` line's). */
    readonly nodeArgs?: readonly string[];
}): Promise<SpawnedSluice> {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith("SLUICE_")) env[name] = value;
    const cli = options.cli ?? SLUICE_CLI;
    const args = [
        ...shebangNodeFlags(cli),
        ...(options.nodeArgs ?? []),
        cli,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        options.dataDir,
        ...(options.sets ?? []).flatMap((set) => ["--set", set]),
    ];
    const { service, match } = await startService("sluice", process.execPath, args, /listening on (http:\/\/\S+)/, { env });
    return { service, url: match![1]! };
}

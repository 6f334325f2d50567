/**
 * Sluice as the benchmarks run it: `sluice serve` (the checkout's build or a snapshot of it) on
 * 127.0.0.1 and a free port, a fresh data directory, optionally under the CPU profiler; and its
 * `/metrics`, each metric summed over its labels.
 */
import { request } from "node:http";
import type { HttpServer } from "../../src/config/schema.js";
import type { ServiceProcess } from "../../test/helpers/processes.js";
import { spawnSluice } from "../../test/helpers/sluice-process.js";

/** The database the benchmarks write to. */
export const BENCH_DATABASE = "bench";

export interface SluiceSettings {
    readonly dataDir: string;
    readonly adapter?: HttpServer;
    readonly syncMode?: string;
    /** Run under `node --cpu-prof --cpu-prof-dir=DIR`. */
    readonly profileDir?: string;
    /** More `--set key=value` pairs. */
    readonly sets?: readonly string[];
    /** The CLI to run (a `snapshotBuild`), default the checkout's dist/. */
    readonly cli?: string;
}

export interface SluiceProcess {
    readonly service: ServiceProcess;
    /** `http://127.0.0.1:PORT` */
    readonly url: string;
    /** `/write?db=bench` on it. */
    readonly writeUrl: string;
}

/** `sluice serve` with the settings; resolves once it listens. */
export async function startSluice(settings: SluiceSettings): Promise<SluiceProcess> {
    const { service, url } = await spawnSluice({
        dataDir: settings.dataDir,
        ...(settings.cli === undefined ? {} : { cli: settings.cli }),
        nodeArgs: settings.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${settings.profileDir}`],
        sets: [`http.server=${settings.adapter ?? "node"}`, ...(settings.syncMode === undefined ? [] : [`wal.sync_mode=${settings.syncMode}`]), ...(settings.sets ?? [])],
    });
    return { service, url, writeUrl: `${url}/write?db=${BENCH_DATABASE}` };
}

/** GET /metrics, each metric summed over its labels. */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const values = new Map<string, number>();
    for (const line of text.split("\n")) {
        if (line === "" || line.startsWith("#")) continue;
        const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
        if (match === null) continue;
        values.set(match[1]!, (values.get(match[1]!) ?? 0) + Number(match[2]));
    }
    return values;
}

/**
 * POSTs to an operator endpoint (`/api/v1/compact`, `/api/v1/flush`) and waits for the answer
 * however long it takes (fetch would give up on the headers after 5 minutes).
 */
export function postAdmin(url: string, path: string): Promise<{ status: number; body: string }> {
    const target = new URL(path, url);
    return new Promise((resolve, reject) => {
        const req = request(target, { method: "POST", headers: { "content-length": "0" } }, (res) => {
            let body = "";
            res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
            res.on("end", () => {
                resolve({ status: res.statusCode ?? 0, body });
            });
            res.on("error", reject);
        });
        req.on("error", reject);
        req.end();
    });
}

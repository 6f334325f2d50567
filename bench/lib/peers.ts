/**
 * The systems the peers scoreboard loads, as processes on 127.0.0.1 with a fresh data directory
 * each: Sluice (`fdatasync` or `off`), Debian's VictoriaMetrics and InfluxDB 1.x (installed with
 * apt-get when missing). Each says what its 2xx promises, and checks after a run that its store
 * holds exactly the acknowledged lines.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensurePackage } from "../../test/helpers/debian.js";
import { type ServiceProcess, freePort, runCommand, startService } from "../../test/helpers/processes.js";
import { sleep } from "./benchmark.js";
import type { BuildSnapshot } from "./build-snapshot.js";
import type { LoadResult } from "./http-load.js";
import { FIELD_NAMES, FIELDS_PER_LINE } from "./line-source.js";
import { fixed } from "./output.js";
import { BENCH_DATABASE as DATABASE, startSluice } from "./sluice.js";
import { type SluiceVerify, verifySluice } from "./verify.js";
import { findVictoriaMetrics, startVictoriaMetrics } from "./victoria-metrics.js";

export interface Verification {
    /** Lines the store holds (for the peers: field values ÷ 7, or a field's count). */
    readonly storedLines: number;
    readonly fieldValues: number;
    readonly series: number | undefined;
    readonly ok: boolean;
    readonly detail: string;
    readonly problems: readonly string[];
}

export interface Running {
    readonly service: ServiceProcess;
    readonly writeUrl: string;
    verify(load: LoadResult): Promise<Verification>;
}

export interface System {
    /** A `SystemKey`, or the name of a `--variant`. */
    readonly key: string;
    readonly label: string;
    /** What a 2xx answer promises. */
    readonly ack: string;
    /** Resolves to the version, or throws why the system cannot run here. */
    prepare(): Promise<string>;
    start(dir: string): Promise<Running>;
}

export const SYSTEM_KEYS = ["sluice-fdatasync", "sluice-off", "victoriametrics", "influxdb"] as const;
export type SystemKey = (typeof SYSTEM_KEYS)[number];

function expectedCheck(stored: number, load: LoadResult): string | undefined {
    const { ackedLines, errorLines } = load.total;
    if (errorLines === 0 ? stored === ackedLines : stored >= ackedLines && stored <= ackedLines + errorLines) return undefined;
    return `stores ${stored} lines, ${ackedLines} were acknowledged${errorLines > 0 ? ` (+ ${errorLines} unanswered)` : ""}`;
}

function sluiceSystem(key: string, syncMode: "fdatasync" | "off", build: BuildSnapshot, variant?: SluiceVariant): System {
    return {
        key,
        label: variant === undefined ? `Sluice (${syncMode})` : `Sluice ${variant.name} (${variant.sets.join(", ")})`,
        ack: syncMode === "fdatasync" ? "the request's WAL entry is fdatasync'ed" : "the WAL entry is written to the page cache, never synced",
        prepare: async () => {
            const { stdout } = await runCommand(process.execPath, [build.cli, "--version"]);
            return `sluice ${stdout.trim()}`;
        },
        start: async (dir) => {
            const sluice = await startSluice({ dataDir: dir, syncMode, cli: build.cli, sets: variant?.sets ?? [] });
            return {
                service: sluice.service,
                writeUrl: sluice.writeUrl,
                verify: async (load) => {
                    const v: SluiceVerify = await verifySluice(sluice.url, dir, load);
                    return {
                        storedLines: v.rows,
                        fieldValues: v.fieldValues,
                        series: v.series,
                        ok: v.ok,
                        detail: `${v.files} Parquet files, ${v.rows} rows, ${v.duplicateKeys} duplicate keys, flush ${fixed(v.flushMs, 0)} ms`,
                        problems: v.problems,
                    };
                },
            };
        },
    };
}

async function getJson(url: string, init: RequestInit = {}, timeoutMs = 120_000): Promise<{ status: number; json: unknown; text: string }> {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    let json: unknown;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status: response.status, json, text };
}

const probe = (url: string, status?: number) => async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return status === undefined ? response.ok : response.status === status;
};

function victoriaMetrics(): System {
    let binary = "victoria-metrics";
    return {
        key: "victoriametrics",
        label: "VictoriaMetrics",
        ack: "the samples are in memory (VictoriaMetrics writes them to disk within about a second, without fsync per request)",
        prepare: async () => {
            const found = await findVictoriaMetrics();
            binary = found.path;
            return found.version;
        },
        start: async (dir) => {
            const { service, base } = await startVictoriaMetrics(binary, dir);
            return {
                service,
                writeUrl: `${base}/write?db=${DATABASE}`,
                verify: async (load) => {
                    const problems: string[] = [];
                    const expected = load.total.ackedLines * FIELDS_PER_LINE;
                    // A time after the last point; the 3-day window reaches back past the first.
                    const time = load.total.lastSeconds + 300;
                    const query = async (promql: string) => {
                        const { status, json, text } = await getJson(`${base}/api/v1/query?nocache=1&time=${time}&query=${encodeURIComponent(promql)}`);
                        const value = (json as { data?: { result?: { value?: [number, string] }[] } } | undefined)?.data?.result?.[0]?.value?.[1];
                        if (status !== 200) throw new Error(`query ${promql} answered ${status}: ${text.slice(0, 300)}`);
                        return value === undefined ? 0 : Number(value);
                    };
                    let samples = 0;
                    for (let attempt = 0; attempt < 15; attempt++) {
                        const flush = await fetch(`${base}/internal/force_flush`, { signal: AbortSignal.timeout(60_000) });
                        await flush.arrayBuffer();
                        if (flush.status !== 200) problems.push(`/internal/force_flush answered ${flush.status}`);
                        samples = await query(`sum(count_over_time({__name__=~"cpu_.+"}[3d]))`);
                        if (samples >= expected) break;
                        await sleep(1_000);
                    }
                    const series = await query(`count(count_over_time({__name__=~"cpu_.+"}[3d]))`);
                    if (samples % FIELDS_PER_LINE !== 0) problems.push(`${samples} samples is not a multiple of ${FIELDS_PER_LINE}`);
                    const mismatch = samples === expected ? undefined : expectedCheck(samples / FIELDS_PER_LINE, load);
                    if (mismatch !== undefined) problems.push(`${mismatch} (${samples} samples, ${expected} expected)`);
                    return {
                        storedLines: samples / FIELDS_PER_LINE,
                        fieldValues: samples,
                        series,
                        ok: problems.length === 0,
                        detail: `${samples} samples in ${series} series`,
                        problems,
                    };
                },
            };
        },
    };
}

function influxConfig(dir: string, httpPort: number, rpcPort: number): string {
    return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, "meta")}"
  logging-enabled = false

[data]
  dir = "${join(dir, "data")}"
  wal-dir = "${join(dir, "wal")}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false

[logging]
  level = "warn"

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
`;
}

function influxDb(): System {
    let binary = "influxd";
    return {
        key: "influxdb",
        label: "InfluxDB",
        ack: "the points are in the WAL, fsync'ed (wal-fsync-delay = 0s, the default)",
        prepare: async () => {
            const found = await ensurePackage("influxdb", "influxd");
            binary = found.path;
            return found.version;
        },
        start: async (dir) => {
            const [httpPort, rpcPort] = [await freePort(), await freePort()];
            await mkdir(dir, { recursive: true });
            const config = join(dir, "influxdb.conf");
            await writeFile(config, influxConfig(dir, httpPort, rpcPort));
            const base = `http://127.0.0.1:${httpPort}`;
            const { service } = await startService("influxd", binary, ["-config", config], probe(`${base}/ping`, 204), { env: { ...process.env, HOME: dir } });
            const created = await getJson(`${base}/query?q=${encodeURIComponent(`CREATE DATABASE "${DATABASE}"`)}`, { method: "POST" });
            if (created.status !== 200) {
                await service.stop(10_000);
                throw new Error(`CREATE DATABASE answered ${created.status}: ${created.text.slice(0, 300)}`);
            }
            return {
                service,
                writeUrl: `${base}/write?db=${DATABASE}`,
                verify: async (load) => {
                    const problems: string[] = [];
                    const { status, json, text } = await getJson(`${base}/query?db=${DATABASE}&q=${encodeURIComponent("SELECT count(*) FROM cpu")}`, {}, 600_000);
                    if (status !== 200) problems.push(`count query answered ${status}: ${text.slice(0, 300)}`);
                    const series = (json as { results?: { series?: { columns: string[]; values: (number | undefined)[][] }[]; error?: string }[] } | undefined)?.results?.[0];
                    if (series?.error !== undefined) problems.push(`count query: ${series.error}`);
                    const columns = series?.series?.[0]?.columns ?? [];
                    const values = series?.series?.[0]?.values[0] ?? [];
                    const counts = new Map(columns.map((column, i) => [column, Number(values[i])] as const));
                    const perField = FIELD_NAMES.map((field) => counts.get(`count_${field}`) ?? 0);
                    const storedLines = Math.min(...perField);
                    if (new Set(perField).size !== 1) problems.push(`field counts differ: ${FIELD_NAMES.map((f, i) => `${f}=${perField[i]}`).join(", ")}`);
                    const mismatch = expectedCheck(storedLines, load);
                    if (mismatch !== undefined) problems.push(mismatch);
                    const fieldValues = perField.reduce((a, b) => a + b, 0);
                    return { storedLines, fieldValues, series: undefined, ok: problems.length === 0, detail: `count(*) per field ${storedLines}`, problems };
                },
            };
        },
    };
}

/** `--variant NAME:key=value,…`: Sluice in `fdatasync` mode with more settings (later ones win). */
export interface SluiceVariant {
    readonly name: string;
    readonly sets: readonly string[];
}

/** Parses `NAME:key=value,key=value`; NAME is lower-case letters, digits and dashes, not a built-in key. */
export function parseVariant(text: string): SluiceVariant {
    const match = /^([a-z0-9][a-z0-9-]*):(.+)$/.exec(text.trim());
    if (match === null) throw new Error(`--variant must look like NAME:key=value,key=value, got "${text}"`);
    const name = match[1]!;
    if ((SYSTEM_KEYS as readonly string[]).includes(name)) throw new Error(`--variant name "${name}" is a built-in system`);
    const sets = match[2]!.split(",").map((set) => set.trim());
    for (const set of sets) if (!/^[a-z_.]+=\S+$/.test(set)) throw new Error(`--variant ${name}: "${set}" is not key=value`);
    return { name, sets };
}

export function sluiceVariant(variant: SluiceVariant, build: BuildSnapshot): System {
    return sluiceSystem(variant.name, "fdatasync", build, variant);
}

export const SYSTEMS: Readonly<Record<SystemKey, (build: BuildSnapshot) => System>> = {
    "sluice-fdatasync": (build) => sluiceSystem("sluice-fdatasync", "fdatasync", build),
    "sluice-off": (build) => sluiceSystem("sluice-off", "off", build),
    victoriametrics: victoriaMetrics,
    influxdb: influxDb,
};

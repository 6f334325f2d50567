/**
 * `npm run e2e -- promtool`: `promtool check metrics` (from Debian's `prometheus` package,
 * installed with apt-get when missing) on the /metrics of a real `sluice serve`, after writes
 * that fill every metric family: good lines, a partial write, a refused request, two flushes of
 * one hour and their compaction, and a row left buffered. Exit 0 when promtool finds nothing
 * and every histogram and counter of issue 15 has samples.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensurePackage } from "../helpers/debian.js";
import { type SpawnedSluice, spawnSluice } from "../helpers/sluice-process.js";
import type { EndToEnd } from "./run.js";

/** Families that must have samples once the requests below were answered. */
const EXPECTED = [
    "sluice_wal_entries_total",
    "sluice_flushes_total",
    "sluice_http_request_duration_seconds_count",
    "sluice_wal_sync_seconds_count",
    "sluice_wal_group_appends_count",
    "sluice_wal_group_bytes_count",
    "sluice_flush_duration_seconds_count",
    "sluice_compaction_duration_seconds_count",
    "sluice_compacted_partitions_total",
    "sluice_oldest_unflushed_row_age_seconds",
];

function log(message: string): void {
    process.stderr.write(`[promtool e2e] ${message}\n`);
}

/** `promtool check metrics` with the text on its standard input: its exit code and output. */
function checkMetrics(promtool: string, text: string): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(promtool, ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.once("error", reject);
        child.once("close", (code) => {
            resolve({ code, output });
        });
        child.stdin.end(text);
    });
}

async function expectStatus(url: string, init: RequestInit, status: number, problems: string[]): Promise<void> {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
    await response.arrayBuffer();
    if (response.status !== status) problems.push(`${init.method ?? "GET"} ${url}: ${response.status}, expected ${status}`);
}

async function run(): Promise<number> {
    const promtool = await ensurePackage("prometheus", "promtool");
    log(`using ${promtool.path} (${promtool.version})`);
    const dir = await mkdtemp(join(tmpdir(), "sluice-e2e-promtool-"));
    let sluice: SpawnedSluice | undefined;
    try {
        sluice = await spawnSluice({ dataDir: join(dir, "data") });
        const { url } = sluice;
        const problems: string[] = [];
        const write = (body: string, status: number) => expectStatus(`${url}/write?db=e2e`, { method: "POST", body }, status, problems);
        await write("cpu,host=a usage=1 1700000000000000000", 204);
        await expectStatus(`${url}/api/v1/flush`, { method: "POST" }, 200, problems);
        await write("cpu,host=a usage=2 1700000000000000001\nnot a line", 400);
        await expectStatus(`${url}/api/v1/flush`, { method: "POST" }, 200, problems);
        await expectStatus(`${url}/api/v1/compact`, { method: "POST" }, 200, problems);
        await expectStatus(`${url}/nowhere`, {}, 404, problems);
        await write("cpu,host=b usage=3 1700000000000000002", 204);
        const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
        const checked = await checkMetrics(promtool.path, text);
        if (checked.code !== 0 || checked.output.trim() !== "") problems.push(`promtool check metrics exited ${checked.code}:\n${checked.output.trim()}`);
        for (const name of EXPECTED) {
            const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].map((match) => Number(match[1]));
            if (!values.some((value) => value > 0)) problems.push(`${name} has no sample above 0`);
        }
        const families = text.match(/^# TYPE /gm)?.length ?? 0;
        for (const problem of problems) log(`PROBLEM: ${problem}`);
        log(problems.length === 0 ? `OK: promtool check metrics is clean on ${families} metric families, every new one with samples` : `FAILED (${problems.length} problems)`);
        return problems.length === 0 ? 0 : 1;
    } finally {
        if (sluice !== undefined) {
            const stopped = await sluice.service.stop(60_000);
            if (stopped.code !== 0) log(`Sluice exited with ${stopped.code ?? stopped.signal}: ${sluice.service.output().slice(-2000)}`);
        }
        await rm(dir, { recursive: true, force: true });
    }
}

export const check: EndToEnd = {
    about: "promtool check metrics (apt: prometheus) on a live Sluice's /metrics after writes, flushes and a compaction",
    run,
};

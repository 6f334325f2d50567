/**
 * A Prometheus retry resends the same WriteRequest byte for byte (issue 14, DESIGN.md §6): with
 * dedup on, its samples stay one point each, whether the retry reaches the same server or one
 * restarted after kill -9 (the first copy then comes back from the WAL). Read back with DuckDB.
 */
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tempDir } from "./helpers/batches.js";
import { type ServerProcess, startServe } from "./helpers/cli.js";
import { REMOTE_WRITE_HEADERS, type TestRequest, remoteWriteBody } from "./helpers/prom-remote-write.js";
import { sleep } from "./helpers/load.js";

const T0 = 1_700_000_000_000;
const DATABASE = "prometheus";
const METRICS = ["node_cpu_seconds_total", "node_load1", "up"] as const;
const INSTANCES = 4;
const SCRAPES = 3;

/** 3 metrics × 4 series × 3 samples, Prometheus-shaped labels (sorted, 8 of them with `__name__`). */
const REQUEST: TestRequest = {
    timeseries: METRICS.flatMap((name, m) =>
        Array.from({ length: INSTANCES }, (_, i) => ({
            labels: [
                ["__name__", name],
                ["cluster", "eu-1"],
                ["env", "prod"],
                ["instance", `10.0.0.${i}:9100`],
                ["job", "node"],
                ["mode", m === 0 ? "idle" : ""],
                ["region", "west"],
                ["zone", `z${i % 2}`],
            ] as [string, string][],
            samples: Array.from({ length: SCRAPES }, (_, s) => ({ value: 100 * m + 10 * i + s + 0.5, timestamp: T0 + 15_000 * s + i })),
        })),
    ),
};

interface Row {
    readonly metric: string;
    readonly ns: bigint;
    readonly value: number;
    readonly instance: string;
    readonly zone: string;
}

/** The rows REQUEST stands for, once each, in the order `storedRows` sorts them. */
function expectedRows(): Row[] {
    const rows: Row[] = [];
    for (const [m, metric] of METRICS.entries()) {
        for (let i = 0; i < INSTANCES; i++) {
            for (let s = 0; s < SCRAPES; s++) {
                rows.push({ metric, ns: BigInt(T0 + 15_000 * s + i) * 1_000_000n, value: 100 * m + 10 * i + s + 0.5, instance: `10.0.0.${i}:9100`, zone: `z${i % 2}` });
            }
        }
    }
    return rows.sort((a, b) => (a.metric !== b.metric ? (a.metric < b.metric ? -1 : 1) : a.instance !== b.instance ? (a.instance < b.instance ? -1 : 1) : Number(a.ns - b.ns)));
}

/** Every row of the database's Parquet files, as DuckDB reads them. */
async function storedRows(dataDir: string): Promise<Row[]> {
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
        const rows: Row[] = [];
        for (const metric of METRICS) {
            const glob = join(dataDir, "parquet", DATABASE, metric, "**", "*.parquet").replaceAll("'", "''");
            const reader = await connection.runAndReadAll(
                `SELECT epoch_ns(time) AS ns, value, instance, zone FROM read_parquet('${glob}', union_by_name = true, hive_partitioning = false) ORDER BY instance, ns`,
            );
            for (const row of reader.getRowObjects()) {
                rows.push({ metric, ns: row.ns as bigint, value: row.value as number, instance: row.instance as string, zone: row.zone as string });
            }
        }
        return rows;
    } finally {
        connection.closeSync();
        instance.closeSync();
    }
}

async function post(server: ServerProcess, body: Buffer): Promise<number> {
    const response = await fetch(`${server.url}/api/v1/write`, { method: "POST", body, headers: REMOTE_WRITE_HEADERS });
    await response.text();
    return response.status;
}

async function flush(server: ServerProcess): Promise<void> {
    const response = await fetch(`${server.url}/api/v1/flush`, { method: "POST" });
    await response.text();
    expect(response.status).toBe(200);
}

/**
 * The stored rows once they are as many as `count` (compaction merges duplicates across files in the background), or the last read after `timeoutMs`.
 * A read that a compaction's swap overtakes (a globbed file gone before DuckDB opens it) is read again, as README tells readers to.
 */
async function rowsSettledAt(dataDir: string, count: number, timeoutMs = 30_000): Promise<Row[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const rows = await storedRows(dataDir).catch((error: unknown) => {
            if (error instanceof Error && error.message.includes("No such file or directory") && Date.now() < deadline) return undefined;
            throw error;
        });
        if (rows !== undefined && (rows.length <= count || Date.now() >= deadline)) return rows;
        await sleep(100);
    }
}

describe("Prometheus remote write retries (dedup on)", () => {
    let data: string;
    let cleanup: () => Promise<void>;
    const servers = new Set<ServerProcess>();

    beforeEach(async () => ({ path: data, cleanup } = await tempDir("sluice-prom-retry-")));
    afterEach(async () => {
        await Promise.all([...servers].map((server) => server.stop("SIGKILL")));
        servers.clear();
        await cleanup();
    });

    const serve = async (): Promise<ServerProcess> => {
        // Compaction soon after a file arrives: a duplicate in two files is merged within the test's wait.
        const server = await startServe([], { SLUICE_DATA_DIR: data, SLUICE_COMPACTION_INTERVAL_MS: "50", SLUICE_COMPACTION_MIN_FILES: "2", SLUICE_COMPACTION_MAX_DELAY_MS: "0" });
        servers.add(server);
        return server;
    };

    it("stores a WriteRequest posted twice, then once more to a server restarted after kill -9, once per sample", { timeout: 90_000 }, async () => {
        const body = remoteWriteBody(REQUEST);
        const expected = expectedRows();
        const first = await serve();
        expect(await post(first, body)).toBe(204);
        expect(await post(first, body)).toBe(204);
        await flush(first);
        expect(await rowsSettledAt(data, expected.length)).toEqual(expected);

        // Posted again, acknowledged (in the WAL, not flushed), then the server dies.
        expect(await post(first, body)).toBe(204);
        expect(await first.stop("SIGKILL")).toBeNull();
        servers.delete(first);

        const second = await serve();
        expect(await post(second, body)).toBe(204);
        await flush(second);
        expect(await rowsSettledAt(data, expected.length)).toEqual(expected);
        expect(await second.stop("SIGTERM")).toBe(0);
        servers.delete(second);
        expect(await storedRows(data)).toEqual(expected);
    });
});

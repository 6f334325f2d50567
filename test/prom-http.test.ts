/**
 * Remote write over HTTP on a real server (both adapters): what reaches Parquet (read back with
 * DuckDB), retries staying one point, and every status a sender must act on.
 */
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { FaultyFileSystem } from "./helpers/faulty-fs.js";
import { REMOTE_WRITE_HEADERS, STALE_BITS, type TestRequest, encodeWriteRequest, patchFloatBits, remoteWriteBody, snappyBlock } from "./helpers/prom-remote-write.js";
import { type TestServer, startTestServer, walEntries } from "./helpers/server.js";

const ADAPTERS = ["node", "hyper-express"] as const;
const T0 = 1_700_000_000_000;

async function post(url: string, body: Buffer, headers: Record<string, string> = REMOTE_WRITE_HEADERS): Promise<{ status: number; text: string; headers: Headers }> {
    const response = await fetch(url, { method: "POST", body, headers });
    return { status: response.status, text: await response.text(), headers: response.headers };
}

/** Rows of one measurement's Parquet files, as DuckDB reads them. */
async function parquetRows(dataDir: string, database: string, measurement: string, columns: string): Promise<Record<string, unknown>[]> {
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
        const glob = join(dataDir, "parquet", database, measurement, "**", "*.parquet").replaceAll("'", "''");
        const reader = await connection.runAndReadAll(`SELECT ${columns} FROM read_parquet('${glob}', union_by_name = true) ORDER BY ALL`);
        return reader.getRowObjects();
    } finally {
        connection.closeSync();
        instance.closeSync();
    }
}

const UP: TestRequest = {
    timeseries: [0, 1].map((i) => ({
        labels: [
            ["__name__", "up"],
            ["instance", `host-${i}:9100`],
            ["job", "node"],
        ],
        samples: [
            { value: 1, timestamp: T0 + i },
            { value: 0, timestamp: T0 + 15_000 + i },
        ],
    })),
};

describe.each(ADAPTERS)("Prometheus remote write on %s", (adapter) => {
    let t: TestServer | undefined;
    afterEach(async () => {
        await t?.stop();
        t = undefined;
    });
    const start = async (settings: Record<string, unknown> = {}, seams = {}) => (t = await startTestServer(adapter, settings, seams));
    const flush = async () => {
        expect((await fetch(`${t!.url}/api/v1/flush`, { method: "POST" })).status).toBe(200);
    };

    it("acknowledges with 204 once in the WAL, and the samples reach Parquet with their values, tags and ms times", async () => {
        await start();
        const answer = await post(`${t!.url}/api/v1/write`, remoteWriteBody(UP));
        expect([answer.status, answer.text]).toEqual([204, ""]);
        expect(await walEntries(t!.dataDir)).toEqual([{ database: "prometheus", measurement: "up", rows: 4, sequence: 0 }]);
        expect((await post(`${t!.url}/api/v1/prom/write?db=influx`, remoteWriteBody(UP))).status).toBe(204);
        await flush();
        for (const database of ["prometheus", "influx"]) {
            expect(await parquetRows(t!.dataDir, database, "up", "epoch_ns(time) AS ns, value, instance, job")).toEqual([
                { ns: BigInt(T0) * 1_000_000n, value: 1, instance: "host-0:9100", job: "node" },
                { ns: BigInt(T0 + 1) * 1_000_000n, value: 1, instance: "host-1:9100", job: "node" },
                { ns: BigInt(T0 + 15_000) * 1_000_000n, value: 0, instance: "host-0:9100", job: "node" },
                { ns: BigInt(T0 + 15_001) * 1_000_000n, value: 0, instance: "host-1:9100", job: "node" },
            ]);
        }
    });

    it("drops stale markers and counts them, and what it ignores, in /metrics", async () => {
        await start();
        const request: TestRequest = {
            timeseries: [{ labels: [["__name__", "gone"]], samples: [{ value: 1111.5, timestamp: T0 }], histograms: [{ count_int: 1, sum: 2, timestamp: T0 }] }],
            metadata: [{ type: 1, metric_family_name: "gone", help: "h", unit: "" }],
        };
        const body = snappyBlock(patchFloatBits(encodeWriteRequest(request), 1111.5, STALE_BITS.hi, STALE_BITS.lo));
        expect((await post(`${t!.url}/api/v1/write`, body)).status).toBe(204);
        expect(await walEntries(t!.dataDir)).toEqual([]);
        const metrics = await (await fetch(`${t!.url}/metrics`)).text();
        expect(metrics).toMatch(/sluice_prometheus_skipped_total\{kind="stale_marker"\} 1/);
        expect(metrics).toMatch(/sluice_prometheus_skipped_total\{kind="metadata"\} 1/);
        expect(metrics).toMatch(/sluice_prometheus_skipped_total\{kind="histogram"\} 1/);
    });

    it("answers 4xx only for what a retry cannot fix, and stores the good series of a partly bad request", async () => {
        await start({ "http.max_body_bytes": 64 * 1024 });
        const url = `${t!.url}/api/v1/write`;
        const v2 = await post(url, remoteWriteBody(UP), { ...REMOTE_WRITE_HEADERS, "content-type": "application/x-protobuf;proto=io.prometheus.write.v2.Request" });
        expect([v2.status, v2.text]).toEqual([415, expect.stringMatching(/remote write 2\.0/)]);
        expect((await post(url, gzipSync(encodeWriteRequest(UP)), { ...REMOTE_WRITE_HEADERS, "content-encoding": "gzip" })).status).toBe(415);
        expect((await post(url, Buffer.from("not snappy at all"))).status).toBe(400);
        expect((await post(url, snappyBlock(Buffer.from([0x0a, 0x40, 0x01])))).status).toBe(400);
        const bomb = await post(url, snappyBlock(Buffer.alloc(64 * 1024 + 1)));
        expect([bomb.status, bomb.text]).toEqual([413, expect.stringMatching(/after snappy decompression/)]);
        expect((await fetch(url)).status).toBe(405);
        expect(await walEntries(t!.dataDir)).toEqual([]);

        const partial = await post(url, remoteWriteBody({ timeseries: [...UP.timeseries, { labels: [["job", "nameless"]], samples: [{ value: 1, timestamp: T0 }] }] }));
        expect(partial.status).toBe(400);
        expect(JSON.parse(partial.text)).toEqual({ error: expect.stringMatching(/^partial write: 1 samples rejected, 4 stored: series 2 \{job="nameless"\}: no __name__ label/) });
        expect(await walEntries(t!.dataDir)).toEqual([{ database: "prometheus", measurement: "up", rows: 4, sequence: 0 }]);
    });

    it("counts measurements of every database against ingest.max_measurements, in line protocol and remote write alike", async () => {
        await start({ "ingest.max_measurements": 3 });
        const metric = (name: string) => ({ labels: [["__name__", name]] as const, samples: [{ value: 1, timestamp: T0 }] });
        expect((await post(`${t!.url}/api/v1/write?db=a`, remoteWriteBody({ timeseries: [metric("up"), metric("load")] }))).status).toBe(204);
        expect((await fetch(`${t!.url}/write?db=b`, { method: "POST", body: "cpu f=1" })).status).toBe(204);
        const refusedLp = await fetch(`${t!.url}/write?db=b`, { method: "POST", body: "cpu f=2\nmem f=1" });
        expect([refusedLp.status, await refusedLp.text()]).toEqual([
            400,
            expect.stringContaining(
                'measurement \\"mem\\" of database \\"b\\" would be one more than the 3 measurements all databases together may have (ingest.max_measurements)',
            ),
        ]);
        const refusedProm = await post(`${t!.url}/api/v1/write?db=c`, remoteWriteBody({ timeseries: [metric("disk")] }));
        expect([refusedProm.status, refusedProm.text]).toEqual([400, expect.stringContaining("(ingest.max_measurements)")]);
        expect((await walEntries(t!.dataDir)).map((entry) => `${entry.database}/${entry.measurement}`).sort()).toEqual(["a/load", "a/up", "b/cpu", "b/cpu"]);
    });

    it("answers 503 with Retry-After when the WAL cannot write, and stores the retry", async () => {
        const fs = new FaultyFileSystem();
        await start({}, { fileSystem: fs });
        fs.failNext("writev", "ENOSPC", 1, /\.wal$/);
        const failed = await post(`${t!.url}/api/v1/write`, remoteWriteBody(UP));
        expect([failed.status, failed.headers.get("retry-after")]).toEqual([503, "1"]);
        expect(await walEntries(t!.dataDir)).toEqual([]);
        expect((await post(`${t!.url}/api/v1/write`, remoteWriteBody(UP))).status).toBe(204);
        expect((await walEntries(t!.dataDir)).map((entry) => entry.rows)).toEqual([4]);
    });

    it("answers 503 with Retry-After above ingest.max_buffered_bytes", async () => {
        await start({ "ingest.max_buffered_bytes": 1024 * 1024 });
        let round = 0;
        const body = () =>
            remoteWriteBody({
                timeseries: Array.from({ length: 5_000 }, (_, i) => ({
                    labels: [
                        ["__name__", "load"],
                        ["n", `series-${i}-${"x".repeat(40)}`],
                    ],
                    samples: [{ value: i, timestamp: T0 + round }],
                })),
            });
        let answer = await post(`${t!.url}/api/v1/write`, body());
        while (answer.status === 204 && round < 100) {
            round++;
            answer = await post(`${t!.url}/api/v1/write`, body());
        }
        expect([answer.status, answer.headers.get("retry-after")]).toEqual([503, "1"]);
    });

    it("takes the tokens Prometheus sends with authorization and basic_auth, and refuses the rest with 401", async () => {
        await start({ "auth.tokens": ["s3cret"] });
        const url = `${t!.url}/api/v1/write`;
        expect((await post(url, remoteWriteBody(UP))).status).toBe(401);
        expect((await post(url, remoteWriteBody(UP), { ...REMOTE_WRITE_HEADERS, authorization: "Bearer wrong" })).status).toBe(401);
        expect((await post(url, remoteWriteBody(UP), { ...REMOTE_WRITE_HEADERS, authorization: "Bearer s3cret" })).status).toBe(204);
        const basic = `Basic ${Buffer.from("prometheus:s3cret").toString("base64")}`;
        expect((await post(url, remoteWriteBody(UP), { ...REMOTE_WRITE_HEADERS, authorization: basic })).status).toBe(204);
    });
});

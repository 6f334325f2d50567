/**
 * The lake in a bucket shared by several ingesters (issue 16), on the in-process store that
 * enforces S3's conditions: flushes land once under names that carry the node, manifests list
 * exactly the live files, retries sent to another node merge on compaction, a failing bucket
 * holds flushes back without losing a row, a node_id is held by one ingester at a time, and a
 * change applied again after a crash never brings a second copy back.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock.js";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { silentLogger } from "../src/log.js";
import { Lease } from "../flush/lake/lease.js";
import { NodeIdInUseError, S3Lake } from "../flush/lake/s3-lake.js";
import { decodeManifest, type MeasurementManifest } from "../flush/lake/s3-manifest.js";
import { manifestKey, MANIFEST_NAME } from "../flush/lake/s3-keys.js";
import type { ChangeRecord, PartitionRef } from "../flush/manifest/records.js";
import { MemoryBucket, MemoryObjectStore } from "../flush/storage/memory-store.js";
import { tempDir } from "./helpers/batches.js";
import { type TestServer, startTestServer } from "./helpers/server.js";
import { queryDuckDB } from "./helpers/parquet.js";

const HOUR_NS = 3_600_000_000_000n;
const T0 = 1_700_000_000_000_000_000n - (1_700_000_000_000_000_000n % HOUR_NS);

function manifestOf(bucket: MemoryBucket, database: string, measurement: string): MeasurementManifest | undefined {
    const key = manifestKey(database, measurement);
    const body = bucket.read(key);
    return body === undefined ? undefined : decodeManifest(key, body);
}

function parquetKeys(bucket: MemoryBucket): string[] {
    return bucket.keys().filter((key) => key.endsWith(".parquet"));
}

describe("a lake in a shared bucket", () => {
    const servers: TestServer[] = [];
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
        for (const server of servers.splice(0)) await server.stop().catch(() => undefined);
        for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    const start = async (bucket: MemoryBucket, nodeId: string, settings: Record<string, unknown> = {}, store = new MemoryObjectStore({ bucket })) => {
        const server = await startTestServer("node", { "storage.backend": "s3", node_id: nodeId, "compaction.enabled": false, ...settings }, { objectStore: store });
        servers.push(server);
        return server;
    };
    const write = async (server: TestServer, body: string) => {
        const response = await fetch(`${server.url}/write?db=db`, { method: "POST", body });
        expect(response.status, await response.text()).toBe(204);
    };
    const post = (server: TestServer, path: string) => fetch(`${server.url}${path}`, { method: "POST" });

    /** Copies every object to a directory, as a local view of the bucket. */
    const mirror = async (bucket: MemoryBucket) => {
        const dir = await tempDir("sluice-bucket-");
        cleanups.push(dir.cleanup);
        for (const key of bucket.keys()) {
            await mkdir(dirname(join(dir.path, key)), { recursive: true });
            await writeFile(join(dir.path, key), bucket.read(key)!);
        }
        return dir.path;
    };
    /** Every row of db/m as a reader globbing the bucket's keys sees it. */
    const readBucket = async (bucket: MemoryBucket, columns = "host, f") => {
        const dir = await mirror(bucket);
        return queryDuckDB(`select epoch_ns(time)::VARCHAR as t, ${columns} from read_parquet('${dir}/db/m/**/*.parquet', union_by_name = true) order by host, time`);
    };
    /** Every row of db/m as an exact reader sees it: the files the manifest lists (README's query). */
    const readManifested = async (bucket: MemoryBucket, columns = "host, f") => {
        const dir = await mirror(bucket);
        return queryDuckDB(
            `SET VARIABLE files = (SELECT list('${dir}/' || f.key) FROM (SELECT unnest(files) AS f FROM read_json('${dir}/db/m/${MANIFEST_NAME}')))`,
            `select epoch_ns(time)::VARCHAR as t, ${columns} from read_parquet(getvariable('files'), union_by_name = true) order by host, time`,
        );
    };

    it("flushes each file once to a key that names the node, listed in the measurement's manifest, nothing on local disk", async () => {
        const bucket = new MemoryBucket();
        const a = await start(bucket, "node-a");
        await write(a, `m,host=h1 f=1 ${T0}\nm,host=h2 f=2 ${T0 + 1n}\nm,host=h1 f=3 ${T0 + HOUR_NS}`);
        expect((await post(a, "/api/v1/flush")).status).toBe(200);
        const keys = parquetKeys(bucket);
        expect(keys).toHaveLength(2);
        for (const key of keys) expect(key).toMatch(/^db\/m\/date=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/node-a\.[0-9a-f]{8}\.\d{20}-\d{20}\.parquet$/);
        const manifest = manifestOf(bucket, "db", "m")!;
        expect(manifest.files.map((file) => file.key)).toEqual(keys);
        expect(manifest.files.reduce((sum, file) => sum + file.rows, 0)).toBe(3);
        expect(Object.values(manifest.applied)).toHaveLength(1);
        const expected = [
            { t: String(T0), host: "h1", f: 1 },
            { t: String(T0 + HOUR_NS), host: "h1", f: 3 },
            { t: String(T0 + 1n), host: "h2", f: 2 },
        ];
        expect(await readBucket(bucket)).toEqual(expected);
        expect(await readManifested(bucket)).toEqual(expected);
        const { readdir } = await import("node:fs/promises");
        expect(await readdir(a.dataDir)).not.toContain("parquet");
        expect(await readdir(join(a.dataDir, "flush", "tmp"))).toEqual([]);
    });

    it("merges a retry that went to another node into one point when either compacts", async () => {
        const bucket = new MemoryBucket();
        const a = await start(bucket, "a");
        const b = await start(bucket, "b");
        const batch = `m,host=h1 f=1 ${T0}\nm,host=h2 f=2 ${T0}`;
        await write(a, batch);
        await write(b, batch);
        await write(b, `m,host=h3 f=3 ${T0}`);
        expect((await post(a, "/api/v1/flush")).status).toBe(200);
        expect((await post(b, "/api/v1/flush")).status).toBe(200);
        expect(await readBucket(bucket)).toHaveLength(5);
        const response = await post(b, "/api/v1/compact");
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ partitions: 1, files_in: 2, files_out: 1, rows_in: 5, rows_out: 3, duplicates_merged: 2 });
        expect(await readBucket(bucket)).toEqual([
            { t: String(T0), host: "h1", f: 1 },
            { t: String(T0), host: "h2", f: 2 },
            { t: String(T0), host: "h3", f: 3 },
        ]);
        const manifest = manifestOf(bucket, "db", "m")!;
        expect(manifest.files.map((file) => file.key)).toEqual(parquetKeys(bucket));
        expect(manifest.garbage).toEqual([]);
        expect(bucket.keys().some((key) => key.startsWith(".sluice/compaction/"))).toBe(true);
    });

    it("holds changes back while the bucket fails (rows safe in the WAL and staged files) and applies each once when it is back", async () => {
        const bucket = new MemoryBucket();
        const store = new MemoryObjectStore({ bucket });
        const a = await start(bucket, "a", {}, store);
        await write(a, `m,host=h1 f=1 ${T0}`);
        store.failAll("retryable");
        // Recorded in the local manifest (durable), not applied: later changes wait for it.
        expect((await post(a, "/api/v1/flush")).status).toBe(200);
        expect(parquetKeys(bucket)).toEqual([]);
        const health = await (await fetch(`${a.url}/health`)).text();
        expect(health).toMatch(/SlowDown/);
        await write(a, `m,host=h2 f=2 ${T0}`);
        expect((await post(a, "/api/v1/flush")).status).toBe(503);
        const failing = await (await fetch(`${a.url}/metrics`)).text();
        expect(failing).toMatch(/^sluice_commit_blocked 1$/m);
        expect(failing).toMatch(/^sluice_flush_failing_measurements\{code="commit-blocked"\} 1$/m);
        store.clearFaults();
        // A swap that lands but is reported failed (a timeout after the write): applied once all the same.
        store.failNext("putIfMatch", { error: "retryable", when: "after" });
        await write(a, `m,host=h3 f=3 ${T0}`);
        let status = 0;
        for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
            status = (await post(a, "/api/v1/flush")).status;
            if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(status).toBe(200);
        expect(await readBucket(bucket)).toEqual([
            { t: String(T0), host: "h1", f: 1 },
            { t: String(T0), host: "h2", f: 2 },
            { t: String(T0), host: "h3", f: 3 },
        ]);
        expect(manifestOf(bucket, "db", "m")!.files.map((file) => file.key)).toEqual(parquetKeys(bucket));
        // The step that landed but was reported failed is applied again in the background (a no-op now).
        let after = "";
        for (let attempt = 0; attempt < 100; attempt++) {
            after = await (await fetch(`${a.url}/health`)).text();
            if (!after.includes("SlowDown")) break;
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(after, after).not.toMatch(/SlowDown/);
        const healed = await (await fetch(`${a.url}/metrics`)).text();
        expect(healed).toMatch(/^sluice_commit_blocked 0$/m);
        expect(healed).not.toMatch(/^sluice_flush_failing_measurements\{/m);
        expect(manifestOf(bucket, "db", "m")!.files.map((file) => file.key)).toEqual(parquetKeys(bucket));
    });

    it("refuses a second ingester with a node_id in use, and lets it in once the first has stopped", async () => {
        const bucket = new MemoryBucket();
        const first = await start(bucket, "same");
        await expect(start(bucket, "same")).rejects.toThrow(NodeIdInUseError);
        await expect(start(bucket, "same")).rejects.toThrow(/node_id "same" is in use .* by same\/[0-9a-f]{8}/);
        await first.stop();
        servers.splice(servers.indexOf(first), 1);
        const second = await start(bucket, "same");
        await write(second, `m,host=h1 f=1 ${T0}`);
        expect((await post(second, "/api/v1/flush")).status).toBe(200);
    });

    it("stops a data directory started under another node_id than its own", async () => {
        const bucket = new MemoryBucket();
        const dir = await tempDir("sluice-node-");
        cleanups.push(dir.cleanup);
        const first = await startTestServer("node", { "storage.backend": "s3", node_id: "one" }, { objectStore: new MemoryObjectStore({ bucket }) }, dir.path);
        await first.stop();
        await expect(startTestServer("node", { "storage.backend": "s3", node_id: "two" }, { objectStore: new MemoryObjectStore({ bucket }) }, dir.path)).rejects.toThrow(
            /node_id is "two" but .* belongs to node "one"/,
        );
    });

    it("drops expired hours from the manifest, then from the bucket", async () => {
        const bucket = new MemoryBucket();
        const a = await start(bucket, "a", { "retention.period": "30d" });
        const now = BigInt(Date.now()) * 1_000_000n;
        await write(a, `m,host=old f=1 ${T0}\nm,host=new f=2 ${now}`);
        expect((await post(a, "/api/v1/flush")).status).toBe(200);
        expect(parquetKeys(bucket)).toHaveLength(2);
        const response = await post(a, "/api/v1/retention");
        expect(response.status).toBe(200);
        expect(((await response.json()) as { partitions: unknown[] }).partitions).toHaveLength(1);
        expect(await readBucket(bucket)).toEqual([{ t: String(now), host: "new", f: 2 }]);
        const manifest = manifestOf(bucket, "db", "m")!;
        expect(manifest.files.map((file) => file.key)).toEqual(parquetKeys(bucket));
        expect(manifest.garbage).toEqual([]);
    });
});

describe("applying changes to a shared bucket", () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
        for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    const partition: PartitionRef = { database: "db", measurement: "m", date: "2023-11-14", hour: "22" };
    const openLake = async (bucket: MemoryBucket, nodeId: string, clock = new ManualClock(), store = new MemoryObjectStore({ bucket })) => {
        const dir = await tempDir("sluice-s3lake-");
        cleanups.push(dir.cleanup);
        const tempDirPath = join(dir.path, "tmp");
        await mkdir(tempDirPath);
        const lake = await S3Lake.open({
            store,
            fs: nodeFileSystem,
            identity: { nodeId, incarnation: "0000000a" },
            tempDir: tempDirPath,
            downloadDir: join(dir.path, "download"),
            clock,
            log: silentLogger,
            leaseTtlMs: 10_000,
        });
        cleanups.push(() => lake.close());
        const stage = async (temp: string, bytes: string) => {
            await writeFile(join(tempDirPath, temp), bytes);
            return { temp, name: `${temp}.parquet`, rows: 1, bytes: bytes.length };
        };
        return { lake, stage, store, tempDir: tempDirPath };
    };
    const change = (id: number, parts: Partial<ChangeRecord>): ChangeRecord => ({ type: "change", id, flushed: [], adds: [], replaces: [], drops: [], ...parts });

    it("applies an add again after a crash without a second copy, even once compaction merged its file away", async () => {
        const bucket = new MemoryBucket();
        const a = await openLake(bucket, "a");
        const b = await openLake(bucket, "b");
        const file = await a.stage("f1", "rows of f1");
        const add = change(1, { adds: [{ partition, files: [file] }] });
        expect(await a.lake.apply(add)).toEqual({ changed: true, missing: [] });
        const [key] = parquetKeys(bucket);
        expect(key).toBe("db/m/date=2023-11-14/hour=22/a.0000000a.f1.parquet");
        const other = await b.stage("g1", "rows of g1");
        await b.lake.apply(change(1, { adds: [{ partition, files: [other] }] }));
        const merged = await b.stage("c1", "merged");
        const replace = change(2, { replaces: [{ partition, inputs: ["a.0000000a.f1.parquet", "b.0000000a.g1.parquet"], outputs: [merged] }] });
        expect(await b.lake.apply(replace)).toEqual({ changed: true, missing: [] });
        expect(parquetKeys(bucket)).toEqual(["db/m/date=2023-11-14/hour=22/b.0000000a.c1.parquet"]);
        // The crash came before node a removed its staged file: the record is applied again at its next start.
        await a.stage("f1", "rows of f1");
        expect(await a.lake.apply(add)).toEqual({ changed: false, missing: [] });
        expect(parquetKeys(bucket)).toEqual(["db/m/date=2023-11-14/hour=22/b.0000000a.c1.parquet"]);
        expect(manifestOf(bucket, "db", "m")!.files.map((entry) => entry.key)).toEqual(parquetKeys(bucket));
        // And a swap applied again finds itself done.
        await b.stage("c1", "merged");
        expect(await b.lake.apply(replace)).toEqual({ changed: false, missing: [] });
        expect(parquetKeys(bucket)).toEqual(["db/m/date=2023-11-14/hour=22/b.0000000a.c1.parquet"]);
    });

    it("deletes its outputs when another ingester compacted the same inputs first", async () => {
        const bucket = new MemoryBucket();
        const a = await openLake(bucket, "a");
        const b = await openLake(bucket, "b");
        await a.lake.apply(change(1, { adds: [{ partition, files: [await a.stage("f1", "1"), await a.stage("f2", "2")] }] }));
        const inputs = ["a.0000000a.f1.parquet", "a.0000000a.f2.parquet"];
        const first = await a.lake.apply(change(2, { replaces: [{ partition, inputs, outputs: [await a.stage("ca", "12")] }] }));
        const second = await b.lake.apply(change(1, { replaces: [{ partition, inputs, outputs: [await b.stage("cb", "12")] }] }));
        expect([first.changed, second.changed]).toEqual([true, false]);
        expect(parquetKeys(bucket)).toEqual(["db/m/date=2023-11-14/hour=22/a.0000000a.ca.parquet"]);
        expect(manifestOf(bucket, "db", "m")!.files.map((file) => file.key)).toEqual(parquetKeys(bucket));
    });

    it("leaves inputs live when an output is missing, and sweeps garbage a dead ingester left", async () => {
        const bucket = new MemoryBucket();
        const clock = new ManualClock();
        const a = await openLake(bucket, "a", clock);
        const b = await openLake(bucket, "b", clock);
        await a.lake.apply(change(1, { adds: [{ partition, files: [await a.stage("f1", "1"), await a.stage("f2", "2")] }] }));
        const inputs = ["a.0000000a.f1.parquet", "a.0000000a.f2.parquet"];
        const gone = { temp: "never-staged", name: "x.parquet", rows: 2, bytes: 2 };
        expect(await a.lake.apply(change(2, { replaces: [{ partition, inputs, outputs: [gone] }] }))).toEqual({
            changed: false,
            missing: ["db/m/date=2023-11-14/hour=22/a.0000000a.x.parquet"],
        });
        expect(parquetKeys(bucket)).toHaveLength(2);
        // Node a swaps, then dies before deleting its inputs (every delete refused from here on).
        a.store.failNext("deleteMany", { error: "fatal", times: 10 });
        await expect(a.lake.apply(change(3, { replaces: [{ partition, inputs, outputs: [await a.stage("c", "12")] }] }))).rejects.toThrow();
        expect(parquetKeys(bucket)).toHaveLength(3);
        expect(manifestOf(bucket, "db", "m")!.garbage.map((garbage) => garbage.key)).toHaveLength(2);
        expect(await b.lake.sweep()).toBe(0);
        clock.advance(21_000);
        expect(await b.lake.sweep()).toBe(2);
        expect(parquetKeys(bucket)).toEqual(["db/m/date=2023-11-14/hour=22/a.0000000a.c.parquet"]);
        expect(manifestOf(bucket, "db", "m")!.garbage).toEqual([]);
    });

    it("refuses to overwrite a key that holds other bytes", async () => {
        const bucket = new MemoryBucket();
        const a = await openLake(bucket, "a");
        bucket.write("db/m/date=2023-11-14/hour=22/a.0000000a.f1.parquet", Buffer.from("someone else's"));
        await expect(a.lake.apply(change(1, { adds: [{ partition, files: [await a.stage("f1", "mine")] }] }))).rejects.toThrow(/already holds other bytes/);
    });

    it("lists partitions and files from the manifests only (not the keys)", async () => {
        const bucket = new MemoryBucket();
        const a = await openLake(bucket, "a");
        await a.lake.apply(
            change(1, {
                adds: [
                    { partition, files: [await a.stage("f1", "1")] },
                    { partition: { ...partition, hour: "23" }, files: [await a.stage("f2", "2")] },
                ],
            }),
        );
        bucket.write("db/m/date=2023-11-14/hour=21/stray.parquet", Buffer.from("not listed"));
        const partitions = [];
        for await (const found of a.lake.partitions()) partitions.push(found);
        expect(partitions.map((found) => found.hour).sort()).toEqual(["22", "23"]);
        expect((await a.lake.files(partition)).map((file) => file.name)).toEqual(["a.0000000a.f1.parquet"]);
        expect(bucket.keys()).toContain(`db/m/${MANIFEST_NAME}`);
    });
});

describe("leases", () => {
    it("are held by one holder at a time, taken over once expired or released, and kept by the same holder across restarts", async () => {
        const store = new MemoryObjectStore();
        const clock = new ManualClock();
        const first = await Lease.acquire(store, "lease.json", "a/1", 10_000, clock);
        expect(first.held).toBe(true);
        const refused = await Lease.acquire(store, "lease.json", "b/1", 10_000, clock);
        expect(refused).toMatchObject({ held: false, by: { holder: "a/1" } });
        // The same holder (a restart of the same data directory) takes it at once.
        expect((await Lease.acquire(store, "lease.json", "a/1", 10_000, clock)).held).toBe(true);
        clock.advance(16_000);
        const taken = await Lease.acquire(store, "lease.json", "b/1", 10_000, clock);
        expect(taken.held).toBe(true);
        if (first.held) expect(await first.lease.renew()).toBe(false);
        if (taken.held) await taken.lease.release();
        expect((await Lease.acquire(store, "lease.json", "c/1", 10_000, clock)).held).toBe(true);
        const racers = await Promise.all(["x", "y", "z"].map((holder) => Lease.acquire(store, "race.json", holder, 10_000, clock)));
        expect(racers.filter((outcome) => outcome.held)).toHaveLength(1);
    });
});

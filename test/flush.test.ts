import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ClosableEncoder, createEncoder } from "../flush/encoder.js";
import type { BatchEncoder } from "../flush/flusher.js";
import { Buffers } from "../ingest/buffer/buffers.js";
import { loadConfig } from "../src/config/load.js";
import { Engine } from "../src/engine.js";
import { type LogFields, type Logger, silentLogger } from "../src/log.js";
import { listWalFiles } from "../src/wal/files.js";
import { useFlushFixture } from "./helpers/flush-fixture.js";
import { cpuBatch, tempDir } from "./helpers/batches.js";
import { type TestServer, startTestServer, walEntries } from "./helpers/server.js";
import { queryDuckDB } from "./helpers/parquet.js";

describe("flusher", () => {
    const fixture = useFlushFixture();

    let written = 0;
    async function buffered(buffers: Buffers, count: number): Promise<void> {
        for (let i = 0; i < count; i++) {
            const batch = cpuBatch(10, written);
            written += 10;
            await fixture.writer.appendAll([{ database: "db", batch }], {
                onDurable: ([result]) => {
                    buffers.append("db", batch, result!.sequence);
                },
            });
        }
    }

    it("keeps the rows of a failed flush (read back from the WAL), reports it, and retries until it succeeds", async () => {
        const buffers = new Buffers({ maxBytes: 64 * 1024 * 1024 });
        await buffered(buffers, 3);
        let fail = true;
        const real = createEncoder();
        const encoder: BatchEncoder = { encode: (input) => (fail ? Promise.reject(new Error("disk on fire")) : real.encode(input)) };
        let purges = 0;
        const flusher = fixture.flusherOf(buffers, encoder, {
            retryBaseMs: 10,
            onCommitted: async () => {
                purges++;
            },
        });
        try {
            await expect(flusher.flushAll()).rejects.toThrow(/disk on fire/);
            const buffer = buffers.get("db", "cpu")!;
            expect(buffer.rows).toBe(30);
            expect(buffer.minSequence).toBe(0);
            expect(flusher.lowWaterMark(fixture.writer.nextSequence)).toBe(0);
            expect(flusher.failures()).toEqual([{ database: "db", measurement: "cpu", attempts: 1, error: "disk on fire", code: "internal", nextRetryMs: expect.any(Number) }]);
            await buffered(buffers, 1);
            fail = false;
            const files = await flusher.flushAll();
            expect(files.reduce((sum, file) => sum + file.rows, 0)).toBe(40);
            expect(flusher.failures()).toEqual([]);
            expect(buffers.nonEmpty()).toEqual([]);
            expect(fixture.commit.flushedThrough("db", "cpu")).toBe(3);
            expect(flusher.lowWaterMark(fixture.writer.nextSequence)).toBe(fixture.writer.nextSequence);
            expect(purges).toBe(1);
            const rows = await queryDuckDB(`select count(*)::INT as n, count(distinct time)::INT as t from read_parquet('${join(fixture.data, "parquet")}/**/*.parquet')`);
            expect(rows).toEqual([{ n: 40, t: 40 }]);
            expect(flusher.stats).toMatchObject({ flushes: 1, rows: 40, failures: 1 });
        } finally {
            await flusher.close();
            await real.close();
        }
    });

    it("drops drained buffers, and puts a failed flush's rows back in front of rows written meanwhile, in a buffer of their own", async () => {
        const buffers = new Buffers({ maxBytes: 64 * 1024 * 1024 });
        await buffered(buffers, 3);
        const drained = buffers.get("db", "cpu")!;
        let fail = true;
        const real = createEncoder();
        const encoder: BatchEncoder = {
            encode: async (input) => {
                if (!fail) return real.encode(input);
                // While the flush is under way its buffer is empty: listing the buffers drops it, and a write makes a new one.
                expect(buffers.nonEmpty()).toEqual([]);
                expect(buffers.get("db", "cpu")).toBeUndefined();
                await buffered(buffers, 1);
                throw new Error("disk on fire");
            },
        };
        const flusher = fixture.flusherOf(buffers, encoder, { retryBaseMs: 10 });
        try {
            await expect(flusher.flushAll()).rejects.toThrow(/disk on fire/);
            const buffer = buffers.get("db", "cpu")!;
            expect(buffer).not.toBe(drained);
            expect(buffers.nonEmpty()).toEqual([buffer]);
            expect(buffer.rows).toBe(40);
            expect(buffer.minSequence).toBe(0);
            fail = false;
            const files = await flusher.flushAll();
            expect(files.reduce((sum, file) => sum + file.rows, 0)).toBe(40);
            expect(buffers.nonEmpty()).toEqual([]);
            expect(buffers.get("db", "cpu")).toBeUndefined();
            const rows = await queryDuckDB(`select count(*)::INT as n, count(distinct time)::INT as t from read_parquet('${join(fixture.data, "parquet")}/**/*.parquet')`);
            expect(rows).toEqual([{ n: 40, t: 40 }]);
        } finally {
            await flusher.close();
            await real.close();
        }
    });

    it("logs one line per flush: what it wrote and how long the encode and the whole flush took", async () => {
        const buffers = new Buffers({ maxBytes: 64 * 1024 * 1024 });
        await buffered(buffers, 2);
        const encoder = createEncoder();
        const lines: { message: string; fields: LogFields | undefined }[] = [];
        const log: Logger = { ...silentLogger, info: (message, fields) => void lines.push({ message, fields }) };
        const flusher = fixture.flusherOf(buffers, encoder, { log });
        try {
            const files = await flusher.flushAll();
            expect(lines).toEqual([
                {
                    message: "flushed",
                    fields: {
                        database: "db",
                        measurement: "cpu",
                        rows: 20,
                        files: files.length,
                        bytes: files.reduce((sum, file) => sum + file.bytes, 0),
                        wal_seq: "0-1",
                        encode_ms: expect.any(Number),
                        ms: expect.any(Number),
                    },
                },
            ]);
            expect(lines[0]!.fields!["ms"]).toBeGreaterThanOrEqual(lines[0]!.fields!["encode_ms"] as number);
        } finally {
            await flusher.close();
            await encoder.close();
        }
    });

    it("flushes on its own when a buffer reaches flush.max_rows or flush.max_age_ms", async () => {
        const buffers = new Buffers({ maxBytes: 64 * 1024 * 1024 });
        const encoder = createEncoder();
        const flusher = fixture.flusherOf(buffers, encoder, { maxRows: 25, maxAgeMs: 100 });
        flusher.start();
        try {
            await buffered(buffers, 3);
            flusher.nudge();
            const deadline = Date.now() + 20_000;
            while (flusher.stats.rows < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
            expect(buffers.rows).toBe(0);
            expect(flusher.stats.rows).toBe(30);
            // 30 rows against flush.max_rows = 25: one commit, encoded in two parts of 15.
            expect(flusher.stats).toMatchObject({ flushes: 1, files: 2 });
            // What a reader globbing the lake sees: each file once, through the partition's link.
            const seen = await queryDuckDB(`select distinct filename from read_parquet('${join(fixture.data, "parquet")}/**/*.parquet', filename = true) order by 1`);
            expect(seen.map((row) => (row.filename as string).slice(join(fixture.data, "parquet").length + 1))).toEqual([
                "db/cpu/date=2023-11-14/hour=22/00000000000000000000-00000000000000000002-1.parquet",
                "db/cpu/date=2023-11-14/hour=22/00000000000000000000-00000000000000000002-2.parquet",
            ]);
            expect(await queryDuckDB(`select count(*)::INT as n from read_parquet('${join(fixture.data, "parquet")}/**/*.parquet')`)).toEqual([{ n: 30 }]);
        } finally {
            await flusher.close();
            await encoder.close();
        }
    });
});

describe("engine", () => {
    it("starts the encode worker when it opens, before any flush, and not when a test fakes it", async () => {
        const dir = await tempDir();
        const real = createEncoder();
        let starts = 0;
        const counting: ClosableEncoder = {
            ...real,
            start: () => {
                starts++;
                real.start();
            },
            close: () => real.close(),
        };
        const config = loadConfig({ env: {}, flags: { data_dir: dir.path } });
        try {
            const { engine } = await Engine.open(config, silentLogger, counting);
            expect(starts).toBe(1);
            await engine.shutdown();
            const fake: BatchEncoder = { encode: () => Promise.reject(new Error("unused")) };
            const { engine: faked } = await Engine.open(config, silentLogger, counting, { encoder: fake });
            expect(starts).toBe(1);
            await faked.shutdown();
        } finally {
            await real.close();
            await dir.cleanup();
        }
    });
});

describe("large requests", () => {
    it("splits a batch too large for one WAL entry into several entries of the same unit", async () => {
        const t = await startTestServer("node", { "wal.sync_mode": "off" });
        try {
            const lines = 2_500_000;
            const body = Buffer.alloc(lines * 16);
            let at = 0;
            for (let i = 0; i < lines; i++) at += body.write(`m f=${i % 10}i ${i}\n`, at);
            const response = await fetch(`${t.url}/write?db=big`, { method: "POST", body: body.subarray(0, at) });
            expect(response.status).toBe(204);
            const entries = await walEntries(t.dataDir);
            expect(entries.length).toBeGreaterThan(1);
            expect(entries.reduce((sum, entry) => sum + entry.rows, 0)).toBe(lines);
            expect(new Set(entries.map((entry) => entry.measurement))).toEqual(new Set(["m"]));
        } finally {
            await t.stop();
        }
    });
});

describe("restart", () => {
    it("keeps field types and created databases across a restart", async () => {
        const dir = await tempDir();
        try {
            const first = await startTestServer("node", {}, {}, dir.path);
            await fetch(`${first.url}/query?q=${encodeURIComponent("CREATE DATABASE empty")}`, { method: "POST" });
            expect((await fetch(`${first.url}/write?db=s`, { method: "POST", body: "m f=1i 1" })).status).toBe(204);
            await first.stop();
            const second = await startTestServer("node", {}, {}, dir.path);
            try {
                const conflict = await fetch(`${second.url}/write?db=s`, { method: "POST", body: "m f=1.5 2" });
                expect(conflict.status).toBe(400);
                expect(((await conflict.json()) as { error: string }).error).toMatch(/field type conflict/);
                const show = (await (await fetch(`${second.url}/query?q=SHOW+DATABASES`)).json()) as { results: { series: { values: string[][] }[] }[] };
                expect(show.results[0]!.series[0]!.values).toEqual([["empty"], ["s"]]);
            } finally {
                await second.stop();
            }
            expect(await queryDuckDB(`select f from read_parquet('${dir.path}/parquet/s/m/**/*.parquet')`)).toEqual([{ f: 1n }]);
        } finally {
            await dir.cleanup();
        }
    });
});

describe("HTTP → Parquet", () => {
    let t: TestServer | undefined;
    afterEach(async () => {
        await t?.stop();
        t = undefined;
    });

    it("POST /api/v1/flush answers with the durable files, which DuckDB reads with exact types and values", async () => {
        t = await startTestServer("node");
        const lines = [
            'cpu,host=a,region=eu usage=1.5,count=3i,ok=true,note="x" 1700000000000000001',
            "cpu,host=b usage=-2,count=-9223372036854775808i 1700000000000000002",
            "cpu,host=a,region=eu usage=3.25,big=18446744073709551615u 1700003600000000003",
            "mem,host=a used=9007199254740993i 1700000000000000004",
        ];
        expect((await fetch(`${t.url}/write?db=my%2Fdb`, { method: "POST", body: lines.join("\n") })).status).toBe(204);
        const response = await fetch(`${t.url}/api/v1/flush`, { method: "POST" });
        expect(response.status).toBe(200);
        const { files } = (await response.json()) as { files: { path: string; rows: number; database: string }[] };
        expect(files.map((file) => [file.path.replace(/\/[^/]+$/, ""), file.rows]).sort()).toEqual([
            ["my%2Fdb/cpu/date=2023-11-14/hour=22", 2],
            ["my%2Fdb/cpu/date=2023-11-14/hour=23", 1],
            ["my%2Fdb/mem/date=2023-11-14/hour=22", 1],
        ]);
        const root = join(t.dataDir, "parquet", "my%2Fdb");
        const cpu = await queryDuckDB(
            `select time::VARCHAR as time, epoch_ns(time)::VARCHAR as ns, host, region, usage, count::VARCHAR as count, ok, note, big::VARCHAR as big from read_parquet('${root}/cpu/**/*.parquet', union_by_name=true) order by time`,
        );
        expect(cpu).toEqual([
            { time: "2023-11-14 22:13:20.000000001", ns: "1700000000000000001", host: "a", region: "eu", usage: 1.5, count: "3", ok: true, note: "x", big: null },
            {
                time: "2023-11-14 22:13:20.000000002",
                ns: "1700000000000000002",
                host: "b",
                region: null,
                usage: -2,
                count: "-9223372036854775808",
                ok: null,
                note: null,
                big: null,
            },
            {
                time: "2023-11-14 23:13:20.000000003",
                ns: "1700003600000000003",
                host: "a",
                region: "eu",
                usage: 3.25,
                count: null,
                ok: null,
                note: null,
                big: "18446744073709551615",
            },
        ]);
        const types = await queryDuckDB(`select column_name, column_type from (describe select * from read_parquet('${root}/cpu/**/*.parquet', union_by_name=true))`);
        expect(Object.fromEntries(types.map((row) => [row.column_name, row.column_type]))).toMatchObject({
            time: "TIMESTAMP_NS",
            host: "VARCHAR",
            region: "VARCHAR",
            usage: "DOUBLE",
            count: "BIGINT",
            ok: "BOOLEAN",
            note: "VARCHAR",
            big: "UBIGINT",
        });
        expect(await queryDuckDB(`select used::VARCHAR as used from read_parquet('${root}/mem/**/*.parquet')`)).toEqual([{ used: "9007199254740993" }]);
        expect(t.server.context.buffers.rows).toBe(0);
    });

    it("stores requests that add and drop fields of every type in one buffer, the missing values NULL", async () => {
        t = await startTestServer("node");
        const requests = ['m,host=a i=1i,u=2u,f=3.5,b=true,s="x" 1', "m,host=a f=4 2", "m z=9i 3", "m,host=b i=5i,b=false 4"];
        for (const body of requests) expect((await fetch(`${t.url}/write?db=db`, { method: "POST", body })).status).toBe(204);
        expect((await fetch(`${t.url}/api/v1/flush`, { method: "POST" })).status).toBe(200);
        const rows = await queryDuckDB(
            `select epoch_ns(time)::INT as t, host, i::VARCHAR as i, u::VARCHAR as u, f, b, s, z::VARCHAR as z from read_parquet('${join(t.dataDir, "parquet")}/db/m/**/*.parquet') order by time`,
        );
        expect(rows).toEqual([
            { t: 1, host: "a", i: "1", u: "2", f: 3.5, b: true, s: "x", z: null },
            { t: 2, host: "a", i: null, u: null, f: 4, b: null, s: null, z: null },
            { t: 3, host: null, i: null, u: null, f: null, b: null, s: null, z: "9" },
            { t: 4, host: "b", i: "5", u: null, f: null, b: false, s: null, z: null },
        ]);
    });

    it("purges WAL files once their entries are in Parquet, and shutdown leaves no WAL file", async () => {
        t = await startTestServer("node", { "wal.max_file_bytes": 4096 });
        for (let i = 0; i < 40; i++) expect((await fetch(`${t.url}/write?db=p`, { method: "POST", body: `m,host=h${i} v=${i},s="${"x".repeat(200)}" ${i}` })).status).toBe(204);
        const walDir = join(t.dataDir, "wal");
        expect((await listWalFiles(walDir)).length).toBeGreaterThan(2);
        await fetch(`${t.url}/api/v1/flush`, { method: "POST" });
        expect((await listWalFiles(walDir)).map((file) => file.name)).toEqual([t.server.engine.writer.activeFile]);
        await t.server.close();
        expect(await listWalFiles(walDir)).toEqual([]);
        expect(await queryDuckDB(`select count(*)::INT as n from read_parquet('${t.dataDir}/parquet/p/m/**/*.parquet')`)).toEqual([{ n: 40 }]);
    });
});

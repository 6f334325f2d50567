import { gzipSync } from "node:zlib";
import { InfluxDB, Point } from "@influxdata/influxdb-client";
import { Packr, unpack } from "msgpackr";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_LISTED_LINE_ERRORS } from "../ingest/lp/index.js";
import { valueAt } from "../src/columnar/batch.js";
import { joinBatches } from "../src/columnar/batch-builder.js";
import { listWalFiles } from "../src/wal/files.js";
import { WalFileReader } from "../src/wal/reader.js";
import { FaultyFileSystem } from "./helpers/faulty-fs.js";
import { type TestServer, keepAliveExchange, rawRequest, startTestServer, walEntries } from "./helpers/server.js";

const ADAPTERS = ["node", "hyper-express"] as const;
const packr = new Packr({ useRecords: false, variableMapSize: true });

async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; headers: Headers }> {
    const response = await fetch(url, { method: "POST", body, headers });
    const text = await response.text();
    return { status: response.status, json: text === "" ? undefined : (JSON.parse(text) as unknown), headers: response.headers };
}

describe.each(ADAPTERS)("HTTP on %s", (adapter) => {
    let t: TestServer | undefined;
    afterEach(async () => {
        await t?.stop();
        t = undefined;
    });
    const start = async (settings: Record<string, unknown> = {}, seams = {}) => (t = await startTestServer(adapter, settings, seams));
    const rows = (database: string, measurement: string) => t!.server.context.buffers.get(database, measurement)?.rows ?? 0;

    it("answers /ping with 204 and the version header, and /health with 200", async () => {
        await start();
        for (const method of ["GET", "HEAD"]) {
            const ping = await fetch(`${t!.url}/ping`, { method });
            expect(ping.status).toBe(204);
            expect(ping.headers.get("x-influxdb-version")).toMatch(/^sluice-/);
        }
        const health = await fetch(`${t!.url}/health`);
        expect(health.status).toBe(200);
        expect(await health.json()).toMatchObject({ name: "sluice", status: "pass" });
        expect((await fetch(`${t!.url}/nope`)).status).toBe(404);
        expect((await fetch(`${t!.url}/write`)).status).toBe(405);
    });

    it("POST /write stores the lines, in the WAL before the 204, then in the buffers", async () => {
        await start();
        const response = await post(`${t!.url}/write?db=telegraf`, "cpu,host=a usage=1.5,n=3i 1700000000000000000\ncpu,host=b usage=2 1700000000000000001\nmem used=7i\n");
        expect(response.status).toBe(204);
        expect(response.json).toBeUndefined();
        expect(await walEntries(t!.dataDir)).toEqual([
            { database: "telegraf", measurement: "cpu", rows: 2, sequence: 0 },
            { database: "telegraf", measurement: "mem", rows: 1, sequence: 1 },
        ]);
        expect(rows("telegraf", "cpu")).toBe(2);
        expect(rows("telegraf", "mem")).toBe(1);
    });

    it("writes WAL entries that a plain msgpack decoder reads as the documented map", async () => {
        await start();
        expect((await post(`${t!.url}/api/v2/write?bucket=b&org=o`, 'm,t=x f=1.5,i=2i,s="hi",b=true 1\nm,t=y f=2.5 2')).status).toBe(204);
        const [file] = await listWalFiles(`${t!.dataDir}/wal`);
        const records = [];
        for await (const record of new WalFileReader(file!).records()) if (record.kind === "entry") records.push(Buffer.from(record.payload));
        expect(records).toHaveLength(1);
        const payload = records[0]!;
        expect(payload[0]).toBe(0x01);
        expect(payload.readUInt16BE(1)).toBe(1);
        expect(payload.subarray(3, 4).toString()).toBe("b");
        const map = unpack(payload.subarray(4)) as Record<string, unknown>;
        expect(map).toMatchObject({ m: "m", n: 2, tags: ["t"], types: { time: "t", t: "s", f: "f", i: "i", s: "s", b: "b" } });
        const columns = map.columns as Record<string, unknown>;
        expect(Buffer.from(columns.time as Uint8Array).readBigInt64LE(8)).toBe(2n);
        expect(Buffer.from(columns.f as Uint8Array).readDoubleLE(8)).toBe(2.5);
        expect(columns.t).toEqual({ dict: ["x", "y"], codes: Buffer.from([0, 0, 0, 0, 1, 0, 0, 0]) });
        expect(Object.keys(map.valid as object).sort()).toEqual(["b", "i", "s"]);
    });

    it("partial write on /write: good lines stored, 400 with every bad line and its physical line number", async () => {
        await start();
        const body = 'cpu v=1 1\ncpu v= 2\n\n# a comment\ncpu v=2 3\ncpu v="x" 4\n';
        const response = await post(`${t!.url}/write?db=d`, body);
        expect(response.status).toBe(400);
        const message = (response.json as { error: string }).error;
        expect(message).toMatch(/^partial write: /);
        expect(message).toMatch(/\(line 2\)/);
        expect(message).toMatch(/\(line 6\).*type conflict/);
        expect(message).toMatch(/dropped=2$/);
        expect(response.headers.get("x-influxdb-error")).toMatch(/^partial write/);
        expect(rows("d", "cpu")).toBe(2);
    });

    it("partial write of more bad lines than an answer lists: the first ones listed, every one counted", async () => {
        await start();
        const bad = MAX_LISTED_LINE_ERRORS + 7;
        const body = [...Array.from({ length: bad }, (_, i) => `cpu v= ${i}`), "cpu v=1 1"].join("\n");
        const response = await post(`${t!.url}/write?db=d`, body);
        expect(response.status).toBe(400);
        const message = (response.json as { error: string }).error;
        expect(message.match(/unable to parse/g)).toHaveLength(MAX_LISTED_LINE_ERRORS);
        expect(message).toMatch(/; and 7 more dropped=1007$/);
        expect(rows("d", "cpu")).toBe(1);
    });

    it("partial write on /api/v2/write: {code: invalid, message, line}", async () => {
        await start();
        const response = await post(`${t!.url}/api/v2/write?bucket=b`, "m f=1 1\nm f=1 2 3\nm f=2 4");
        expect(response.status).toBe(400);
        expect(response.json).toMatchObject({ code: "invalid", message: expect.stringMatching(/^partial write: .*\(line 2\)/), line: 2 });
        expect(rows("b", "m")).toBe(2);
    });

    it("partial write on /api/v3/write_lp lists every bad line; accept_partial=false stores nothing", async () => {
        await start();
        const body = "m f=1\nm f\nm f=2\nm,t=1,t=2 f=3";
        const partial = await post(`${t!.url}/api/v3/write_lp?db=v3`, body);
        expect(partial.status).toBe(400);
        const json = partial.json as { error: string; data: { error_message: string; line_number: number; original_line: string }[] };
        expect(json.error).toBe("partial write of line protocol occurred");
        expect(json.data.map((d) => d.line_number)).toEqual([2, 4]);
        expect(json.data[0]!.original_line).toBe("m f");
        expect(rows("v3", "m")).toBe(2);
        const strict = await post(`${t!.url}/api/v3/write_lp?db=strict&accept_partial=false`, body);
        expect(strict.status).toBe(400);
        expect(strict.json).toMatchObject({ data: { line_number: 2 } });
        expect(rows("strict", "m")).toBe(0);
        expect((await walEntries(t!.dataDir)).map((e) => e.database)).toEqual(["v3"]);
    });

    it("checks the database and precision parameters of each API", async () => {
        await start();
        expect(await post(`${t!.url}/write`, "m f=1")).toMatchObject({ status: 400, json: { error: "database is required" } });
        expect(await post(`${t!.url}/api/v2/write`, "m f=1")).toMatchObject({ status: 400, json: { code: "invalid" } });
        expect(await post(`${t!.url}/api/v3/write_lp`, "m f=1")).toMatchObject({ status: 400 });
        expect(await post(`${t!.url}/write?db=d&precision=us`, "m f=1 1")).toMatchObject({ status: 204 });
        expect(await post(`${t!.url}/write?db=d&precision=xs`, "m f=1 1")).toMatchObject({ status: 400, json: { error: expect.stringMatching(/invalid precision "xs"/) } });
        expect(await post(`${t!.url}/api/v2/write?bucket=d&precision=h`, "m f=1 1")).toMatchObject({ status: 400 });
        expect(await post(`${t!.url}/write?db=%ff`, "m f=1")).toMatchObject({ status: 400, json: { error: expect.stringMatching(/not valid UTF-8/) } });
        expect(await post(`${t!.url}/api/v3/write_lp?db=d`, "")).toMatchObject({ status: 400 });
        expect((await post(`${t!.url}/write?db=d`, "")).status).toBe(204);
    });

    it("scales timestamps by precision (m = minutes on /write, seconds on v3 auto)", async () => {
        await start();
        expect((await post(`${t!.url}/write?db=p&precision=m`, "m f=1 2")).status).toBe(204);
        expect((await post(`${t!.url}/api/v3/write_lp?db=p`, "m f=1 1700000000")).status).toBe(204);
        const buffer = t!.server.context.buffers.get("p", "m")!;
        const batch = joinBatches(buffer.drain().segments);
        const time = batch.columns.get("time")!;
        expect([valueAt(time, 0), valueAt(time, 1)]).toEqual([120_000_000_000n, 1_700_000_000_000_000_000n]);
    });

    it("accepts gzip (also multi-member) and rejects bad gzip and unknown encodings", async () => {
        await start();
        expect((await post(`${t!.url}/write?db=g`, gzipSync("m f=1 1\n"), { "content-encoding": "gzip" })).status).toBe(204);
        const multi = Buffer.concat([gzipSync("m f=2 2\n"), gzipSync("m f=3 3\n")]);
        expect((await post(`${t!.url}/write?db=g`, multi, { "content-encoding": "gzip" })).status).toBe(204);
        expect(rows("g", "m")).toBe(3);
        expect(await post(`${t!.url}/write?db=g`, "not gzip", { "content-encoding": "gzip" })).toMatchObject({
            status: 400,
            json: { error: expect.stringMatching(/not valid gzip/) },
        });
        expect((await post(`${t!.url}/write?db=g`, "m f=1", { "content-encoding": "br" })).status).toBe(415);
    });

    it("answers 413 above http.max_body_bytes, raw and after gunzip", async () => {
        await start({ "http.max_body_bytes": 4096 });
        expect((await post(`${t!.url}/write?db=big`, "m f=1 1\n".repeat(1000))).status).toBe(413);
        expect((await post(`${t!.url}/api/v2/write?bucket=big`, "m f=1 1\n".repeat(1000))).json).toMatchObject({ code: "request too large" });
        const bomb = gzipSync(Buffer.from("m f=1 1\n".repeat(100_000)));
        expect(bomb.length).toBeLessThan(4096);
        expect((await post(`${t!.url}/write?db=big`, bomb, { "content-encoding": "gzip" })).status).toBe(413);
        expect(rows("big", "m")).toBe(0);
        expect((await post(`${t!.url}/write?db=big`, "m f=1 1\n")).status).toBe(204);
    });

    it("with auth.tokens: 401 without a valid token; Token, Bearer, Basic, ?p= and x-api-key accepted", async () => {
        await start({ "auth.tokens": ["s3cret", "other"] });
        const url = `${t!.url}/write?db=a`;
        expect((await post(url, "m f=1")).status).toBe(401);
        expect((await post(url, "m f=1", { authorization: "Token wrong" })).status).toBe(401);
        expect((await post(`${t!.url}/api/v2/write?bucket=a`, "m f=1")).json).toMatchObject({ code: "unauthorized" });
        expect((await post(url, "m f=1", { authorization: "Token s3cret" })).status).toBe(204);
        expect((await post(url, "m f=1", { authorization: "Bearer other" })).status).toBe(204);
        expect((await post(url, "m f=1", { authorization: `Basic ${Buffer.from("anyone:s3cret").toString("base64")}` })).status).toBe(204);
        expect((await post(`${url}&p=s3cret`, "m f=1")).status).toBe(204);
        expect((await post(url, "m f=1", { "x-api-key": "s3cret" })).status).toBe(204);
        expect((await fetch(`${t!.url}/ping`)).status).toBe(204);
        expect((await fetch(`${t!.url}/metrics`)).status).toBe(401);
        expect(rows("a", "m")).toBe(5);
    });

    it("answers 503 with Retry-After and stores nothing when the WAL cannot write (ENOSPC), then recovers", async () => {
        const fs = new FaultyFileSystem();
        await start({}, { fileSystem: fs });
        fs.failNext("writev", "ENOSPC", 1, /\.wal$/);
        const failed = await post(`${t!.url}/api/v2/write?bucket=f`, "m f=1 1");
        expect(failed.status).toBe(503);
        expect(failed.headers.get("retry-after")).toBe("1");
        expect(failed.json).toMatchObject({ code: "unavailable", message: expect.stringMatching(/ENOSPC/) });
        expect(rows("f", "m")).toBe(0);
        expect(await walEntries(t!.dataDir)).toEqual([]);
        expect((await post(`${t!.url}/api/v2/write?bucket=f`, "m f=2 2")).status).toBe(204);
        expect(await walEntries(t!.dataDir)).toEqual([{ database: "f", measurement: "m", rows: 1, sequence: 0 }]);
    });

    it("answers 503 with Retry-After above ingest.max_buffered_bytes instead of growing", async () => {
        await start({ "ingest.max_buffered_bytes": 1024 * 1024 });
        const body = Array.from({ length: 5000 }, (_, i) => `m,host=h${i} f=${i},s="${"x".repeat(50)}" ${i}`).join("\n");
        let status = 204;
        let writes = 0;
        while (status === 204 && writes < 100) {
            status = (await post(`${t!.url}/write?db=mem`, body)).status;
            writes++;
        }
        expect(status).toBe(503);
        expect(t!.server.context.buffers.bytes).toBeLessThanOrEqual(1024 * 1024 * 2);
        const refused = await post(`${t!.url}/write?db=mem`, body);
        expect(refused.headers.get("retry-after")).toBe("1");
        expect((await walEntries(t!.dataDir)).length).toBe(writes - 1);
    });

    it("keeps 20 requests on one keep-alive connection, every status line right", async () => {
        await start();
        const requests = Array.from({ length: 20 }, (_, i) => {
            if (i % 5 === 3) return rawRequest("POST", "/write?db=k", "bad line\n");
            if (i % 5 === 4) return rawRequest("GET", "/ping");
            return rawRequest("POST", "/write?db=k", `m f=${i} ${i}\n`);
        });
        const responses = await keepAliveExchange(t!.url, requests);
        expect(responses.map((r) => r.statusLine)).toEqual(Array.from({ length: 20 }, (_, i) => (i % 5 === 3 ? "HTTP/1.1 400 Bad Request" : "HTTP/1.1 204 No Content")));
        for (const response of responses.filter((r) => r.statusLine.includes("204"))) {
            expect(response.headers.get("content-length") ?? "0").toBe("0");
            expect(response.body).toBe("");
        }
        expect(rows("k", "m")).toBe(12);
    });

    it("answers CREATE DATABASE and SHOW DATABASES on /query as InfluxDB 1.x does", async () => {
        await start();
        const create = await post(`${t!.url}/query`, `q=${encodeURIComponent('CREATE DATABASE "telegraf"')}`, { "content-type": "application/x-www-form-urlencoded" });
        expect(create).toMatchObject({ status: 200, json: { results: [{ statement_id: 0 }] } });
        await post(`${t!.url}/write?db=written`, "m f=1");
        const show = await fetch(`${t!.url}/query?q=SHOW+DATABASES`);
        expect(await show.json()).toEqual({ results: [{ statement_id: 0, series: [{ name: "databases", columns: ["name"], values: [["telegraf"], ["written"]] }] }] });
        expect((await post(`${t!.url}/query?q=SELECT+*+FROM+m`, "")).status).toBe(400);
    });

    it("serves Prometheus metrics", async () => {
        await start();
        await post(`${t!.url}/write?db=d`, "m f=1\nm f=2\nbad\n");
        const text = await (await fetch(`${t!.url}/metrics`)).text();
        expect(text).toMatch(/^sluice_lines_accepted_total\{endpoint="\/write"\} 2$/m);
        expect(text).toMatch(/^sluice_lines_rejected_total\{endpoint="\/write"\} 1$/m);
        expect(text).toMatch(/^sluice_wal_entries_total 1$/m);
        expect(text).toMatch(/^sluice_http_requests_total\{path="\/write",status="400"\} 1$/m);
    });

    it("takes Arc msgpack: a map, an array, {batch}, gzip by magic bytes; floats stay floats", async () => {
        await start();
        const url = `${t!.url}/api/v1/write/msgpack`;
        const map = { m: "cpu", tags: ["host"], columns: { time: [1, 2], host: ["a", "b"], usage: [1.0, 2.5], n: [1, null] } };
        expect((await post(url, packr.pack(map), { "x-arc-database": "arc" })).status).toBe(204);
        expect((await post(`${url}?db=arc`, packr.pack([{ m: "mem", columns: { time: [3], used: [4] } }]))).status).toBe(204);
        expect((await post(url, gzipSync(packr.pack({ batch: [{ m: "mem", columns: { time: [5], used: [6] } }] })), { "x-arc-database": "arc" })).status).toBe(204);
        const cpu = joinBatches(t!.server.context.buffers.get("arc", "cpu")!.drain().segments);
        expect(cpu.tags).toEqual(["host"]);
        expect(cpu.columns.get("usage")?.type).toBe("f");
        expect(cpu.columns.get("n")?.type).toBe("i");
        expect([valueAt(cpu.columns.get("n")!, 0), valueAt(cpu.columns.get("n")!, 1)]).toEqual([1n, null]);
        expect(rows("arc", "mem")).toBe(2);
    });

    it("rejects a malformed msgpack payload whole, with the reason", async () => {
        await start();
        const url = `${t!.url}/api/v1/write/msgpack?db=bad`;
        const cases: [unknown, RegExp][] = [
            [
                [
                    { m: "ok", columns: { time: [1], v: [1] } },
                    { m: "x", columns: { time: [1, 2], v: [1] } },
                ],
                /column "v" has 1 values, "time" has 2/,
            ],
            [{ m: "x", columns: { time: [1], v: [{ nested: true }] } }, /only nil, booleans, numbers and strings/],
            [{ m: "x", columns: { time: [1, 2], v: [1, "a"] } }, /mixes int and string/],
            [{ m: "x", t: 1, fields: {} }, /row format/],
            [{ columns: { time: [1] } }, /no measurement name/],
        ];
        for (const [payload, reason] of cases) {
            const response = await post(url, packr.pack(payload));
            expect(response.status).toBe(400);
            expect((response.json as { error: string }).error).toMatch(reason);
        }
        expect((await post(url, Buffer.from([0xc1]))).status).toBe(400);
        expect(await walEntries(t!.dataDir)).toEqual([]);
    });

    it("takes writes from the official @influxdata/influxdb-client with its default options", async () => {
        await start();
        const client = new InfluxDB({ url: t!.url, token: "unused" });
        const writeApi = client.getWriteApi("my-org", "client-db");
        writeApi.useDefaultTags({ region: "eu" });
        for (let i = 0; i < 10; i++)
            writeApi.writePoint(
                new Point("cpu")
                    .tag("host", `h${i % 3}`)
                    .floatField("usage", i / 2)
                    .intField("n", i)
                    .timestamp(new Date(1_700_000_000_000 + i)),
            );
        await writeApi.close();
        expect(rows("client-db", "cpu")).toBe(10);
        const batch = joinBatches(t!.server.context.buffers.get("client-db", "cpu")!.drain().segments);
        expect(batch.tags.slice().sort()).toEqual(["host", "region"]);
        expect(valueAt(batch.columns.get("time")!, 9)).toBe(1_700_000_000_009_000_000n);
    });
});

/**
 * What a refused request leaves behind: nothing (issue 10 items 7-9). A request answered 4xx or
 * 5xx fixes no field type; racing requests that declare a field differently cannot both be
 * accepted; a line whose two fields would share a column is rejected, never half stored; a
 * request that could never fit the buffer budget gets 413, not an endless 503.
 */
import { afterEach, describe, expect, it } from "vitest";
import { BUFFER_OVERHEAD_BYTES } from "../ingest/buffer/costs.js";
import { SchemaConflictError, SchemaRegistry } from "../ingest/schema.js";
import { cpuBatch } from "./helpers/batches.js";
import { FaultyFileSystem } from "./helpers/faulty-fs.js";
import { type TestServer, startTestServer } from "./helpers/server.js";

const float = (measurement: string) => ({ ...cpuBatch(1, 0, measurement) });

describe("schema reservations", () => {
    it("lets only one of two requests declaring a field differently in, until the first is refused", () => {
        const schema = new SchemaRegistry();
        const asFloat = cpuBatch(1, 0, "m");
        const asInt = {
            ...asFloat,
            columns: new Map([...asFloat.columns].map(([name, column]) => [name, name === "usage" ? { type: "i" as const, values: BigInt64Array.of(1n) } : column])),
        };
        const first = schema.reserve("db", [asFloat]);
        expect(schema.fieldType("db", "m", "usage")).toBe("f");
        expect(() => schema.reserve("db", [asInt])).toThrow(SchemaConflictError);
        first.release();
        expect(schema.fieldType("db", "m", "usage")).toBeUndefined();
        const second = schema.reserve("db", [asInt]);
        second.commit();
        expect(schema.fieldType("db", "m", "usage")).toBe("i");
        expect(() => schema.reserve("db", [float("m")])).toThrow(SchemaConflictError);
    });
});

describe("refused writes over HTTP", () => {
    let t: TestServer | undefined;
    afterEach(async () => {
        await t?.stop();
        t = undefined;
    });

    const post = (path: string, body: string) => fetch(`${t!.url}${path}`, { method: "POST", body });

    it("a request refused whole (accept_partial=false) or answered 503 fixes no field type", async () => {
        const fs = new FaultyFileSystem();
        t = await startTestServer("node", {}, { fileSystem: fs });
        const refused = await post("/api/v3/write_lp?db=db&accept_partial=false", "m f=1.5 1\nm g=bad 2");
        expect(refused.status).toBe(400);
        fs.failNext("writev", "EIO", 1, /\.wal$/);
        expect((await post("/write?db=db", "m h=2.5 3")).status).toBe(503);
        // Both fields are still free to take another type.
        expect((await post("/write?db=db", "m f=1i,h=true 4")).status).toBe(204);
        expect((await post("/api/v1/flush", "")).status).toBe(200);
        expect(t.server.context.schema.fieldType("db", "m", "f")).toBe("i");
        expect(t.server.context.schema.fieldType("db", "m", "h")).toBe("b");
    });

    it("rejects a line whose field named like a tag and whose `<name>_field` would share a column, storing nothing of it", async () => {
        t = await startTestServer("node");
        const response = await post("/api/v2/write?bucket=db", "m,host=a host=1,host_field=2 1\nm,host=b host=3 2");
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({
            code: "invalid",
            line: 1,
            message: expect.stringContaining(
                'fields "host" (stored as "host_field", as "host" is a tag of measurement "m") and "host_field" would be stored in the same column "host_field"',
            ),
        });
        expect((await post("/api/v1/flush", "")).status).toBe(200);
        const rows = await readParquetRows(t.dataDir);
        expect(rows).toEqual([{ host: "b", host_field: 3 }]);
    });

    it("answers 413 to a request that could never fit ingest.max_buffered_bytes, and 503 only to one that could", async () => {
        t = await startTestServer("node", { "ingest.max_buffered_bytes": 1024 * 1024 });
        const huge = Array.from({ length: 12_000 }, (_, i) => `m,host=h${i} f=${i},s="${"x".repeat(40)}" ${i}`).join("\n");
        expect(Buffer.byteLength(huge)).toBeLessThan(1024 * 1024);
        const response = await post("/api/v2/write?bucket=db", huge);
        expect(response.status).toBe(413);
        expect(await response.json()).toMatchObject({ code: "request too large", message: expect.stringContaining("ingest.max_buffered_bytes") });
        expect(t.server.context.buffers.rows).toBe(0);
        expect((await post("/api/v2/write?bucket=db", huge.split("\n").slice(0, 100).join("\n"))).status).toBe(204);
    });

    it("counts what each measurement costs: 2,000 one-row measurements (120 KB of lines) do not fit 1 MiB", async () => {
        t = await startTestServer("node", { "ingest.max_buffered_bytes": 1024 * 1024 });
        const lines = Array.from({ length: 2000 }, (_, i) => `m${i},host=h f=${i} ${i}`);
        expect(Buffer.byteLength(lines.join("\n"))).toBeLessThan(128 * 1024);
        const response = await post("/api/v2/write?bucket=db", lines.join("\n"));
        expect(response.status).toBe(413);
        expect(t.server.context.buffers.rows).toBe(0);
        // A tenth of them fits, and is counted at least at that cost while buffered (packed: a buffer's overhead and its array).
        expect((await post("/api/v2/write?bucket=db", lines.slice(0, 200).join("\n"))).status).toBe(204);
        expect(t.server.context.buffers.bytes).toBeGreaterThanOrEqual(200 * (BUFFER_OVERHEAD_BYTES.packed + 64));
    });
});

async function readParquetRows(dataDir: string): Promise<Record<string, unknown>[]> {
    const { DuckDBInstance } = await import("@duckdb/node-api");
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
        return (await connection.runAndReadAll(`select host, host_field from read_parquet('${dataDir}/parquet/db/m/**/*.parquet', union_by_name=true)`)).getRowObjects();
    } finally {
        connection.closeSync();
        instance.closeSync();
    }
}

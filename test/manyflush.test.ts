/**
 * Many small measurements in one flush (issue 13 item 4): thousands of one-row measurements are
 * encoded many per worker call, staged while the next group encodes, and committed in few
 * manifest records; every row must still land in Parquet exactly once, and a flush that fails
 * for some measurements must leave exactly those buffered.
 */
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { createEncoder } from "../flush/encoder.js";
import { type BatchEncoder, FLUSHER_TUNING } from "../flush/flusher.js";
import { manifestPathOf } from "../flush/layout.js";
import { readLog } from "../flush/manifest/log.js";
import type { ChangeRecord } from "../flush/manifest/records.js";
import { EncodeInputError } from "../flush/encode/errors.js";
import { Buffers } from "../ingest/buffer/buffers.js";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { cpuBatch } from "./helpers/batches.js";
import { parquetFiles, readParquet } from "./helpers/parquet.js";
import { startTestServer } from "./helpers/server.js";
import { useFlushFixture } from "./helpers/flush-fixture.js";

const T0 = 1_767_268_800_000_000_000n; // 2026-01-01T12:00:00Z

function name(i: number): string {
    return `m${String(i).padStart(5, "0")}`;
}

/** The change records of a data directory's manifest. */
async function changeRecords(dataDir: string): Promise<ChangeRecord[]> {
    const { records, damagedAt } = await readLog(nodeFileSystem, manifestPathOf(dataDir));
    expect(damagedAt).toBeUndefined();
    return records.filter((record): record is ChangeRecord => record.type === "change");
}

describe("many one-row measurements through the server", () => {
    it("flushes 3,000 of them in few manifest records, every row in Parquet exactly once", async () => {
        const MEASUREMENTS = 3000;
        const t = await startTestServer("node", { "flush.max_age_ms": 3_600_000, "compaction.enabled": false });
        try {
            // Every measurement gets one row; every third gets a second one in a later request.
            const first = Array.from({ length: MEASUREMENTS }, (_, i) => `${name(i)},writer=w seq=${i}i,v=${i} ${T0 + BigInt(i)}`);
            const second = Array.from({ length: MEASUREMENTS / 3 }, (_, k) => `${name(3 * k)},writer=w seq=${MEASUREMENTS + k}i,v=-1 ${T0 + 1_000_000_000n + BigInt(k)}`);
            for (const lines of [first, second]) {
                const response = await fetch(`${t.url}/write?db=many`, { method: "POST", body: lines.join("\n") });
                expect(response.status).toBe(204);
            }
            const response = await fetch(`${t.url}/api/v1/flush`, { method: "POST" });
            expect(response.status).toBe(200);
            const { files } = (await response.json()) as { files: { measurement: string; path: string; rows: number }[] };
            expect(files).toHaveLength(MEASUREMENTS);
            expect(files.reduce((sum, file) => sum + file.rows, 0)).toBe(MEASUREMENTS + MEASUREMENTS / 3);

            const { points, duplicateKeys } = await readParquet(t.dataDir);
            expect(duplicateKeys).toEqual([]);
            expect(points).toHaveLength(MEASUREMENTS + MEASUREMENTS / 3);
            const bySeq = new Map(points.map((point) => [Number(point.seq), point]));
            for (let i = 0; i < MEASUREMENTS; i++) expect(bySeq.get(i)).toMatchObject({ database: "many", measurement: name(i), writer: "w", v: i, timeNs: T0 + BigInt(i) });
            for (let k = 0; k < MEASUREMENTS / 3; k++) expect(bySeq.get(MEASUREMENTS + k)).toMatchObject({ measurement: name(3 * k), v: -1 });

            // The manifest: few records, each measurement flushed once, each file on disk added once.
            const changes = await changeRecords(t.dataDir);
            expect(changes.length).toBeLessThanOrEqual(Math.ceil(MEASUREMENTS / FLUSHER_TUNING.maxBatchMeasurements));
            const flushed = changes.flatMap((change) => change.flushed.map((range) => range.measurement));
            expect(flushed.sort()).toEqual(Array.from({ length: MEASUREMENTS }, (_, i) => name(i)));
            const added = changes.flatMap((change) =>
                change.adds.flatMap(({ partition, files: staged }) =>
                    staged.map((file) => join(partition.database, partition.measurement, `date=${partition.date}`, `hour=${partition.hour}`, file.name)),
                ),
            );
            expect(added.sort()).toEqual((await parquetFiles(t.dataDir)).map((file) => file.path));
            expect(new Set(added).size).toBe(MEASUREMENTS);

            // Nothing is left to flush, and nothing is flushed twice.
            const again = await fetch(`${t.url}/api/v1/flush`, { method: "POST" });
            expect(((await again.json()) as { files: unknown[] }).files).toEqual([]);
            expect(await changeRecords(t.dataDir)).toHaveLength(changes.length);
        } finally {
            await t.stop();
        }
    }, 120_000);
});

describe("many one-row measurements through the flusher", () => {
    const fixture = useFlushFixture();

    it("keeps exactly the measurements whose encoding failed buffered, across many pipelined batches, and commits them later once", async () => {
        const MEASUREMENTS = 600;
        const buffers = new Buffers({ maxBytes: 64 * 1024 * 1024 });
        await fixture.writer.appendAll(
            Array.from({ length: MEASUREMENTS }, (_, i) => ({ database: "db", batch: cpuBatch(1, i, name(i)) })),
            {
                onDurable: (results) => {
                    results.forEach((result, i) => {
                        buffers.append("db", cpuBatch(1, i, name(i)), result.sequence);
                    });
                },
            },
        );
        const real = createEncoder();
        let failing = true;
        const refused = (measurement: string) => failing && Number(measurement.slice(1)) % 7 === 0;
        let manyCalls = 0;
        const encoder: BatchEncoder = {
            encode: (input) => (refused(input.segments[0]!.measurement) ? Promise.reject(new EncodeInputError("refused alone")) : real.encode(input)),
            encodeMany: async (inputs) => {
                manyCalls++;
                const outcomes = await real.encodeMany(inputs);
                return outcomes.map((outcome, i) => (refused(inputs[i]!.segments[0]!.measurement) ? { error: new EncodeInputError("refused in a group") } : outcome));
            },
        };
        // Many commits of 40 measurements each, so staging overlaps the fixture.commit before it.
        const flusher = fixture.flusherOf(buffers, encoder, { maxBatchMeasurements: 40, retryBaseMs: 1 });
        try {
            const failed = Array.from({ length: MEASUREMENTS }, (_, i) => i).filter((i) => i % 7 === 0);
            await expect(flusher.flushAll()).rejects.toThrow(/refused in a group/);
            expect(manyCalls).toBeGreaterThan(0);
            expect(buffers.nonEmpty().map((buffer) => buffer.measurement)).toEqual(failed.map(name));
            for (const i of failed) expect(buffers.get("db", name(i))!.rows).toBe(1);
            expect(flusher.lowWaterMark(fixture.writer.nextSequence)).toBe(0);
            expect(flusher.stats).toMatchObject({ flushes: MEASUREMENTS - failed.length, failures: failed.length });
            for (let i = 0; i < MEASUREMENTS; i++) expect(fixture.commit.flushedThrough("db", name(i))).toBe(i % 7 === 0 ? -1 : i);

            failing = false;
            const files = await flusher.flushAll();
            expect(files).toHaveLength(failed.length);
            expect(buffers.nonEmpty()).toEqual([]);
            expect(flusher.lowWaterMark(fixture.writer.nextSequence)).toBe(fixture.writer.nextSequence);
            for (let i = 0; i < MEASUREMENTS; i++) expect(fixture.commit.flushedThrough("db", name(i))).toBe(i);

            const instance = await DuckDBInstance.create(":memory:");
            const connection = await instance.connect();
            try {
                const rows = (
                    await connection.runAndReadAll(
                        `SELECT count(*)::INT AS n, count(DISTINCT filename)::INT AS files, count(DISTINCT epoch_ns(time))::INT AS times FROM read_parquet('${join(fixture.data, "parquet")}/**/*.parquet', union_by_name = true, filename = true)`,
                    )
                ).getRowObjects();
                expect(rows).toEqual([{ n: MEASUREMENTS, files: MEASUREMENTS, times: MEASUREMENTS }]);
            } finally {
                connection.closeSync();
            }
        } finally {
            await flusher.close();
            await real.close();
        }
    });
});

/**
 * The ingest buffers' segments (ingest/buffer) and the flush's parts: rows stay in order, late
 * columns are null before they appear, sealed segments go to the encode worker without a copy,
 * and a large drain is cut into near-equal parts of at most flush.max_rows.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { splitIntoParts } from "../flush/flusher.js";
import { transferableSegments } from "../flush/worker/transfer.js";
import { BUFFER_OVERHEAD_BYTES, allocated } from "../ingest/buffer/costs.js";
import { SEGMENT_ROWS, MeasurementBuffer } from "../ingest/buffer/measurement-buffer.js";
import type { StagedRows } from "../ingest/buffer/staged-rows.js";
import { Buffers } from "../ingest/buffer/buffers.js";
import { PACKED_MAX_BATCHES, PACKED_MAX_ROWS, packedBytes } from "../ingest/buffer/packed-rows.js";
import { joinBatches } from "../src/columnar/batch-builder.js";
import { type Column, type ColumnType, type ColumnarBatch, bitIsSet, valueAt } from "../src/columnar/batch.js";
import { type Row, type Value, cpuBatch, makeBatch } from "./helpers/batches.js";

function times(batch: ColumnarBatch): bigint[] {
    const time = batch.columns.get("time")!;
    return Array.from({ length: batch.rows }, (_, i) => valueAt(time, i) as bigint);
}

function arraysOf(column: Column): ArrayBufferView[] {
    const arrays: ArrayBufferView[] = [column.type === "s" ? column.codes : column.values];
    if (column.type !== "t" && column.valid !== undefined) arrays.push(column.valid);
    return arrays;
}

/** A cpu batch with one more float field, `temp`, present on every row. */
function withTemp(rows: number, offset: number): ColumnarBatch {
    const batch = cpuBatch(rows, offset);
    const columns = new Map(batch.columns);
    columns.set("temp", { type: "f", values: Float64Array.from({ length: rows }, (_, i) => offset + i) });
    return { ...batch, columns };
}

describe("measurement buffer segments", () => {
    it("keeps rows in order in segments of SEGMENT_ROWS whose arrays are exactly their memory", () => {
        const buffer = new MeasurementBuffer("db", "cpu");
        const appended: ColumnarBatch[] = [];
        for (let i = 0; i < 7; i++) {
            const batch = cpuBatch(10_003, i * 10_003);
            appended.push(batch);
            buffer.append(batch, i, 1_000 + i);
        }
        expect(buffer.rows).toBe(70_021);
        const drained = buffer.drain();
        expect(drained).toMatchObject({ database: "db", measurement: "cpu", rows: 70_021, minSequence: 0, maxSequence: 6, oldestAppendMs: 1_000 });
        expect(drained.segments.map((segment) => segment.rows)).toEqual([SEGMENT_ROWS, 70_021 - SEGMENT_ROWS]);
        expect(times(joinBatches(drained.segments))).toEqual(appended.flatMap(times));
        for (const column of drained.segments[0]!.columns.values()) {
            for (const array of arraysOf(column)) expect([array.byteOffset, array.byteLength]).toEqual([0, array.buffer.byteLength]);
        }
        expect(buffer.rows).toBe(0);
        expect(buffer.bytes).toBe(0);
    });

    it("hands sealed segments to the worker as they are and copies only the open one's views", () => {
        const buffer = new MeasurementBuffer("db", "cpu");
        buffer.append(cpuBatch(SEGMENT_ROWS + 100), 1, 0);
        const { segments } = buffer.drain();
        const { segments: posted, transfer } = transferableSegments(segments);
        const sealedTime = segments[0]!.columns.get("time")!;
        const openTime = segments[1]!.columns.get("time")!;
        expect(posted[0]!.columns.get("time")).toEqual(sealedTime);
        expect((posted[0]!.columns.get("time") as { values: BigInt64Array }).values).toBe((sealedTime as { values: BigInt64Array }).values);
        const postedOpen = (posted[1]!.columns.get("time") as { values: BigInt64Array }).values;
        expect(postedOpen).not.toBe((openTime as { values: BigInt64Array }).values);
        expect(postedOpen.buffer.byteLength).toBe(100 * 8);
        expect(new Set(transfer).size).toBe(transfer.length);
    });

    it("gives a column that first appears in a later segment nulls before it, in every segment", () => {
        const buffer = new MeasurementBuffer("db", "cpu");
        buffer.append(cpuBatch(SEGMENT_ROWS + 10), 1, 0);
        buffer.append(withTemp(5, SEGMENT_ROWS + 10), 2, 0);
        const { segments } = buffer.drain();
        expect(segments[0]!.columns.has("temp")).toBe(false);
        const joined = joinBatches(segments);
        const temp = joined.columns.get("temp")!;
        expect(temp.type).toBe("f");
        const valid = (temp as { valid: Uint8Array }).valid;
        expect(Array.from({ length: joined.rows }, (_, i) => bitIsSet(valid, i)).filter(Boolean)).toHaveLength(5);
        expect(bitIsSet(valid, SEGMENT_ROWS + 9)).toBe(false);
        expect(valueAt(temp, SEGMENT_ROWS + 14)).toBe(SEGMENT_ROWS + 14);
    });

    it("puts restored rows back in front of the rows held now", () => {
        const buffer = new MeasurementBuffer("db", "cpu");
        buffer.append(cpuBatch(3, 0), 1, 10);
        const drained = buffer.drain();
        buffer.append(cpuBatch(2, 3), 2, 20);
        buffer.restore(
            drained.segments.map((batch) => ({ sequence: 1, batch })),
            drained.oldestAppendMs,
        );
        const again = buffer.drain();
        expect(again).toMatchObject({ rows: 5, minSequence: 1, maxSequence: 2, oldestAppendMs: 10 });
        expect(times(joinBatches(again.segments))).toEqual([...times(cpuBatch(3, 0)), ...times(cpuBatch(2, 3))]);
    });

    it("refuses a batch that would change a held column's type, in any segment", () => {
        const buffer = new MeasurementBuffer("db", "cpu");
        buffer.append(cpuBatch(SEGMENT_ROWS), 1, 0);
        const retyped = cpuBatch(1);
        const columns = new Map(retyped.columns);
        columns.set("usage", { type: "i", values: BigInt64Array.of(1n) });
        expect(buffer.accepts({ ...retyped, columns })).toBe(false);
        expect(buffer.accepts(cpuBatch(1))).toBe(true);
    });
});

describe("flush parts", () => {
    it("cuts a drain into the fewest near-equal parts of at most max rows, rows in order", () => {
        const buffer = new MeasurementBuffer("db", "cpu");
        buffer.append(cpuBatch(2 * SEGMENT_ROWS + 10_000), 1, 0);
        const drained = buffer.drain();
        const parts = splitIntoParts(drained.segments, drained.rows, 50_000);
        const rows = parts.map((part) => part.reduce((sum, segment) => sum + segment.rows, 0));
        expect(rows).toEqual([47_024, 47_024, 47_024]);
        expect(parts.flatMap((part) => times(joinBatches(part)))).toEqual(times(cpuBatch(2 * SEGMENT_ROWS + 10_000)));
        expect(splitIntoParts(drained.segments, drained.rows, 1_000_000)).toEqual([drained.segments]);
    });
});

/** Every row of the batches, in order, as `{ column: value }` (absent columns and nulls alike omitted). */
function rowsOf(batches: readonly ColumnarBatch[]): Record<string, unknown>[] {
    return batches.flatMap((batch) =>
        Array.from({ length: batch.rows }, (_, i) => {
            const row: Record<string, unknown> = {};
            for (const [name, column] of batch.columns) {
                const value = valueAt(column, i);
                if (value !== null) row[name] = value;
            }
            return row;
        }),
    );
}

const COLUMN_POOL: Readonly<Record<string, ColumnType>> = { host: "s", region: "s", f: "f", i: "i", u: "u", b: "b", s: "s" };
const VALUE_OF: { readonly [K in ColumnType]: fc.Arbitrary<Value> } = {
    t: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    f: fc.double(),
    i: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    u: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    b: fc.boolean(),
    s: fc.string({ unit: "binary", maxLength: 12 }),
};

/** A batch of up to `maxRows` rows of some of the pool's columns (tags: host and region), nulls anywhere but `time`. */
const poolBatch = (maxRows: number) =>
    fc.record({ columns: fc.subarray(Object.keys(COLUMN_POOL)), rows: fc.integer({ min: 1, max: maxRows }) }).chain(({ columns, rows }) =>
        fc
            .array(fc.record(Object.fromEntries([["time", VALUE_OF.t], ...columns.map((name) => [name, fc.option(VALUE_OF[COLUMN_POOL[name]!], { nil: null })])])), {
                minLength: rows,
                maxLength: rows,
            })
            .map((data) =>
                makeBatch(
                    "m",
                    columns.filter((name) => name === "host" || name === "region"),
                    Object.fromEntries(columns.map((name) => [name, COLUMN_POOL[name]!])),
                    data as Row[],
                ),
            ),
    );

const smallBatch = poolBatch(40);

describe("packed rows of small measurements", () => {
    it("drain every row appended, in order, with its values, types and tags, packed or not (property)", { timeout: 60_000 }, () => {
        fc.assert(
            fc.property(fc.array(smallBatch, { minLength: 1, maxLength: 8 }), (batches) => {
                const buffer = new MeasurementBuffer("db", "m");
                batches.forEach((batch, i) => {
                    buffer.append(batch, i, 1_000);
                });
                const drained = buffer.drain();
                expect(drained.rows).toBe(batches.reduce((sum, batch) => sum + batch.rows, 0));
                expect([drained.minSequence, drained.maxSequence]).toEqual([0, batches.length - 1]);
                expect(rowsOf(drained.segments)).toEqual(rowsOf(batches));
                const joined = joinBatches(drained.segments);
                for (const batch of batches) for (const [name, column] of batch.columns) expect(joined.columns.get(name)?.type).toBe(column.type);
                expect(new Set(joined.tags)).toEqual(new Set(batches.flatMap((batch) => batch.tags)));
                expect(buffer.rows).toBe(0);
            }),
            { numRuns: 300 },
        );
    });

    it("estimates at least what an append to a new or packed buffer adds, also when it moves the packed rows into segments (property)", { timeout: 60_000 }, () => {
        fc.assert(
            fc.property(fc.array(poolBatch(100), { minLength: 1, maxLength: 10 }), (batches) => {
                const buffers = new Buffers({ maxBytes: 2 ** 40 });
                let rows = 0;
                for (const [i, batch] of batches.entries()) {
                    const estimate = buffers.estimate("db", batch);
                    const before = buffers.bytes;
                    buffers.append("db", batch, i);
                    expect(buffers.bytes - before).toBeLessThanOrEqual(estimate);
                    rows += batch.rows;
                    // Appends to segments may double an open segment's arrays: counted once they happen, not estimated.
                    if (rows > PACKED_MAX_ROWS) break;
                }
            }),
            { numRuns: 300 },
        );
    });

    it("estimates the move of other staged rows into segments when rows of another writer are staged", () => {
        const buffer = new MeasurementBuffer("db", "m");
        buffer.append(
            makeBatch(
                "m",
                ["host"],
                { host: "s", f: "f" },
                Array.from({ length: 64 }, (_, i) => ({ time: BigInt(i), host: `h-${i}-é`, f: i })),
            ),
            0,
            1_000,
        );
        const other: StagedRows = { rows: 0, bytes: 0, columns: 0, segmentBytes: () => 0, columnType: () => undefined, take: () => cpuBatch(0) };
        const growth = buffer.stageGrowth(other);
        expect(growth).toBeGreaterThan(0);
        const before = buffer.bytes;
        buffer.stage(other, 0, 1, 1_001);
        expect(buffer.bytes - before).toBeLessThanOrEqual(growth);
        expect(buffer.stageGrowth(other)).toBe(0);
    });

    it("counts a packed buffer at its array plus BUFFER_OVERHEAD_BYTES.packed, and a larger one as segments", () => {
        const buffer = new MeasurementBuffer("db", "cpu");
        buffer.append(cpuBatch(1), 0, 1_000);
        const batch = cpuBatch(1);
        expect(buffer.bytes).toBe(allocated(packedBytes(batch)) + BUFFER_OVERHEAD_BYTES.packed);
        expect(buffer.bytes).toBeLessThan(BUFFER_OVERHEAD_BYTES.measurement);
        buffer.append(cpuBatch(PACKED_MAX_ROWS, 1), 1, 1_001);
        const columns = batch.columns.size;
        expect(buffer.bytes).toBeGreaterThan(BUFFER_OVERHEAD_BYTES.measurement + columns * BUFFER_OVERHEAD_BYTES.column);
        expect(times(joinBatches(buffer.drain().segments))).toEqual(Array.from({ length: PACKED_MAX_ROWS + 1 }, (_, i) => times(cpuBatch(PACKED_MAX_ROWS + 1))[i]));
    });

    it("packs at most PACKED_MAX_BATCHES batches: the next one moves the rows into segments", () => {
        const buffer = new MeasurementBuffer("db", "cpu");
        for (let i = 0; i < PACKED_MAX_BATCHES; i++) buffer.append(cpuBatch(1, i), i, 1_000);
        expect(buffer.bytes).toBeLessThan(BUFFER_OVERHEAD_BYTES.measurement);
        buffer.append(cpuBatch(1, PACKED_MAX_BATCHES), PACKED_MAX_BATCHES, 1_000);
        expect(buffer.bytes).toBeGreaterThan(BUFFER_OVERHEAD_BYTES.measurement);
        expect(times(joinBatches(buffer.drain().segments))).toEqual(times(cpuBatch(PACKED_MAX_BATCHES + 1)));
    });

    it("takes nothing from an append of no rows: no packed rows, no sequence held", () => {
        const buffer = new MeasurementBuffer("db", "m");
        buffer.append(cpuBatch(0), 7, 1_000);
        expect([buffer.rows, buffer.bytes, buffer.minSequence, buffer.oldestAppendMs]).toEqual([0, 0, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
        buffer.append(cpuBatch(1), 8, 1_001);
        expect(buffer.drain()).toMatchObject({ rows: 1, minSequence: 8, maxSequence: 8 });
    });

    it("refuses a batch that would change the type of a packed column", () => {
        const buffer = new MeasurementBuffer("db", "m");
        buffer.append(makeBatch("m", [], { f: "f" }, [{ time: 1n, f: 1.5 }]), 0, 1_000);
        expect(buffer.accepts(makeBatch("m", [], { f: "i" }, [{ time: 2n, f: 2n }]))).toBe(false);
        expect(buffer.accepts(makeBatch("m", [], { f: "f", g: "i" }, [{ time: 2n, f: 2, g: 1n }]))).toBe(true);
    });
});

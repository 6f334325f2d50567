/**
 * The ingest buffers' segments (ingest/buffer) and the flush's parts: rows stay in order, late
 * columns are null before they appear, sealed segments go to the encode worker without a copy,
 * and a large drain is cut into near-equal parts of at most flush.max_rows.
 */
import { describe, expect, it } from "vitest";
import { splitIntoParts } from "../flush/flusher.js";
import { transferableSegments } from "../flush/worker/transfer.js";
import { SEGMENT_ROWS, MeasurementBuffer } from "../ingest/buffer/measurement-buffer.js";
import { joinBatches } from "../src/columnar/batch-builder.js";
import { type Column, type ColumnarBatch, bitIsSet, valueAt } from "../src/columnar/batch.js";
import { cpuBatch } from "./helpers/batches.js";

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

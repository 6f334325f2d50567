/**
 * The rows of one (database, measurement) waiting for a flush, with the WAL sequences they came
 * from. Rows go into segments of at most SEGMENT_ROWS rows; a full segment is sealed and never
 * copied again: a flush hands the segments' arrays to the encode worker as they are (each
 * sealed segment's arrays cover their memory exactly, so they are transferred, not copied), and
 * the buffer never holds one huge array that must double. A buffer's first few rows are packed
 * instead (packed-rows.ts): most of many measurements never hold more than a few.
 */
import type { DrainableBuffer, DrainedRows } from "../../flush/source.js";
import { BatchBuilder } from "../../src/columnar/batch-builder.js";
import type { ColumnType, ColumnarBatch } from "../../src/columnar/batch.js";
import { sliceBatch } from "../../src/columnar/slice.js";
import type { SequencedBatch } from "../../src/wal/index.js";
import { BUFFER_OVERHEAD_BYTES, allocated, segmentBytes } from "./costs.js";
import { PackedRows, packedCost, startsPacked } from "./packed-rows.js";
import type { StagedRows } from "./staged-rows.js";

/** Rows per segment: a power of two, so a filled segment's arrays are exactly their memory. */
export const SEGMENT_ROWS = 65_536;

export class MeasurementBuffer implements DrainableBuffer {
    #sealed: ColumnarBatch[] = [];
    #sealedBytes = 0;
    /** The open segment (made at the first row stored in segments). */
    #current: BatchBuilder | undefined;
    /** Every column held, in any segment, and its type (made with the first segment row). */
    #types: Map<string, ColumnType> | undefined;
    #rows = 0;
    #minSequence = Number.POSITIVE_INFINITY;
    #maxSequence = -1;
    #oldestAppendMs = Number.POSITIVE_INFINITY;
    /** Rows staged after every row in the segments (counted in #rows and the sequences). */
    #staged: StagedRows | undefined;

    constructor(
        readonly database: string,
        readonly measurement: string,
    ) {}

    get rows(): number {
        return this.#rows;
    }

    /** The lowest WAL sequence still held (Infinity when empty). */
    get minSequence(): number {
        return this.#minSequence;
    }

    /** When the oldest row still held was appended (Infinity when empty). */
    get oldestAppendMs(): number {
        return this.#oldestAppendMs;
    }

    /** Bytes the rows held take: their arrays (the open segment's spare capacity included) and the buffer's overhead (none when empty). */
    get bytes(): number {
        if (this.#rows === 0) return 0;
        const staged = this.#staged?.bytes ?? 0;
        if (this.#types === undefined) return staged + (this.#staged instanceof PackedRows ? BUFFER_OVERHEAD_BYTES.packed : BUFFER_OVERHEAD_BYTES.measurement);
        return this.#sealedBytes + (this.#current?.bytes ?? 0) + staged + BUFFER_OVERHEAD_BYTES.measurement + BUFFER_OVERHEAD_BYTES.column * this.#types.size;
    }

    /** Whether `batch` fits the columns held: no column changes type. */
    accepts(batch: ColumnarBatch): boolean {
        for (const [name, column] of batch.columns) {
            const held = this.#types?.get(name) ?? this.#staged?.columnType(name);
            if (held !== undefined && held !== column.type) return false;
        }
        return true;
    }

    /**
     * Bytes appending `batch` may add to `bytes`: its packed cost while it joins the packed rows,
     * else its cost in segments plus that of the staged rows it moves into segments.
     */
    growth(batch: ColumnarBatch): number {
        if (this.#joinsPacked(batch)) return this.#staged instanceof PackedRows ? this.#staged.growth(batch) : packedCost(batch);
        const staged = this.#staged;
        if (staged === undefined || staged.rows === 0) return segmentBytes(batch);
        // The staged rows and the batch share the open segment: each column's arrays (values and validity) may hold the rows of both.
        const shared = (staged.columns + batch.columns.size) * 2 * allocated(8 * (staged.rows + batch.rows));
        return segmentBytes(batch) + staged.segmentBytes() + shared;
    }

    /** Bytes staging rows into `staged` may add beyond their own: moving other staged rows into segments. */
    stageGrowth(staged: StagedRows | undefined): number {
        const held = this.#staged;
        return held === undefined || held === staged || held.rows === 0 ? 0 : held.segmentBytes();
    }

    append(batch: ColumnarBatch, sequence: number, nowMs: number): void {
        if (batch.rows === 0) return;
        const packed = this.#packedFor(batch);
        if (packed !== undefined) {
            packed.add(batch);
            this.#count(batch.rows, sequence, sequence, nowMs);
            return;
        }
        this.#settle();
        this.#append(batch, sequence, sequence, nowMs);
    }

    /** Whether `batch` joins packed rows: the buffer holds nothing but packed rows, and they stay within their limits. */
    #joinsPacked(batch: ColumnarBatch): boolean {
        if (this.#types !== undefined) return false;
        const staged = this.#staged;
        if (staged === undefined) return startsPacked(batch);
        return staged instanceof PackedRows && staged.fits(batch);
    }

    /** The packed rows `batch` joins (made for the buffer's first rows), if it joins them. */
    #packedFor(batch: ColumnarBatch): PackedRows | undefined {
        if (!this.#joinsPacked(batch)) return undefined;
        if (this.#staged instanceof PackedRows) return this.#staged;
        const packed = new PackedRows(this.measurement);
        this.#staged = packed;
        return packed;
    }

    /** Counts `rows` rows the writer just added to `staged` (WAL sequence `sequence`), and keeps it attached. */
    stage(staged: StagedRows, rows: number, sequence: number, nowMs: number): void {
        if (staged !== this.#staged) {
            this.#settle();
            this.#staged = staged;
        }
        this.#count(rows, sequence, sequence, nowMs);
    }

    /** Moves the staged rows into the segments. */
    #settle(): void {
        const staged = this.#staged;
        if (staged === undefined) return;
        this.#staged = undefined;
        if (staged.rows > 0) this.#store(staged.take());
    }

    /**
     * Puts rows read back from the WAL in front of the rows held now, as if they had never
     * left: used when a flush fails.
     */
    restore(restored: readonly SequencedBatch[], oldestAppendMs: number): void {
        const held = this.drain();
        for (const { batch, sequence } of restored) this.#append(batch, sequence, sequence, oldestAppendMs);
        for (const segment of held.segments) this.#append(segment, held.minSequence, held.maxSequence, held.oldestAppendMs);
    }

    #append(batch: ColumnarBatch, minSequence: number, maxSequence: number, appendMs: number): void {
        if (batch.rows === 0) return;
        this.#store(batch);
        this.#count(batch.rows, minSequence, maxSequence, appendMs);
    }

    #count(rows: number, minSequence: number, maxSequence: number, appendMs: number): void {
        this.#rows += rows;
        this.#minSequence = Math.min(this.#minSequence, minSequence);
        this.#maxSequence = Math.max(this.#maxSequence, maxSequence);
        this.#oldestAppendMs = Math.min(this.#oldestAppendMs, appendMs);
    }

    // Invariant kept: segments hold the rows in append order, every one but the open one full.
    #store(batch: ColumnarBatch): void {
        const types = (this.#types ??= new Map());
        for (const [name, column] of batch.columns) types.set(name, column.type);
        for (let start = 0; start < batch.rows;) {
            const current = (this.#current ??= new BatchBuilder(this.measurement));
            const end = Math.min(batch.rows, start + SEGMENT_ROWS - current.rows);
            current.append(sliceBatch(batch, start, end));
            start = end;
            if (current.rows === SEGMENT_ROWS) this.#seal(current);
        }
    }

    /** Closes the open segment (the next row opens another). */
    #seal(current: BatchBuilder): void {
        this.#sealedBytes += current.bytes;
        this.#sealed.push(current.take());
        this.#current = undefined;
    }

    /** Takes every row out, as its segments, and empties the buffer. */
    drain(): DrainedRows {
        const staged = this.#staged;
        if (this.#types === undefined && staged !== undefined) {
            // Only staged rows: they are the one segment, taken without a copy into a builder.
            this.#staged = undefined;
            if (staged.rows > 0) this.#sealed.push(staged.take());
        } else {
            this.#settle();
            if (this.#current !== undefined && this.#current.rows > 0) this.#seal(this.#current);
        }
        const drained: DrainedRows = {
            database: this.database,
            measurement: this.measurement,
            segments: this.#sealed,
            rows: this.#rows,
            minSequence: this.#minSequence,
            maxSequence: this.#maxSequence,
            oldestAppendMs: this.#oldestAppendMs,
        };
        this.#sealed = [];
        this.#sealedBytes = 0;
        this.#current = undefined;
        this.#types = undefined;
        this.#rows = 0;
        this.#minSequence = Number.POSITIVE_INFINITY;
        this.#maxSequence = -1;
        this.#oldestAppendMs = Number.POSITIVE_INFINITY;
        return drained;
    }
}

/**
 * Remote write's rows in a measurement's buffer, kept as (series, time, value) until the buffer
 * needs them as a batch (ingest/buffer/measurement-buffer.ts `StagedRows`: a flush, or a write
 * of another kind to the measurement). A request brings a few rows for each of hundreds of
 * metrics; as columnar batches each cost ~12 µs of per-column work to append (measured: a fifth
 * of a request's CPU), here a metric's rows are three array writes each and its series a slot
 * found through the series itself. The tag columns are built once, when the rows are taken.
 */
import type { Column, ColumnType, ColumnarBatch } from "../../src/columnar/batch.js";
import { TIME_COLUMN } from "../../src/columnar/batch.js";
import { BUFFER_OVERHEAD_BYTES } from "../buffer/costs.js";
import type { StagedRows } from "../buffer/staged-rows.js";
import { type GroupedRows, addTagColumns, tagLayout } from "./batches.js";
import { VALUE_FIELD } from "./schema.js";
import type { PromSeries } from "./series-cache.js";

const INITIAL_ROWS = 256;
const NO_ROWS = { slots: new Uint32Array(0), time: new Uint32Array(0), value: new Float64Array(0) } as const;
/** Bytes a staged row takes: its series slot, time and value. */
export const STAGED_ROW_BYTES = 20;
/** Bytes counted for a series in the slot table. */
export const STAGED_SERIES_BYTES = 16;

/** Staged rows of each buffer (a buffer belongs to one server: two servers in a process never share rows). */
const staged = new WeakMap<object, PromStagedRows>();

/** The staged rows of `buffer`, if it has had some. */
export function peekStagedRows(buffer: object): PromStagedRows | undefined {
    return staged.get(buffer);
}

/** The staged rows of `buffer` (made at its first use). */
export function stagedRowsOf(buffer: object, measurement: string): PromStagedRows {
    let rows = staged.get(buffer);
    if (rows === undefined) {
        rows = new PromStagedRows(measurement);
        staged.set(buffer, rows);
    }
    return rows;
}

export class PromStagedRows implements StagedRows {
    /** Slot → series. */
    #series: PromSeries[] = [];
    /** Tag names of the series held. */
    #tags = new Set<string>();
    /** Bumped when the rows are taken: slots handed out before no longer count. */
    #generation = 0;
    #rows = 0;
    /** Empty (no memory held) until the first append after a take. */
    #slots: Uint32Array = NO_ROWS.slots;
    /** Two 32-bit words a row, the memory of an int64 array. */
    #time: Uint32Array = NO_ROWS.time;
    #value: Float64Array = NO_ROWS.value;
    /** Per series of the request being appended, its slot. */
    #requestSlots = new Uint32Array(INITIAL_ROWS);
    #bytes = 0;

    constructor(readonly measurement: string) {
        this.#count();
    }

    get rows(): number {
        return this.#rows;
    }

    get bytes(): number {
        return this.#bytes;
    }

    #count(): void {
        this.#bytes = STAGED_ROW_BYTES * this.#value.length + STAGED_SERIES_BYTES * this.#series.length;
    }

    get columns(): number {
        return this.#tags.size + 2;
    }

    // Invariant kept: covers what the rows count once in segments (time, value and a code per tag a row, arrays at most doubled, each tag value a dictionary entry).
    segmentBytes(): number {
        let dictionary = 0;
        for (const series of this.#series) for (const text of series.tagTexts) dictionary += 2 * text.length + 64;
        return BUFFER_OVERHEAD_BYTES.measurement + this.columns * (BUFFER_OVERHEAD_BYTES.column + 64) + 2 * this.#rows * (16 + 4 * this.#tags.size) + dictionary;
    }

    columnType(name: string): ColumnType | undefined {
        if (name === TIME_COLUMN) return "t";
        if (name === VALUE_FIELD) return "f";
        return this.#tags.has(name) ? "s" : undefined;
    }

    // Invariant kept: staged rows keep the order they were appended in, each with its series' tags.
    /** Appends metric k's rows of a request; returns how many. */
    append(rows: GroupedRows, k: number): number {
        const start = rows.starts[k]!;
        const count = rows.starts[k + 1]! - start;
        if (this.#rows + count > this.#value.length) this.#grow(this.#rows + count);
        const series = rows.series[k]!;
        if (series.length > this.#requestSlots.length) this.#requestSlots = new Uint32Array(2 * series.length);
        const requestSlots = this.#requestSlots;
        for (let j = 0; j < series.length; j++) requestSlots[j] = this.#slotOf(series[j]!);
        const slots = this.#slots;
        const time = this.#time;
        const value = this.#value;
        const { local, time: rowTime, value: rowValue } = rows;
        let at = this.#rows;
        for (let row = start; row < start + count; row++, at++) {
            slots[at] = requestSlots[local[row]!]!;
            time[2 * at] = rowTime[2 * row]!;
            time[2 * at + 1] = rowTime[2 * row + 1]!;
            value[at] = rowValue[row]!;
        }
        this.#rows = at;
        this.#count();
        return count;
    }

    #slotOf(series: PromSeries): number {
        if (series.slotOwner === this && series.slotGeneration === this.#generation) return series.slot;
        const slot = this.#series.push(series) - 1;
        series.slotOwner = this;
        series.slotGeneration = this.#generation;
        series.slot = slot;
        for (const key of series.tagKeys) this.#tags.add(key);
        return slot;
    }

    #grow(needed: number): void {
        let capacity = Math.max(INITIAL_ROWS, this.#value.length * 2);
        while (capacity < needed) capacity *= 2;
        const slots = new Uint32Array(capacity);
        slots.set(this.#slots.subarray(0, this.#rows));
        const time = new Uint32Array(2 * capacity);
        time.set(this.#time.subarray(0, 2 * this.#rows));
        const value = new Float64Array(capacity);
        value.set(this.#value.subarray(0, this.#rows));
        this.#slots = slots;
        this.#time = time;
        this.#value = value;
    }

    take(): ColumnarBatch {
        const rows = this.#rows;
        const series = this.#series;
        const layout = tagLayout(series);
        const columns = new Map<string, Column>([[TIME_COLUMN, { type: "t", values: new BigInt64Array(this.#time.buffer, 0, rows).slice() }]]);
        addTagColumns(columns, series, layout, this.#slots.subarray(0, rows), new Uint32Array(rows * layout.keys.length));
        columns.set(VALUE_FIELD, { type: "f", values: this.#value.slice(0, rows) });
        const batch: ColumnarBatch = { measurement: this.measurement, rows, tags: layout.keys, columns };
        this.#series = [];
        this.#tags = new Set();
        this.#generation++;
        this.#rows = 0;
        this.#slots = NO_ROWS.slots;
        this.#time = NO_ROWS.time;
        this.#value = NO_ROWS.value;
        this.#count();
        return batch;
    }
}

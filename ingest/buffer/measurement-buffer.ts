/**
 * The rows of one (database, measurement) waiting for a flush: typed columns that grow by
 * whole batches, with the WAL sequences they came from.
 */
import { type Accumulator, accumulatorFor } from "../../src/columnar/accumulator.js";
import { type Column, type ColumnarBatch, TIME_COLUMN } from "../../src/columnar/batch.js";

/** What a flush takes out of a buffer. */
export interface DrainedBuffer {
    readonly database: string;
    readonly batch: ColumnarBatch;
    /** The lowest and highest WAL sequence whose rows are in `batch`. */
    readonly minSequence: number;
    readonly maxSequence: number;
    /** When the oldest of its rows was appended. */
    readonly oldestAppendMs: number;
}

export class MeasurementBuffer {
    #columns = new Map<string, Accumulator>();
    #tags = new Set<string>();
    #rows = 0;
    #minSequence = Number.POSITIVE_INFINITY;
    #maxSequence = -1;
    #oldestAppendMs = Number.POSITIVE_INFINITY;

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

    get bytes(): number {
        let bytes = 0;
        for (const column of this.#columns.values()) bytes += column.bytes;
        return bytes;
    }

    /** Whether `batch` fits the columns held: no column changes type. */
    accepts(batch: ColumnarBatch): boolean {
        for (const [name, column] of batch.columns) {
            const held = this.#columns.get(name);
            if (held !== undefined && held.type !== column.type) return false;
        }
        return true;
    }

    append(batch: ColumnarBatch, sequence: number, nowMs: number): void {
        this.#append(batch, sequence, sequence, nowMs);
    }

    /**
     * Puts rows taken out by `drain()` (or read back from the WAL) in front of the rows held now,
     * as if they had never left: used when a flush fails.
     */
    restore(restored: readonly DrainedBuffer[]): void {
        const held = this.drain();
        for (const item of restored) this.#append(item.batch, item.minSequence, item.maxSequence, item.oldestAppendMs);
        if (held.batch.rows > 0) this.#append(held.batch, held.minSequence, held.maxSequence, held.oldestAppendMs);
    }

    // Invariant kept: every column holds exactly `rows` rows; a column absent from a batch gets
    // nulls for its rows, a column new in a batch gets nulls for the rows before it.
    #append(batch: ColumnarBatch, minSequence: number, maxSequence: number, appendMs: number): void {
        if (batch.rows === 0) return;
        for (const [name, column] of batch.columns) {
            if (!this.#columns.has(name)) this.#columns.set(name, accumulatorFor(column.type, this.#rows));
        }
        for (const [name, accumulator] of this.#columns) accumulator.append(batch.columns.get(name), batch.rows);
        for (const tag of batch.tags) this.#tags.add(tag);
        this.#rows += batch.rows;
        this.#minSequence = Math.min(this.#minSequence, minSequence);
        this.#maxSequence = Math.max(this.#maxSequence, maxSequence);
        this.#oldestAppendMs = Math.min(this.#oldestAppendMs, appendMs);
    }

    /** Takes every row out as one batch (time first, then tags, then fields) and empties the buffer. */
    drain(): DrainedBuffer {
        const columns = new Map<string, Column>();
        const time = this.#columns.get(TIME_COLUMN);
        if (time !== undefined) columns.set(TIME_COLUMN, time.take());
        for (const tag of this.#tags) columns.set(tag, this.#columns.get(tag)!.take());
        for (const [name, accumulator] of this.#columns) if (!columns.has(name)) columns.set(name, accumulator.take());
        const drained: DrainedBuffer = {
            database: this.database,
            batch: { measurement: this.measurement, rows: this.#rows, tags: [...this.#tags], columns },
            minSequence: this.#minSequence,
            maxSequence: this.#maxSequence,
            oldestAppendMs: this.#oldestAppendMs,
        };
        this.#columns = new Map();
        this.#tags = new Set();
        this.#rows = 0;
        this.#minSequence = Number.POSITIVE_INFINITY;
        this.#maxSequence = -1;
        this.#oldestAppendMs = Number.POSITIVE_INFINITY;
        return drained;
    }
}

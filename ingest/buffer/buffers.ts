/**
 * Every (database, measurement) buffer, under one byte budget (DESIGN.md §3.5): a write is
 * admitted only while the buffered bytes plus what is in flight plus its own estimate fit.
 */
import type { BufferSource } from "../../flush/source.js";
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import { BeyondBudgetError, UnavailableError } from "../errors.js";
import { segmentBytes } from "./costs.js";
import { MeasurementBuffer } from "./measurement-buffer.js";
import { packedCost, startsPacked } from "./packed-rows.js";

/** Bytes a batch will take once buffered, as if its buffer were new: packed (at most PACKED_MAX_ROWS rows), or as segments. */
export function estimateBytes(batch: ColumnarBatch): number {
    return startsPacked(batch) ? packedCost(batch) : segmentBytes(batch);
}

export interface BuffersOptions {
    /** The budget: above it writes are refused with 503 + Retry-After. */
    readonly maxBytes: number;
    /** Seconds a refused client is told to wait. */
    readonly retryAfterSeconds?: number;
}

/** Bytes admitted for a write not yet in the buffers; released once it is (or when it fails). */
export interface Reservation {
    release(): void;
}

export class Buffers implements BufferSource {
    readonly #buffers = new Map<string, MeasurementBuffer>();
    readonly #maxBytes: number;
    readonly #retryAfterSeconds: number;
    #reserved = 0;
    /** Bytes held elsewhere that count against the budget (rows taken out by flushes under way). */
    #elsewhere: () => number = () => 0;

    constructor(options: BuffersOptions) {
        this.#maxBytes = options.maxBytes;
        this.#retryAfterSeconds = options.retryAfterSeconds ?? 1;
    }

    get maxBytes(): number {
        return this.#maxBytes;
    }

    /** Counts bytes held outside the buffers against the budget too. */
    countAlso(bytes: () => number): void {
        this.#elsewhere = bytes;
    }

    /** Whether buffered, reserved and elsewhere-held bytes are at or above the budget. */
    get full(): boolean {
        return this.bytes + this.#reserved + this.#elsewhere() >= this.#maxBytes;
    }

    /** Bytes held by the buffers (their allocated capacity). */
    get bytes(): number {
        let bytes = 0;
        for (const buffer of this.#buffers.values()) bytes += buffer.bytes;
        return bytes;
    }

    get rows(): number {
        let rows = 0;
        for (const buffer of this.#buffers.values()) rows += buffer.rows;
        return rows;
    }

    // Invariant kept: admitted bytes (buffered + reserved) never exceed the budget; a write that
    // could not fit even into empty buffers is refused for good (413), never told to retry (503).
    admit(bytes: number): Reservation {
        if (bytes > this.#maxBytes) throw new BeyondBudgetError(bytes, this.#maxBytes);
        const held = this.bytes + this.#reserved + this.#elsewhere();
        if (held + bytes > this.#maxBytes) {
            throw new UnavailableError(`buffers are full (${held} of ${this.#maxBytes} bytes in ingest.max_buffered_bytes): retry after the next flush`, this.#retryAfterSeconds);
        }
        this.#reserved += bytes;
        let released = false;
        return {
            release: () => {
                if (released) return;
                released = true;
                this.#reserved -= bytes;
            },
        };
    }

    #key(database: string, measurement: string): string {
        return `${database}\u0000${measurement}`;
    }

    get(database: string, measurement: string): MeasurementBuffer | undefined {
        return this.#buffers.get(this.#key(database, measurement));
    }

    /** Bytes appending `batch` to its buffer may add to the buffered bytes, from what the buffer holds now. */
    estimate(database: string, batch: ColumnarBatch): number {
        return this.get(database, batch.measurement)?.growth(batch) ?? estimateBytes(batch);
    }

    /** Whether appending `batch` would change the type of a buffered column. */
    accepts(database: string, batch: ColumnarBatch): boolean {
        return this.get(database, batch.measurement)?.accepts(batch) ?? true;
    }

    append(database: string, batch: ColumnarBatch, sequence: number, nowMs = Date.now()): void {
        this.open(database, batch.measurement).append(batch, sequence, nowMs);
    }

    /** The buffer of (database, measurement), made when there is none. */
    open(database: string, measurement: string): MeasurementBuffer {
        const key = this.#key(database, measurement);
        let buffer = this.#buffers.get(key);
        if (buffer === undefined) {
            buffer = new MeasurementBuffer(database, measurement);
            this.#buffers.set(key, buffer);
        }
        return buffer;
    }

    // Invariant kept: a buffer is dropped only while it holds no rows (a drained one's rows come back through `open`).
    /** The buffers holding rows; empty ones are dropped, so that every measurement ever written does not keep a buffer. */
    nonEmpty(): MeasurementBuffer[] {
        const held: MeasurementBuffer[] = [];
        for (const [key, buffer] of this.#buffers) {
            if (buffer.rows > 0) held.push(buffer);
            else this.#buffers.delete(key);
        }
        return held;
    }

    /** When the oldest row any buffer holds arrived (Infinity when all are empty): one look per buffer, for /metrics. */
    get oldestAppendMs(): number {
        let oldest = Number.POSITIVE_INFINITY;
        for (const buffer of this.#buffers.values()) oldest = Math.min(oldest, buffer.oldestAppendMs);
        return oldest;
    }

    /** The lowest WAL sequence any buffer holds (Infinity when all are empty). */
    lowestSequence(): number {
        let lowest = Number.POSITIVE_INFINITY;
        for (const buffer of this.#buffers.values()) lowest = Math.min(lowest, buffer.minSequence);
        return lowest;
    }
}

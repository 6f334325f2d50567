/**
 * The write path shared by every endpoint (DESIGN.md §1): reserve the request's columns in the
 * schema → admit against the buffer budget → append its WAL entries as one unit → once durable,
 * commit its columns and put its rows into the buffers in WAL order → acknowledge. A failure
 * before durability leaves nothing anywhere, not even a field's type.
 *
 * A request comes as a `WriteUnit`: its columnar batches (`write`), or a form of its own that
 * writes its WAL entries and buffers its rows more cheaply (remote write: ingest/prom/write-unit.ts).
 */
import type { ColumnarBatch } from "../src/columnar/batch.js";
import { sliceBatch } from "../src/columnar/slice.js";
import { type AppendResult, WalEntryTooLargeError, WalError, type WalWriter } from "../src/wal/index.js";
import type { Buffers, Reservation } from "./buffer/buffers.js";
import { segmentBytes } from "./buffer/costs.js";
import type { Clock } from "../src/clock.js";
import { BadRequestError, PayloadTooLargeError, UnavailableError } from "./errors.js";
import { SchemaError, type SchemaRegistry, type SchemaReservation } from "./schema.js";

/** A batch larger than this (estimated) goes to the WAL as several entries of the same unit. */
export const MAX_ENTRY_BYTES = 32 * 1024 * 1024;

/** What one request stores, as the write path needs it. */
export interface WriteUnit {
    /** Rows it stores (0: nothing to do). */
    readonly rows: number;
    /** Batches naming the columns it needs declared, by measurement (their rows are not read). */
    readonly declares: readonly ColumnarBatch[];
    /** Bytes its rows may add to the buffers, estimated from what they hold now. */
    bufferBytes(buffers: Buffers, database: string): number;
    /** A measurement whose buffered columns it would change the type of, if there is one. */
    conflict(buffers: Buffers, database: string): string | undefined;
    /** Appends its entries to the WAL as one unit (`onDurable` as in WalWriter.appendAll). */
    append(writer: WalWriter, database: string, onDurable: (results: readonly AppendResult[]) => void): Promise<unknown>;
    /** Puts its rows into the buffers once durable: its entry i has `results[i].sequence`. */
    buffer(buffers: Buffers, database: string, results: readonly AppendResult[], nowMs: number): void;
    /** Called once its declarations are committed. */
    declared(): void;
}

/** Slices of a batch, each estimated under MAX_ENTRY_BYTES (the WAL caps an entry at 100 MiB). */
function splitForWal(batch: ColumnarBatch): ColumnarBatch[] {
    const bytes = segmentBytes(batch);
    if (bytes <= MAX_ENTRY_BYTES) return [batch];
    const parts = Math.ceil(bytes / MAX_ENTRY_BYTES);
    const rowsPerPart = Math.ceil(batch.rows / parts);
    const slices: ColumnarBatch[] = [];
    for (let start = 0; start < batch.rows; start += rowsPerPart) slices.push(sliceBatch(batch, start, Math.min(batch.rows, start + rowsPerPart)));
    return slices;
}

/** A request as columnar batches: an entry per batch (or per slice of a large one). */
export class BatchesUnit implements WriteUnit {
    readonly #batches: ColumnarBatch[];
    readonly rows: number;

    constructor(batches: readonly ColumnarBatch[]) {
        this.#batches = batches.filter((batch) => batch.rows > 0).flatMap(splitForWal);
        this.rows = this.#batches.reduce((sum, batch) => sum + batch.rows, 0);
    }

    bufferBytes(buffers: Buffers, database: string): number {
        return this.#batches.reduce((sum, batch) => sum + buffers.estimate(database, batch), 0);
    }

    get declares(): readonly ColumnarBatch[] {
        return this.#batches;
    }

    conflict(buffers: Buffers, database: string): string | undefined {
        return this.#batches.find((batch) => !buffers.accepts(database, batch))?.measurement;
    }

    append(writer: WalWriter, database: string, onDurable: (results: readonly AppendResult[]) => void): Promise<unknown> {
        return writer.appendAll(
            this.#batches.map((batch) => ({ database, batch })),
            { onDurable },
        );
    }

    buffer(buffers: Buffers, database: string, results: readonly AppendResult[], nowMs: number): void {
        results.forEach((result, i) => {
            buffers.append(database, this.#batches[i]!, result.sequence, nowMs);
        });
    }

    declared(): void {}
}

export interface WriteOutcome {
    /** Rows now durable in the WAL and buffered. */
    readonly rows: number;
}

export class WritePath {
    constructor(
        readonly writer: WalWriter,
        readonly buffers: Buffers,
        readonly schema: SchemaRegistry,
        readonly clock: Clock,
        /** Called once a write's rows are buffered (the flush loop checks its triggers). */
        readonly afterWrite: () => void = () => undefined,
    ) {}

    /** `writeUnit` of the batches. */
    write(database: string, batches: readonly ColumnarBatch[]): Promise<WriteOutcome> {
        return this.writeUnit(database, new BatchesUnit(batches));
    }

    // Invariant kept: resolves only once every row is durable under the sync mode and buffered
    // (and its columns declared); rejects with nothing of the request stored anywhere.
    async writeUnit(database: string, unit: WriteUnit): Promise<WriteOutcome> {
        if (unit.rows === 0) return { rows: 0 };
        const conflict = unit.conflict(this.buffers, database);
        if (conflict !== undefined) throw new BadRequestError(`measurement "${conflict}" has a column whose type differs from the buffered one`);
        let columns: SchemaReservation;
        try {
            columns = this.schema.reserve(database, unit.declares);
        } catch (error) {
            if (error instanceof SchemaError) throw new BadRequestError(error.message, { cause: error });
            throw error;
        }
        let room: Reservation;
        try {
            room = this.buffers.admit(unit.bufferBytes(this.buffers, database));
        } catch (error) {
            columns.release();
            throw error;
        }
        try {
            await unit.append(this.writer, database, (results) => {
                columns.commit();
                unit.declared();
                unit.buffer(this.buffers, database, results, this.clock.now());
                room.release();
            });
        } catch (error) {
            columns.release();
            room.release();
            if (error instanceof WalEntryTooLargeError) throw new PayloadTooLargeError(error.limit, `for one measurement (${error.bytes} bytes in the WAL)`);
            if (error instanceof WalError) throw new UnavailableError(`the write-ahead log could not take the write: ${error.message}`, 1, { cause: error });
            throw error;
        }
        this.afterWrite();
        return { rows: unit.rows };
    }
}

/**
 * The write path shared by every endpoint (DESIGN.md §1): reserve the request's columns in the
 * schema → admit against the buffer budget → append its batches to the WAL as one unit → once
 * durable, commit its columns and append the batches to the buffers in WAL order → acknowledge.
 * A failure before durability leaves nothing anywhere, not even a field's type.
 */
import type { ColumnarBatch } from "../src/columnar/batch.js";
import { sliceBatch } from "../src/columnar/slice.js";
import { WalEntryTooLargeError, WalError, type WalWriter } from "../src/wal/index.js";
import { type Buffers, type Reservation, estimateBytes } from "./buffer/buffers.js";
import type { Clock } from "../src/clock.js";
import { BadRequestError, PayloadTooLargeError, UnavailableError } from "./errors.js";
import { SchemaError, type SchemaRegistry, type SchemaReservation } from "./schema.js";

/** A batch larger than this (estimated) goes to the WAL as several entries of the same unit. */
export const MAX_ENTRY_BYTES = 32 * 1024 * 1024;

/** Slices of a batch, each estimated under MAX_ENTRY_BYTES (the WAL caps an entry at 100 MiB). */
function splitForWal(batch: ColumnarBatch): ColumnarBatch[] {
    const bytes = estimateBytes(batch);
    if (bytes <= MAX_ENTRY_BYTES) return [batch];
    const parts = Math.ceil(bytes / MAX_ENTRY_BYTES);
    const rowsPerPart = Math.ceil(batch.rows / parts);
    const slices: ColumnarBatch[] = [];
    for (let start = 0; start < batch.rows; start += rowsPerPart) slices.push(sliceBatch(batch, start, Math.min(batch.rows, start + rowsPerPart)));
    return slices;
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

    // Invariant kept: resolves only once every row is durable under the sync mode and buffered
    // (and its columns declared); rejects with nothing of the request stored anywhere.
    async write(database: string, batches: readonly ColumnarBatch[]): Promise<WriteOutcome> {
        const nonEmpty = batches.filter((batch) => batch.rows > 0).flatMap(splitForWal);
        if (nonEmpty.length === 0) return { rows: 0 };
        for (const batch of nonEmpty) {
            if (!this.buffers.accepts(database, batch)) {
                throw new BadRequestError(`measurement "${batch.measurement}" has a column whose type differs from the buffered one`);
            }
        }
        let columns: SchemaReservation;
        try {
            columns = this.schema.reserve(database, nonEmpty);
        } catch (error) {
            if (error instanceof SchemaError) throw new BadRequestError(error.message, { cause: error });
            throw error;
        }
        let room: Reservation;
        try {
            room = this.buffers.admit(nonEmpty.reduce((sum, batch) => sum + estimateBytes(batch), 0));
        } catch (error) {
            columns.release();
            throw error;
        }
        try {
            await this.writer.appendAll(
                nonEmpty.map((batch) => ({ database, batch })),
                {
                    onDurable: (results) => {
                        const now = this.clock.now();
                        columns.commit();
                        results.forEach((result, i) => {
                            this.buffers.append(database, nonEmpty[i]!, result.sequence, now);
                        });
                        room.release();
                    },
                },
            );
        } catch (error) {
            columns.release();
            room.release();
            if (error instanceof WalEntryTooLargeError) throw new PayloadTooLargeError(error.limit, `for one measurement (${error.bytes} bytes in the WAL)`);
            if (error instanceof WalError) throw new UnavailableError(`the write-ahead log could not take the write: ${error.message}`, 1, { cause: error });
            throw error;
        }
        this.afterWrite();
        return { rows: nonEmpty.reduce((sum, batch) => sum + batch.rows, 0) };
    }
}

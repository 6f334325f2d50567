/**
 * What the flush loop needs from the ingest buffers, declared here so that flush/ depends on an
 * interface of its own and never on ingest/ (ingest's Buffers implement it).
 */
import type { ColumnarBatch } from "../src/columnar/batch.js";
import type { SequencedBatch } from "../src/wal/index.js";

/** Rows taken out of a buffer, with the WAL sequences they came from. */
export interface DrainedRows {
    readonly database: string;
    readonly measurement: string;
    /** In WAL order; every one of the same measurement. */
    readonly segments: readonly ColumnarBatch[];
    readonly rows: number;
    /** The lowest and highest WAL sequence whose rows are in `segments`. */
    readonly minSequence: number;
    readonly maxSequence: number;
    /** When the oldest of its rows was appended (ms, the engine's clock). */
    readonly oldestAppendMs: number;
}

export interface DrainableBuffer {
    readonly database: string;
    readonly measurement: string;
    readonly rows: number;
    /** Bytes it holds against the budget. */
    readonly bytes: number;
    /** When its oldest row was appended (Infinity when empty). */
    readonly oldestAppendMs: number;
    /** Takes every row out and empties the buffer. */
    drain(): DrainedRows;
    /** Puts rows read back from the WAL in front of the rows held now, as if they had never left. */
    restore(rows: readonly SequencedBatch[], oldestAppendMs: number): void;
}

export interface BufferSource {
    /** Bytes held by the buffers, and their budget. */
    readonly bytes: number;
    readonly maxBytes: number;
    /** The buffers holding rows. */
    nonEmpty(): DrainableBuffer[];
    /** The buffer of (database, measurement), made when there is none (a drained buffer may be gone: a failed flush puts its rows back through this). */
    open(database: string, measurement: string): DrainableBuffer;
    /** The lowest WAL sequence any buffer holds (Infinity when all are empty). */
    lowestSequence(): number;
}

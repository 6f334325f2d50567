/**
 * The flush loop (DESIGN.md §1, §3): takes full, old or memory-heavy buffers out, has them
 * encoded to Parquet off the event loop, commits the files through the commit log, and purges
 * the WAL files whose entries are all in Parquet. A failed flush puts its rows back (read again
 * from the WAL, which still holds them) and is retried with backoff; other measurements go on.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../src/log.js";
import { WalDirectoryReader, decodedRecords } from "../src/wal/directory-reader.js";
import { writeNewFileDurably } from "../src/wal/fs.js";
import type { ColumnarBatch } from "../src/columnar/batch.js";
import { sliceBatch } from "../src/columnar/slice.js";
import type { Buffers } from "../ingest/buffer/buffers.js";
import type { DrainedBuffer, MeasurementBuffer, SequencedRows } from "../ingest/buffer/measurement-buffer.js";
import { type CommitLog, type CommittedFile, CommitLogFailedError } from "./commit-log.js";
import { crashPoint } from "./crash-points.js";
import type { EncodeInput, EncodedFile } from "./encode/types.js";
import { parquetFileName, partitionPath } from "./layout.js";

/** Turns a drained buffer into Parquet bytes, one file per UTC hour (the worker thread, or a fake). */
export interface BatchEncoder {
    encode(input: EncodeInput): Promise<readonly EncodedFile[]>;
}

export interface FlusherOptions {
    /** Flush a buffer once it holds this many rows. */
    readonly maxRows: number;
    /** Flush a buffer once its oldest row is this old. */
    readonly maxAgeMs: number;
    /** Above this share of the buffer budget, flush the largest buffers first. */
    readonly pressureRatio?: number;
    /** First retry delay after a failed flush; doubles up to `maxRetryMs`. */
    readonly retryBaseMs?: number;
    readonly maxRetryMs?: number;
}

export const FLUSHER_DEFAULTS = {
    pressureRatio: 0.6,
    retryBaseMs: 500,
    maxRetryMs: 30_000,
} as const satisfies Partial<{ [K in keyof FlusherOptions]: FlusherOptions[K] }>;

export interface FlusherDeps {
    readonly buffers: Buffers;
    readonly encoder: BatchEncoder;
    readonly commitLog: CommitLog;
    /** The WAL directory, read back to restore the rows of a failed flush. */
    readonly walDir: string;
    /** Deletes WAL files below the low-water mark; called after each committed flush. */
    readonly purge: () => Promise<void>;
    readonly log: Logger;
}

export interface FlushedFile extends CommittedFile {
    readonly database: string;
    readonly measurement: string;
}

export interface FlushFailure {
    readonly database: string;
    readonly measurement: string;
    readonly attempts: number;
    readonly error: string;
    readonly nextRetryMs: number;
}

export class FlushError extends Error {
    readonly code = "flush-failed";
}

export interface FlusherStats {
    /** Flushes committed. */
    flushes: number;
    files: number;
    rows: number;
    bytes: number;
    /** Flush attempts that failed (their rows went back to the buffers). */
    failures: number;
}

interface Failure {
    attempts: number;
    error: string;
    nextRetryAtMs: number;
}

function keyOf(database: string, measurement: string): string {
    return `${database}\u0000${measurement}`;
}

export class Flusher {
    readonly #deps: FlusherDeps;
    readonly #options: Required<FlusherOptions>;
    /**
     * Each flush under way, or failed and not yet back in its buffer: the lowest WAL sequence
     * of its rows (which are in no buffer meanwhile) and the bytes they held.
     */
    readonly #inFlight = new Map<string, { readonly minSequence: number; readonly bytes: number }>();
    /** Failed flushes whose rows could not be read back yet. */
    readonly #unrestored = new Map<string, { readonly buffer: MeasurementBuffer; readonly drained: DrainedBuffer }>();
    readonly #failures = new Map<string, Failure>();
    #running: Promise<void> | undefined;
    #timer: NodeJS.Timeout | undefined;
    #closed = false;
    #tempCounter = 0;
    readonly #stats: FlusherStats = { flushes: 0, files: 0, rows: 0, bytes: 0, failures: 0 };

    constructor(deps: FlusherDeps, options: FlusherOptions) {
        this.#deps = deps;
        this.#options = {
            maxRows: options.maxRows,
            maxAgeMs: options.maxAgeMs,
            pressureRatio: options.pressureRatio ?? FLUSHER_DEFAULTS.pressureRatio,
            retryBaseMs: options.retryBaseMs ?? FLUSHER_DEFAULTS.retryBaseMs,
            maxRetryMs: options.maxRetryMs ?? FLUSHER_DEFAULTS.maxRetryMs,
        };
    }

    /** Starts the timer that flushes old buffers and retries failed flushes. */
    start(): void {
        const tick = Math.max(10, Math.min(250, Math.floor(this.#options.maxAgeMs / 4)));
        this.#timer = setInterval(() => {
            this.nudge();
        }, tick);
        this.#timer.unref();
    }

    /** The lowest WAL sequence not yet in Parquet: held by a buffer or by a flush under way. */
    lowWaterMark(nextSequence: number): number {
        let mark = Math.min(nextSequence, this.#deps.buffers.lowestSequence());
        for (const { minSequence } of this.#inFlight.values()) mark = Math.min(mark, minSequence);
        return mark;
    }

    /** Bytes taken out of the buffers by flushes under way (the budget counts them too). */
    get inFlightBytes(): number {
        let bytes = 0;
        for (const flight of this.#inFlight.values()) bytes += flight.bytes;
        return bytes;
    }

    get stats(): Readonly<FlusherStats> {
        return { ...this.#stats };
    }

    /** Failing flushes, for /health. */
    failures(): FlushFailure[] {
        return [...this.#failures].map(([key, failure]) => {
            const [database, measurement] = key.split("\u0000") as [string, string];
            return { database, measurement, attempts: failure.attempts, error: failure.error, nextRetryMs: Math.max(0, failure.nextRetryAtMs - Date.now()) };
        });
    }

    /** Checks the triggers (rows, age, memory, retries due) and starts flushing if one fired. */
    nudge(): void {
        if (this.#closed || this.#running !== undefined) return;
        if (this.#due().length === 0 && this.#unrestored.size === 0) return;
        this.#running = this.#repair()
            .then(() => this.#runDue())
            .finally(() => (this.#running = undefined));
    }

    /** Flushes whatever a trigger says is due and waits for it (recovery's backpressure). */
    async settle(): Promise<void> {
        while (this.#running !== undefined) await this.#running;
        if (this.#due().length === 0) return;
        this.#running = this.#runDue().finally(() => (this.#running = undefined));
        await this.#running;
    }

    /** The buffers a trigger says to flush now, largest first under memory pressure. */
    #due(): MeasurementBuffer[] {
        const now = Date.now();
        const { buffers } = this.#deps;
        const candidates = buffers.nonEmpty().filter((buffer) => {
            const key = keyOf(buffer.database, buffer.measurement);
            if (this.#inFlight.has(key)) return false;
            const failure = this.#failures.get(key);
            return failure === undefined || failure.nextRetryAtMs <= now;
        });
        const pressured = buffers.bytes + this.inFlightBytes >= this.#options.pressureRatio * buffers.maxBytes;
        const due = candidates.filter(
            (buffer) =>
                buffer.rows >= this.#options.maxRows || now - buffer.oldestAppendMs >= this.#options.maxAgeMs || this.#failures.has(keyOf(buffer.database, buffer.measurement)),
        );
        if (pressured && due.length === 0) {
            const largest = candidates.sort((a, b) => b.bytes - a.bytes)[0];
            return largest === undefined ? [] : [largest];
        }
        return due;
    }

    async #runDue(): Promise<void> {
        for (let due = this.#due(); due.length > 0 && !this.#closed; due = this.#due()) {
            for (const buffer of due) await this.#flushOne(buffer).catch(() => undefined);
        }
    }

    /**
     * Flushes every buffer now (POST /api/v1/flush, shutdown) and resolves with the files once
     * they are durable; rejects if any flush failed (its rows stay buffered and in the WAL).
     */
    flushAll(): Promise<FlushedFile[]> {
        return this.flushBuffers(() => this.#deps.buffers.nonEmpty());
    }

    /** Flushes the given buffers now, after any flush under way; rejects if any failed. */
    async flushBuffers(select: () => MeasurementBuffer[]): Promise<FlushedFile[]> {
        while (this.#running !== undefined) await this.#running;
        const files: FlushedFile[] = [];
        const errors: string[] = [];
        const run = (async () => {
            for (const buffer of select()) {
                if (this.#inFlight.has(keyOf(buffer.database, buffer.measurement))) {
                    errors.push(`${buffer.database}/${buffer.measurement}: blocked by an earlier flush that is not resolved yet`);
                    continue;
                }
                try {
                    files.push(...(await this.#flushOne(buffer)));
                } catch (error) {
                    errors.push(`${buffer.database}/${buffer.measurement}: ${(error as Error).message}`);
                }
            }
        })();
        this.#running = run.finally(() => (this.#running = undefined));
        await this.#running;
        for (const key of this.#unrestored.keys()) errors.push(`${key.replace("\u0000", "/")}: rows of a failed flush are still waiting to be read back from the WAL`);
        if (errors.length > 0) throw new FlushError(`flush failed (the rows stay in the WAL): ${errors.join("; ")}`);
        return files;
    }

    // Invariant kept: a (database, measurement) has at most one flush under way, and until its
    // rows are committed or back in its buffer (in WAL order) they pin the low-water mark.
    async #flushOne(buffer: MeasurementBuffer): Promise<FlushedFile[]> {
        const { database, measurement } = buffer;
        const key = keyOf(database, measurement);
        if (buffer.rows === 0 || this.#inFlight.has(key)) return [];
        const bytes = buffer.bytes;
        const started = performance.now();
        let encodeMs = 0;
        const drained = buffer.drain();
        this.#inFlight.set(key, { minSequence: drained.minSequence, bytes });
        const temps: string[] = [];
        const files: CommittedFile[] = [];
        try {
            // A buffer can hold more than flush.max_rows (rows arrive while a flush runs): encode it
            // in parts of at most that many rows, so the worker's memory stays bounded, and commit
            // all parts with one record.
            const parts = splitIntoParts(drained.segments, drained.rows, this.#options.maxRows);
            for (const [part, segments] of parts.entries()) {
                const encodeStarted = performance.now();
                const partitions = await this.#deps.encoder.encode({ database, segments, minSequence: drained.minSequence, maxSequence: drained.maxSequence });
                encodeMs += performance.now() - encodeStarted;
                const name = parquetFileName(drained.minSequence, drained.maxSequence, parts.length === 1 ? 0 : part + 1);
                for (const partition of partitions) {
                    const temp = `${process.pid}-${Date.now()}-${this.#tempCounter++}.parquet.tmp`;
                    temps.push(temp);
                    await writeNewFileDurably(this.#deps.commitLog.tempPath(temp), partition.bytes);
                    files.push({
                        path: join(partitionPath(database, measurement, partition.date, partition.hour), name),
                        temp,
                        rows: partition.rows,
                        bytes: partition.bytes.length,
                    });
                }
            }
            crashPoint("after-temp-fsync");
            await this.#deps.commitLog.commit({ type: "commit", database, measurement, through: drained.maxSequence, min: drained.minSequence, files });
        } catch (error) {
            this.#recordFailure(key, error as Error);
            if (error instanceof CommitLogFailedError) {
                // The record may be durable: the temps stay and the rows stay pinned until a
                // restart, whose commit-log recovery decides.
                throw error;
            }
            for (const temp of temps) await rm(this.#deps.commitLog.tempPath(temp), { force: true }).catch(() => undefined);
            await this.#putBack(buffer, drained);
            throw error;
        }
        this.#inFlight.delete(key);
        this.#failures.delete(key);
        this.#stats.flushes++;
        this.#stats.files += files.length;
        this.#stats.rows += drained.rows;
        const fileBytes = files.reduce((sum, file) => sum + file.bytes, 0);
        this.#stats.bytes += fileBytes;
        this.#deps.log.info("flushed", {
            database,
            measurement,
            rows: drained.rows,
            files: files.length,
            bytes: fileBytes,
            wal_seq: `${drained.minSequence}-${drained.maxSequence}`,
            encode_ms: Math.round(encodeMs),
            ms: Math.round(performance.now() - started),
        });
        try {
            await this.#deps.purge();
        } catch (error) {
            this.#deps.log.error("purging the WAL after a flush failed; it will be tried after the next flush", { error: (error as Error).message });
        }
        return files.map((file) => ({ ...file, database, measurement }));
    }

    #recordFailure(key: string, error: Error): void {
        const attempts = (this.#failures.get(key)?.attempts ?? 0) + 1;
        this.#stats.failures++;
        const delay = Math.min(this.#options.maxRetryMs, this.#options.retryBaseMs * 2 ** (attempts - 1));
        this.#failures.set(key, { attempts, error: error.message, nextRetryAtMs: Date.now() + delay });
        const [database, measurement] = key.split("\u0000") as [string, string];
        this.#deps.log.error(`flush of ${database}/${measurement} failed; its rows stay in the WAL and go back to the buffer, retry in ${delay} ms`, {
            attempt: attempts,
            error: error.message,
        });
    }

    /**
     * Puts a failed flush's rows back in front of its buffer, read again from the WAL (the
     * arrays went to the worker). Until that succeeds they stay pinned; a failed read-back is
     * retried on the next tick, and the (database, measurement) is not flushed meanwhile.
     */
    async #putBack(buffer: MeasurementBuffer, drained: DrainedBuffer): Promise<void> {
        const key = keyOf(buffer.database, buffer.measurement);
        try {
            buffer.restore(await readBack(this.#deps.walDir, drained));
        } catch (error) {
            this.#unrestored.set(key, { buffer, drained });
            this.#deps.log.error(`reading a failed flush's rows back from the WAL failed; they stay pinned in the WAL and are tried again`, {
                database: buffer.database,
                measurement: buffer.measurement,
                error: (error as Error).message,
            });
            return;
        }
        this.#inFlight.delete(key);
    }

    /** Retries the read-backs that failed and the renames of durable commits. */
    async #repair(): Promise<void> {
        for (const [key, { buffer, drained }] of [...this.#unrestored]) {
            this.#unrestored.delete(key);
            await this.#putBack(buffer, drained);
        }
        await this.#deps.commitLog.finishPending();
    }

    /** Stops the timer and waits for the flush under way; buffers are left as they are. */
    async close(): Promise<void> {
        this.#closed = true;
        clearInterval(this.#timer);
        while (this.#running !== undefined) await this.#running;
    }
}

/**
 * The rows a drained buffer held, read back from the WAL: every entry of its (database,
 * measurement) between its lowest and highest sequence went into it, whole and in order.
 */
async function readBack(walDir: string, drained: DrainedBuffer): Promise<SequencedRows[]> {
    const restored: SequencedRows[] = [];
    const reader = new WalDirectoryReader(walDir, { fromSequence: drained.minSequence });
    for await (const record of decodedRecords(reader)) {
        if (record.kind !== "entry") continue;
        if (record.sequence > drained.maxSequence) break;
        if (record.database !== drained.database || record.batch.measurement !== drained.measurement) continue;
        const { batch, sequence } = record;
        restored.push({ database: record.database, segments: [batch], rows: batch.rows, minSequence: sequence, maxSequence: sequence, oldestAppendMs: drained.oldestAppendMs });
    }
    return restored;
}

/**
 * The segments (of `rows` rows in all) cut into the fewest parts of at most `maxRows` rows, of
 * near-equal size, in order; a segment is cut only where a part ends.
 */
export function splitIntoParts(segments: readonly ColumnarBatch[], rows: number, maxRows: number): ColumnarBatch[][] {
    const rowsPerPart = Math.ceil(rows / Math.ceil(rows / maxRows));
    const parts: ColumnarBatch[][] = [];
    let part: ColumnarBatch[] = [];
    let partRows = 0;
    for (const segment of segments) {
        for (let start = 0; start < segment.rows;) {
            const end = Math.min(segment.rows, start + rowsPerPart - partRows);
            part.push(sliceBatch(segment, start, end));
            partRows += end - start;
            start = end;
            if (partRows === rowsPerPart) {
                parts.push(part);
                part = [];
                partRows = 0;
            }
        }
    }
    if (partRows > 0) parts.push(part);
    return parts;
}

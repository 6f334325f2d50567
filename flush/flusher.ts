/**
 * The flush loop (DESIGN.md §1, §3): takes full, old or memory-heavy buffers out, has them
 * encoded to Parquet off the event loop, and commits their files through the commit protocol,
 * many small measurements in one change (one manifest record, each directory synced once).
 * A failed flush puts its rows back (read again from the WAL, which still holds them) and is
 * retried with backoff; other measurements go on.
 *
 * Many small measurements stay cheap (issue 13 item 4): their rows go to the encode worker many
 * at a time (one round trip per group, not per measurement), a group's files are staged
 * concurrently while the worker encodes the next group, and a batch is encoded and staged while
 * the one before it commits (commits themselves stay one at a time, in order).
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Clock } from "../src/clock.js";
import type { ColumnarBatch } from "../src/columnar/batch.js";
import { sliceBatch } from "../src/columnar/slice.js";
import { IO_CONCURRENCY, mapLimit } from "../src/concurrency.js";
import { SluiceError, errorOf, messageOf } from "../src/errors.js";
import { errorCode } from "../src/fs/file-system.js";
import type { Logger } from "../src/log.js";
import type { SequencedBatch } from "../src/wal/index.js";
import { type CommitProtocol, CommitUncertainError, type LakeChange } from "./commit.js";
import { crashPoint } from "./crash-points.js";
import type { EncodeInput, EncodedFile } from "./encode/types.js";
import type { EncodeOutcome } from "./worker/messages.js";
import { parquetFileName, partitionPath } from "./layout.js";
import type { AddFiles, PartitionRef, StagedFile } from "./manifest/records.js";
import type { BufferSource, DrainableBuffer, DrainedRows } from "./source.js";

/** Turns a drained buffer into Parquet bytes, one file per UTC hour (the worker thread, or a fake). */
export interface BatchEncoder {
    encode(input: EncodeInput): Promise<readonly EncodedFile[]>;
    /** Many inputs in one round trip, one outcome each, in order (without it, `encode` is called for each). */
    encodeMany?(inputs: readonly EncodeInput[]): Promise<readonly EncodeOutcome<Error>[]>;
}

/**
 * Buffers of at most this many rows are encoded together, up to this many rows and flushes per
 * worker call: the round trip is paid once per group, and the encoded bytes held while a group
 * is staged stay small.
 */
export const ENCODE_GROUP = { rows: 65_536, flushes: 256 } as const;

/** Resolved options (defaults live in the config schema). */
export interface FlusherOptions {
    /** Flush a buffer once it holds this many rows; a larger one is encoded in parts of at most this many. */
    readonly maxRows: number;
    /** Flush a buffer once its oldest row is this old. */
    readonly maxAgeMs: number;
    /** Above this share of the buffer budget, flush the largest buffers first. */
    readonly pressureRatio: number;
    /** First retry delay after a failed flush; doubles up to `maxRetryMs`. */
    readonly retryBaseMs: number;
    readonly maxRetryMs: number;
    /** At most this many measurements share one commit. */
    readonly maxBatchMeasurements: number;
}

export const FLUSHER_TUNING = {
    pressureRatio: 0.6,
    retryBaseMs: 500,
    maxRetryMs: 30_000,
    maxBatchMeasurements: 2_000,
} as const satisfies Partial<FlusherOptions>;

export interface FlusherDeps {
    readonly source: BufferSource;
    readonly encoder: BatchEncoder;
    readonly commit: Pick<CommitProtocol, "stage" | "discard" | "commit" | "repair" | "failure">;
    /** Reads a drained buffer's rows back from the WAL (to put a failed flush's rows back). */
    readonly readBack: (rows: DrainedRows) => Promise<SequencedBatch[]>;
    /** Called after every committed change (the engine purges the WAL and tells compaction). */
    readonly onCommitted: (change: LakeChange) => Promise<void>;
    readonly log: Logger;
    readonly clock: Clock;
}

/** A committed Parquet file, as POST /api/v1/flush lists it. */
export interface FlushedFile {
    readonly database: string;
    readonly measurement: string;
    /** Where readers find it, relative to `<data>/parquet`: `<db>/<m>/date=…/hour=…/<name>`, names encoded. */
    readonly path: string;
    readonly rows: number;
    readonly bytes: number;
}

export interface FlushFailure {
    readonly database: string;
    readonly measurement: string;
    readonly attempts: number;
    readonly error: string;
    readonly code: string;
    readonly nextRetryMs: number;
}

export interface FlusherStats {
    /** Measurement flushes committed. */
    flushes: number;
    /** Changes committed (one may hold many measurement flushes). */
    commits: number;
    files: number;
    rows: number;
    bytes: number;
    /** Flush attempts that failed (their rows went back to the buffers). */
    failures: number;
    /** Rows merged into another row of the same point (same tag set and time) by flushes. */
    duplicatesMerged: number;
}

/** Told of every committed flush, for metrics: it must be cheap and must not throw. */
export interface FlushObserver {
    /** A change of flushed buffers committed, this long after they were drained. */
    committed(seconds: number): void;
}

export class FlushError extends SluiceError {
    readonly code = "flush-failed";
    override readonly retryable = true;
}

interface Failure {
    attempts: number;
    error: string;
    /** The error's code (`object-store-unavailable`, `ENOSPC`, …), for metrics. */
    code: string;
    nextRetryAtMs: number;
}

/** A file encoded for a flight, on its way to a temp file. */
interface EncodedPart {
    readonly partition: PartitionRef;
    readonly file: EncodedFile;
    readonly name: string;
}

/** One buffer's rows on their way to Parquet. */
interface Flight {
    readonly key: string;
    readonly drained: DrainedRows;
    readonly bytes: number;
    readonly temps: string[];
    readonly adds: AddFiles[];
    /** Encoded and not staged yet (dropped once staged, so the bytes can go). */
    encoded: EncodedPart[];
    /** Rows merged into others (the same point twice in the buffer). */
    merged: number;
    error?: Error;
}

/** A batch's flights, encoded and staged, waiting for their commit. */
interface StagedBatch {
    readonly flights: readonly Flight[];
    readonly started: number;
    readonly encodeMs: number;
}

interface BatchOutcome {
    readonly files: FlushedFile[];
    readonly errors: string[];
}

function keyOf(database: string, measurement: string): string {
    return `${database}\u0000${measurement}`;
}

export class Flusher {
    readonly #deps: FlusherDeps;
    readonly #options: FlusherOptions;
    /**
     * Each flush under way, or failed and not yet back in its buffer: the lowest WAL sequence
     * of its rows (which are in no buffer meanwhile) and the bytes they held.
     */
    readonly #inFlight = new Map<string, { readonly minSequence: number; readonly bytes: number; readonly oldestAppendMs: number }>();
    /** Failed flushes whose rows could not be read back yet (retried on every tick). */
    readonly #unrestored = new Map<string, Flight>();
    readonly #failures = new Map<string, Failure>();
    #running: Promise<void> | undefined;
    #timer: NodeJS.Timeout | undefined;
    #closed = false;
    #observer: FlushObserver = { committed: () => undefined };
    readonly #stats: FlusherStats = { flushes: 0, commits: 0, files: 0, rows: 0, bytes: 0, failures: 0, duplicatesMerged: 0 };

    constructor(deps: FlusherDeps, options: FlusherOptions) {
        this.#deps = deps;
        this.#options = options;
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
        let mark = Math.min(nextSequence, this.#deps.source.lowestSequence());
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

    /** When the oldest row taken out by a flush under way arrived (Infinity when none is). */
    get oldestInFlightAppendMs(): number {
        let oldest = Number.POSITIVE_INFINITY;
        for (const flight of this.#inFlight.values()) oldest = Math.min(oldest, flight.oldestAppendMs);
        return oldest;
    }

    /** Tells `observer` of every committed flush from now on. */
    observe(observer: FlushObserver): void {
        this.#observer = observer;
    }

    /** Failing flushes, for /health. */
    failures(): FlushFailure[] {
        const now = this.#deps.clock.now();
        return [...this.#failures].map(([key, failure]) => {
            const [database, measurement] = key.split("\u0000") as [string, string];
            return { database, measurement, attempts: failure.attempts, error: failure.error, code: failure.code, nextRetryMs: Math.max(0, failure.nextRetryAtMs - now) };
        });
    }

    /** Checks the triggers (rows, age, memory, retries due) and starts flushing if one fired. */
    nudge(): void {
        if (this.#closed || this.#running !== undefined) return;
        if (this.#due().length === 0 && this.#unrestored.size === 0 && this.#deps.commit.failure === undefined) return;
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
    #due(): DrainableBuffer[] {
        const now = this.#deps.clock.now();
        const { source } = this.#deps;
        const candidates = source.nonEmpty().filter((buffer) => {
            const key = keyOf(buffer.database, buffer.measurement);
            if (this.#inFlight.has(key)) return false;
            const failure = this.#failures.get(key);
            return failure === undefined || failure.nextRetryAtMs <= now;
        });
        const pressured = source.bytes + this.inFlightBytes >= this.#options.pressureRatio * source.maxBytes;
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
            await this.#flushBatches(this.#batches(due)).catch((error: unknown) => {
                this.#deps.log.error("a flush round failed unexpectedly", { error: messageOf(error) });
            });
        }
    }

    /**
     * Flushes the batches in order, each encoded and staged while the one before it commits (at
     * most one batch waits for its commit): a slow commit does not hold up the encoding.
     */
    async #flushBatches(batches: readonly (readonly DrainableBuffer[])[]): Promise<BatchOutcome[]> {
        const outcomes: BatchOutcome[] = [];
        let committing: Promise<BatchOutcome> | undefined;
        try {
            for (const batch of batches) {
                const staged = await this.#stageBatch(batch);
                if (committing !== undefined) outcomes.push(await committing);
                committing = this.#commitBatch(staged);
            }
        } finally {
            if (committing !== undefined) outcomes.push(await committing);
        }
        return outcomes;
    }

    /** Buffers grouped into commits: a large one alone, small ones together up to maxRows rows and maxBatchMeasurements. */
    #batches(buffers: readonly DrainableBuffer[]): DrainableBuffer[][] {
        const batches: DrainableBuffer[][] = [];
        let batch: DrainableBuffer[] = [];
        let rows = 0;
        for (const buffer of buffers) {
            if (batch.length > 0 && (rows + buffer.rows > this.#options.maxRows || batch.length >= this.#options.maxBatchMeasurements)) {
                batches.push(batch);
                batch = [];
                rows = 0;
            }
            batch.push(buffer);
            rows += buffer.rows;
        }
        if (batch.length > 0) batches.push(batch);
        return batches;
    }

    /**
     * Flushes every buffer now (POST /api/v1/flush, shutdown) and resolves with the files once
     * they are durable; rejects if any flush failed (its rows stay buffered and in the WAL).
     */
    flushAll(): Promise<FlushedFile[]> {
        return this.flushBuffers(() => this.#deps.source.nonEmpty());
    }

    /** Flushes the given buffers now, after any flush under way; rejects if any failed. */
    async flushBuffers(select: () => DrainableBuffer[]): Promise<FlushedFile[]> {
        while (this.#running !== undefined) await this.#running;
        const files: FlushedFile[] = [];
        const errors: string[] = [];
        const run = (async () => {
            await this.#repair();
            const selected = select().filter((buffer) => {
                if (!this.#inFlight.has(keyOf(buffer.database, buffer.measurement))) return true;
                errors.push(`${buffer.database}/${buffer.measurement}: blocked by an earlier flush that is not resolved yet`);
                return false;
            });
            for (const outcome of await this.#flushBatches(this.#batches(selected))) {
                files.push(...outcome.files);
                errors.push(...outcome.errors);
            }
        })();
        this.#running = run.finally(() => (this.#running = undefined));
        await this.#running;
        for (const flight of this.#unrestored.values())
            errors.push(`${flight.drained.database}/${flight.drained.measurement}: rows of a failed flush are still waiting to be read back from the WAL`);
        if (errors.length > 0) throw new FlushError(`flush failed (the rows stay in the WAL): ${errors.join("; ")}`);
        return files;
    }

    // Invariant kept: a (database, measurement) has at most one flush under way, and until its
    // rows are committed or back in its buffer (in WAL order) they pin the low-water mark.
    async #stageBatch(buffers: readonly DrainableBuffer[]): Promise<StagedBatch> {
        const started = performance.now();
        const flights: Flight[] = [];
        for (const buffer of buffers) {
            if (buffer.rows === 0) continue;
            const key = keyOf(buffer.database, buffer.measurement);
            if (this.#inFlight.has(key)) continue;
            const bytes = buffer.bytes;
            const drained = buffer.drain();
            this.#inFlight.set(key, { minSequence: drained.minSequence, bytes, oldestAppendMs: drained.oldestAppendMs });
            flights.push({ key, drained, bytes, temps: [], adds: [], encoded: [], merged: 0 });
        }
        let encodeMs = 0;
        let staging: Promise<void> | undefined;
        try {
            for (const group of this.#encodeGroups(flights)) {
                const encodeStarted = performance.now();
                await this.#encode(group);
                encodeMs += performance.now() - encodeStarted;
                // One group is staged while the next is encoded.
                await staging;
                staging = this.#stage(group);
            }
        } finally {
            await staging;
        }
        crashPoint("after-temp-fsync");
        return { flights, started, encodeMs };
    }

    /** The flights cut into worker calls: small ones together (ENCODE_GROUP), a large one alone. */
    #encodeGroups(flights: readonly Flight[]): Flight[][] {
        if (this.#deps.encoder.encodeMany === undefined) return flights.map((flight) => [flight]);
        const groups: Flight[][] = [];
        let group: Flight[] = [];
        let rows = 0;
        const close = () => {
            if (group.length > 0) groups.push(group);
            group = [];
            rows = 0;
        };
        for (const flight of flights) {
            const small = flight.drained.rows <= Math.min(ENCODE_GROUP.rows, this.#options.maxRows);
            if (!small) {
                groups.push([flight]);
                continue;
            }
            if (rows + flight.drained.rows > ENCODE_GROUP.rows || group.length >= ENCODE_GROUP.flushes) close();
            group.push(flight);
            rows += flight.drained.rows;
        }
        close();
        return groups;
    }

    /** Encodes a group's rows: one flight alone (in parts of at most maxRows rows), or many in one worker call. */
    async #encode(group: readonly Flight[]): Promise<void> {
        const { encoder } = this.#deps;
        if (group.length === 1 || encoder.encodeMany === undefined) {
            for (const flight of group) {
                try {
                    await this.#encodeAlone(flight);
                } catch (error) {
                    flight.error = errorOf(error);
                }
            }
            return;
        }
        let outcomes: readonly EncodeOutcome<Error>[];
        try {
            outcomes = await encoder.encodeMany(group.map(({ drained }) => inputOf(drained, drained.segments)));
        } catch (error) {
            for (const flight of group) flight.error = errorOf(error);
            return;
        }
        group.forEach((flight, i) => {
            const outcome = outcomes[i];
            if (outcome === undefined) flight.error = new FlushError(`the encoder gave ${outcomes.length} outcomes for ${group.length} inputs`);
            else if ("error" in outcome) flight.error = outcome.error;
            else this.#noteEncoded(flight, outcome.files, parquetFileName(flight.drained.minSequence, flight.drained.maxSequence));
        });
    }

    /** Encodes a flight's rows in parts of at most maxRows rows, one worker call per part. */
    async #encodeAlone(flight: Flight): Promise<void> {
        const { drained } = flight;
        const parts = splitIntoParts(drained.segments, drained.rows, this.#options.maxRows);
        for (const [part, segments] of parts.entries()) {
            const files = await this.#deps.encoder.encode(inputOf(drained, segments));
            this.#noteEncoded(flight, files, parquetFileName(drained.minSequence, drained.maxSequence, parts.length === 1 ? 0 : part + 1));
        }
    }

    #noteEncoded(flight: Flight, files: readonly EncodedFile[], name: string): void {
        const { database, measurement } = flight.drained;
        for (const file of files) {
            flight.merged += file.merged;
            flight.encoded.push({ partition: { database, measurement, date: file.date, hour: file.hour }, file, name });
        }
    }

    /**
     * Stages the group's encoded files, IO_CONCURRENCY at a time across its flights, and lists
     * each flight's files by partition; a flight whose file cannot be staged fails alone.
     */
    async #stage(group: readonly Flight[]): Promise<void> {
        const parts = group.filter((flight) => flight.error === undefined).flatMap((flight) => flight.encoded.map((part) => ({ flight, part })));
        const temps = await mapLimit(parts, IO_CONCURRENCY, async ({ flight, part }) => {
            if (flight.error !== undefined) return undefined;
            try {
                const temp = await this.#deps.commit.stage(part.file.bytes);
                flight.temps.push(temp);
                return temp;
            } catch (error) {
                flight.error ??= errorOf(error);
                return undefined;
            }
        });
        const byFlight = new Map<Flight, Map<string, AddFiles & { files: StagedFile[] }>>();
        parts.forEach(({ flight, part }, i) => {
            const temp = temps[i];
            if (flight.error !== undefined || temp === undefined) return;
            const byPartition = byFlight.get(flight) ?? new Map<string, AddFiles & { files: StagedFile[] }>();
            byFlight.set(flight, byPartition);
            const key = `${part.partition.date}/${part.partition.hour}`;
            const add = byPartition.get(key) ?? { partition: part.partition, files: [] };
            add.files.push({ temp, name: part.name, rows: part.file.rows, bytes: part.file.bytes.length });
            byPartition.set(key, add);
        });
        for (const flight of group) {
            if (flight.error === undefined) flight.adds.push(...(byFlight.get(flight)?.values() ?? []));
            flight.encoded = [];
        }
    }

    /** Commits a staged batch as one change; flights that failed, or whose change did not commit, go back to their buffers. */
    async #commitBatch({ flights, started, encodeMs }: StagedBatch): Promise<BatchOutcome> {
        const encoded = flights.filter((flight) => flight.error === undefined);
        const change: LakeChange = {
            flushed: encoded.map(({ drained }) => ({ database: drained.database, measurement: drained.measurement, min: drained.minSequence, through: drained.maxSequence })),
            adds: encoded.flatMap((flight) => flight.adds),
            replaces: [],
            drops: [],
        };
        if (encoded.length > 0) {
            try {
                await this.#deps.commit.commit(change);
            } catch (error) {
                if (error instanceof CommitUncertainError) {
                    // Maybe durable: the temps stay and the rows stay pinned until the manifest knows.
                    for (const flight of encoded) this.#recordFailure(flight.key, error);
                    void error.settled.then(() => Promise.all(encoded.map((flight) => this.#fail(flight, error))));
                    return { files: [], errors: encoded.map((flight) => `${flight.drained.database}/${flight.drained.measurement}: ${error.message}`) };
                }
                for (const flight of encoded) flight.error = errorOf(error);
            }
        }
        const errors: string[] = [];
        const files: FlushedFile[] = [];
        for (const flight of flights) {
            if (flight.error !== undefined) {
                errors.push(`${flight.drained.database}/${flight.drained.measurement}: ${flight.error.message}`);
                this.#recordFailure(flight.key, flight.error);
                await this.#fail(flight, flight.error);
                continue;
            }
            this.#inFlight.delete(flight.key);
            this.#failures.delete(flight.key);
            const flightFiles = flight.adds.flatMap(({ partition, files: added }) =>
                added.map((file) => ({
                    database: partition.database,
                    measurement: partition.measurement,
                    path: join(partitionPath(partition), file.name),
                    rows: file.rows,
                    bytes: file.bytes,
                })),
            );
            files.push(...flightFiles);
            this.#stats.flushes++;
            this.#stats.rows += flight.drained.rows;
            this.#stats.duplicatesMerged += flight.merged;
            this.#stats.files += flightFiles.length;
            this.#stats.bytes += flightFiles.reduce((sum, file) => sum + file.bytes, 0);
        }
        if (files.length > 0) {
            this.#stats.commits++;
            this.#observer.committed((performance.now() - started) / 1000);
            this.#logCommit(
                flights.filter((flight) => flight.error === undefined),
                files,
                started,
                encodeMs,
            );
            try {
                await this.#deps.onCommitted(change);
            } catch (error) {
                this.#deps.log.error("purging the WAL after a flush failed; it will be tried after the next flush", { error: messageOf(error) });
            }
        }
        return { files, errors };
    }

    #logCommit(flights: readonly Flight[], files: readonly FlushedFile[], started: number, encodeWallMs: number): void {
        const ms = Math.round(performance.now() - started);
        const rows = flights.reduce((sum, flight) => sum + flight.drained.rows, 0);
        const bytes = files.reduce((sum, file) => sum + file.bytes, 0);
        const encodeMs = Math.round(encodeWallMs);
        const only = flights.length === 1 ? flights[0]!.drained : undefined;
        if (only !== undefined) {
            this.#deps.log.info("flushed", {
                database: only.database,
                measurement: only.measurement,
                rows,
                files: files.length,
                bytes,
                wal_seq: `${only.minSequence}-${only.maxSequence}`,
                encode_ms: encodeMs,
                ms,
            });
        } else this.#deps.log.info("flushed", { measurements: flights.length, rows, files: files.length, bytes, encode_ms: encodeMs, ms });
    }

    #recordFailure(key: string, error: Error): void {
        const attempts = (this.#failures.get(key)?.attempts ?? 0) + 1;
        this.#stats.failures++;
        const delay = Math.min(this.#options.maxRetryMs, this.#options.retryBaseMs * 2 ** (attempts - 1));
        this.#failures.set(key, { attempts, error: error.message, code: errorCode(error) ?? "internal", nextRetryAtMs: this.#deps.clock.now() + delay });
        const [database, measurement] = key.split("\u0000") as [string, string];
        this.#deps.log.error(`flush of ${database}/${measurement} failed; its rows stay in the WAL and go back to the buffer, retry in ${delay} ms`, {
            attempt: attempts,
            error: error.message,
        });
    }

    /** A flight that did not commit: its temps go and its rows go back to the buffer. */
    async #fail(flight: Flight, error: Error): Promise<void> {
        flight.error = error;
        await this.#deps.commit.discard(flight.temps);
        await this.#putBack(flight);
    }

    /**
     * Puts a failed flush's rows back in front of its buffer, read again from the WAL (the
     * arrays went to the worker). Until that succeeds they stay pinned; a failed read-back is
     * retried on the next tick, and the (database, measurement) is not flushed meanwhile.
     */
    async #putBack(flight: Flight): Promise<void> {
        try {
            const rows = await this.#deps.readBack(flight.drained);
            // Opened only now: a buffer left empty may have been dropped while the rows were read.
            const { database, measurement, oldestAppendMs } = flight.drained;
            this.#deps.source.open(database, measurement).restore(rows, oldestAppendMs);
        } catch (error) {
            this.#unrestored.set(flight.key, flight);
            this.#deps.log.error(`reading a failed flush's rows back from the WAL failed; they stay pinned in the WAL and are tried again`, {
                database: flight.drained.database,
                measurement: flight.drained.measurement,
                error: messageOf(error),
            });
            return;
        }
        this.#inFlight.delete(flight.key);
    }

    /** Retries the read-backs that failed and the manifest's repair (fail-stop). */
    async #repair(): Promise<void> {
        for (const [key, flight] of [...this.#unrestored]) {
            this.#unrestored.delete(key);
            await this.#putBack(flight);
        }
        await this.#deps.commit.repair();
    }

    /** Stops the timer and waits for the flush under way; buffers are left as they are. */
    async close(): Promise<void> {
        this.#closed = true;
        clearInterval(this.#timer);
        while (this.#running !== undefined) await this.#running;
    }
}

/** What the encoder takes for a drained buffer's rows (all of them, or one part). */
function inputOf(drained: DrainedRows, segments: readonly ColumnarBatch[]): EncodeInput {
    return { database: drained.database, segments, minSequence: drained.minSequence, maxSequence: drained.maxSequence };
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

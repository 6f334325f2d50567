/**
 * Compaction's merge (inside the worker): several Parquet files of one partition, each sorted by
 * (tags by name, time), merged into as few files as `targetRows` allows, rows sorted the same way,
 * duplicates of one point merged (later files win: the inputs come oldest first).
 *
 * In bounded memory: every input is read as a stream of batches of at most `batchRows` rows; a
 * step takes from every input the rows up to the smallest "last key" among their loaded batches
 * (no row still unread can sort before it, the inputs being sorted), so all rows of one point
 * are merged in the same step and land in the same output file. Memory: one batch per input,
 * the output file being built (at most `targetRows` rows), and the encoder's working set.
 *
 * With `slices` (time ranges), the inputs are read once per slice and each output file holds
 * rows of one slice only: outputs that cover disjoint times, so a later write that reopens one
 * time range of the hour reopens only the files of that range.
 */
import { type ColumnarBatch, type StringColumn, type TimeColumn, TIME_COLUMN, bitIsSet } from "../../src/columnar/batch.js";
import { sliceBatch, takeRows } from "../../src/columnar/slice.js";
import { compactedEncodings } from "./compacted-encodings.js";
import { EncodeInputError } from "./errors.js";
import type { WriterTuning } from "./column-settings.js";
import { encodeParquet } from "./parquet.js";
import { type ParquetFacts, describeParquet, readParquetBatches } from "./read-parquet.js";
import { compareCodePoints } from "./sort.js";
import { type CompactedEncodings, ENCODE_DEFAULTS, type EncodeOptions } from "./types.js";

export interface MergeRequest {
    readonly database: string;
    readonly measurement: string;
    /** Paths of the inputs, oldest first (a later file's value of a point wins). */
    readonly inputs: readonly string[];
    /** The most rows an output file holds. */
    readonly targetRows: number;
    /** Rows read from an input at a time. */
    readonly batchRows: number;
    /** Time ranges [start, end) (ns) covering every input row: outputs are cut at their bounds. */
    readonly slices?: readonly (readonly [bigint, bigint])[];
    /** The outputs' column encodings (default "flush": the same as a flush's). */
    readonly encodings?: CompactedEncodings;
}

export interface MergedFile {
    readonly bytes: Uint8Array;
    readonly rows: number;
    readonly minTimeNs: bigint;
    readonly maxTimeNs: bigint;
}

export interface MergeResult {
    readonly files: MergedFile[];
    readonly rowsIn: number;
    readonly rowsOut: number;
    /** Rows merged into another row of the same point. */
    readonly merged: number;
}

/** An input whose rows are not in (tags by name, time) order (written by Sluice 0.1, or not by Sluice). */
export class UnsortedInputError extends EncodeInputError {}

/** Compares rows by (tags in `tags` order, null first, then time). */
class KeyOrder {
    constructor(readonly tags: readonly string[]) {}

    compare(a: ColumnarBatch, i: number, b: ColumnarBatch, j: number): number {
        for (const tag of this.tags) {
            const x = tagValue(a, tag, i);
            const y = tagValue(b, tag, j);
            if (x === y) continue;
            if (x === undefined) return -1;
            if (y === undefined) return 1;
            const order = compareCodePoints(x, y);
            if (order !== 0) return order;
        }
        const s = (a.columns.get(TIME_COLUMN) as TimeColumn).values[i]!;
        const t = (b.columns.get(TIME_COLUMN) as TimeColumn).values[j]!;
        return s < t ? -1 : s > t ? 1 : 0;
    }

    /** The first row at or after `from` whose key is above row `j` of `pivot` (rows.length when none is). */
    upperBound(batch: ColumnarBatch, from: number, pivot: ColumnarBatch, j: number): number {
        let low = from;
        let high = batch.rows;
        while (low < high) {
            const mid = (low + high) >>> 1;
            if (this.compare(batch, mid, pivot, j) <= 0) low = mid + 1;
            else high = mid;
        }
        return low;
    }
}

/** The rows of a batch whose time is in [start, end), in order. */
function inSlice(batch: ColumnarBatch, [start, end]: readonly [bigint, bigint]): ColumnarBatch {
    const time = (batch.columns.get(TIME_COLUMN) as TimeColumn).values;
    const rows: number[] = [];
    for (let i = 0; i < batch.rows; i++) if (time[i]! >= start && time[i]! < end) rows.push(i);
    return rows.length === batch.rows ? batch : takeRows(batch, Uint32Array.from(rows));
}

function tagValue(batch: ColumnarBatch, tag: string, row: number): string | undefined {
    const column = batch.columns.get(tag) as StringColumn | undefined;
    if (column === undefined || (column.valid !== undefined && !bitIsSet(column.valid, row))) return undefined;
    return column.dict[column.codes[row]!];
}

/** One input being read: its loaded batch and where the next unmerged row of it is. */
class Cursor {
    batch: ColumnarBatch | undefined;
    position = 0;
    #previous: { batch: ColumnarBatch; row: number } | undefined;

    constructor(
        readonly path: string,
        readonly batches: AsyncGenerator<ColumnarBatch>,
        readonly order: KeyOrder,
        /** Only rows with a time in [start, end) are read. */
        readonly slice: readonly [bigint, bigint] | undefined,
    ) {}

    /** Loads the next batch when this one is used up; false when the input is exhausted. */
    async ready(): Promise<boolean> {
        while (this.batch === undefined || this.position >= this.batch.rows) {
            const next = await this.batches.next();
            if (next.done === true) {
                this.batch = undefined;
                return false;
            }
            this.#checkSorted(next.value);
            this.batch = this.slice === undefined ? next.value : inSlice(next.value, this.slice);
            this.position = 0;
        }
        return true;
    }

    // Invariant kept: the rows handed out by this input never go down in key order.
    #checkSorted(batch: ColumnarBatch): void {
        const previous = this.#previous;
        if (previous !== undefined && this.order.compare(previous.batch, previous.row, batch, 0) > 0) throw new UnsortedInputError(`${this.path} is not sorted by (tags, time)`);
        for (let i = 1; i < batch.rows; i++) if (this.order.compare(batch, i - 1, batch, i) > 0) throw new UnsortedInputError(`${this.path} is not sorted by (tags, time)`);
        this.#previous = { batch, row: batch.rows - 1 };
    }
}

/** Inputs not sorted by (tags by name, time) are merged in memory, up to this many times `targetRows` rows in all. */
const UNSORTED_FACTOR = 4;

// Invariant kept: every input row is in exactly one output file, or merged into a row of the
// same point in the same file; output files are sorted and hold at most `targetRows` rows, but
// for the rows of one merge step, which are never split.
export async function mergeParquetFiles(request: MergeRequest, flushOptions: EncodeOptions): Promise<MergeResult> {
    const facts = await Promise.all(request.inputs.map((path) => describeParquet(path)));
    // A compacted file, however small, is parquet-wasm's, with the configured codec (ZSTD): never the flush's tiny writer, whose ZSTD pages are stored uncompressed.
    const options: EncodeOptions = { ...flushOptions, smallFileRows: 0 };
    try {
        return await mergeStreams(request, options, facts);
    } catch (error) {
        if (!(error instanceof UnsortedInputError)) throw error;
        const rows = facts.reduce((sum, fact) => sum + fact.rows, 0);
        if (rows > UNSORTED_FACTOR * request.targetRows) throw new UnsortedInputError(`${error.message}, and its group holds ${rows} rows: too many to merge in memory`);
        return mergeInMemory(request, options, facts);
    }
}

/** Files written by Sluice 0.1 (tags in arrival order): every row read, then encoded (sorted, merged) at once. */
async function mergeInMemory(request: MergeRequest, options: EncodeOptions, facts: readonly ParquetFacts[]): Promise<MergeResult> {
    const segments: ColumnarBatch[] = [];
    for (const [i, path] of request.inputs.entries()) {
        for await (const batch of readParquetBatches(path, request.measurement, facts[i]!, request.batchRows)) segments.push(batch);
    }
    const rowsIn = segments.reduce((sum, batch) => sum + batch.rows, 0);
    const { minSequence, maxSequence } = sequenceRange(facts);
    const encoded = encodeParquet({ database: request.database, segments, minSequence, maxSequence }, options, undefined, compactedTuning(request, options));
    const files = encoded.map((file) => ({ bytes: file.bytes, rows: file.rows, minTimeNs: file.minTimeNs, maxTimeNs: file.maxTimeNs }));
    return { files, rowsIn, rowsOut: files.reduce((sum, file) => sum + file.rows, 0), merged: encoded.reduce((sum, file) => sum + file.merged, 0) };
}

/** The request's column encodings (compacted-encodings.ts), for the time unit the outputs are written in. */
function compactedTuning(request: MergeRequest, options: EncodeOptions): WriterTuning | undefined {
    return compactedEncodings(request.encodings ?? "flush", options.timeUnit ?? ENCODE_DEFAULTS.timeUnit);
}

function sequenceRange(facts: readonly ParquetFacts[]): { minSequence: number; maxSequence: number } {
    return { minSequence: Math.min(...facts.map((fact) => fact.minSequence ?? 0)), maxSequence: Math.max(...facts.map((fact) => fact.maxSequence ?? 0)) };
}

async function mergeStreams(request: MergeRequest, options: EncodeOptions, facts: readonly ParquetFacts[]): Promise<MergeResult> {
    const parts: MergeResult[] = [];
    for (const slice of request.slices ?? [undefined]) parts.push(await mergeSlice(request, options, facts, slice));
    return {
        files: parts.flatMap((part) => part.files),
        rowsIn: parts.reduce((sum, part) => sum + part.rowsIn, 0),
        rowsOut: parts.reduce((sum, part) => sum + part.rowsOut, 0),
        merged: parts.reduce((sum, part) => sum + part.merged, 0),
    };
}

async function mergeSlice(request: MergeRequest, options: EncodeOptions, facts: readonly ParquetFacts[], slice: readonly [bigint, bigint] | undefined): Promise<MergeResult> {
    const tags = [...new Set(facts.flatMap((fact) => fact.tags))].sort(compareCodePoints);
    const order = new KeyOrder(tags);
    const { minSequence, maxSequence } = sequenceRange(facts);
    const tuning = compactedTuning(request, options);
    const cursors = request.inputs.map((path, i) => new Cursor(path, readParquetBatches(path, request.measurement, facts[i]!, request.batchRows), order, slice));
    const files: MergedFile[] = [];
    let pending: ColumnarBatch[] = [];
    let pendingRows = 0;
    let rowsIn = 0;
    let merged = 0;
    const flush = () => {
        if (pendingRows === 0) return;
        for (const file of encodeParquet({ database: request.database, segments: pending, minSequence, maxSequence }, options, undefined, tuning)) {
            files.push({ bytes: file.bytes, rows: file.rows, minTimeNs: file.minTimeNs, maxTimeNs: file.maxTimeNs });
            merged += file.merged;
        }
        pending = [];
        pendingRows = 0;
    };
    try {
        for (;;) {
            const active: Cursor[] = [];
            for (const cursor of cursors) if (await cursor.ready()) active.push(cursor);
            if (active.length === 0) break;
            // The smallest last key among the loaded batches: nothing unread sorts before it.
            let cut = active[0]!;
            for (const cursor of active) if (order.compare(cursor.batch!, cursor.batch!.rows - 1, cut.batch!, cut.batch!.rows - 1) < 0) cut = cursor;
            const pivot = cut.batch!;
            const step: ColumnarBatch[] = [];
            for (const cursor of active) {
                const end = order.upperBound(cursor.batch!, cursor.position, pivot, pivot.rows - 1);
                if (end > cursor.position) step.push(sliceBatch(cursor.batch!, cursor.position, end));
                cursor.position = end;
            }
            const stepRows = step.reduce((sum, batch) => sum + batch.rows, 0);
            if (pendingRows > 0 && pendingRows + stepRows > request.targetRows) flush();
            pending.push(...step);
            pendingRows += stepRows;
            rowsIn += stepRows;
        }
        flush();
    } finally {
        await Promise.all(cursors.map((cursor) => cursor.batches.return(undefined)));
    }
    return { files, rowsIn, rowsOut: files.reduce((sum, file) => sum + file.rows, 0), merged };
}

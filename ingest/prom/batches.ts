/**
 * A request's samples as rows (metric, series, time, value) in flat typed arrays, then grouped by
 * metric. Prometheus sends a few samples for each of hundreds of metrics per request (a shard's
 * slice of many scrapes), so nothing here is allocated per metric: rows are pushed into scratch
 * arrays reused by every request (decodes never interleave) up to a bound, then moved, metric
 * by metric, into one allocation the request owns (`GroupedRows`): its WAL entries are written
 * from it, and its rows staged from it once durable. Columnar batches (`toBatches`) are built
 * only where something needs them.
 */
import { endianness } from "node:os";
import { type Column, type ColumnarBatch, TIME_COLUMN, bitmapBytes } from "../../src/columnar/batch.js";
import { VALUE_FIELD } from "./schema.js";
import type { PromMetric, PromSeries, TagValueTable } from "./series-cache.js";

/** Where the low and high 32-bit words of a 64-bit element sit in a Uint32Array view. */
export const LO = endianness() === "LE" ? 0 : 1;
export const HI = 1 - LO;

/** Rows whose scratch arrays are kept between requests (larger requests get arrays of their own, dropped after). */
const KEPT_ROWS = 1 << 20;
const INITIAL_ROWS = 4096;

/** A dictionary this small is searched by a scan, larger ones through a Map. */
const SCAN_DICTIONARY = 16;

/** Bytes a row of a batch takes: time and value, and a code per tag column. */
export function rowBytes(tags: number): number {
    return 16 + 4 * tags;
}

let scratch = { metric: new Uint32Array(INITIAL_ROWS), local: new Uint32Array(INITIAL_ROWS), time: new Uint32Array(2 * INITIAL_ROWS), value: new Float64Array(INITIAL_ROWS) };
/** The tag value numbers of a request's series, in the order they were bound. */
let tagScratch = new Int32Array(8 * INITIAL_ROWS);

/** The rows of one request, in arrival order. */
export class RequestRows {
    rows = 0;
    #tags = tagScratch;
    #tagsLength = 0;
    #metric = scratch.metric;
    #local = scratch.local;
    #time = scratch.time;
    #value = scratch.value;

    push(metric: number, local: number, timeLo: number, timeHi: number, value: number): void {
        const row = this.rows;
        if (row === this.#metric.length) this.#grow();
        this.#metric[row] = metric;
        this.#local[row] = local;
        this.#time[2 * row + LO] = timeLo;
        this.#time[2 * row + HI] = timeHi;
        this.#value[row] = value;
        this.rows = row + 1;
    }

    /** Keeps a series' tag value numbers, `ids[start, start + count)`; returns where they are kept. */
    keepTags(ids: Int32Array, start: number, count: number): number {
        const at = this.#tagsLength;
        if (at + count > this.#tags.length) {
            const tags = new Int32Array(2 * (at + count));
            tags.set(this.#tags.subarray(0, at));
            this.#tags = tags;
            if (tags.length <= 8 * KEPT_ROWS) tagScratch = tags;
        }
        const tags = this.#tags;
        for (let t = 0; t < count; t++) tags[at + t] = ids[start + t]!;
        this.#tagsLength = at + count;
        return at;
    }

    #grow(): void {
        const capacity = this.#metric.length * 2;
        const grow = <T extends Uint32Array | Float64Array>(old: T, make: (n: number) => T, factor = 1): T => {
            const next = make(capacity * factor);
            next.set(old);
            return next;
        };
        this.#metric = grow(this.#metric, (n) => new Uint32Array(n));
        this.#local = grow(this.#local, (n) => new Uint32Array(n));
        this.#time = grow(this.#time, (n) => new Uint32Array(n), 2);
        this.#value = grow(this.#value, (n) => new Float64Array(n));
        if (capacity <= KEPT_ROWS) scratch = { metric: this.#metric, local: this.#local, time: this.#time, value: this.#value };
    }

    /**
     * The rows grouped by metric (`metrics` in order of their `index`; those without rows left
     * out), each metric's in arrival order. Returns the bytes their batches would take instead
     * when that is more than `maxBytes` (nothing allocated).
     */
    group(metrics: readonly PromMetric[], values: TagValueTable, maxBytes: number): GroupedRows | number {
        const count = metrics.length;
        const rows = this.rows;
        const sizes = new Uint32Array(count);
        for (let row = 0; row < rows; row++) sizes[this.#metric[row]!]!++;
        // Metrics with rows, renumbered densely.
        const kept: PromMetric[] = [];
        const renumber = new Int32Array(count);
        const layouts: TagLayout[] = [];
        let codeWords = 0;
        for (let m = 0; m < count; m++) {
            if (sizes[m] === 0) {
                renumber[m] = -1;
                continue;
            }
            renumber[m] = kept.push(metrics[m]!) - 1;
            const layout = tagLayout(metrics[m]!.series);
            layouts.push(layout);
            codeWords += sizes[m]! * layout.keys.length;
        }
        const bytes = 16 * rows + 4 * codeWords;
        if (bytes > maxBytes) return bytes;
        let tagCount = 0;
        for (let k = 0; k < kept.length; k++) if (layouts[k]!.columns === null) tagCount += kept[k]!.series.length * layouts[k]!.keys.length;
        const grouped = new GroupedRows(kept, layouts, values, rows, tagCount);
        // Each metric's series' tag value numbers, together (its series all have the same tag names: metrics that do not are written from batches).
        const { tagIds, tagStarts } = grouped;
        for (let k = 0, at = 0; k < kept.length; k++) {
            tagStarts[k] = at;
            if (layouts[k]!.columns !== null) continue;
            const width = layouts[k]!.keys.length;
            const tags = this.#tags;
            for (const from of kept[k]!.tagAt) for (let t = 0; t < width; t++) tagIds[at++] = tags[from + t]!;
        }
        const starts = grouped.starts;
        for (let m = 0; m < count; m++) if (renumber[m]! >= 0) starts[renumber[m]! + 1] = sizes[m]!;
        for (let k = 0; k < kept.length; k++) starts[k + 1]! += starts[k]!;
        const fill = starts.slice(0, kept.length);
        const { time, value, local } = grouped;
        for (let row = 0; row < rows; row++) {
            const at = fill[renumber[this.#metric[row]!]!]!++;
            time[2 * at] = this.#time[2 * row]!;
            time[2 * at + 1] = this.#time[2 * row + 1]!;
            value[at] = this.#value[row]!;
            local[at] = this.#local[row]!;
        }
        return grouped;
    }
}

/** A request's rows by metric: metric k's rows are `[starts[k], starts[k + 1])`, its series `series[k]`. */
export class GroupedRows {
    readonly starts: Uint32Array;
    /** Per row, the ns time as two 32-bit words (at LO and HI: the memory of an int64 array). */
    readonly time: Uint32Array;
    readonly value: Float64Array;
    /** Per row, its series' index in `series[k]`. */
    readonly local: Uint32Array;
    /** Per metric, its series in this request (the binding's list, kept: a later request binds a new one). */
    readonly series: readonly (readonly PromSeries[])[];
    /**
     * Metric k's series' tag value numbers (in `values`), series after series from `tagStarts[k]`:
     * for the metrics whose series all have the same tag names (`layouts[k].columns` null).
     */
    readonly tagIds: Int32Array;
    readonly tagStarts: Int32Array;

    constructor(
        readonly metrics: readonly PromMetric[],
        readonly layouts: readonly TagLayout[],
        readonly values: TagValueTable,
        readonly rows: number,
        tagCount: number,
    ) {
        const count = metrics.length;
        const memory = new ArrayBuffer(16 * rows + 4 * rows + 4 * (count + 1) + 4 * count + 4 * tagCount);
        this.time = new Uint32Array(memory, 0, 2 * rows);
        this.value = new Float64Array(memory, 8 * rows, rows);
        this.local = new Uint32Array(memory, 16 * rows, rows);
        this.starts = new Uint32Array(memory, 20 * rows, count + 1);
        this.tagStarts = new Int32Array(memory, 20 * rows + 4 * (count + 1), count);
        this.tagIds = new Int32Array(memory, 20 * rows + 4 * (2 * count + 1), tagCount);
        this.series = metrics.map((metric) => metric.series);
    }

    /** Metric k's rows as a columnar batch (its time and value columns views of this memory). */
    batch(k: number): ColumnarBatch {
        const start = this.starts[k]!;
        const size = this.starts[k + 1]! - start;
        const layout = this.layouts[k]!;
        const columns = new Map<string, Column>([[TIME_COLUMN, { type: "t", values: new BigInt64Array(this.time.buffer, this.time.byteOffset + 8 * start, size) }]]);
        addTagColumns(columns, this.series[k]!, layout, this.local.subarray(start, start + size), new Uint32Array(size * layout.keys.length));
        columns.set(VALUE_FIELD, { type: "f", values: this.value.subarray(start, start + size) });
        return { measurement: this.metrics[k]!.name, rows: size, tags: layout.keys, columns };
    }

    /** One batch per metric, in order. */
    toBatches(): ColumnarBatch[] {
        return this.metrics.map((_, k) => this.batch(k));
    }
}

export interface TagLayout {
    /** The tag columns: the union of the series' tag keys, in order of first use. */
    readonly keys: readonly string[];
    /** Per series, the column of each of its tags (flat, at `offsets[s]`); null when every series has `keys` exactly. */
    readonly columns: Int32Array | null;
    readonly offsets: Int32Array | null;
}

/** The tag keys of a metric's series: their union, and each series' column for each of its tags. */
export function tagLayout(series: readonly PromSeries[]): TagLayout {
    const first = series[0]?.tagKeys ?? [];
    // Usually every series of a metric has the same label names, in the same order (interned: the same array).
    let uniform = true;
    for (let s = 1; s < series.length && uniform; s++) {
        const keys = series[s]!.tagKeys;
        if (keys === first) continue;
        if (keys.length !== first.length) uniform = false;
        for (let t = 0; t < keys.length && uniform; t++) if (keys[t] !== first[t]) uniform = false;
    }
    if (uniform) return { keys: first, columns: null, offsets: null };
    const keys: string[] = [];
    const index = new Map<string, number>();
    const offsets = new Int32Array(series.length + 1);
    for (let s = 0; s < series.length; s++) offsets[s + 1] = offsets[s]! + series[s]!.tagKeys.length;
    const columns = new Int32Array(offsets[series.length]!);
    for (let s = 0; s < series.length; s++) {
        const tagKeys = series[s]!.tagKeys;
        for (let t = 0; t < tagKeys.length; t++) {
            let column = index.get(tagKeys[t]!);
            if (column === undefined) {
                column = keys.push(tagKeys[t]!) - 1;
                index.set(tagKeys[t]!, column);
            }
            columns[offsets[s]! + t] = column;
        }
    }
    return { keys, columns, offsets };
}

/**
 * Adds to `columns` the tag columns of a batch whose row i belongs to series `locals[i]` of
 * `series`, their codes in `memory` (rows × tags).
 */
export function addTagColumns(columns: Map<string, Column>, series: readonly PromSeries[], layout: TagLayout, locals: Uint32Array, memory: Uint32Array): void {
    const width = layout.keys.length;
    if (width === 0) return;
    const rows = locals.length;
    // code[s × width + column]: series s's code in that column, -1 when it has no such tag.
    const code = new Int32Array(series.length * width);
    if (layout.columns !== null) code.fill(-1);
    const dicts: string[][] = [];
    for (let column = 0; column < width; column++) dicts.push([]);
    let indexes: (Map<string, number> | undefined)[] | undefined;
    for (let s = 0; s < series.length; s++) {
        const { tagTexts } = series[s]!;
        for (let t = 0; t < tagTexts.length; t++) {
            const column = layout.columns === null ? t : layout.columns[layout.offsets![s]! + t]!;
            const text = tagTexts[t]!;
            const dict = dicts[column]!;
            let found = -1;
            if (indexes?.[column] === undefined) {
                for (let i = 0; i < dict.length; i++) {
                    if (dict[i] === text) {
                        found = i;
                        break;
                    }
                }
                if (found < 0 && dict.length >= SCAN_DICTIONARY) {
                    indexes ??= new Array<Map<string, number> | undefined>(width);
                    indexes[column] = new Map(dict.map((value, i) => [value, i]));
                }
            }
            const index = indexes?.[column];
            if (index !== undefined) found = index.get(text) ?? -1;
            if (found < 0) {
                found = dict.push(text) - 1;
                index?.set(text, found);
            }
            code[s * width + column] = found;
        }
    }
    for (let column = 0; column < width; column++) {
        const codes = memory.subarray(column * rows, (column + 1) * rows);
        let missing = 0;
        for (let row = 0; row < rows; row++) {
            const c = code[locals[row]! * width + column]!;
            if (c >= 0) codes[row] = c;
            else missing++;
        }
        if (missing === 0) {
            columns.set(layout.keys[column]!, { type: "s", dict: dicts[column]!, codes });
            continue;
        }
        const valid = new Uint8Array(bitmapBytes(rows));
        for (let row = 0; row < rows; row++) if (code[locals[row]! * width + column]! >= 0) valid[row >>> 3]! |= 1 << (row & 7);
        columns.set(layout.keys[column]!, { type: "s", dict: dicts[column]!, codes, valid });
    }
}

/**
 * A request's samples as rows (metric, series, time, value) in flat typed arrays, then one
 * columnar batch per metric with storage of exactly its size. Prometheus sends a few samples for
 * each of hundreds of metrics per request (a shard's slice of many scrapes), so nothing here is
 * allocated per metric until the end, when every size is known: per metric, a time and a value
 * column and one code column per tag. The row arrays are scratch memory reused by every request
 * (decodes never interleave) up to a bound.
 */
import { endianness } from "node:os";
import { type Column, type ColumnarBatch, TIME_COLUMN, bitmapBytes } from "../../src/columnar/batch.js";
import { VALUE_FIELD } from "./schema.js";
import type { PromMetric, PromSeries } from "./series-cache.js";

/** Where the low and high 32-bit words of a 64-bit element sit in a Uint32Array view. */
const LO = endianness() === "LE" ? 0 : 1;
const HI = 1 - LO;

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

/** The rows of one request, in arrival order. */
export class RequestRows {
    rows = 0;
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
     * One batch per metric (in `metrics` order, which is each one's `index`), rows in arrival
     * order; metrics without rows left out. Every column of every batch is a view of one
     * allocation (measured: a typed array per column, ~12 per metric, made GC a third of the
     * decode). Returns the bytes they would take instead when that is more than `maxBytes`
     * (nothing allocated).
     */
    toBatches(metrics: readonly PromMetric[], maxBytes: number): ColumnarBatch[] | number {
        const count = metrics.length;
        const rows = this.rows;
        const sizes = new Uint32Array(count);
        for (let row = 0; row < rows; row++) sizes[this.#metric[row]!]!++;
        const layouts = metrics.map((metric) => tagLayout(metric.series));
        let codeWords = 0;
        for (let m = 0; m < count; m++) codeWords += sizes[m]! * layouts[m]!.keys.length;
        const bytes = 16 * rows + 4 * codeWords;
        if (bytes > maxBytes) return bytes;
        // Layout: every metric's time, then every metric's values (8-byte aligned), then the tag codes.
        const memory = new ArrayBuffer(bytes);
        const starts = new Uint32Array(count);
        for (let m = 1; m < count; m++) starts[m] = starts[m - 1]! + sizes[m - 1]!;
        const timeWords = new Uint32Array(memory, 0, 2 * rows);
        const values = new Float64Array(memory, 8 * rows, rows);
        const locals = new Uint32Array(rows);
        const fill = starts.slice();
        for (let row = 0; row < rows; row++) {
            const at = fill[this.#metric[row]!]!++;
            timeWords[2 * at] = this.#time[2 * row]!;
            timeWords[2 * at + 1] = this.#time[2 * row + 1]!;
            values[at] = this.#value[row]!;
            locals[at] = this.#local[row]!;
        }
        const batches: ColumnarBatch[] = [];
        let codeOffset = 16 * rows;
        for (let m = 0; m < count; m++) {
            const size = sizes[m]!;
            if (size === 0) continue;
            const metric = metrics[m]!;
            const start = starts[m]!;
            const layout = layouts[m]!;
            const columns = new Map<string, Column>([[TIME_COLUMN, { type: "t", values: new BigInt64Array(memory, 8 * start, size) }]]);
            addTagColumns(columns, metric.series, layout, locals, start, size, new Uint32Array(memory, codeOffset, size * layout.keys.length));
            codeOffset += 4 * size * layout.keys.length;
            columns.set(VALUE_FIELD, { type: "f", values: values.subarray(start, start + size) });
            batches.push({ measurement: metric.name, rows: size, tags: layout.keys, columns });
        }
        return batches;
    }
}

interface TagLayout {
    /** The tag columns: the union of the series' tag keys, in order of first use. */
    readonly keys: readonly string[];
    /** Per series, the column of each of its tags (flat, at `offsets[s]`); null when every series has `keys` exactly. */
    readonly columns: Int32Array | null;
    readonly offsets: Int32Array | null;
}

/** The tag keys of a metric's series: their union, and each series' column for each of its tags. */
function tagLayout(series: readonly PromSeries[]): TagLayout {
    const first = series[0]?.tagKeys ?? [];
    // Usually every series of a metric has the same label names, in the same order (interned: compared by reference).
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

/** Series × tag cells of the code table kept between requests (a larger table is allocated for its batch alone). */
const KEPT_CODE_CELLS = 1 << 20;
let codeScratch = new Int32Array(1024);

/**
 * Adds to `columns` the tag columns of a batch whose row i belongs to series `locals[start + i]`
 * of `series`, their codes in `memory` (rows × tags).
 */
function addTagColumns(
    columns: Map<string, Column>,
    series: readonly PromSeries[],
    layout: TagLayout,
    locals: Uint32Array,
    start: number,
    rows: number,
    memory: Uint32Array,
): void {
    const width = layout.keys.length;
    if (width === 0) return;
    // code[s × width + column]: series s's code in that column, -1 when it has no such tag.
    const cells = series.length * width;
    if (codeScratch.length < cells && cells <= KEPT_CODE_CELLS) codeScratch = new Int32Array(Math.min(KEPT_CODE_CELLS, 2 * cells));
    const code = cells <= codeScratch.length ? codeScratch : new Int32Array(cells);
    if (layout.columns !== null) code.fill(-1, 0, cells);
    const dicts: string[][] = [];
    for (let column = 0; column < width; column++) dicts.push([]);
    let indexes: (Map<string, number> | undefined)[] | undefined;
    for (let s = 0; s < series.length; s++) {
        const { tagValues } = series[s]!;
        for (let t = 0; t < tagValues.length; t++) {
            const column = layout.columns === null ? t : layout.columns[layout.offsets![s]! + t]!;
            const dict = dicts[column]!;
            let found = -1;
            if (indexes?.[column] === undefined) {
                for (let i = 0; i < dict.length; i++) {
                    if (dict[i] === tagValues[t]) {
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
            if (index !== undefined) found = index.get(tagValues[t]!) ?? -1;
            if (found < 0) {
                found = dict.push(tagValues[t]!) - 1;
                index?.set(tagValues[t]!, found);
            }
            code[s * width + column] = found;
        }
    }
    for (let column = 0; column < width; column++) {
        const codes = memory.subarray(column * rows, (column + 1) * rows);
        let missing = 0;
        for (let row = 0; row < rows; row++) {
            const c = code[locals[start + row]! * width + column]!;
            if (c >= 0) codes[row] = c;
            else missing++;
        }
        if (missing === 0) {
            columns.set(layout.keys[column]!, { type: "s", dict: dicts[column]!, codes });
            continue;
        }
        const valid = new Uint8Array(bitmapBytes(rows));
        for (let row = 0; row < rows; row++) if (code[locals[start + row]! * width + column]! >= 0) valid[row >>> 3]! |= 1 << (row & 7);
        columns.set(layout.keys[column]!, { type: "s", dict: dicts[column]!, codes, valid });
    }
}

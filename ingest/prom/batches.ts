/**
 * A request's samples as rows (metric, series, time, value) in flat typed arrays, then one
 * columnar batch per metric with storage of exactly its size. Prometheus sends a few samples for
 * each of hundreds of metrics per request (a shard's slice of many scrapes), so nothing here is
 * allocated per metric until the end, when every size is known: per metric, a time and a value
 * column and one code column per tag. The row arrays are scratch memory reused by every request
 * (decodes never interleave) up to a bound.
 */
import { endianness } from "node:os";
import { type Column, type ColumnarBatch, type StringColumn, TIME_COLUMN, bitmapBytes } from "../../src/columnar/batch.js";
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
            const codes = new Uint32Array(memory, codeOffset, size * layout.keys.length);
            codeOffset += codes.byteLength;
            const columns = new Map<string, Column>([[TIME_COLUMN, { type: "t", values: new BigInt64Array(memory, 8 * start, size) }]]);
            const tags = tagColumns(metric.series, layout, locals.subarray(start, start + size), codes);
            for (const [name, column] of tags) columns.set(name, column);
            columns.set(VALUE_FIELD, { type: "f", values: values.subarray(start, start + size) });
            batches.push({ measurement: metric.name, rows: size, tags: [...tags.keys()], columns });
        }
        return batches;
    }
}

interface TagLayout {
    readonly keys: readonly string[];
    /** The column of series s's t-th tag. */
    readonly columnOf: (s: number, t: number) => number;
}

function tagLayout(series: readonly PromSeries[]): TagLayout {
    const first = series[0]?.tagKeys ?? [];
    // Usually every series of a metric has the same label names, in the same order.
    if (series.every((s) => s.tagKeys.length === first.length && s.tagKeys.every((key, t) => key === first[t]))) return { keys: first, columnOf: (_, t) => t };
    const keys: string[] = [];
    const index = new Map<string, number>();
    const columns = series.map((s) =>
        s.tagKeys.map((key) => {
            let column = index.get(key);
            if (column === undefined) {
                column = keys.push(key) - 1;
                index.set(key, column);
            }
            return column;
        }),
    );
    return { keys, columnOf: (s, t) => columns[s]![t]! };
}

/** Series × tag cells of the code table kept between requests (a larger table is allocated for its batch alone). */
const KEPT_CODE_CELLS = 1 << 20;
let codeScratch = new Int32Array(1024);

/** The tag columns of a batch whose row i belongs to series `locals[i]` of `series`, their codes in `memory` (rows × tags). */
function tagColumns(series: readonly PromSeries[], { keys, columnOf }: TagLayout, locals: Uint32Array, memory: Uint32Array): Map<string, StringColumn> {
    const out = new Map<string, StringColumn>();
    const width = keys.length;
    // code[s × width + column]: series s's code in that column, -1 when it has no such tag.
    const cells = series.length * width;
    if (codeScratch.length < cells && cells <= KEPT_CODE_CELLS) codeScratch = new Int32Array(Math.min(KEPT_CODE_CELLS, 2 * cells));
    const code = cells <= codeScratch.length ? codeScratch : new Int32Array(cells);
    code.fill(-1, 0, cells);
    const dicts: string[][] = keys.map(() => []);
    const indexes: (Map<string, number> | undefined)[] = keys.map(() => undefined);
    for (let s = 0; s < series.length; s++) {
        const { tagValues } = series[s]!;
        for (let t = 0; t < tagValues.length; t++) {
            const column = columnOf(s, t);
            code[s * width + column] = dictionaryCode(dicts[column]!, indexes, column, tagValues[t]!);
        }
    }
    const rows = locals.length;
    for (let column = 0; column < width; column++) {
        const codes = memory.subarray(column * rows, (column + 1) * rows);
        let missing = 0;
        for (let row = 0; row < rows; row++) {
            const c = code[locals[row]! * width + column]!;
            if (c >= 0) codes[row] = c;
            else missing++;
        }
        let valid: Uint8Array | undefined;
        if (missing > 0) {
            valid = new Uint8Array(bitmapBytes(rows));
            for (let row = 0; row < rows; row++) if (code[locals[row]! * width + column]! >= 0) valid[row >>> 3]! |= 1 << (row & 7);
        }
        out.set(keys[column]!, valid === undefined ? { type: "s", dict: dicts[column]!, codes } : { type: "s", dict: dicts[column]!, codes, valid });
    }
    return out;
}

/** `value`'s code in `dict`, added when new: a scan while the dictionary is small, a Map beyond. */
function dictionaryCode(dict: string[], indexes: (Map<string, number> | undefined)[], column: number, value: string): number {
    let index = indexes[column];
    if (index === undefined) {
        for (let i = 0; i < dict.length; i++) if (dict[i] === value) return i;
        if (dict.length < SCAN_DICTIONARY) return dict.push(value) - 1;
        index = new Map(dict.map((v, i) => [v, i]));
        indexes[column] = index;
    }
    let found = index.get(value);
    if (found === undefined) {
        found = dict.push(value) - 1;
        index.set(value, found);
    }
    return found;
}

/**
 * Row order inside the Parquet files: by UTC hour (one file each), then by the tag values in
 * `batch.tags` order (the encoder sorts the tag names first, so files of one measurement share
 * one order and compaction can merge them as streams; nulls first, strings in UTF-8 byte order, as DuckDB and Parquet
 * statistics compare them), then by time; ties keep their arrival order.
 *
 * How, for 1M rows: every tag dictionary is ranked once (only the codes some row uses); the
 * ranks are combined into one series number per row (mixed radix, re-numbered densely whenever
 * the product of cardinalities would pass 2^53, so any number of tags works without a
 * comparator); two stable counting sorts (series, then hour) give the order. Rows usually
 * arrive time-ordered within a series, so one pass checks that and only the series that are
 * not get a (time, arrival) sort.
 */
import { type ColumnarBatch, type StringColumn, type TimeColumn, TIME_COLUMN, bitIsSet } from "../../src/columnar/batch.js";
import { int64Words, splitByHour } from "./hour.js";

/** UTF-8 byte order, which is code point order: UTF-16 order except around surrogates. */
export function compareCodePoints(a: string, b: string): number {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
        let x = a.charCodeAt(i);
        let y = b.charCodeAt(i);
        if (x !== y) {
            // UTF-16 puts surrogates (D800–DFFF, code points ≥ U+10000) below E000–FFFF: lift them.
            if (x >= 0xd800 && y >= 0xd800) {
                x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
                y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
            }
            return x - y;
        }
    }
    return a.length - b.length;
}

const SURROGATE = /[\ud800-\udfff]/;

function compareUnits(a: string, b: string): number {
    return a < b ? -1 : a > b ? 1 : 0;
}

/** A string column's dictionary, reduced to the values some non-null row uses, in order. */
export interface RankedDictionary {
    /** The distinct used values, ascending (code point order). */
    readonly values: readonly string[];
    /** Per code: 1 + the index of its value in `values`; 0 for codes no non-null row uses. */
    readonly rankOfCode: Int32Array;
}

export function rankDictionary(column: StringColumn, rows: number): RankedDictionary {
    const { dict, codes, valid } = column;
    const used = new Uint8Array(dict.length);
    if (valid === undefined) {
        for (let i = 0; i < rows; i++) used[codes[i]!] = 1;
    } else {
        for (let i = 0; i < rows; i++) if (bitIsSet(valid, i)) used[codes[i]!] = 1;
    }
    const usedCodes: number[] = [];
    let surrogates = false;
    for (let code = 0; code < dict.length; code++) {
        if (used[code] === 1) {
            usedCodes.push(code);
            if (!surrogates && SURROGATE.test(dict[code]!)) surrogates = true;
        }
    }
    // Without surrogates, UTF-16 order is code point order and the engine's own compare is faster.
    const compare = surrogates ? compareCodePoints : compareUnits;
    usedCodes.sort((a, b) => compare(dict[a]!, dict[b]!));
    const rankOfCode = new Int32Array(dict.length);
    const values: string[] = [];
    for (const code of usedCodes) {
        const value = dict[code]!;
        if (values.length === 0 || values[values.length - 1] !== value) values.push(value);
        rankOfCode[code] = values.length;
    }
    return { values, rankOfCode };
}

export interface HourRange {
    /** floor(time / 1h) of the rows in this range. */
    readonly hour: number;
    /** The range's rows are `permutation[start..end)`. */
    readonly start: number;
    readonly end: number;
}

export interface RowOrder {
    /** Row indices in output order; undefined when that is 0..rows-1 (nothing to move). */
    readonly permutation: Uint32Array | undefined;
    /** The hours touched, ascending, each a contiguous range of the order. */
    readonly hours: readonly HourRange[];
    /** The ranked dictionary of each tag, in `batch.tags` order. */
    readonly tags: readonly RankedDictionary[];
    /** Distinct (hour, series) groups that were not time-ordered on arrival and were sorted. */
    readonly resortedGroups: number;
    /** Per row, its series number: equal for rows with the same tag values. */
    readonly seriesKeys: Uint32Array;
}

const MAX_EXACT = 2 ** 53;
/** A counting sort over this many buckets (or 2 × rows, whichever is larger) is cheaper than re-numbering. */
const MIN_DIRECT_BUCKETS = 1 << 16;

/**
 * Rewrites `keys` (exact integers) as their dense ranks 0..d-1, same order; returns d. By a
 * native numeric sort of a copy and a binary search per row: no per-key allocation, and the
 * same cost whether the keys repeat or are all distinct.
 */
function densify(keys: Float64Array): number {
    const sorted = new Float64Array(keys).sort();
    let distinct = 0;
    for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[distinct - 1]) sorted[distinct++] = sorted[i]!;
    for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        let low = 0;
        let high = distinct - 1;
        while (low < high) {
            const mid = (low + high) >>> 1;
            if (sorted[mid]! < key) low = mid + 1;
            else high = mid;
        }
        keys[i] = low;
    }
    return distinct;
}

/** Per row, the rank of its tag value (0 for null), written as `out[i] = out[i] · radix + rank`. */
function accumulateRanks(out: Float64Array | Uint32Array, radix: number, column: StringColumn, ranked: RankedDictionary, rows: number): void {
    const { codes, valid } = column;
    const { rankOfCode } = ranked;
    if (valid === undefined) {
        for (let i = 0; i < rows; i++) out[i] = out[i]! * radix + rankOfCode[codes[i]!]!;
    } else {
        for (let i = 0; i < rows; i++) out[i] = out[i]! * radix + (bitIsSet(valid, i) ? rankOfCode[codes[i]!]! : 0);
    }
}

/**
 * Per row, its series number: an integer in [0, count) ordered like the rows' tag tuples
 * (compared tag by tag, null first).
 */
export function seriesNumbers(columns: readonly StringColumn[], ranked: readonly RankedDictionary[], rows: number): { keys: Uint32Array; count: number } {
    if (columns.length === 0) return { keys: new Uint32Array(rows), count: 1 };
    if (columns.length === 1) {
        const keys = new Uint32Array(rows);
        accumulateRanks(keys, 0, columns[0]!, ranked[0]!, rows);
        return { keys, count: ranked[0]!.values.length + 1 };
    }
    const wide = new Float64Array(rows);
    let count = 1;
    for (let t = 0; t < columns.length; t++) {
        const radix = ranked[t]!.values.length + 1;
        // Invariant kept: every key stays an exact integer (below 2^53).
        if (count * radix > MAX_EXACT) count = densify(wide);
        if (count * radix > MAX_EXACT) throw new RangeError(`${rows} rows × ${radix} tag values overflow the series numbering`);
        accumulateRanks(wide, radix, columns[t]!, ranked[t]!, rows);
        count *= radix;
    }
    if (count > Math.max(MIN_DIRECT_BUCKETS, rows * 2)) count = densify(wide);
    return { keys: new Uint32Array(wide), count };
}

/** A stable counting sort of `order` (default 0..n-1) by `keys[row]` in [0, buckets). */
export function countingSort(keys: Uint32Array, buckets: number, order?: Uint32Array): Uint32Array {
    const n = keys.length;
    const next = new Uint32Array(buckets + 1);
    for (let i = 0; i < n; i++) next[keys[i]! + 1]!++;
    for (let b = 1; b <= buckets; b++) next[b]! += next[b - 1]!;
    const out = new Uint32Array(n);
    if (order === undefined) {
        for (let i = 0; i < n; i++) out[next[keys[i]!]!++] = i;
    } else {
        for (let j = 0; j < n; j++) {
            const i = order[j]!;
            out[next[keys[i]!]!++] = i;
        }
    }
    return out;
}

/** Sorts `order[start..end)` by (time, row index). */
function sortRangeByTime(order: Uint32Array, start: number, end: number, words: Int32Array): void {
    const rows = Array.from(order.subarray(start, end));
    rows.sort((a, b) => {
        const high = words[2 * a + 1]! - words[2 * b + 1]!;
        if (high !== 0) return high;
        const low = (words[2 * a]! >>> 0) - (words[2 * b]! >>> 0);
        return low !== 0 ? low : a - b;
    });
    order.set(rows, start);
}

/**
 * Which series have a row whose time is below an earlier row's of the same series (1 in the
 * result), or undefined when none has.
 */
function disorderedSeries(keys: Uint32Array, count: number, words: Int32Array, rows: number): Uint8Array | undefined {
    // The last time seen per series, as (high, low) words; INT64_MIN to start.
    const lastHigh = new Int32Array(count).fill(-0x80000000);
    const lastLow = new Uint32Array(count);
    let disordered: Uint8Array | undefined;
    for (let i = 0; i < rows; i++) {
        const key = keys[i]!;
        const high = words[2 * i + 1]!;
        const low = words[2 * i]! >>> 0;
        const previousHigh = lastHigh[key]!;
        if (high < previousHigh || (high === previousHigh && low < lastLow[key]!)) {
            (disordered ??= new Uint8Array(count))[key] = 1;
            continue;
        }
        lastHigh[key] = high;
        lastLow[key] = low;
    }
    return disordered;
}

/** The order of a batch's rows in the output files (see the module comment). */
export function orderRows(batch: ColumnarBatch): RowOrder {
    const { rows } = batch;
    const time = (batch.columns.get(TIME_COLUMN) as TimeColumn).values;
    const split = splitByHour(time, rows);
    const tagColumns = batch.tags.map((name) => batch.columns.get(name) as StringColumn);
    const tags = tagColumns.map((column) => rankDictionary(column, rows));
    const series = seriesNumbers(tagColumns, tags, rows);

    let permutation: Uint32Array | undefined;
    if (series.count > 1) permutation = countingSort(series.keys, series.count);
    if (split.hours.length > 1) permutation = countingSort(split.index, split.hours.length, permutation);

    // Rows usually arrive time-ordered within each series: check that in one sequential pass
    // (a series' last time in a small table), and sort only the groups of series that are not.
    const words = int64Words(time);
    const disordered = disorderedSeries(series.keys, series.count, words, rows);
    let resortedGroups = 0;
    if (disordered !== undefined) {
        permutation ??= Uint32Array.from({ length: rows }, (_, i) => i);
        let groupStart = 0;
        for (let j = 1; j <= rows; j++) {
            const a = permutation[j - 1]!;
            const b = j === rows ? -1 : permutation[j]!;
            if (b >= 0 && series.keys[a] === series.keys[b] && split.index[a] === split.index[b]) continue;
            if (disordered[series.keys[a]!] === 1 && j - groupStart > 1) {
                sortRangeByTime(permutation, groupStart, j, words);
                resortedGroups++;
            }
            groupStart = j;
        }
    }

    const hours: HourRange[] = [];
    const counts = new Uint32Array(split.hours.length);
    for (let i = 0; i < rows; i++) counts[split.index[i]!]!++;
    let start = 0;
    for (let h = 0; h < split.hours.length; h++) {
        hours.push({ hour: split.hours[h]!, start, end: start + counts[h]! });
        start += counts[h]!;
    }
    return { permutation, hours, tags, resortedGroups, seriesKeys: series.keys };
}

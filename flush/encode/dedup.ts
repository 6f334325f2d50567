/**
 * Point identity (DESIGN.md §3 invariant 6, InfluxDB's rule): rows of one measurement with the
 * same tag set and the same time are one point. Written again (a client's retry, a
 * correction), the later write's non-null fields win and the fields it lacks keep their
 * earlier values ("last non-null value per field").
 *
 * Works on a row order from `orderRows`: duplicates are neighbours there (same series, same
 * time, so same hour), in arrival order, which is WAL order within a flush and file order
 * (oldest file first) within a compaction. Each run of duplicates becomes its last row; a field
 * whose last row is null takes the latest row of the run that has a value.
 */
import { type ColumnarBatch, type TimeColumn, TIME_COLUMN, bitIsSet } from "../../src/columnar/batch.js";
import { int64Words } from "./hour.js";
import type { HourRange, RowOrder } from "./sort.js";

export interface MergedOrder {
    /** One row per point: the last row of each run, in output order. */
    readonly permutation: Uint32Array;
    readonly hours: readonly HourRange[];
    /** For nullable fields where some run's last row is null but an earlier one is not: the row to take per output row. */
    readonly fieldOrders: ReadonlyMap<string, Uint32Array>;
    /** Rows merged into others. */
    readonly merged: number;
}

// Invariant kept: the output holds one row per distinct (series, time) of the input, and each
// field of it holds the value of the latest row of its run that has one (null if none has).
export function mergeDuplicates(batch: ColumnarBatch, order: RowOrder): MergedOrder | undefined {
    const rows = batch.rows;
    const permutation = order.permutation ?? Uint32Array.from({ length: rows }, (_, i) => i);
    const series = order.seriesKeys;
    const words = int64Words((batch.columns.get(TIME_COLUMN) as TimeColumn).values);
    const same = (a: number, b: number) => series[a] === series[b] && words[2 * a] === words[2 * b] && words[2 * a + 1] === words[2 * b + 1];
    let kept = 0;
    for (let j = 0; j < rows; j++) if (j === 0 || !same(permutation[j - 1]!, permutation[j]!)) kept++;
    if (kept === rows) return undefined;
    // Runs of duplicates: [start, end) in `permutation`, and the output row each becomes.
    const keep = new Uint32Array(kept);
    const runOf = new Int32Array(kept);
    const runs: { out: number; start: number; end: number }[] = [];
    let out = -1;
    for (let j = 0; j < rows; j++) {
        const row = permutation[j]!;
        if (j === 0 || !same(permutation[j - 1]!, row)) {
            out++;
            runOf[out] = -1;
        } else if (runOf[out] === -1) {
            runOf[out] = runs.length;
            runs.push({ out, start: j - 1, end: j + 1 });
        } else runs[runOf[out]!]!.end = j + 1;
        keep[out] = row;
    }
    const fieldOrders = new Map<string, Uint32Array>();
    const tags = new Set(batch.tags);
    for (const [name, column] of batch.columns) {
        if (column.type === "t" || tags.has(name) || column.valid === undefined) continue;
        const valid = column.valid;
        let chosen: Uint32Array | undefined;
        for (const run of runs) {
            if (bitIsSet(valid, keep[run.out]!)) continue;
            for (let j = run.end - 2; j >= run.start; j--) {
                const row = permutation[j]!;
                if (!bitIsSet(valid, row)) continue;
                chosen ??= keep.slice();
                chosen[run.out] = row;
                break;
            }
        }
        if (chosen !== undefined) fieldOrders.set(name, chosen);
    }
    // A run never crosses an hour (same time), so each hour keeps the runs that start in it.
    const hours: HourRange[] = [];
    let next = 0;
    let j = 0;
    for (const range of order.hours) {
        const start = next;
        for (; j < range.end; j++) if (j === range.start || !same(permutation[j - 1]!, permutation[j]!)) next++;
        hours.push({ hour: range.hour, start, end: next });
    }
    return { permutation: keep, hours, fieldOrders, merged: rows - kept };
}

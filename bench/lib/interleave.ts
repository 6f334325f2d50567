/**
 * Interleaved runs: on a loaded, shared machine the figures drift over minutes, so variants are
 * never measured one after the other in blocks. Every round runs each variant once; compared
 * variants are paired by round, and what is reported is the ratio of their medians with the
 * range of the per-round ratios.
 */
import { stat } from "./stats.js";

export interface Slot<T> {
    /** 1-based round. */
    readonly repeat: number;
    readonly item: T;
    /** 0-based position in the whole run, and the run's length (for progress lines). */
    readonly index: number;
    readonly total: number;
}

/**
 * `repeats` rounds over `items`. Each round runs the items in order, or with `alternate`, in
 * reverse every other round (A B, B A, A B, …) so neither variant always runs first after a
 * pause or always follows the other.
 */
export function interleaved<T>(items: readonly T[], repeats: number, options: { alternate?: boolean } = {}): Slot<T>[] {
    const slots: Slot<T>[] = [];
    const total = items.length * repeats;
    for (let repeat = 1; repeat <= repeats; repeat++) {
        const order = options.alternate === true && repeat % 2 === 0 ? [...items].reverse() : items;
        for (const item of order) slots.push({ repeat, item, index: slots.length, total });
    }
    return slots;
}

/** Every combination of the lists, the first list varying slowest (the nested loops' order). */
export function cells<A, B>(first: readonly A[], second: readonly B[]): [A, B][] {
    return first.flatMap((a) => second.map((b): [A, B] => [a, b]));
}

export interface Ratio {
    /** Median of `a` ÷ median of `b`. */
    readonly ofMedians: number;
    /** Range of a ÷ b within each round where both ran. */
    readonly min: number;
    readonly max: number;
}

/** Compares two variants' figures, each tagged with its round. */
export function ratioByRound(a: readonly { repeat: number; value: number }[], b: readonly { repeat: number; value: number }[]): Ratio | undefined {
    if (a.length === 0 || b.length === 0) return undefined;
    const ofMedians = stat(a.map((x) => x.value)).median / stat(b.map((x) => x.value)).median;
    const paired = a.flatMap((x) => {
        const other = b.find((y) => y.repeat === x.repeat);
        return other === undefined ? [] : [x.value / other.value];
    });
    const range = stat(paired);
    return { ofMedians, min: range.min, max: range.max };
}

/** Medians and ranges of repeated measurements (a loaded machine: never a single figure). */

export interface Stat {
    readonly median: number;
    readonly min: number;
    readonly max: number;
}

/** Median, min and max of the finite values (NaN for each when there are none). */
export function stat(values: readonly number[]): Stat {
    const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
    if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
    const mid = finite.length >> 1;
    const median = finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
    return { median, min: finite[0]!, max: finite.at(-1)! };
}

export function median(values: readonly number[]): number {
    return stat(values).median;
}

/** The closest of some known names to a mistyped one, for "did you mean …" messages. */

/**
 * Edits between `a` and `b`: insertions, deletions, substitutions, and swaps of two neighbours
 * (a typo's usual kinds), each counting one (the optimal string alignment distance).
 */
export function editDistance(a: string, b: string): number {
    // Rows i-2, i-1 and i of the table, over b's prefixes.
    let before = new Array<number>(b.length + 1).fill(0);
    let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const current = [i];
        for (let j = 1; j <= b.length; j++) {
            const substitution = a[i - 1] === b[j - 1] ? 0 : 1;
            let best = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + substitution);
            if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, before[j - 2]! + 1);
            current.push(best);
        }
        before = previous;
        previous = current;
    }
    return previous[b.length]!;
}

/** The name of `names` with the fewest edits from `name` (the first of equals); undefined for no names. */
export function closest<T extends string>(name: string, names: Iterable<T>): T | undefined {
    let best: T | undefined;
    let bestDistance = Number.POSITIVE_INFINITY;
    for (const candidate of names) {
        const distance = editDistance(name, candidate);
        if (distance < bestDistance) {
            best = candidate;
            bestDistance = distance;
        }
    }
    return best;
}

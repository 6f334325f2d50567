/**
 * Which files of a partition compaction merges, and where it cuts its outputs (pure, so it is
 * tested on its own).
 *
 * A file of fewer than half `maxRowsPerFile` rows is small. Chosen: every small file, and every
 * file whose time range overlaps another file's (two files can hold the same point only if
 * their times overlap: a retry, a late write). A big file that overlaps nothing is left alone,
 * so big files are never rewritten for nothing. The chosen files go oldest write first (by their
 * write rank) so that a later write wins. Outputs are cut into time slices of about
 * `maxRowsPerFile` rows each: files that cover disjoint times, so the next late write reopens
 * only the slice it falls in, not the whole hour.
 */

export interface PlannedFile {
    readonly name: string;
    readonly rows: number;
    readonly minTimeNs: bigint;
    readonly maxTimeNs: bigint;
    /** Write order: a file's writes are newer than every file's with a lower rank (on one ingester: its highest WAL sequence). */
    readonly writeRank: number;
}

export interface CompactionPlan {
    /** The inputs, oldest write first. */
    readonly inputs: readonly PlannedFile[];
    /** Time ranges [start, end) covering every input row; each output file holds one. */
    readonly slices: readonly (readonly [bigint, bigint])[];
}

function overlaps(a: PlannedFile, b: PlannedFile): boolean {
    return a.minTimeNs <= b.maxTimeNs && b.minTimeNs <= a.maxTimeNs;
}

// Invariant kept: a file left out shares no time with any other file (so no point with any),
// and the slices cover [min time, max time] of the inputs without gaps or overlaps.
export function planCompaction(files: readonly PlannedFile[], maxRowsPerFile: number): CompactionPlan | undefined {
    const small = (file: PlannedFile) => file.rows < maxRowsPerFile / 2;
    const chosen = files.filter((file) => small(file) || files.some((other) => other !== file && overlaps(file, other)));
    if (chosen.length < 2) return undefined;
    const inputs = [...chosen].sort((a, b) => a.writeRank - b.writeRank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const rows = inputs.reduce((sum, file) => sum + file.rows, 0);
    const start = inputs.reduce((min, file) => (file.minTimeNs < min ? file.minTimeNs : min), inputs[0]!.minTimeNs);
    const end = inputs.reduce((max, file) => (file.maxTimeNs > max ? file.maxTimeNs : max), inputs[0]!.maxTimeNs) + 1n;
    const count = BigInt(Math.max(1, Math.ceil(rows / maxRowsPerFile)));
    const width = (end - start + count - 1n) / count;
    const slices: (readonly [bigint, bigint])[] = [];
    for (let from = start; from < end; from += width) slices.push([from, from + width < end ? from + width : end]);
    return { inputs, slices };
}

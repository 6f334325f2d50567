/**
 * Compaction (DESIGN.md §4 "Lake upkeep"): merges the files of a partition (one hour of one
 * measurement) into few, in the worker, and commits the swap through the commit protocol, so a
 * reader sees the partition's old files or its new ones, never both, never neither.
 *
 * When: a partition that received files is due once it holds `minFiles` files, or once the
 * oldest file it received since its last compaction is `maxDelayMs` old: that is the bound on
 * how long a duplicate of a point (a retry written into another file) stays visible. Forced
 * (POST /api/v1/compact, `sluice compact`): every partition with more than one file, now.
 */
import { randomBytes } from "node:crypto";
import type { Clock } from "../../src/clock.js";
import { messageOf } from "../../src/errors.js";
import type { Logger } from "../../src/log.js";
import type { CommitProtocol } from "../commit.js";
import { EncodeWorkerClosedError } from "../encode/errors.js";
import type { MergeRequest, MergeResult } from "../encode/merge.js";
import type { ParquetFacts } from "../encode/read-parquet.js";
import type { CompactedEncodings, EncodeOptions } from "../encode/types.js";
import type { Lake, LakeFile } from "../lake/lake.js";
import type { PartitionRef, StagedFile } from "../manifest/records.js";
import { planCompaction } from "./compaction-plan.js";

/** What compaction asks of the encode worker. */
export interface MergeWorker {
    describe(paths: readonly string[]): Promise<ParquetFacts[]>;
    merge(request: MergeRequest, options: EncodeOptions): Promise<MergeResult>;
    /** Gives back the memory the merges took (their thread stops while idle; the next merge starts it again). */
    release(): Promise<void>;
}

/** Resolved options (defaults live in the config schema). */
export interface CompactionOptions {
    readonly minFiles: number;
    readonly maxDelayMs: number;
    readonly maxRowsPerFile: number;
    /** Rows of a row group of an output file at most. */
    readonly rowGroupRows: number;
    /** Rows read from an input at a time (the merge's memory per input). */
    readonly batchRows: number;
    /** The outputs' column encodings. */
    readonly encodings: CompactedEncodings;
}

/** What a pass did, in the shape POST /api/v1/compact answers (DESIGN.md §4). */
export interface CompactionReport {
    partitions: number;
    files_in: number;
    files_out: number;
    rows_in: number;
    rows_out: number;
    duplicates_merged: number;
}

export function emptyCompactionReport(): CompactionReport {
    return { partitions: 0, files_in: 0, files_out: 0, rows_in: 0, rows_out: 0, duplicates_merged: 0 };
}

interface Dirty {
    readonly partition: PartitionRef;
    /** When the oldest file it received since its last compaction arrived. */
    since: number;
    /** Bumped by every add: a compaction that saw an older version leaves the entry. */
    version: number;
}

function keyOf(partition: PartitionRef): string {
    return [partition.database, partition.measurement, partition.date, partition.hour, partition.measurementDir ?? ""].join("\u0000");
}

/** Compaction output names: the WAL range they hold and a marker no flush file has. */
function outputName(minSequence: number, maxSequence: number, token: string, index: number): string {
    return `${String(minSequence).padStart(20, "0")}-${String(maxSequence).padStart(20, "0")}-c${token}-${index}.parquet`;
}

export class Compactor {
    readonly #dirty = new Map<string, Dirty>();
    /** Footer facts by path, size and mtime (files never change once written). */
    readonly #facts = new Map<string, ParquetFacts>();

    constructor(
        readonly deps: {
            readonly lake: Lake;
            readonly commit: Pick<CommitProtocol, "stage" | "discard" | "commit">;
            readonly worker: MergeWorker;
            readonly encodeOptions: EncodeOptions;
            readonly log: Logger;
            readonly clock: Clock;
        },
        readonly options: CompactionOptions,
    ) {}

    /** Partitions that received files (from the flush's commits). */
    noteAdded(partitions: readonly PartitionRef[]): void {
        const now = this.deps.clock.now();
        for (const partition of partitions) {
            const key = keyOf(partition);
            const dirty = this.#dirty.get(key);
            if (dirty === undefined) this.#dirty.set(key, { partition, since: now, version: 0 });
            else dirty.version++;
        }
    }

    /** Marks every partition on disk with more than one file (at start: what a previous run left). */
    async scan(): Promise<number> {
        let found = 0;
        for await (const partition of this.deps.lake.partitions()) {
            if ((await this.deps.lake.files(partition)).length < 2) continue;
            const key = keyOf(partition);
            if (!this.#dirty.has(key)) this.#dirty.set(key, { partition, since: this.deps.clock.now(), version: 0 });
            found++;
        }
        return found;
    }

    /** Compacts the partitions that are due (all of them with `force`), one at a time. */
    async run(force = false): Promise<CompactionReport> {
        if (force) await this.scan();
        const report = emptyCompactionReport();
        const now = this.deps.clock.now();
        for (const [key, dirty] of [...this.#dirty]) {
            const files = await this.deps.lake.files(dirty.partition);
            if (files.length < 2) {
                this.#dirty.delete(key);
                continue;
            }
            if (!force && files.length < this.options.minFiles && now - dirty.since < this.options.maxDelayMs) continue;
            const seen = dirty.version;
            try {
                const done = await this.deps.lake.exclusive(dirty.partition, () => this.compact(dirty.partition, files));
                if (done !== undefined) {
                    report.partitions++;
                    report.files_in += done.files_in;
                    report.files_out += done.files_out;
                    report.rows_in += done.rows_in;
                    report.rows_out += done.rows_out;
                    report.duplicates_merged += done.duplicates_merged;
                }
            } catch (error) {
                if (error instanceof EncodeWorkerClosedError) {
                    this.deps.log.info("compaction stopped by the shutdown; the partition is compacted after the next start", {
                        partition: this.deps.lake.describe(dirty.partition),
                    });
                    break;
                }
                this.deps.log.error("compacting a partition failed; it is tried again on the next pass", {
                    partition: this.deps.lake.describe(dirty.partition),
                    error: messageOf(error),
                });
                continue;
            }
            // Files that arrived meanwhile keep the partition due, counted from now.
            if (dirty.version === seen) this.#dirty.delete(key);
            else dirty.since = this.deps.clock.now();
        }
        // Between passes the merge thread holds no memory: what one large merge took does not stay for the process's life.
        await this.deps.worker.release();
        return report;
    }

    // Invariant kept: the partition's chosen files are replaced by their merge in one committed
    // change, or nothing changes (staged outputs are discarded on failure).
    async compact(partition: PartitionRef, files: readonly LakeFile[]): Promise<Omit<CompactionReport, "partitions"> | undefined> {
        const copies = await this.deps.lake.localCopies(files);
        try {
            return await this.#compact(partition, files, copies.paths);
        } finally {
            await copies.release();
        }
    }

    async #compact(partition: PartitionRef, files: readonly LakeFile[], paths: readonly string[]): Promise<Omit<CompactionReport, "partitions"> | undefined> {
        const facts = await this.#describe(files, paths);
        const plan = planCompaction(
            files.map((file, i) => ({
                name: file.name,
                rows: facts[i]!.rows,
                minTimeNs: facts[i]!.minTimeNs,
                maxTimeNs: facts[i]!.maxTimeNs,
                writeRank: file.rank ?? facts[i]!.maxSequence ?? 0,
            })),
            this.options.maxRowsPerFile,
        );
        if (plan === undefined) return undefined;
        const started = performance.now();
        const byName = new Map(files.map((file, i) => [file.name, { file, path: paths[i]!, facts: facts[i]! }]));
        const inputs = plan.inputs.map((input) => byName.get(input.name)!);
        const result = await this.deps.worker.merge(
            {
                database: partition.database,
                measurement: partition.measurement,
                inputs: inputs.map(({ path }) => path),
                targetRows: this.options.maxRowsPerFile,
                batchRows: this.options.batchRows,
                slices: plan.slices,
                encodings: this.options.encodings,
            },
            { ...this.deps.encodeOptions, maxRowGroupRows: this.options.rowGroupRows },
        );
        const minSequence = Math.min(...inputs.map(({ facts: f }) => f.minSequence ?? 0));
        const maxSequence = Math.max(...inputs.map(({ facts: f }) => f.maxSequence ?? 0));
        const token = randomBytes(4).toString("hex");
        const staged: StagedFile[] = [];
        try {
            for (const [index, file] of result.files.entries()) {
                staged.push({
                    temp: await this.deps.commit.stage(file.bytes),
                    name: outputName(minSequence, maxSequence, token, index),
                    rows: file.rows,
                    bytes: file.bytes.length,
                });
            }
            await this.deps.commit.commit({ flushed: [], adds: [], replaces: [{ partition, inputs: inputs.map(({ file }) => file.name), outputs: staged }], drops: [] });
        } catch (error) {
            await this.deps.commit.discard(staged.map((file) => file.temp));
            throw error;
        }
        this.deps.log.info("compacted", {
            partition: this.deps.lake.describe(partition),
            files_in: inputs.length,
            files_out: staged.length,
            rows_in: result.rowsIn,
            rows_out: result.rowsOut,
            duplicates_merged: result.merged,
            ms: Math.round(performance.now() - started),
        });
        return { files_in: inputs.length, files_out: staged.length, rows_in: result.rowsIn, rows_out: result.rowsOut, duplicates_merged: result.merged };
    }

    async #describe(files: readonly LakeFile[], paths: readonly string[]): Promise<ParquetFacts[]> {
        const key = (file: LakeFile) => `${file.location}\u0000${file.bytes}\u0000${file.writtenMs}`;
        const missing = files.flatMap((file, i) => (this.#facts.has(key(file)) ? [] : [{ file, path: paths[i]! }]));
        if (missing.length > 0) {
            const described = await this.deps.worker.describe(missing.map(({ path }) => path));
            missing.forEach(({ file }, i) => this.#facts.set(key(file), described[i]!));
        }
        if (this.#facts.size > 100_000) this.#facts.clear();
        return files.map((file) => this.#facts.get(key(file))!);
    }
}

/**
 * What lake upkeep (compaction, retention) needs of a lake, wherever its files live: local disk
 * (`LocalLake`) or an object store shared by several ingesters (`S3Lake`). Changes themselves go
 * through the commit protocol (flush/commit.ts) and the lake's `LakeApplier`.
 */
import type { LakeApplier } from "../commit.js";
import type { PartitionRef } from "../manifest/records.js";

/** A Parquet file of a partition. */
export interface LakeFile {
    /** Its name in the partition (what a `ReplaceFiles` record names as an input). */
    readonly name: string;
    /** Where it is, for logs and caches: a path or an object key. */
    readonly location: string;
    readonly bytes: number;
    /** Files never change once written: location, bytes and this identify a version. */
    readonly writtenMs: number;
    /**
     * Write order when the lake knows it without reading the file (several ingesters: the order
     * their flushes were listed in); undefined: the highest WAL sequence in the file's footer.
     */
    readonly rank?: number;
}

/** Local paths of a partition's files for the merge worker, valid until `release`. */
export interface LocalCopies {
    readonly paths: readonly string[];
    release(): Promise<void>;
}

export interface Lake {
    readonly applier: LakeApplier;
    /** Where the lake is, for logs: a directory or `s3://bucket/prefix/`. */
    readonly location: string;
    /** Every partition holding files. */
    partitions(filter?: { readonly database?: string; readonly measurement?: string }): AsyncIterable<PartitionRef>;
    /** The partition's live files ([] when it holds none). */
    files(partition: PartitionRef): Promise<LakeFile[]>;
    /** The partition as readers find it, for logs. */
    describe(partition: PartitionRef): string;
    /** The files, readable on local disk (downloaded if they live elsewhere). */
    localCopies(files: readonly LakeFile[]): Promise<LocalCopies>;
    /**
     * Runs `step` while no other ingester compacts the partition (a lease on a shared lake);
     * undefined without running it when another one holds the partition.
     */
    exclusive<T>(partition: PartitionRef, step: () => Promise<T>): Promise<T | undefined>;
    /** Removes what other ingesters' interrupted steps left behind; the number of objects removed. */
    sweep(): Promise<number>;
    close(): Promise<void>;
}

/**
 * Where flushed data lives (DESIGN.md §4):
 * `<data>/parquet/<database>/<measurement>/date=YYYY-MM-DD/hour=HH/<min seq>-<max seq>.parquet`,
 * names percent-encoded; temp files wait in `<data>/flush/tmp` until their change is recorded
 * in `<data>/flush/manifest.log`.
 */
import { join } from "node:path";
import { encodeDirectoryName } from "../src/names.js";
import type { PartitionRef } from "./manifest/records.js";

export function parquetRootOf(dataDir: string): string {
    return join(dataDir, "parquet");
}

export function flushDirOf(dataDir: string): string {
    return join(dataDir, "flush");
}

export function tempDirOf(dataDir: string): string {
    return join(flushDirOf(dataDir), "tmp");
}

/** Where compaction builds a partition's new set of files and retention moves dropped partitions: outside the lake, on its file system. */
export function stageDirOf(dataDir: string): string {
    return join(flushDirOf(dataDir), "stage");
}

export function manifestPathOf(dataDir: string): string {
    return join(flushDirOf(dataDir), "manifest.log");
}

/** The partition of one hour as readers see it, relative to the Parquet root. */
export function partitionPath({ database, measurement, date, hour }: PartitionRef): string {
    return join(encodeDirectoryName(database), encodeDirectoryName(measurement), `date=${date}`, `hour=${hour}`);
}

/**
 * A file's name: the WAL sequences it holds, so names never collide and say where rows came
 * from; a flush encoded in several parts numbers them.
 */
export function parquetFileName(minSequence: number, maxSequence: number, part = 0): string {
    return `${String(minSequence).padStart(20, "0")}-${String(maxSequence).padStart(20, "0")}${part === 0 ? "" : `-${part}`}.parquet`;
}

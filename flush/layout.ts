/**
 * Where flushed data lives (DESIGN.md §4):
 * `<data>/parquet/<database>/<measurement>/date=YYYY-MM-DD/hour=HH/<min seq>-<max seq>.parquet`,
 * names percent-encoded; temp files wait in `<data>/flush/tmp` until their commit record is durable.
 */
import { join } from "node:path";
import { encodeDirectoryName } from "../src/names.js";

export function parquetRootOf(dataDir: string): string {
    return join(dataDir, "parquet");
}

export function flushDirOf(dataDir: string): string {
    return join(dataDir, "flush");
}

export function tempDirOf(dataDir: string): string {
    return join(flushDirOf(dataDir), "tmp");
}

/** The partition directory of one hour, relative to the Parquet root. */
export function partitionPath(database: string, measurement: string, date: string, hour: string): string {
    return join(encodeDirectoryName(database), encodeDirectoryName(measurement), `date=${date}`, `hour=${hour}`);
}

/**
 * A file's name: the WAL sequences it holds, so names never collide and say where rows came
 * from; a flush encoded in several parts numbers them.
 */
export function parquetFileName(minSequence: number, maxSequence: number, part = 0): string {
    return `${String(minSequence).padStart(20, "0")}-${String(maxSequence).padStart(20, "0")}${part === 0 ? "" : `-${part}`}.parquet`;
}

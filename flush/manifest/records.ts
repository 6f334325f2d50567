/**
 * The flush manifest's records (`<data>/flush/manifest.log`), one per line as
 * `<crc32 of the JSON, 8 hex digits> <JSON>\n`. A `change` is one step of the lake, made atomic by
 * the commit protocol (flush/commit.ts): files added to partitions by flushes (with the WAL
 * sequences they make durable), a partition's files replaced by compaction, partitions dropped
 * by retention. A `snapshot` holds what earlier records established.
 */
import { crc32 } from "node:zlib";

/** One hour of one measurement: a directory of Parquet files (DESIGN.md §4). */
export interface PartitionRef {
    readonly database: string;
    readonly measurement: string;
    /** `YYYY-MM-DD` and `HH` (UTC). */
    readonly date: string;
    readonly hour: string;
    /** The measurement directory's name on disk when it was written with Sluice 0.1's narrower encoding. */
    readonly measurementDir?: string;
}

/** A file written to the temp directory, fsynced, waiting for its record. */
export interface StagedFile {
    /** Its name in `<data>/flush/tmp`. */
    readonly temp: string;
    /** Its name in the partition. */
    readonly name: string;
    readonly rows: number;
    readonly bytes: number;
}

/** Every WAL entry of (database, measurement) from `min` through `through` is in Parquet once the change is durable. */
export interface FlushedRange {
    readonly database: string;
    readonly measurement: string;
    readonly min: number;
    readonly through: number;
}

export interface AddFiles {
    readonly partition: PartitionRef;
    readonly files: readonly StagedFile[];
}

/** Compaction: the partition's files, without `inputs` and with `outputs` (names no input has). */
export interface ReplaceFiles {
    readonly partition: PartitionRef;
    readonly inputs: readonly string[];
    readonly outputs: readonly StagedFile[];
}

export interface ChangeRecord {
    readonly type: "change";
    readonly id: number;
    readonly flushed: readonly FlushedRange[];
    readonly adds: readonly AddFiles[];
    readonly replaces: readonly ReplaceFiles[];
    readonly drops: readonly PartitionRef[];
}

/** The flushed-through sequences that still matter, the highest sequence ever flushed, the next change id. */
export interface SnapshotRecord {
    readonly type: "snapshot";
    readonly flushed: readonly (readonly [string, string, number])[];
    readonly highest?: number;
    readonly nextId?: number;
}

/** A flush written by Sluice 0.1 (one measurement, a path relative to `<data>/parquet`). */
export interface LegacyCommitRecord {
    readonly type: "commit";
    readonly database: string;
    readonly measurement: string;
    readonly through: number;
    readonly min: number;
    readonly files: readonly { readonly path: string; readonly temp: string; readonly rows: number; readonly bytes: number }[];
}

export type ManifestRecord = ChangeRecord | SnapshotRecord | LegacyCommitRecord;

export function encodeLine(record: ManifestRecord): string {
    const json = JSON.stringify(record);
    return `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`;
}

/** The record of a line, or undefined when the line is damaged (wrong checksum, not JSON, unknown type). */
export function decodeLine(line: string): ManifestRecord | undefined {
    if (line.length < 10 || line[8] !== " ") return undefined;
    const json = line.slice(9);
    if (crc32(json).toString(16).padStart(8, "0") !== line.slice(0, 8)) return undefined;
    let value: unknown;
    try {
        value = JSON.parse(json);
    } catch {
        return undefined;
    }
    const type = (value as { type?: unknown } | null)?.type;
    return type === "change" || type === "snapshot" || type === "commit" ? (value as ManifestRecord) : undefined;
}

/** The temp files a record still needs (those it adds or outputs). */
export function tempsOf(record: ManifestRecord): string[] {
    switch (record.type) {
        case "snapshot":
            return [];
        case "commit":
            return record.files.map((file) => file.temp);
        case "change":
            return [...record.adds.flatMap((add) => add.files.map((file) => file.temp)), ...record.replaces.flatMap((replace) => replace.outputs.map((file) => file.temp))];
    }
}

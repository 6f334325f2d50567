/**
 * What operators ask of a WAL directory: its files and sequences (stats), a full check of every
 * entry (verify), and a listing of entries (read). Shared by the CLI and the HTTP admin API.
 */
import type { ColumnType } from "../columnar/batch.js";
import { WalDirectoryReader, decodedRecords } from "./directory-reader.js";
import { listWalFiles } from "./files.js";
import { WalFileReader } from "./reader.js";

export interface WalFileStats {
    readonly name: string;
    readonly first_sequence: number;
    /** Null for a file without entries. */
    readonly last_sequence: number | null;
    readonly entries: number;
    readonly bytes: number;
}

export interface WalStats {
    /** The lowest sequence still in the WAL (null when it holds no entry). */
    readonly first_sequence: number | null;
    /** The highest sequence written so far (null when it holds no entry). */
    readonly current_sequence: number | null;
    readonly total_bytes: number;
    readonly files: WalFileStats[];
}

export async function walStats(dir: string): Promise<WalStats> {
    const files: WalFileStats[] = [];
    for (const ref of await listWalFiles(dir)) {
        const scan = await new WalFileReader(ref, { payloads: false }).scanToEnd();
        files.push({
            name: ref.name,
            first_sequence: ref.firstSequence,
            last_sequence: scan.entries > 0 ? ref.firstSequence + scan.entries - 1 : null,
            entries: scan.entries,
            bytes: scan.bytes,
        });
    }
    const withEntries = files.filter((file) => file.entries > 0);
    return {
        first_sequence: withEntries[0]?.first_sequence ?? null,
        current_sequence: withEntries.at(-1)?.last_sequence ?? null,
        total_bytes: files.reduce((sum, file) => sum + file.bytes, 0),
        files,
    };
}

export interface WalProblem {
    readonly file: string;
    readonly sequence?: number;
    readonly reason: string;
}

export interface WalVerification {
    readonly files: number;
    readonly entries: number;
    /** Entries that fail their CRC or do not decode, and entries with an untrustworthy length. */
    readonly corrupted: number;
    /** Files ending inside an entry: what a crash mid-write leaves, not corruption. */
    readonly torn_tails: number;
    /** Files skipped for a missing or wrong header. */
    readonly bad_files: number;
    readonly problems: WalProblem[];
}

/** Reads and decodes every entry of every file. */
export async function verifyWal(dir: string): Promise<WalVerification> {
    const problems: WalProblem[] = [];
    let corrupted = 0;
    let badFiles = 0;
    const reader = new WalDirectoryReader(dir);
    for await (const record of decodedRecords(reader)) {
        if (record.kind !== "problem") continue;
        if (record.fileSkipped) badFiles++;
        else corrupted++;
        problems.push({ file: record.file.name, ...(record.sequence === undefined ? {} : { sequence: record.sequence }), reason: record.reason });
    }
    return {
        files: reader.scans.length,
        entries: reader.scans.reduce((sum, scan) => sum + scan.entries, 0),
        corrupted,
        torn_tails: reader.scans.filter((scan) => scan.tornTailOffset !== undefined).length,
        bad_files: badFiles,
        problems,
    };
}

export interface WalEntrySummary {
    readonly seq: number;
    readonly file: string;
    readonly time_us: number;
    readonly database: string;
    readonly measurement: string;
    readonly rows: number;
    readonly columns: Record<string, ColumnType>;
}

export interface WalEntryProblem {
    readonly seq: number;
    readonly file: string;
    readonly error: string;
}

export interface ReadWalOptions {
    readonly fromSequence?: number;
    readonly limit?: number;
}

/** Entries from `fromSequence` on, each summarised (unreadable ones as an error); at most `limit`. */
export async function* readWalEntries(dir: string, options: ReadWalOptions = {}): AsyncGenerator<WalEntrySummary | WalEntryProblem> {
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return;
    let count = 0;
    const reader = new WalDirectoryReader(dir, options.fromSequence === undefined ? {} : { fromSequence: options.fromSequence });
    for await (const record of decodedRecords(reader)) {
        if (record.sequence === undefined) continue;
        if (record.kind === "problem") yield { seq: record.sequence, file: record.file.name, error: record.reason };
        else {
            const { batch } = record;
            yield {
                seq: record.sequence,
                file: record.file.name,
                time_us: Number(record.appendTimeUs),
                database: record.database,
                measurement: batch.measurement,
                rows: batch.rows,
                columns: Object.fromEntries([...batch.columns].map(([name, column]) => [name, column.type])),
            };
        }
        if (++count >= limit) return;
    }
}

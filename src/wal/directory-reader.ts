/**
 * Streams every WAL file of a directory in sequence order, as one run of records, keeping each
 * file's scan (entries, corruption, torn tail, bad header) for the caller's report.
 */
import type { ColumnarBatch } from "../columnar/batch.js";
import { WalDecodeError } from "./errors.js";
import { type WalFileRef, listWalFiles } from "./files.js";
import { type DecodedPayload, decodePayload } from "./payload.js";
import { type ReadOptions, type WalFileScan, type WalRecord, WalFileReader } from "./reader.js";

export interface DirectoryReadOptions extends ReadOptions {
    /** Start at this sequence: files entirely below it are not opened. */
    readonly fromSequence?: number;
    /** A file not to read (the writer's active file). */
    readonly skipFile?: string;
}

/** A record of some file, or the end of a file with what its scan found. */
export type LocatedRecord = (WalRecord & { readonly file: WalFileRef }) | { readonly kind: "end"; readonly file: WalFileRef; readonly scan: WalFileScan };

export class WalDirectoryReader {
    /** One scan per file read, in order; complete once `records()` is exhausted. */
    readonly scans: WalFileScan[] = [];
    /** Files passed over: the skipped active file. */
    readonly skipped: WalFileRef[] = [];
    readonly #dir: string;
    readonly #options: DirectoryReadOptions;

    constructor(dir: string, options: DirectoryReadOptions = {}) {
        this.#dir = dir;
        this.#options = options;
    }

    async *records(): AsyncGenerator<LocatedRecord> {
        const from = this.#options.fromSequence ?? 0;
        const files = await listWalFiles(this.#dir);
        for (const [index, file] of files.entries()) {
            const next = files[index + 1];
            if (next !== undefined && next.firstSequence <= from) continue;
            if (file.name === this.#options.skipFile) {
                this.skipped.push(file);
                continue;
            }
            const reader = new WalFileReader(file, this.#options);
            this.scans.push(reader.scan);
            for await (const record of reader.records()) {
                if (record.sequence >= from) yield { ...record, file };
            }
            yield { kind: "end", file, scan: reader.scan };
        }
    }
}

/** A readable entry, decoded, or what kept an entry or a file from being read. */
export type DecodedRecord =
    | {
          readonly kind: "entry";
          readonly file: WalFileRef;
          readonly sequence: number;
          readonly appendTimeUs: bigint;
          readonly database: string;
          readonly batch: ColumnarBatch;
      }
    | {
          readonly kind: "problem";
          readonly file: WalFileRef;
          /** The entry's sequence; absent when the whole file, or its rest, could not be read. */
          readonly sequence?: number;
          /** True when the file was skipped for a bad header (no entry of it was read). */
          readonly fileSkipped: boolean;
          readonly reason: string;
      };

/**
 * The reader's records with payloads decoded; CRC mismatches and undecodable payloads come as
 * problems with their sequence, then, after each file, a problem for a bad header or an
 * untrustworthy length (torn tails are not problems: they are in the reader's scans).
 */
export async function* decodedRecords(reader: WalDirectoryReader): AsyncGenerator<DecodedRecord> {
    for await (const record of reader.records()) {
        if (record.kind === "end") {
            const { badHeader, stoppedBy } = record.scan;
            if (badHeader !== undefined) yield { kind: "problem", file: record.file, fileSkipped: true, reason: badHeader };
            if (stoppedBy !== undefined) yield { kind: "problem", file: record.file, fileSkipped: false, reason: stoppedBy };
            continue;
        }
        if (record.kind === "corrupt") {
            yield { kind: "problem", file: record.file, sequence: record.sequence, fileSkipped: false, reason: record.reason };
            continue;
        }
        let decoded: DecodedPayload;
        try {
            decoded = decodePayload(record.payload);
        } catch (error) {
            if (!(error instanceof WalDecodeError)) throw error;
            yield { kind: "problem", file: record.file, sequence: record.sequence, fileSkipped: false, reason: error.message };
            continue;
        }
        yield { kind: "entry", file: record.file, sequence: record.sequence, appendTimeUs: record.appendTimeUs, ...decoded };
    }
}

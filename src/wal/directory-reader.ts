/**
 * Streams every WAL file of a directory in sequence order, as one run of records, keeping each
 * file's scan (entries, corruption, torn tail, bad header) for the caller's report; and decodes
 * them, passing on a request's entries only once its last entry has been read.
 */
import type { ColumnarBatch } from "../columnar/batch.js";
import { WalDecodeError } from "./errors.js";
import { type WalFileRef, listWalFiles } from "./files.js";
import { decodePayload } from "./payload.js";
import { type ReadOptions, type WalFileScan, type WalRecord, WalFileReader } from "./reader.js";

export interface DirectoryReadOptions extends ReadOptions {
    /** Start at this sequence: files entirely below it are not opened. */
    readonly fromSequence?: number;
    /** A file not to read (the writer's active file). */
    readonly skipFile?: string | undefined;
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
        const files = await listWalFiles(this.#dir, this.#options.fileSystem);
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
          /** Entries of the same request after this one (all of them are passed on too). */
          readonly following: number;
      }
    | {
          readonly kind: "problem";
          readonly file: WalFileRef;
          /** The entry's sequence (the first one, for a request cut short); absent when the whole file, or its rest, could not be read. */
          readonly sequence?: number;
          /** True when the file was skipped for a bad header (no entry of it was read). */
          readonly fileSkipped: boolean;
          /** Set for a request whose last entry is missing: how many of its entries were read and dropped. */
          readonly droppedEntries?: number;
          readonly reason: string;
      };

type DecodedEntry = Extract<DecodedRecord, { kind: "entry" }>;

/** The entries read so far of a request whose last entry has not been read yet. */
interface OpenRequest {
    readonly entries: DecodedEntry[];
    readonly file: WalFileRef;
    readonly firstSequence: number;
    /** The sequence its next entry must have, and that entry's `following` count. */
    nextSequence: number;
    nextFollowing: number;
}

function cutShort(open: OpenRequest, why: string): DecodedRecord {
    const total = open.nextSequence - open.firstSequence + open.nextFollowing + 1;
    return {
        kind: "problem",
        file: open.file,
        sequence: open.firstSequence,
        fileSkipped: false,
        droppedEntries: open.entries.length,
        reason: `a request written as ${total} entries from sequence ${open.firstSequence} lacks its last entry (${why}): it was never acknowledged, so none of it is replayed`,
    };
}

/**
 * The reader's records with payloads decoded; CRC mismatches and undecodable payloads come as
 * problems with their sequence, then, after each file, a problem for a bad header or an
 * untrustworthy length (torn tails are not problems: they are in the reader's scans).
 */
// Invariant kept: an entry of a request written as several entries is passed on only if the
// request's last entry was read (DESIGN.md §3 invariant 7: a request is replayed whole or not at
// all); a request never spans files, as the writer rotates only between requests.
export async function* decodedRecords(reader: WalDirectoryReader): AsyncGenerator<DecodedRecord> {
    let open: OpenRequest | undefined;
    for await (const record of reader.records()) {
        if (record.kind === "end") {
            if (open !== undefined) yield cutShort(open, "the file ends first");
            open = undefined;
            const { badHeader, stoppedBy } = record.scan;
            if (badHeader !== undefined) yield { kind: "problem", file: record.file, fileSkipped: true, reason: badHeader };
            if (stoppedBy !== undefined) yield { kind: "problem", file: record.file, fileSkipped: false, reason: stoppedBy };
            continue;
        }
        let entry: DecodedEntry | undefined;
        let problem = "";
        if (record.kind === "corrupt") problem = record.reason;
        else {
            try {
                entry = { kind: "entry", file: record.file, sequence: record.sequence, appendTimeUs: record.appendTimeUs, ...decodePayload(record.payload) };
            } catch (error) {
                if (!(error instanceof WalDecodeError)) throw error;
                problem = error.message;
            }
        }
        if (entry === undefined) {
            // A damaged entry inside an open request takes its place; if it was the last, the request cannot end.
            if (open !== undefined && record.sequence === open.nextSequence && open.nextFollowing > 0) {
                open.nextSequence++;
                open.nextFollowing--;
            }
            yield { kind: "problem", file: record.file, sequence: record.sequence, fileSkipped: false, reason: problem };
            continue;
        }
        if (open !== undefined && (entry.sequence !== open.nextSequence || entry.following !== open.nextFollowing)) {
            yield cutShort(open, `sequence ${entry.sequence} is not its next entry`);
            open = undefined;
        }
        if (open === undefined) {
            if (entry.following === 0) {
                yield entry;
                continue;
            }
            open = { entries: [], file: entry.file, firstSequence: entry.sequence, nextSequence: entry.sequence, nextFollowing: entry.following };
        }
        open.entries.push(entry);
        open.nextSequence = entry.sequence + 1;
        open.nextFollowing = entry.following - 1;
        if (entry.following === 0) {
            yield* open.entries;
            open = undefined;
        }
    }
}

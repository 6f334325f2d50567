/**
 * Streams every WAL file of a directory in sequence order, as one run of records, keeping each
 * file's scan (entries, corruption, torn tail, bad header) for the caller's report.
 */
import { type WalFileRef, listWalFiles } from "./files.js";
import { type ReadOptions, type WalFileScan, type WalRecord, WalFileReader } from "./reader.js";

export interface DirectoryReadOptions extends ReadOptions {
    /** Start at this sequence: files entirely below it are not opened. */
    readonly fromSequence?: number;
    /** A file not to read (the writer's active file). */
    readonly skipFile?: string;
}

export type LocatedRecord = WalRecord & { readonly file: WalFileRef };

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
        }
    }
}

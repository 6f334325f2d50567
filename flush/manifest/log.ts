/**
 * The manifest file itself: an append-only log of records, every append made durable
 * (fdatasync) before it resolves, rewritten as a whole (temp, fsync, rename, directory fsync)
 * when it grows. A torn or damaged line ends the log: what follows was never acknowledged.
 */
import { messageOf, SluiceError } from "../../src/errors.js";
import { dirname } from "node:path";
import { ensureDurableDirectory, readIfExists, writeFully } from "../../src/fs/durable.js";
import type { FileHandle, FileSystem } from "../../src/fs/file-system.js";
import { type ManifestRecord, decodeLine, encodeLine } from "./records.js";

export interface ReadLog {
    readonly records: ManifestRecord[];
    /** The 1-based line where a damaged line cut the log, if one did. */
    readonly damagedAt?: number;
    /** Bytes of whole, undamaged records. */
    readonly goodLength: number;
    /** Bytes of the file (more than goodLength when a tail is torn or damaged). */
    readonly length: number;
}

/** The records of a log file up to its first torn or damaged line (none when it does not exist). */
export async function readLog(fs: FileSystem, path: string): Promise<ReadLog> {
    const bytes = (await readIfExists(fs, path)) ?? Buffer.alloc(0);
    const records: ManifestRecord[] = [];
    let goodLength = 0;
    let line = 0;
    for (let start = 0; start < bytes.length;) {
        const end = bytes.indexOf(0x0a, start);
        line++;
        // A last piece without its newline is a torn append: not a record.
        if (end < 0) return { records, damagedAt: line, goodLength, length: bytes.length };
        const record = decodeLine(bytes.toString("utf8", start, end));
        if (record === undefined) return { records, damagedAt: line, goodLength, length: bytes.length };
        records.push(record);
        goodLength = end + 1;
        start = end + 1;
    }
    return { records, goodLength, length: bytes.length };
}

/** An append failed; `undone` tells whether the log was brought back to its last whole record. */
export class LogAppendError extends SluiceError {
    readonly code = "manifest-append";
    override readonly retryable = true;

    constructor(
        message: string,
        readonly undone: boolean,
        options: { cause: unknown },
    ) {
        super(message, options);
    }
}

export class ManifestLog {
    /** Bytes of the log known to hold only whole, durable records. */
    #length: number;
    #records: number;

    private constructor(
        readonly fs: FileSystem,
        readonly path: string,
        private handle: FileHandle,
        length: number,
        records: number,
    ) {
        this.#length = length;
        this.#records = records;
    }

    /**
     * Opens the log for appending after `read` (its good part): a torn or damaged tail is cut off
     * (a truncate needs no free space); a missing log is created empty.
     */
    static async open(fs: FileSystem, path: string, read: ReadLog): Promise<ManifestLog> {
        await ensureDurableDirectory(fs, dirname(path));
        let handle: FileHandle;
        try {
            handle = await fs.open(path, "update");
        } catch {
            handle = await fs.open(path, "create");
            await handle.sync();
            await fs.syncDirectory(dirname(path));
        }
        if (read.length > read.goodLength) {
            try {
                await handle.truncate(read.goodLength);
                await handle.datasync();
            } catch (error) {
                await handle.close();
                throw error;
            }
        }
        return new ManifestLog(fs, path, handle, read.goodLength, read.records.length);
    }

    /** Records in the log (since its last rewrite). */
    get records(): number {
        return this.#records;
    }

    get bytes(): number {
        return this.#length;
    }

    // Invariant kept: when this resolves the records are durable, in order, after every earlier
    // one; when it rejects with `undone` true none of them is in the log; with `undone` false
    // the log's last bytes are uncertain and nothing may be appended until a rewrite settles it.
    async append(records: readonly ManifestRecord[]): Promise<void> {
        const bytes = Buffer.from(records.map(encodeLine).join(""), "utf8");
        try {
            await writeFully(this.handle, [bytes], this.#length);
            await this.handle.datasync();
        } catch (error) {
            try {
                await this.handle.truncate(this.#length);
                await this.handle.datasync();
            } catch (undo) {
                throw new LogAppendError(`appending to the flush manifest failed (${messageOf(error)}) and could not be undone (${messageOf(undo)})`, false, {
                    cause: error,
                });
            }
            throw new LogAppendError(`appending to the flush manifest failed: ${messageOf(error)}`, true, { cause: error });
        }
        this.#length += bytes.length;
        this.#records += records.length;
    }

    // Invariant kept: after a crash at any instant the log holds its old records or exactly
    // `records`; when this resolves appends go to the new file (its handle is kept, never
    // reopened by name), which holds `records` durably once `syncDirectory` has succeeded too.
    async rewrite(records: readonly ManifestRecord[]): Promise<void> {
        const bytes = Buffer.from(records.map(encodeLine).join(""), "utf8");
        const temp = `${this.path}.tmp`;
        await this.fs.remove(temp);
        const handle = await this.fs.open(temp, "create");
        try {
            await writeFully(handle, [bytes], 0);
            await handle.sync();
            await this.fs.rename(temp, this.path);
        } catch (error) {
            await handle.close().catch(() => undefined);
            await this.fs.remove(temp).catch(() => undefined);
            throw error;
        }
        const old = this.handle;
        this.handle = handle;
        this.#length = bytes.length;
        this.#records = records.length;
        await old.close().catch(() => undefined);
    }

    /** Makes the log's directory entry durable (after a rewrite whose directory sync failed). */
    async syncDirectory(): Promise<void> {
        await this.fs.syncDirectory(dirname(this.path));
    }

    async close(): Promise<void> {
        await this.handle.close();
    }
}

/**
 * The flush manifest: an append-only commit log (`<data>/flush/manifest.log`) that makes a
 * flush atomic. Protocol (DESIGN.md §3.2): the Parquet bytes go to temp files, fsynced; then a
 * commit record (database, measurement, flushed-through WAL sequence, files) is appended and
 * fsynced; then each temp file is renamed into place and its directory fsynced. A crash before
 * the record leaves only temp files, which the next start deletes (the rows are still in the
 * WAL); a crash after it leaves a record whose renames the next start finishes.
 *
 * Each line is `<crc32 of the JSON, 8 hex digits> <JSON>\n`; a torn or damaged line ends the log.
 */
import { type FileHandle, open, readFile, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import { SluiceError } from "../src/errors.js";
import type { Logger } from "../src/log.js";
import type { FlushedThrough } from "../src/wal/recovery.js";
import { ensureDurableDirectory, replaceFileAtomically, syncDirectory } from "../src/wal/fs.js";
import { crashPoint } from "./crash-points.js";
import { flushDirOf, parquetRootOf, tempDirOf } from "./layout.js";

export interface CommittedFile {
    /** Where the file ends up, relative to `<data>/parquet`. */
    readonly path: string;
    /** Its temp file's name in `<data>/flush/tmp`. */
    readonly temp: string;
    readonly rows: number;
    readonly bytes: number;
}

export interface CommitRecord {
    readonly type: "commit";
    readonly database: string;
    readonly measurement: string;
    /** Every WAL entry of (database, measurement) up to this sequence is in Parquet once committed. */
    readonly through: number;
    readonly min: number;
    readonly files: readonly CommittedFile[];
}

/** The flushed-through sequence of every (database, measurement) ever flushed. */
interface SnapshotRecord {
    readonly type: "snapshot";
    readonly flushed: readonly (readonly [string, string, number])[];
}

type LogRecord = CommitRecord | SnapshotRecord;

export interface CommitLogRecovery {
    /** Commits whose renames this start finished (a crash came between record and rename). */
    readonly finishedCommits: number;
    /** Temp files of flushes that never committed, deleted (their rows are replayed from the WAL). */
    readonly discardedTemps: number;
    /** A damaged line, where the log was cut (later records were lost; their rows are replayed). */
    readonly damagedAt?: number;
}

const LOG_FILE = "manifest.log";
/** Compact the log once it holds this many commit records. */
const COMPACT_AFTER_COMMITS = 1000;

function encodeLine(record: LogRecord): string {
    const json = JSON.stringify(record);
    return `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`;
}

function decodeLine(line: string): LogRecord | undefined {
    if (line.length < 10 || line[8] !== " ") return undefined;
    const json = line.slice(9);
    if (crc32(json).toString(16).padStart(8, "0") !== line.slice(0, 8)) return undefined;
    try {
        return JSON.parse(json) as LogRecord;
    } catch {
        return undefined;
    }
}

async function exists(path: string): Promise<boolean> {
    return stat(path).then(
        () => true,
        () => false,
    );
}

/** The commit record was not written: nothing of the flush is committed, its temp files may go. */
export class CommitNotRecordedError extends SluiceError {
    readonly code = "commit-not-recorded";
    override readonly retryable = true;
}

/**
 * The log could not be brought back to a known state after a failed append: the record may or
 * may not be durable. Its temp files must stay (the next start decides), and no further flush
 * may commit until then.
 */
export class CommitLogFailedError extends SluiceError {
    readonly code = "commit-log-failed";
}

/** How many times the renames of a durable record are tried before they are left to a later retry. */
const FINISH_ATTEMPTS = 3;

export class CommitLog {
    readonly #flushed = new FlushedSequences();
    /** Durable records whose renames have not all happened yet (retried; kept by compaction). */
    readonly #unfinished: CommitRecord[] = [];
    #commitsSinceSnapshot = 0;
    /** Bytes of the log known to hold only whole, durable records. */
    #goodLength = 0;
    #failed: CommitLogFailedError | undefined;

    private constructor(
        readonly dataDir: string,
        readonly log: Logger,
        private handle: FileHandle,
    ) {}

    /**
     * Opens the log and brings the data directory to a committed state: finishes the renames of
     * committed flushes, deletes temp files of uncommitted ones, and compacts the log.
     */
    static async open(dataDir: string, log: Logger): Promise<{ commitLog: CommitLog; recovery: CommitLogRecovery }> {
        const flushDir = flushDirOf(dataDir);
        await ensureDurableDirectory(tempDirOf(dataDir));
        await ensureDurableDirectory(parquetRootOf(dataDir));
        const path = join(flushDir, LOG_FILE);
        const { records, damagedAt } = await readLog(path, log);
        const commitLog = new CommitLog(dataDir, log, await open(path, "a+", 0o600));
        const referenced = new Set<string>();
        let finishedCommits = 0;
        for (const record of records) {
            if (record.type === "commit") {
                record.files.forEach((file) => referenced.add(file.temp));
                if (await commitLog.#finish(record)) finishedCommits++;
            }
            commitLog.#flushed.noteRecord(record);
        }
        let discardedTemps = 0;
        for (const name of await readdir(tempDirOf(dataDir))) {
            if (referenced.has(name)) continue;
            await rm(join(tempDirOf(dataDir), name), { force: true });
            discardedTemps++;
        }
        // Rewriting the log also drops a torn or damaged tail, so appends start on a clean line.
        await commitLog.compact();
        return { commitLog, recovery: { finishedCommits, discardedTemps, ...(damagedAt === undefined ? {} : { damagedAt }) } };
    }

    /** The highest WAL sequence of (database, measurement) already in Parquet, or -1. */
    flushedThrough(database: string, measurement: string): number {
        return this.#flushed.get(database, measurement);
    }

    /** The highest flushed-through sequence of all (-1 when nothing was flushed). */
    highestFlushed(): number {
        return this.#flushed.highest();
    }

    /** The temp file path for a flush's file. */
    tempPath(name: string): string {
        return join(tempDirOf(this.dataDir), name);
    }

    // Invariant kept: when this resolves the flush is durable (its record is) and its files are
    // in place or queued for renaming; when it rejects with CommitNotRecordedError nothing of it
    // is committed. Only renames happen after the record: every directory exists before it.
    async commit(record: CommitRecord): Promise<void> {
        if (this.#failed !== undefined) throw this.#failed;
        const root = parquetRootOf(this.dataDir);
        try {
            for (const directory of new Set(record.files.map((file) => dirname(join(root, file.path))))) await ensureDurableDirectory(directory);
            await syncDirectory(tempDirOf(this.dataDir));
        } catch (error) {
            throw new CommitNotRecordedError(`preparing the commit failed: ${(error as Error).message}`, { cause: error });
        }
        crashPoint("before-commit-record");
        await this.#append(encodeLine(record));
        crashPoint("after-commit-record");
        this.#flushed.noteRecord(record);
        this.#unfinished.push(record);
        await this.finishPending();
        crashPoint("after-rename");
        if (++this.#commitsSinceSnapshot >= COMPACT_AFTER_COMMITS) {
            await this.compact().catch((error: unknown) => {
                this.log.error("compacting the flush manifest failed; it will be tried again", { error: (error as Error).message });
            });
        }
    }

    // Invariant kept: the log holds `#goodLength` bytes of whole records after every append,
    // failed or not; if that cannot be ensured, the log refuses further commits.
    async #append(line: string): Promise<void> {
        const bytes = Buffer.from(line, "utf8");
        try {
            let written = 0;
            while (written < bytes.length) {
                const { bytesWritten } = await this.handle.write(bytes, written, bytes.length - written, this.#goodLength + written);
                if (bytesWritten <= 0) throw new Error("write made no progress");
                written += bytesWritten;
            }
            await this.handle.datasync();
        } catch (error) {
            try {
                await this.handle.truncate(this.#goodLength);
                await this.handle.datasync();
            } catch (undo) {
                this.#failed = new CommitLogFailedError(
                    `the flush manifest could not be restored after a failed append (${(error as Error).message}; ${(undo as Error).message}); restart to recover`,
                );
                throw this.#failed;
            }
            throw new CommitNotRecordedError(`appending the commit record failed: ${(error as Error).message}`, { cause: error });
        }
        this.#goodLength += bytes.length;
    }

    /**
     * Renames the files of durable records into place, a few attempts each; what still fails
     * stays queued (and is finished by the next start at the latest). Never throws.
     */
    async finishPending(): Promise<void> {
        for (const record of [...this.#unfinished]) {
            for (let attempt = 1; attempt <= FINISH_ATTEMPTS; attempt++) {
                try {
                    await this.#finish(record);
                    this.#unfinished.splice(this.#unfinished.indexOf(record), 1);
                    break;
                } catch (error) {
                    if (attempt === FINISH_ATTEMPTS) {
                        this.log.error(`committed flush of ${record.database}/${record.measurement} is durable but its files are not in place yet; retrying later`, {
                            error: (error as Error).message,
                        });
                    }
                }
            }
        }
    }

    /** Moves a committed record's temp files into place; true when any was still to move. */
    async #finish(record: CommitRecord): Promise<boolean> {
        const root = parquetRootOf(this.dataDir);
        let moved = false;
        const directories = new Set<string>();
        for (const file of record.files) {
            const target = join(root, file.path);
            const temp = this.tempPath(file.temp);
            if (await exists(temp)) {
                await ensureDurableDirectory(dirname(target));
                await rename(temp, target);
                directories.add(dirname(target));
                moved = true;
            } else if (!(await exists(target))) {
                this.log.error(`committed file ${file.path} is missing (neither it nor its temp file exists)`, { database: record.database, measurement: record.measurement });
            }
        }
        for (const directory of directories) await syncDirectory(directory);
        if (moved) await syncDirectory(tempDirOf(this.dataDir));
        return moved;
    }

    /**
     * Rewrites the log as one snapshot of the flushed-through sequences, followed by the records
     * whose renames are still pending (temp, fsync, rename, directory fsync).
     */
    async compact(): Promise<void> {
        const path = join(flushDirOf(this.dataDir), LOG_FILE);
        const text = [this.#flushed.snapshot(), ...this.#unfinished].map(encodeLine).join("");
        await replaceFileAtomically(path, text);
        const reopened = await open(path, "r+", 0o600);
        await this.handle.close().catch(() => undefined);
        this.handle = reopened;
        this.#goodLength = Buffer.byteLength(text, "utf8");
        this.#commitsSinceSnapshot = 0;
    }

    async close(): Promise<void> {
        await this.handle.close();
    }
}

/** The records of a log file up to its first torn or damaged line. */
async function readLog(path: string, log: Logger): Promise<{ records: LogRecord[]; damagedAt?: number }> {
    const text = await readFile(path, "utf8").catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return "";
        throw error;
    });
    // The last piece is "" after a final newline, or a torn line: either way not a record.
    const complete = text.split("\n").slice(0, -1);
    const records: LogRecord[] = [];
    for (const [index, line] of complete.entries()) {
        const record = decodeLine(line);
        if (record === undefined) {
            log.error(`${path} line ${index + 1} is damaged: ignoring it and every later record; their rows will be replayed from the WAL`);
            return { records, damagedAt: index + 1 };
        }
        records.push(record);
    }
    return { records };
}

/** The highest flushed-through sequence of each (database, measurement). */
class FlushedSequences {
    readonly #through = new Map<string, number>();

    note(database: string, measurement: string, through: number): void {
        const key = `${database}\u0000${measurement}`;
        this.#through.set(key, Math.max(this.#through.get(key) ?? -1, through));
    }

    noteRecord(record: LogRecord): void {
        if (record.type === "snapshot") for (const [database, measurement, through] of record.flushed) this.note(database, measurement, through);
        else this.note(record.database, record.measurement, record.through);
    }

    get: FlushedThrough = (database, measurement) => this.#through.get(`${database}\u0000${measurement}`) ?? -1;

    highest(): number {
        return Math.max(-1, ...this.#through.values());
    }

    snapshot(): SnapshotRecord {
        return {
            type: "snapshot",
            flushed: [...this.#through].map(([key, through]) => {
                const [database, measurement] = key.split("\u0000") as [string, string];
                return [database, measurement, through] as const;
            }),
        };
    }
}

/**
 * The flushed-through sequences a data directory's commit log records, read without changing
 * anything (for offline tools; a server or `recover` opens the log with `CommitLog.open`).
 */
export async function readFlushedThrough(dataDir: string, log: Logger): Promise<FlushedThrough> {
    const { records } = await readLog(join(flushDirOf(dataDir), LOG_FILE), log);
    const flushed = new FlushedSequences();
    for (const record of records) flushed.noteRecord(record);
    return flushed.get;
}

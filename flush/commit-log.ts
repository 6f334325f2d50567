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
import { mkdir, open, readFile, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import type { Logger } from "../src/log.js";
import type { FlushedThrough } from "../src/wal/recovery.js";
import { syncDirectory } from "../src/wal/fs.js";
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

export class CommitLog {
    readonly #flushed = new FlushedSequences();
    #commitsSinceSnapshot = 0;

    private constructor(
        readonly dataDir: string,
        readonly log: Logger,
        private handle: Awaited<ReturnType<typeof open>>,
    ) {}

    /**
     * Opens the log and brings the data directory to a committed state: finishes the renames of
     * committed flushes, deletes temp files of uncommitted ones, and compacts the log.
     */
    static async open(dataDir: string, log: Logger): Promise<{ commitLog: CommitLog; recovery: CommitLogRecovery }> {
        const flushDir = flushDirOf(dataDir);
        await mkdir(tempDirOf(dataDir), { recursive: true });
        await mkdir(parquetRootOf(dataDir), { recursive: true });
        const path = join(flushDir, LOG_FILE);
        const { records, damagedAt } = await readLog(path, log);
        const handle = await open(path, "a+", 0o600);
        const commitLog = new CommitLog(dataDir, log, handle);
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

    /** The temp file path for a flush's file. */
    tempPath(name: string): string {
        return join(tempDirOf(this.dataDir), name);
    }

    // Invariant kept: once this resolves the flush is durable and visible exactly once; if it
    // rejects before the record is durable, no file of the flush is visible.
    async commit(record: CommitRecord): Promise<void> {
        await syncDirectory(tempDirOf(this.dataDir));
        crashPoint("before-commit-record");
        await this.handle.write(encodeLine(record));
        await this.handle.datasync();
        crashPoint("after-commit-record");
        this.#flushed.noteRecord(record);
        await this.#finish(record);
        crashPoint("after-rename");
        if (++this.#commitsSinceSnapshot >= COMPACT_AFTER_COMMITS) await this.compact();
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
                await ensureDirectory(root, dirname(target));
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

    /** Rewrites the log as one snapshot of the flushed-through sequences (temp, fsync, rename). */
    async compact(): Promise<void> {
        const path = join(flushDirOf(this.dataDir), LOG_FILE);
        const temp = `${path}.tmp`;
        const snapshot = this.#flushed.snapshot();
        const out = await open(temp, "w", 0o600);
        try {
            await out.write(encodeLine(snapshot));
            await out.sync();
        } finally {
            await out.close();
        }
        await rename(temp, path);
        await syncDirectory(flushDirOf(this.dataDir));
        await this.handle.close();
        this.handle = await open(path, "a+", 0o600);
        this.#commitsSinceSnapshot = 0;
    }

    async close(): Promise<void> {
        await this.handle.close();
    }
}

/** The records of a log file up to its first torn or damaged line. */
async function readLog(path: string, log: Logger): Promise<{ records: LogRecord[]; damagedAt?: number }> {
    const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return "";
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

// Invariant kept: the directory and every directory created on the way to it are durable.
async function ensureDirectory(root: string, directory: string): Promise<void> {
    const created = await mkdir(directory, { recursive: true });
    if (created === undefined) return;
    let current = directory;
    while (current.length >= created.length && current !== root) {
        await syncDirectory(dirname(current));
        current = dirname(current);
    }
}

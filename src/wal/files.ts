/**
 * The WAL directory: which files are WAL files, in sequence order; the persisted sequence floor
 * that keeps sequence numbers from going backwards after every file was purged; and the limit
 * files that cut a WAL file short where a failed write could not be undone.
 */
import { join } from "node:path";
import { replaceFileAtomically, readIfExists } from "../fs/durable.js";
import { type EntryInfo, type FileSystem, errorCode, nodeFileSystem } from "../fs/file-system.js";
import { parseWalFileName } from "./format.js";

export interface WalFileRef {
    readonly name: string;
    readonly path: string;
    readonly firstSequence: number;
    /**
     * Bytes of the file that may be read, when a limit file says so: past them lie the entries of
     * a write that failed (and was answered 5xx) and could not be truncated away.
     */
    readonly limit?: number;
}

/** Beside `<file>.wal`, `<file>.wal.limit` holds how many of its bytes are trustworthy. */
export const LIMIT_SUFFIX = ".limit";

function parseLimit(text: string, path: string): number {
    const value = Number(text.trim());
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${path} holds "${text.trim()}", not a byte count`);
    return value;
}

/** The WAL files in `dir`, oldest (lowest first sequence) first, with their limits; other names are ignored. */
export async function listWalFiles(dir: string, fs: FileSystem = nodeFileSystem): Promise<WalFileRef[]> {
    let entries: EntryInfo[];
    try {
        entries = await fs.readdir(dir);
    } catch (error) {
        // No WAL directory (a data directory a server never wrote to) holds no WAL file.
        if (errorCode(error) === "ENOENT") return [];
        throw error;
    }
    const names = new Set(entries.map((entry) => entry.name));
    const files: WalFileRef[] = [];
    for (const { name } of entries) {
        const firstSequence = parseWalFileName(name);
        if (firstSequence === undefined) continue;
        const path = join(dir, name);
        const limitPath = `${path}${LIMIT_SUFFIX}`;
        const limitText = names.has(`${name}${LIMIT_SUFFIX}`) ? await readIfExists(fs, limitPath) : undefined;
        files.push({ name, path, firstSequence, ...(limitText === undefined ? {} : { limit: parseLimit(limitText.toString("utf8"), limitPath) }) });
    }
    return files.sort((a, b) => a.firstSequence - b.firstSequence);
}

// Invariant kept: once this resolves, a reader of `file` never reads past `bytes`, even after a
// crash (temp file fsynced, renamed, directory fsynced).
export async function writeLimit(fs: FileSystem, file: string, bytes: number): Promise<void> {
    await replaceFileAtomically(fs, `${file}${LIMIT_SUFFIX}`, `${bytes}\n`);
}

/**
 * Deletes a WAL file, then its limit file: a crash between leaves a limit without its file
 * (ignored, removed by the next purge), never a file without its limit.
 */
export async function deleteWalFile(fs: FileSystem, file: WalFileRef): Promise<void> {
    await fs.unlink(file.path);
    if (file.limit !== undefined) await fs.remove(`${file.path}${LIMIT_SUFFIX}`);
}

const FLOOR_FILE = "sequence";

/** The lowest sequence a new entry may take, as last persisted (0 when never persisted). */
export async function readSequenceFloor(dir: string, fs: FileSystem = nodeFileSystem): Promise<number> {
    const path = join(dir, FLOOR_FILE);
    const text = (await readIfExists(fs, path))?.toString("utf8");
    if (text === undefined) return 0;
    const value = Number(text.trim());
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${path} holds "${text.trim()}", not a sequence`);
    return value;
}

// Invariant kept: once this resolves, a crash cannot bring back a lower floor (temp file
// fsynced, renamed over the old one, directory fsynced).
export async function writeSequenceFloor(dir: string, next: number, fs: FileSystem = nodeFileSystem): Promise<void> {
    await replaceFileAtomically(fs, join(dir, FLOOR_FILE), `${next}\n`);
}

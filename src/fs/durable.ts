/**
 * Durable-file steps built on the `FileSystem` seam: the only places that decide what "on stable
 * storage" takes (fsync of the file, then of the directory that names it).
 */
import { dirname } from "node:path";
import { type FileHandle, type FileSystem, errorCode } from "./file-system.js";

/** A write that returned without writing anything (a disk that stopped taking bytes). */
export class NoProgressError extends Error {
    readonly code = "ENOPROGRESS";
    constructor() {
        super("write made no progress");
    }
}

// Invariant kept: when this resolves every byte of `buffers` is written at `position` onward
// (short writes are continued, never left half done without an error).
export async function writeFully(handle: FileHandle, buffers: readonly Uint8Array[], position: number): Promise<void> {
    let remaining = buffers;
    while (remaining.length > 0) {
        const { bytesWritten } = await handle.writev(remaining, position);
        if (bytesWritten <= 0) throw new NoProgressError();
        position += bytesWritten;
        remaining = skipBytes(remaining, bytesWritten);
    }
}

function skipBytes(buffers: readonly Uint8Array[], count: number): Uint8Array[] {
    let index = 0;
    while (index < buffers.length && count >= buffers[index]!.length) count -= buffers[index++]!.length;
    if (index === buffers.length) return [];
    return [buffers[index]!.subarray(count), ...buffers.slice(index + 1)];
}

// Invariant kept: when this resolves the directory exists and so does, durably, the entry of
// every directory it had to create in its parent.
export async function ensureDurableDirectory(fs: FileSystem, path: string): Promise<void> {
    const created = await fs.mkdir(path);
    if (created === undefined) return;
    for (let current = path; current.length >= created.length; current = dirname(current)) await fs.syncDirectory(dirname(current));
}

// Invariant kept: when this resolves `path` is a new file holding `data` on stable storage
// (its directory entry too); on failure no file is left at `path`.
export async function writeNewFileDurably(fs: FileSystem, path: string, data: readonly Uint8Array[] | Uint8Array, options: { syncDirectory?: boolean } = {}): Promise<void> {
    const handle = await fs.open(path, "create");
    try {
        await writeFully(handle, data instanceof Uint8Array ? [data] : data, 0);
        await handle.sync();
    } catch (error) {
        await handle.close().catch(() => undefined);
        await fs.unlink(path).catch(() => undefined);
        throw error;
    }
    await handle.close();
    if (options.syncDirectory ?? true) await fs.syncDirectory(dirname(path));
}

// Invariant kept: after a crash at any instant `path` holds either its old content or `data`,
// never a mix; when this resolves it durably holds `data` (temp, fsync, rename, directory fsync).
export async function replaceFileAtomically(fs: FileSystem, path: string, data: string | Uint8Array): Promise<void> {
    const temp = `${path}.tmp`;
    await fs.remove(temp);
    await writeNewFileDurably(fs, temp, typeof data === "string" ? Buffer.from(data, "utf8") : data, { syncDirectory: false });
    await fs.rename(temp, path);
    await fs.syncDirectory(dirname(path));
}

/** The file's content, or undefined when it does not exist. */
export async function readIfExists(fs: FileSystem, path: string): Promise<Buffer | undefined> {
    try {
        return await fs.readFile(path);
    } catch (error) {
        if (errorCode(error) === "ENOENT") return undefined;
        throw error;
    }
}

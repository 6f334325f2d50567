/**
 * The narrow slice of the file system the WAL writes through, so tests can inject short writes,
 * ENOSPC and EIO without a full disk.
 */
import { mkdir, open, rename } from "node:fs/promises";
import { dirname } from "node:path";

export interface WalFileHandle {
    writev(buffers: Uint8Array[], position: number): Promise<{ bytesWritten: number }>;
    datasync(): Promise<void>;
    sync(): Promise<void>;
    truncate(length: number): Promise<void>;
    close(): Promise<void>;
}

export interface WalFileSystem {
    /** Creates a new file for writing; fails with EEXIST when it exists. */
    create(path: string): Promise<WalFileHandle>;
    /** Makes a directory's entries (a created or renamed file) durable. */
    syncDirectory(path: string): Promise<void>;
}

export async function syncDirectory(path: string): Promise<void> {
    const handle = await open(path, "r");
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

export const nodeWalFileSystem: WalFileSystem = {
    create: (path) => open(path, "wx", 0o600),
    syncDirectory,
};

// Invariant kept: when this resolves the directory exists and so does, durably, the entry of
// every directory it had to create in its parent.
export async function ensureDurableDirectory(path: string, mode = 0o755): Promise<void> {
    const created = await mkdir(path, { recursive: true, mode });
    if (created === undefined) return;
    for (let current = path; current.length >= created.length; current = dirname(current)) await syncDirectory(dirname(current));
}

// Invariant kept: when this resolves `path` holds `data` on stable storage (the file is new:
// creating over an existing one fails with EEXIST).
export async function writeNewFileDurably(path: string, data: string | Uint8Array): Promise<void> {
    const handle = await open(path, "wx", 0o600);
    try {
        await handle.writeFile(data);
        await handle.sync();
    } finally {
        await handle.close();
    }
}

// Invariant kept: after a crash at any instant `path` holds either its old content or `data`,
// never a mix; when this resolves it durably holds `data` (temp, fsync, rename, directory fsync).
export async function replaceFileAtomically(path: string, data: string | Uint8Array): Promise<void> {
    const temp = `${path}.tmp`;
    const handle = await open(temp, "w", 0o600);
    try {
        await handle.writeFile(data);
        await handle.sync();
    } finally {
        await handle.close();
    }
    await rename(temp, path);
    await syncDirectory(dirname(path));
}

/**
 * The narrow slice of the file system the WAL writes through, so tests can inject short writes,
 * ENOSPC and EIO without a full disk.
 */
import { mkdir, open } from "node:fs/promises";
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

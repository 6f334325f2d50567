/**
 * The narrow slice of the file system the WAL writes through, so tests can inject short writes,
 * ENOSPC and EIO without a full disk.
 */
import { open } from "node:fs/promises";

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

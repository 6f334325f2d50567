/**
 * The data directory's layout, and the lock that keeps two processes (two servers, or a server
 * and an offline `recover`, `compact` or `wal purge`) from working on it at once.
 *
 * The lock is a kernel lock on an open file (an open-file-description lock on Linux, flock on
 * other systems, through `fs-native-extensions`): the kernel holds it for as long as the
 * process has the file open and drops it when the process dies, however it dies, whatever PID
 * namespace it runs in (two containers sharing a volume see each other's lock). The lock file's
 * content is only a note for operators: an empty, stale or damaged lock file never blocks a start.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import nativeFs from "fs-native-extensions";
import { SluiceError } from "./errors.js";
import { ensureDurableDirectory } from "./fs/durable.js";
import type { FileHandle, FileSystem } from "./fs/file-system.js";

export function walDirOf(dataDir: string): string {
    return join(dataDir, "wal");
}

export class DataDirLockedError extends SluiceError {
    readonly code = "data-dir-locked";
    constructor(
        readonly dataDir: string,
        holder: string,
    ) {
        super(`${dataDir} is in use by another sluice process${holder === "" ? "" : ` (${holder})`}; stop it first`);
    }
}

export interface DataDirLock {
    release(): Promise<void>;
}

export const LOCK_FILE = "sluice.lock";

/** What the lock file says about its holder, as one line ("" when it says nothing readable). */
async function holderNote(fs: FileSystem, path: string): Promise<string> {
    const text = await fs.readFile(path).then(
        (bytes) => bytes.toString("utf8", 0, Math.min(bytes.length, 200)),
        () => "",
    );
    return text.replace(/[^\x20-\x7e]+/g, " ").trim();
}

/** Writes who holds the lock into the lock file: a courtesy for operators, not needed for safety. */
async function noteHolder(handle: FileHandle): Promise<void> {
    const note = Buffer.from(`pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}\n`);
    try {
        await handle.truncate(0);
        await handle.writev([note], 0);
    } catch {
        // A full disk must not stop a start: the lock is the kernel's, not these bytes.
    }
}

// Invariant kept: at most one process at a time holds the lock of a data directory, and a
// process that dies (kill -9, power cut) holds nothing afterwards.
export async function lockDataDir(fs: FileSystem, dataDir: string): Promise<DataDirLock> {
    await ensureDurableDirectory(fs, dataDir);
    const path = join(dataDir, LOCK_FILE);
    const handle = await fs.open(path, "lock");
    let locked: boolean;
    try {
        locked = nativeFs.tryLock(handle.fd);
    } catch (error) {
        await handle.close();
        throw error;
    }
    if (!locked) {
        await handle.close();
        throw new DataDirLockedError(dataDir, await holderNote(fs, path));
    }
    await noteHolder(handle);
    let released = false;
    return {
        release: async () => {
            if (released) return;
            released = true;
            // Closing the only descriptor of the open file drops the lock.
            await handle.close();
        },
    };
}

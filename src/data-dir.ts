/**
 * The data directory's layout, and the lock that keeps two processes (a server and an offline
 * `recover` or `wal purge`) from working on it at once.
 */
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { SluiceError } from "./errors.js";

export function walDirOf(dataDir: string): string {
    return join(dataDir, "wal");
}

export class DataDirLockedError extends SluiceError {
    readonly code = "data-dir-locked";
    constructor(readonly dataDir: string, readonly pid: number) {
        super(`${dataDir} is in use by process ${pid} (a running sluice); stop it first`);
    }
}

export interface DataDirLock {
    release(): Promise<void>;
}

const LOCK_FILE = "sluice.lock";

function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (error) {
        return (error as NodeJS.ErrnoException).code === "EPERM";
    }
}

// Invariant kept: while a lock is held, no other process holding one has this directory; a lock
// left by a process that died (kill -9) is taken over.
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
    await mkdir(dataDir, { recursive: true });
    const path = join(dataDir, LOCK_FILE);
    for (let attempt = 0; attempt < 3; attempt++) {
        try {
            const handle = await open(path, "wx", 0o600);
            await handle.writeFile(`${process.pid}\n`);
            await handle.close();
            return { release: () => rm(path, { force: true }) };
        } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        }
        const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
        if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) throw new DataDirLockedError(dataDir, holder);
        await rm(path, { force: true });
    }
    throw new Error(`could not take the lock ${path}`);
}

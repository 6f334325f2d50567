/**
 * The data directory's layout, and the lock that keeps two processes (a server and an offline
 * `recover` or `wal purge`) from working on it at once.
 */
import { randomUUID } from "node:crypto";
import { link, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SluiceError } from "./errors.js";
import { ensureDurableDirectory } from "./wal/fs.js";

export function walDirOf(dataDir: string): string {
    return join(dataDir, "wal");
}

export class DataDirLockedError extends SluiceError {
    readonly code = "data-dir-locked";
    constructor(
        readonly dataDir: string,
        readonly pid: number,
    ) {
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

/** The process id a lock file names, or undefined when it is gone or unreadable. */
async function lockHolder(path: string): Promise<number | undefined> {
    const text = await readFile(path, "utf8").catch(() => "");
    const pid = Number(text.trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function code(error: unknown): string | undefined {
    return (error as NodeJS.ErrnoException).code;
}

// Invariant kept: at most one process holds the lock: it is taken with link(2) of a file that
// already names its holder (never empty), and a dead holder's lock is moved aside with one
// rename(2), which only one contender can win.
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
    await ensureDurableDirectory(dataDir);
    const path = join(dataDir, LOCK_FILE);
    const mine = `${path}.${process.pid}.${randomUUID()}`;
    await writeFile(mine, `${process.pid}\n`, { mode: 0o600 });
    try {
        for (let attempt = 0; attempt < 10; attempt++) {
            try {
                await link(mine, path);
                return {
                    release: async () => {
                        if ((await lockHolder(path)) === process.pid) await rm(path, { force: true });
                    },
                };
            } catch (error) {
                if (code(error) !== "EEXIST") throw error;
            }
            const holder = await lockHolder(path);
            if (holder === undefined) continue;
            if (holder !== process.pid && isAlive(holder)) throw new DataDirLockedError(dataDir, holder);
            const aside = `${path}.stale.${process.pid}`;
            try {
                await rename(path, aside);
            } catch (error) {
                if (code(error) === "ENOENT") continue;
                throw error;
            }
            const moved = await lockHolder(aside);
            // A live contender's fresh lock replaced the stale one in between: give it back.
            if (moved !== undefined && moved !== holder && isAlive(moved)) await link(aside, path).catch(() => undefined);
            await rm(aside, { force: true });
        }
        throw new Error(`could not take the lock ${path}: it keeps changing hands`);
    } finally {
        await rm(mine, { force: true });
    }
}

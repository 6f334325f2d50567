/**
 * The WAL directory: which files are WAL files, in sequence order, and the persisted sequence
 * floor that keeps sequence numbers from going backwards after every file was purged.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { parseWalFileName } from "./format.js";
import { replaceFileAtomically } from "./fs.js";

export interface WalFileRef {
    readonly name: string;
    readonly path: string;
    readonly firstSequence: number;
}

/** The WAL files in `dir`, oldest (lowest first sequence) first; other names are ignored. */
export async function listWalFiles(dir: string): Promise<WalFileRef[]> {
    const names = await readdir(dir);
    const files: WalFileRef[] = [];
    for (const name of names) {
        const firstSequence = parseWalFileName(name);
        if (firstSequence !== undefined) files.push({ name, path: join(dir, name), firstSequence });
    }
    return files.sort((a, b) => a.firstSequence - b.firstSequence);
}

const FLOOR_FILE = "sequence";

/** The lowest sequence a new entry may take, as last persisted (0 when never persisted). */
export async function readSequenceFloor(dir: string): Promise<number> {
    let text: string;
    try {
        text = await readFile(join(dir, FLOOR_FILE), "utf8");
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
        throw error;
    }
    const value = Number(text.trim());
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${join(dir, FLOOR_FILE)} holds "${text.trim()}", not a sequence`);
    return value;
}

// Invariant kept: once this resolves, a crash cannot bring back a lower floor (temp file
// fsynced, renamed over the old one, directory fsynced).
export async function writeSequenceFloor(dir: string, next: number): Promise<void> {
    await replaceFileAtomically(join(dir, FLOOR_FILE), `${next}\n`);
}

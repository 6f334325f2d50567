/**
 * Purge: deletes WAL files, but only files whose every entry is already in Parquet, i.e. whose
 * last sequence is below the low-water mark (the lowest sequence not yet in Parquet), unless
 * forced. Never by age alone: `purgeOlderThan` only narrows what `purgeInactive` may delete.
 */
import type { FileSystem } from "../fs/file-system.js";
import { LIMIT_SUFFIX, type WalFileRef, deleteWalFile, listWalFiles, writeSequenceFloor } from "./files.js";
import { parseWalFileName } from "./format.js";
import { WalFileReader } from "./reader.js";

/** What a purge needs to know about the WAL it purges. */
export interface PurgeTarget {
    readonly dir: string;
    readonly fileSystem: FileSystem;
    /** The file a running writer appends to (never deleted), if any. */
    activeFile(): string | undefined;
    /** The sequence the next entry will take (persisted as the floor before anything is deleted). */
    nextSequence(): Promise<number>;
    /** The lowest sequence not yet in Parquet; `nextSequence()` when everything is. */
    lowWaterMark(): Promise<number>;
    /** Makes the active file inactive (a running writer rotates); `purgeAll` calls it first. */
    rotate?(): Promise<void>;
}

/** A damaged WAL file is renamed with this suffix instead of deleted: its entries were never read. */
export const QUARANTINE_SUFFIX = ".damaged";

/** Why a file could not be read whole (bad header, untrustworthy entry length), if it could not. */
async function damageOf(file: WalFileRef, fs: FileSystem): Promise<string | undefined> {
    const scan = await new WalFileReader(file, { payloads: false, fileSystem: fs }).scanToEnd();
    return scan.badHeader ?? scan.stoppedBy;
}

export interface PurgeOptions {
    /** Delete even files holding entries not yet in Parquet: loses those entries. */
    readonly force?: boolean;
}

export interface PurgedFile {
    readonly name: string;
    readonly firstSequence: number;
    readonly bytes: number;
}

export interface KeptFile {
    readonly name: string;
    readonly reason: string;
}

export interface PurgeReport {
    readonly deleted: PurgedFile[];
    readonly kept: KeptFile[];
    readonly lowWaterMark: number;
    readonly forced: boolean;
}

/** Deletes every inactive file whose entries are all in Parquet. */
export function purgeInactive(target: PurgeTarget, options: PurgeOptions = {}): Promise<PurgeReport> {
    return purge(target, options, async () => undefined);
}

/** Like `purgeInactive`, limited to files last modified at least `ageMs` before `nowMs`. */
export function purgeOlderThan(target: PurgeTarget, ageMs: number, nowMs: number, options: PurgeOptions = {}): Promise<PurgeReport> {
    const cutoff = nowMs - ageMs;
    return purge(target, options, async (file) => {
        const { mtimeMs } = await target.fileSystem.lstat(file.path);
        return mtimeMs > cutoff ? `modified less than ${ageMs} ms ago` : undefined;
    });
}

/** Rotates a running writer, then deletes every file whose entries are all in Parquet. */
export async function purgeAll(target: PurgeTarget, options: PurgeOptions = {}): Promise<PurgeReport> {
    await target.rotate?.();
    return purge(target, options, async () => undefined);
}

// Invariant kept: without `force`, a file is deleted only if every sequence it can hold lies
// below the low-water mark; the sequence floor is durable before the first deletion.
async function purge(target: PurgeTarget, options: PurgeOptions, exclusion: (file: WalFileRef) => Promise<string | undefined>): Promise<PurgeReport> {
    const fs = target.fileSystem;
    const forced = options.force ?? false;
    // One snapshot: the active file, the next sequence and the mark are read in the same tick,
    // before the directory is listed; a file at or after that active file is active or newer.
    const active = target.activeFile();
    const nextPending = target.nextSequence();
    const markPending = target.lowWaterMark();
    const [next, lowWaterMark] = await Promise.all([nextPending, markPending]);
    const activeFirst = active === undefined ? Number.POSITIVE_INFINITY : (parseWalFileName(active) ?? Number.NEGATIVE_INFINITY);
    const files = await listWalFiles(target.dir, fs);
    const chosen: WalFileRef[] = [];
    const kept: KeptFile[] = [];
    for (const [index, file] of files.entries()) {
        // The file's entries end before the next file begins (or before the next sequence).
        const end = files[index + 1]?.firstSequence ?? next;
        const excluded = file.firstSequence >= activeFirst ? (file.name === active ? "active file" : "newer than the active file") : await exclusion(file);
        if (excluded !== undefined) kept.push({ name: file.name, reason: excluded });
        else if (!forced && end > lowWaterMark) {
            kept.push({ name: file.name, reason: `may hold sequences up to ${end - 1}, not all in Parquet (low-water mark ${lowWaterMark})` });
        } else chosen.push(file);
    }
    const deleted: PurgedFile[] = [];
    if (chosen.length > 0) await writeSequenceFloor(target.dir, next, fs);
    for (const file of chosen) {
        const damage = forced ? undefined : await damageOf(file, fs);
        if (damage !== undefined) {
            await fs.rename(file.path, `${file.path}${QUARANTINE_SUFFIX}`);
            kept.push({ name: file.name, reason: `damaged (${damage}): moved to ${file.name}${QUARANTINE_SUFFIX} for inspection, not deleted` });
            continue;
        }
        const { size } = await fs.lstat(file.path);
        await deleteWalFile(fs, file);
        deleted.push({ name: file.name, firstSequence: file.firstSequence, bytes: size });
    }
    await removeOrphanLimits(target.dir, fs);
    return { deleted, kept, lowWaterMark, forced };
}

/** Limit files whose WAL file is gone (a crash between the two deletions). */
async function removeOrphanLimits(dir: string, fs: FileSystem): Promise<void> {
    const names = new Set((await fs.readdir(dir).catch(() => [])).map((entry) => entry.name));
    for (const name of names) {
        if (name.endsWith(LIMIT_SUFFIX) && !names.has(name.slice(0, -LIMIT_SUFFIX.length))) await fs.remove(`${dir}/${name}`);
    }
}

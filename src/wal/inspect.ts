/**
 * What the WAL directory itself says about sequences, for a writer about to open it and for
 * operators working offline (no writer running).
 */
import { type FileSystem, nodeFileSystem } from "../fs/file-system.js";
import { WalDirectoryReader, decodedRecords } from "./directory-reader.js";
import { listWalFiles, readSequenceFloor } from "./files.js";
import type { PurgeTarget } from "./purge.js";
import { WalFileReader, nextSequenceAfter } from "./reader.js";
import type { FlushedThrough } from "./recovery.js";

/**
 * The first sequence a new entry may take: above every entry on disk, the persisted floor and
 * `atLeast`. A last file that cannot be read whole (bad header, untrustworthy length) may hold
 * more entries than it shows: the new file starts past its name, so the two never collide.
 */
export async function nextFreeSequence(dir: string, atLeast = 0, fs: FileSystem = nodeFileSystem): Promise<number> {
    const files = await listWalFiles(dir, fs);
    let next = Math.max(atLeast, await readSequenceFloor(dir, fs));
    const last = files.at(-1);
    if (last !== undefined) {
        const scan = await new WalFileReader(last, { payloads: false, fileSystem: fs }).scanToEnd();
        const damaged = scan.badHeader !== undefined || scan.stoppedBy !== undefined;
        next = Math.max(next, nextSequenceAfter(scan), last.firstSequence + (damaged ? 1 : 0));
    }
    return next;
}

/**
 * The lowest sequence whose rows are not in Parquet per `flushedThrough`, or `nextSequence`
 * when there is none. Entries that fail their CRC or do not decode can never be replayed, so
 * they hold nothing back (`wal verify` reports them).
 */
export async function unflushedLowWaterMark(dir: string, flushedThrough: FlushedThrough, nextSequence: number, fs: FileSystem = nodeFileSystem): Promise<number> {
    for await (const record of decodedRecords(new WalDirectoryReader(dir, { fileSystem: fs }))) {
        if (record.kind === "entry" && record.sequence > flushedThrough(record.database, record.batch.measurement)) return record.sequence;
    }
    return nextSequence;
}

/** A purge target for a WAL no writer has open. */
export function offlinePurgeTarget(dir: string, flushedThrough: FlushedThrough, fs: FileSystem = nodeFileSystem): PurgeTarget {
    let next: Promise<number> | undefined;
    const nextSequence = () => (next ??= nextFreeSequence(dir, 0, fs));
    return {
        dir,
        fileSystem: fs,
        activeFile: () => undefined,
        nextSequence,
        lowWaterMark: async () => unflushedLowWaterMark(dir, flushedThrough, await nextSequence(), fs),
    };
}

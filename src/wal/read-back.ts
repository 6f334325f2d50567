/**
 * Reading a flush's rows back from the WAL: a failed flush transferred its arrays to the encoder,
 * and the WAL still holds every entry of them (purge keeps what is not in Parquet).
 */
import type { ColumnarBatch } from "../columnar/batch.js";
import type { FileSystem } from "../fs/file-system.js";
import { WalDirectoryReader, decodedRecords } from "./directory-reader.js";

export interface SequencedBatch {
    readonly sequence: number;
    readonly batch: ColumnarBatch;
}

// Invariant kept: the result holds, in sequence order, every replayable entry of (database,
// measurement) from `minSequence` to `maxSequence`: exactly the rows a buffer drained then held.
export async function readBack(
    dir: string,
    fileSystem: FileSystem,
    what: { database: string; measurement: string; minSequence: number; maxSequence: number },
): Promise<SequencedBatch[]> {
    const found: SequencedBatch[] = [];
    const reader = new WalDirectoryReader(dir, { fromSequence: what.minSequence, fileSystem });
    for await (const record of decodedRecords(reader)) {
        if (record.kind !== "entry") continue;
        if (record.sequence > what.maxSequence) break;
        if (record.database !== what.database || record.batch.measurement !== what.measurement) continue;
        found.push({ sequence: record.sequence, batch: record.batch });
    }
    return found;
}

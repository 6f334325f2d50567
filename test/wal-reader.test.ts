import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WalDirectoryReader } from "../src/wal/directory-reader.js";
import { listWalFiles } from "../src/wal/files.js";
import { decodePayload } from "../src/wal/payload.js";
import { type WalRecord, WalFileReader } from "../src/wal/reader.js";
import { WalWriter } from "../src/wal/writer.js";
import { walOptions } from "./helpers/wal.js";
import { cpuBatch, tempDir } from "./helpers/batches.js";

async function writeEntries(dir: string, count: number, rows = 3): Promise<{ file: string; bytes: Buffer; offsets: number[] }> {
    const writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
    for (let i = 0; i < count; i++) await writer.append("db", cpuBatch(rows, i * rows));
    await writer.close();
    const [ref] = await listWalFiles(dir);
    const bytes = await readFile(ref!.path);
    const offsets: number[] = [];
    for (let offset = 7; offset < bytes.length; offset += 16 + bytes.readUInt32BE(offset)) offsets.push(offset);
    return { file: ref!.path, bytes, offsets };
}

async function readAll(path: string, firstSequence = 0, chunkBytes?: number) {
    const reader = new WalFileReader({ name: "x.wal", path, firstSequence }, chunkBytes === undefined ? {} : { chunkBytes });
    const records: WalRecord[] = [];
    for await (const record of reader.records()) records.push(record.kind === "entry" ? { ...record, payload: Buffer.from(record.payload) } : record);
    return { records, scan: reader.scan };
}

describe("WAL reader", () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    beforeEach(async () => ({ path: dir, cleanup } = await tempDir()));
    afterEach(() => cleanup());

    it("streams entries in order with their sequences, offsets and payloads", async () => {
        const { file, offsets } = await writeEntries(dir, 5);
        const { records, scan } = await readAll(file, 100, 64); // a chunk smaller than one entry
        expect(records.map((r) => [r.kind, r.sequence, r.offset])).toEqual(offsets.map((o, i) => ["entry", 100 + i, o]));
        const decoded = records.map((r) => (r.kind === "entry" ? decodePayload(r.payload).batch.rows : 0));
        expect(decoded).toEqual([3, 3, 3, 3, 3]);
        expect(scan).toMatchObject({ entries: 5, corrupted: 0, tornTailOffset: undefined, badHeader: undefined });
    });

    it("ends the file cleanly at a torn tail cut at every byte offset of the last entry", async () => {
        const { bytes, offsets } = await writeEntries(dir, 3);
        const last = offsets[2]!;
        const torn = join(dir, "torn.wal");
        for (let cut = last; cut < bytes.length; cut++) {
            await writeFile(torn, bytes.subarray(0, cut));
            const { records, scan } = await readAll(torn);
            expect(
                records.map((r) => r.kind),
                `cut at ${cut}`,
            ).toEqual(["entry", "entry"]);
            expect(scan.entries).toBe(2);
            expect(scan.corrupted).toBe(0);
            expect(scan.endOffset).toBe(last);
            expect(scan.tornTailOffset).toBe(cut === last ? undefined : last);
        }
    });

    it("treats a zero-filled tail (space allocated, write never landed) as torn", async () => {
        const { file, bytes } = await writeEntries(dir, 2);
        await writeFile(file, Buffer.concat([bytes, Buffer.alloc(4096)]));
        const { records, scan } = await readAll(file);
        expect(records).toHaveLength(2);
        expect(scan.tornTailOffset).toBe(bytes.length);
        expect(scan.corrupted).toBe(0);
    });

    it("skips an entry whose CRC does not match, keeps alignment, and counts it", async () => {
        const { file, bytes, offsets } = await writeEntries(dir, 5);
        const flipped = Buffer.from(bytes);
        flipped[offsets[2]! + 16 + 10]! ^= 0x01;
        await writeFile(file, flipped);
        const { records, scan } = await readAll(file);
        expect(records.map((r) => `${r.kind}:${r.sequence}`)).toEqual(["entry:0", "entry:1", "corrupt:2", "entry:3", "entry:4"]);
        expect(scan).toMatchObject({ entries: 5, corrupted: 1, tornTailOffset: undefined });
    });

    it("stops at an entry whose length is above the 100 MiB limit and counts it", async () => {
        const { file, bytes, offsets } = await writeEntries(dir, 3);
        const broken = Buffer.from(bytes);
        broken.writeUInt32BE(0xffffffff, offsets[1]);
        await writeFile(file, broken);
        const { records, scan } = await readAll(file);
        expect(records).toHaveLength(1);
        expect(scan.corrupted).toBe(1);
        expect(scan.stoppedBy).toMatch(/claims 4294967295 bytes/);
    });

    it("reports a bad file header and reads nothing from that file", async () => {
        const { file, bytes } = await writeEntries(dir, 2);
        await writeFile(file, Buffer.concat([Buffer.from("NOPE\x00\x01\x01"), bytes.subarray(7)]));
        const { records, scan } = await readAll(file);
        expect(records).toEqual([]);
        expect(scan.badHeader).toMatch(/magic/);
    });

    it("treats a file cut inside its own header (a crash at creation) as empty, not bad", async () => {
        const { file, bytes } = await writeEntries(dir, 1);
        for (const cut of [0, 3, 6]) {
            await writeFile(file, bytes.subarray(0, cut));
            const { records, scan } = await readAll(file);
            expect(records).toEqual([]);
            expect(scan.badHeader).toBeUndefined();
            expect(scan.tornTailOffset).toBe(0);
        }
    });

    it("reads a directory across files in sequence order, from a given sequence", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off", maxFileBytes: 1024 }));
        for (let i = 0; i < 20; i++) await writer.append("db", cpuBatch(2, i * 2));
        await writer.close();
        expect((await listWalFiles(dir)).length).toBeGreaterThan(3);
        const reader = new WalDirectoryReader(dir, { fromSequence: 7 });
        const sequences: number[] = [];
        for await (const record of reader.records()) if (record.kind !== "end") sequences.push(record.sequence);
        expect(sequences).toEqual(Array.from({ length: 13 }, (_, i) => 7 + i));
        expect(reader.scans[0]!.file.firstSequence).toBeLessThanOrEqual(7);
    });
});

import { readFile, writeFile } from "node:fs/promises";
import { Unpackr } from "msgpackr";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { valueAt } from "../src/columnar/batch.js";
import { listWalFiles } from "../src/wal/files.js";
import { encodeEntryHeader } from "../src/wal/format.js";
import { type RecoveryEvent, recoverWal } from "../src/wal/recovery.js";
import { WalWriter } from "../src/wal/writer.js";
import { walOptions } from "./helpers/wal.js";
import { cpuBatch, tempDir } from "./helpers/batches.js";

interface Replayed {
    database: string;
    measurement: string;
    rows: number;
    sequence: number;
    firstTime: bigint;
}

async function recoverAll(dir: string, options: Partial<Parameters<typeof recoverWal>[0]> = {}) {
    const replayed: Replayed[] = [];
    const problems: RecoveryEvent[] = [];
    const stats = await recoverWal({
        dir,
        onBatch: (database, measurement, batch, sequence) =>
            void replayed.push({ database, measurement, rows: batch.rows, sequence, firstTime: valueAt(batch.columns.get("time")!, 0) as bigint }),
        onProblem: (event) => problems.push(event),
        ...options,
    });
    return { replayed, problems, stats };
}

describe("WAL recovery", () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    beforeEach(async () => ({ path: dir, cleanup } = await tempDir()));
    afterEach(() => cleanup());

    it("replays every entry across files in sequence order through the columnar callback", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off", maxFileBytes: 1500 }));
        for (let i = 0; i < 12; i++) await writer.append(i % 2 ? "a" : "b", cpuBatch(3, i * 3, i % 3 ? "cpu" : "mem"));
        await writer.close();
        const { replayed, stats } = await recoverAll(dir);
        expect(replayed.map((r) => r.sequence)).toEqual([...Array(12).keys()]);
        expect(replayed.map((r) => r.database)).toEqual(replayed.map((_, i) => (i % 2 ? "a" : "b")));
        expect(replayed.map((r) => r.measurement)).toEqual(replayed.map((_, i) => (i % 3 ? "cpu" : "mem")));
        expect(replayed.every((r) => r.rows === 3)).toBe(true);
        expect(stats).toMatchObject({
            recoveredFiles: (await listWalFiles(dir)).length,
            recoveredBatches: 12,
            recoveredEntries: 12,
            recoveredRows: 36,
            corruptedEntries: 0,
            skippedFiles: 0,
            tornTails: 0,
        });
        expect(stats.recoveredFiles).toBeGreaterThan(1);
        expect(stats.durationMs).toBeGreaterThanOrEqual(0);
    });

    it("splits large entries into batches of at most batchRows and awaits each callback", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await writer.append("db", cpuBatch(25));
        await writer.close();
        let inFlight = 0;
        const sizes: number[] = [];
        const times: bigint[] = [];
        const stats = await recoverWal({
            dir,
            batchRows: 10,
            onBatch: async (_db, _m, batch) => {
                expect(inFlight).toBe(0);
                inFlight++;
                await new Promise((r) => setTimeout(r, 5));
                sizes.push(batch.rows);
                times.push(valueAt(batch.columns.get("time")!, 0) as bigint);
                expect(valueAt(batch.columns.get("ok")!, 0)).toBe(((sizes.length - 1) * 10) % 3 === 0);
                inFlight--;
            },
        });
        expect(sizes).toEqual([10, 10, 5]);
        expect(times).toEqual([0, 10, 20].map((n) => valueAt(cpuBatch(25).columns.get("time")!, n)));
        expect(stats).toMatchObject({ recoveredBatches: 3, recoveredEntries: 1, recoveredRows: 25 });
    });

    it("skips entries at or below each (database, measurement)'s flushed-through sequence", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        for (let i = 0; i < 6; i++) await writer.append("db", cpuBatch(1, i, i % 2 ? "cpu" : "mem"));
        await writer.close();
        const flushed = new Map([
            ["db/cpu", 3],
            ["db/mem", 0],
        ]);
        const { replayed, stats } = await recoverAll(dir, { flushedThrough: (d, m) => flushed.get(`${d}/${m}`) ?? -1 });
        expect(replayed.map((r) => `${r.measurement}:${r.sequence}`)).toEqual(["mem:2", "mem:4", "cpu:5"]);
        expect(stats.alreadyFlushedEntries).toBe(3);
    });

    it("skips the active file", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await writer.append("db", cpuBatch(1));
        await writer.close();
        const live = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await live.append("db", cpuBatch(1));
        const { replayed, stats } = await recoverAll(dir, { skipFile: live.activeFile });
        await live.close();
        expect(replayed.map((r) => r.sequence)).toEqual([0]);
        expect(stats.skippedFiles).toBe(1);
    });

    it("counts corrupt entries, torn tails and bad files, and replays everything else", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off", maxFileBytes: 1200 }));
        for (let i = 0; i < 9; i++) await writer.append("db", cpuBatch(3, i * 3));
        await writer.close();
        const files = await listWalFiles(dir);
        expect(files.length).toBeGreaterThanOrEqual(3);
        const [first, second, third] = files as [(typeof files)[0], (typeof files)[0], (typeof files)[0]];
        const one = await readFile(first.path);
        one[7 + 16 + 20]! ^= 0xff; // CRC mismatch in the first entry
        await writeFile(first.path, one);
        await writeFile(second.path, Buffer.concat([Buffer.from("JUNK!!!"), (await readFile(second.path)).subarray(7)]));
        const three = await readFile(third.path);
        await writeFile(third.path, three.subarray(0, three.length - 5));
        const { replayed, problems, stats } = await recoverAll(dir);
        expect(stats.corruptedEntries).toBe(1);
        expect(stats.skippedFiles).toBe(1);
        expect(stats.tornTails).toBe(1);
        expect(replayed.map((r) => r.sequence)).not.toContain(first.firstSequence);
        expect(replayed.some((r) => r.sequence >= second.firstSequence && r.sequence < third.firstSequence)).toBe(false);
        expect(problems.map((p) => p.file)).toEqual([first.name, second.name]);
        expect(problems[0]!.reason).toBe("CRC32 mismatch");
        expect(problems[1]!.reason).toMatch(/magic/);
    });

    it("counts an entry that passes its CRC but does not decode as corrupted", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await writer.append("db", cpuBatch(1));
        await writer.close();
        const [file] = await listWalFiles(dir);
        const payload = Buffer.from([0x01, 0x00, 0x00, 0x93, 1, 2, 3]);
        await writeFile(file!.path, Buffer.concat([await readFile(file!.path), encodeEntryHeader([payload], 0n), payload]));
        const { replayed, problems, stats } = await recoverAll(dir);
        expect(replayed.map((r) => r.sequence)).toEqual([0]);
        expect(stats.corruptedEntries).toBe(1);
        expect(problems).toEqual([{ file: file!.name, sequence: 1, reason: "payload is not a map" }]);
    });
});

describe("requests written as several entries (DESIGN.md §3 invariant 7)", () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    beforeEach(async () => ({ path: dir, cleanup } = await tempDir()));
    afterEach(() => cleanup());

    /** The byte offset where each entry of the (only) WAL file ends. */
    async function entryEnds(): Promise<number[]> {
        const [file] = await listWalFiles(dir);
        const bytes = await readFile(file!.path);
        const ends: number[] = [];
        for (let offset = 7; offset < bytes.length;) {
            offset += 16 + bytes.readUInt32BE(offset);
            ends.push(offset);
        }
        return ends;
    }

    it("replays a request only if its last entry is there: a crash between the writes of one request leaves nothing of it", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await writer.append("db", cpuBatch(1, 0, "before"));
        await writer.appendAll(["m1", "m2", "m3", "m4"].map((measurement, i) => ({ database: "db", batch: cpuBatch(2, 10 * i, measurement) })));
        await writer.close();
        const ends = await entryEnds();
        expect(ends).toHaveLength(5);
        const [file] = await listWalFiles(dir);
        // As if the process died after the first three of the request's four entries reached the file.
        const whole = await readFile(file!.path);
        await writeFile(file!.path, whole.subarray(0, ends[3]));
        const { replayed, problems, stats } = await recoverAll(dir);
        expect(replayed.map((r) => r.measurement)).toEqual(["before"]);
        expect(stats).toMatchObject({ recoveredEntries: 1, incompleteRequests: 1, droppedEntries: 3, corruptedEntries: 0 });
        expect(problems).toEqual([{ file: file!.name, sequence: 1, reason: expect.stringMatching(/request written as 4 entries from sequence 1 lacks its last entry/) }]);
        // Whole, the same request replays as one.
        await writeFile(file!.path, whole);
        expect((await recoverAll(dir)).replayed.map((r) => r.measurement)).toEqual(["before", "m1", "m2", "m3", "m4"]);
    });

    it("keeps a whole request whose middle entry was damaged later (a media error, not a crash): the rest is replayed, the damage counted", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await writer.appendAll(["m1", "m2", "m3"].map((measurement) => ({ database: "db", batch: cpuBatch(2, 0, measurement) })));
        await writer.close();
        const ends = await entryEnds();
        const [file] = await listWalFiles(dir);
        const bytes = await readFile(file!.path);
        bytes[ends[1]! - 1]! ^= 0xff;
        await writeFile(file!.path, bytes);
        const { replayed, stats } = await recoverAll(dir);
        expect(replayed.map((r) => r.measurement)).toEqual(["m1", "m3"]);
        expect(stats).toMatchObject({ corruptedEntries: 1, incompleteRequests: 0 });
    });

    it("marks a request's entries so that a plain msgpack reader (Arc's format) still reads every data entry", async () => {
        const writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await writer.appendAll(["m1", "m2"].map((measurement) => ({ database: "db", batch: cpuBatch(2, 0, measurement) })));
        await writer.close();
        const [file] = await listWalFiles(dir);
        const bytes = await readFile(file!.path);
        const maps: Map<string, unknown>[] = [];
        for (let offset = 7; offset < bytes.length;) {
            const length = bytes.readUInt32BE(offset);
            const payload = bytes.subarray(offset + 16, offset + 16 + length);
            maps.push(new Unpackr({ mapsAsObjects: false }).unpack(payload.subarray(3 + payload.readUInt16BE(1))) as Map<string, unknown>);
            offset += 16 + length;
        }
        expect(maps.map((map) => [map.get("m"), map.get("u")])).toEqual([
            ["m1", 1],
            ["m2", undefined],
        ]);
    });
});

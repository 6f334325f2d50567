import { readFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { listWalFiles } from "../src/wal/files.js";
import { offlinePurgeTarget } from "../src/wal/inspect.js";
import { type PurgeTarget, purgeAll, purgeInactive, purgeOlderThan } from "../src/wal/purge.js";
import { NOTHING_FLUSHED } from "../src/wal/recovery.js";
import { WalWriter } from "../src/wal/writer.js";
import { walOptions } from "./helpers/wal.js";
import { cpuBatch, tempDir } from "./helpers/batches.js";

/** A running writer's purge target with a low-water mark set by the test. */
function liveTarget(writer: WalWriter, lowWater: () => number): PurgeTarget {
    return {
        dir: writer.dir,
        fileSystem: nodeFileSystem,
        activeFile: () => writer.activeFile,
        nextSequence: async () => writer.nextSequence,
        lowWaterMark: async () => lowWater(),
        rotate: () => writer.rotate(),
    };
}

describe("WAL purge", () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    let writer: WalWriter;
    beforeEach(async () => {
        ({ path: dir, cleanup } = await tempDir());
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off", maxFileBytes: 1000 }));
        for (let i = 0; i < 12; i++) await writer.append("db", cpuBatch(3, i * 3));
    });
    afterEach(async () => {
        await writer.close();
        await cleanup();
    });

    it("deletes only inactive files whose every sequence is below the low-water mark", async () => {
        const files = await listWalFiles(dir);
        expect(files.length).toBeGreaterThanOrEqual(4);
        const mark = files[2]!.firstSequence + 1; // inside the third file
        const report = await purgeInactive(liveTarget(writer, () => mark));
        expect(report.deleted.map((f) => f.name)).toEqual([files[0]!.name, files[1]!.name]);
        expect(report.deleted.every((f) => f.bytes > 7)).toBe(true);
        expect(report.kept[0]).toEqual({ name: files[2]!.name, reason: expect.stringMatching(/not all in Parquet \(low-water mark \d+\)/) });
        expect(report.kept.at(-1)).toEqual({ name: writer.activeFile, reason: "active file" });
        expect((await listWalFiles(dir)).map((f) => f.name)).toEqual(files.slice(2).map((f) => f.name));
    });

    it("refuses everything not yet flushed, and deletes it only when forced", async () => {
        const before = await listWalFiles(dir);
        const refused = await purgeInactive(liveTarget(writer, () => 0));
        expect(refused.deleted).toEqual([]);
        expect(await listWalFiles(dir)).toEqual(before);
        const forced = await purgeInactive(
            liveTarget(writer, () => 0),
            { force: true },
        );
        expect(forced.forced).toBe(true);
        expect(forced.deleted).toHaveLength(before.length - 1);
        expect((await listWalFiles(dir)).map((f) => f.name)).toEqual([writer.activeFile]);
    });

    it("purgeOlderThan deletes old flushed files only: age narrows, never widens", async () => {
        const files = await listWalFiles(dir);
        const old = (Date.now() - 3_600_000) / 1000;
        await utimes(files[0]!.path, old, old);
        await utimes(files[1]!.path, old, old);
        const report = await purgeOlderThan(
            liveTarget(writer, () => files[1]!.firstSequence),
            60_000,
            Date.now(),
        );
        expect(report.deleted.map((f) => f.name)).toEqual([files[0]!.name]);
        expect(report.kept.find((k) => k.name === files[1]!.name)?.reason).toMatch(/not all in Parquet/);
        expect(report.kept.find((k) => k.name === files[2]!.name)?.reason).toBe("modified less than 60000 ms ago");
    });

    it("purgeAll rotates the running writer first, then deletes what is flushed", async () => {
        const wasActive = writer.activeFile;
        const report = await purgeAll(liveTarget(writer, () => writer.nextSequence));
        expect(report.deleted.map((f) => f.name)).toContain(wasActive);
        expect((await listWalFiles(dir)).map((f) => f.name)).toEqual([writer.activeFile]);
        expect((await writer.append("db", cpuBatch(1))).sequence).toBe(12);
    });

    it("persists the sequence floor before deleting, so a fresh WAL continues above it", async () => {
        await writer.close();
        const report = await purgeAll(offlinePurgeTarget(dir, () => 100));
        expect(report.kept).toEqual([]);
        expect(await listWalFiles(dir)).toEqual([]);
        expect(await readFile(join(dir, "sequence"), "utf8")).toBe("12\n");
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        expect(writer.nextSequence).toBe(12);
    });

    it("offline, computes the low-water mark from the entries not yet flushed", async () => {
        await writer.close();
        const files = await listWalFiles(dir);
        const mark = files[1]!.firstSequence;
        const report = await purgeInactive(offlinePurgeTarget(dir, () => mark - 1));
        expect(report.lowWaterMark).toBe(mark);
        expect(report.deleted.map((f) => f.name)).toEqual([files[0]!.name]);
        const nothing = await purgeInactive(offlinePurgeTarget(dir, NOTHING_FLUSHED));
        expect(nothing.lowWaterMark).toBe(files[1]!.firstSequence);
        expect(nothing.deleted).toEqual([]);
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
    });
});

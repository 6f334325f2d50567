import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WalClosedError, WalEntryTooLargeError, WalFailedError, WalIOError } from "../src/wal/errors.js";
import { listWalFiles } from "../src/wal/files.js";
import { offlinePurgeTarget } from "../src/wal/inspect.js";
import { purgeAll } from "../src/wal/purge.js";
import { NOTHING_FLUSHED, recoverWal } from "../src/wal/recovery.js";
import { walFileName } from "../src/wal/format.js";
import { type SyncMode, WalWriter } from "../src/wal/writer.js";
import { walOptions } from "./helpers/wal.js";
import { cpuBatch, tempDir } from "./helpers/batches.js";
import { FaultyFileSystem } from "./helpers/faulty-fs.js";

async function replayedSequences(dir: string): Promise<number[]> {
    const sequences: number[] = [];
    await recoverWal({ dir, onBatch: (_db, _m, _batch, sequence) => void sequences.push(sequence) });
    return sequences;
}

describe("WAL writer", () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    let writer: WalWriter | undefined;
    beforeEach(async () => ({ path: dir, cleanup } = await tempDir()));
    afterEach(async () => {
        await writer?.close();
        writer = undefined;
        await cleanup();
    });

    it("group-commits concurrent appends: all resolve, fewer syncs than appends, none before its sync", async () => {
        const fs = new FaultyFileSystem();
        fs.syncDelayMs = 15;
        writer = await WalWriter.open(walOptions({ dir, fileSystem: fs }));
        const syncsAtOpen = fs.count("datasync");
        const violations: string[] = [];
        const results = await Promise.all(
            Array.from({ length: 200 }, (_, i) =>
                writer!.append("db", cpuBatch(10, i * 10)).then((result) => {
                    if (fs.bytesSynced < fs.bytesWritten) violations.push(`append ${i} resolved with ${fs.bytesWritten - fs.bytesSynced} bytes unsynced`);
                    return result;
                }),
            ),
        );
        expect(violations).toEqual([]);
        expect(results.map((r) => r.sequence)).toEqual(Array.from({ length: 200 }, (_, i) => i));
        const syncs = fs.count("datasync") - syncsAtOpen;
        expect(syncs).toBeGreaterThan(0);
        expect(syncs).toBeLessThan(200);
        expect(writer.stats.largestGroup).toBeGreaterThan(1);
        expect(writer.stats.syncs).toBe(syncs);
        await writer.close();
        expect(await replayedSequences(dir)).toEqual(results.map((r) => r.sequence));
    });

    it.each<[SyncMode, "datasync" | "sync" | undefined]>([
        ["fdatasync", "datasync"],
        ["fsync", "sync"],
        ["async", undefined],
        ["off", undefined],
    ])("in %s mode syncs each group with %s before resolving", async (syncMode, call) => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, syncMode, fileSystem: fs, syncIntervalMs: 10_000 }));
        const before = fs.calls.length;
        await writer.append("db", cpuBatch(5));
        const after = fs.calls.slice(before);
        if (call === undefined) expect(after).toEqual(["writev"]);
        else expect(after).toEqual(["writev", call]);
    });

    it("in async mode syncs written entries on the interval", async () => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, syncMode: "async", fileSystem: fs, syncIntervalMs: 20 }));
        await writer.append("db", cpuBatch(5));
        const deadline = Date.now() + 5000;
        while (fs.bytesSynced < fs.bytesWritten && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect(fs.bytesSynced).toBe(fs.bytesWritten);
    });

    it("keeps syncing on the interval and rotating on request under a steady stream of appends", async () => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, syncMode: "async", fileSystem: fs, syncIntervalMs: 20 }));
        let stop = false;
        const appenders = Array.from({ length: 16 }, async () => {
            while (!stop) await writer!.append("db", cpuBatch(200));
        });
        await new Promise((r) => setTimeout(r, 50));
        const before = writer.activeFile;
        await writer.rotate();
        const rotatedWhileLoaded = !stop;
        await new Promise((r) => setTimeout(r, 150));
        stop = true;
        await Promise.all(appenders);
        expect(rotatedWhileLoaded).toBe(true);
        expect(writer.activeFile).not.toBe(before);
        expect(fs.count("datasync")).toBeGreaterThanOrEqual(3);
    });

    it("rotates by size, naming each file by its first sequence", async () => {
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off", maxFileBytes: 2048 }));
        const results = [];
        for (let i = 0; i < 30; i++) results.push(await writer.append("db", cpuBatch(4, i * 4)));
        const files = await listWalFiles(dir);
        expect(files.length).toBeGreaterThan(3);
        expect(writer.stats.rotations).toBe(files.length - 1);
        for (const [index, file] of files.entries()) {
            expect(results.find((r) => r.file === file.name)?.sequence).toBe(file.firstSequence);
            if (index < files.length - 1) expect((await stat(file.path)).size).toBeLessThanOrEqual(2048);
        }
    });

    it("rotates by age on the next append and on the idle timer", async () => {
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off", maxFileAgeMs: 30 }));
        await writer.append("db", cpuBatch(1));
        await new Promise((r) => setTimeout(r, 40));
        const second = await writer.append("db", cpuBatch(1));
        expect(second.file).not.toBe("00000000000000000000.wal");
        const deadline = Date.now() + 5000;
        while (writer.activeFile === second.file && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect(writer.activeFile).toBe("00000000000000000002.wal");
        await new Promise((r) => setTimeout(r, 100));
        expect(writer.activeFile).toBe("00000000000000000002.wal"); // an empty file is not rotated
    });

    it("never reuses a sequence across reopen, torn tails, and purgeAll", async () => {
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        for (let i = 0; i < 3; i++) await writer.append("db", cpuBatch(1));
        await writer.close();
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        expect(writer.nextSequence).toBe(3);
        expect(writer.activeFile).toBe("00000000000000000003.wal");
        await writer.append("db", cpuBatch(1));
        await writer.close();
        const report = await purgeAll(offlinePurgeTarget(dir, NOTHING_FLUSHED), { force: true });
        expect(report.deleted.map((f) => f.name)).toEqual(["00000000000000000000.wal", "00000000000000000003.wal"]);
        expect(await listWalFiles(dir)).toEqual([]);
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        expect(writer.nextSequence).toBe(4);
        expect((await writer.append("db", cpuBatch(1))).sequence).toBe(4);
    });

    it("starts a new file on every open and replaces an empty file left at the next sequence", async () => {
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await writer.close();
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        await writer.close();
        expect(await readdir(dir)).toEqual(["00000000000000000000.wal"]);
    });

    it("rejects a payload above 100 MiB with a typed error and stays usable", async () => {
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        const rows = 14_000_000; // 8 bytes of time alone is 112 MB
        const big = { measurement: "m", rows, tags: [], columns: new Map([["time", { type: "t" as const, values: new BigInt64Array(rows) }]]) };
        await expect(writer.append("db", big)).rejects.toBeInstanceOf(WalEntryTooLargeError);
        expect((await writer.append("db", cpuBatch(1))).sequence).toBe(0);
    });

    it("appendAll puts its batches in one write and one sync: all acknowledged or none", async () => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, fileSystem: fs, maxFileBytes: 4096 }));
        while (writer.stats.bytes < 3000) await writer.append("db", cpuBatch(2));
        const before = fs.count("writev");
        const results = await writer.appendAll([
            { database: "a", batch: cpuBatch(3) },
            { database: "b", batch: cpuBatch(3, 3, "mem") },
            { database: "c", batch: cpuBatch(3, 6) },
        ]);
        expect(fs.count("writev") - before).toBe(1);
        expect(new Set(results.map((r) => r.file)).size).toBe(1);
        expect(results.map((r) => r.sequence - results[0]!.sequence)).toEqual([0, 1, 2]);
        fs.failNext("writev", "ENOSPC");
        await expect(
            writer.appendAll([
                { database: "a", batch: cpuBatch(1) },
                { database: "b", batch: cpuBatch(1) },
            ]),
        ).rejects.toBeInstanceOf(WalIOError);
        await writer.close();
        writer = undefined;
        const replayed = await replayedSequences(dir);
        expect(replayed.at(-1)).toBe(results[2]!.sequence);
    });

    it("rejects appends after close with WalClosedError", async () => {
        writer = await WalWriter.open(walOptions({ dir, syncMode: "off" }));
        const pending = writer.append("db", cpuBatch(1));
        await writer.close();
        await expect(pending).resolves.toMatchObject({ sequence: 0 });
        await expect(writer.append("db", cpuBatch(1))).rejects.toBeInstanceOf(WalClosedError);
    });

    it("on ENOSPC rejects the group, leaves none of it readable, and recovers when space returns", async () => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, fileSystem: fs }));
        await writer.append("db", cpuBatch(2));
        fs.partialBytes = 100; // a short write: part of the group reached the file
        fs.failNext("writev", "ENOSPC");
        const failed = await Promise.allSettled([writer.append("db", cpuBatch(2)), writer.append("db", cpuBatch(2))]);
        for (const outcome of failed) {
            expect(outcome.status).toBe("rejected");
            const reason = (outcome as PromiseRejectedResult).reason as WalIOError;
            expect(reason).toBeInstanceOf(WalIOError);
            expect(reason.errno).toBe("ENOSPC");
            expect(reason.retryable).toBe(true);
        }
        const next = await writer.append("db", cpuBatch(2));
        await writer.close();
        writer = undefined;
        expect(next.sequence).toBe(1);
        expect(await replayedSequences(dir)).toEqual([0, 1]);
    });

    it("on a failed fdatasync rejects the group and truncates it away", async () => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, fileSystem: fs }));
        await writer.append("db", cpuBatch(2));
        fs.failNext("datasync", "EIO");
        await expect(writer.append("db", cpuBatch(2))).rejects.toMatchObject({ code: "wal-io", errno: "EIO" });
        await writer.close();
        writer = undefined;
        expect(await replayedSequences(dir)).toEqual([0]);
    });

    it("never replays a request answered 503 when its fdatasync and the truncate back both fail: a limit file cuts it off, the next request goes to a new file", async () => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, fileSystem: fs }));
        await writer.append("db", cpuBatch(2, 0));
        fs.failNext("datasync", "EIO");
        fs.failNext("truncate", "EIO");
        await expect(writer.append("db", cpuBatch(3, 100))).rejects.toMatchObject({ code: "wal-io", errno: "EIO" });
        const next = await writer.append("db", cpuBatch(4, 200));
        await writer.close();
        writer = undefined;
        const files = await listWalFiles(dir);
        expect(files.map((file) => file.name)).toEqual([walFileName(0), walFileName(1)]);
        expect(next).toEqual({ sequence: 1, file: walFileName(1) });
        // The refused request's bytes are still in the first file, past its limit.
        expect((await stat(files[0]!.path)).size).toBeGreaterThan(files[0]!.limit!);
        const replayed: { sequence: number; rows: number }[] = [];
        await recoverWal({ dir, onBatch: (_db, _m, batch, sequence) => void replayed.push({ sequence, rows: batch.rows }) });
        expect(replayed).toEqual([
            { sequence: 0, rows: 2 },
            { sequence: 1, rows: 4 },
        ]);
    });

    it("refuses appends while even the limit file cannot be written, and takes them again once it can", async () => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, fileSystem: fs, maxFileAgeMs: 20 }));
        await writer.append("db", cpuBatch(2));
        fs.failNext("writev", "EIO");
        fs.failNext("truncate", "EIO");
        fs.failAlways("create", "EMFILE", /\.limit\.tmp$/);
        await expect(writer.append("db", cpuBatch(3, 100))).rejects.toMatchObject({ code: "wal-io" });
        await expect(writer.append("db", cpuBatch(2))).rejects.toBeInstanceOf(WalFailedError);
        expect(writer.failure?.message).toMatch(/could not be cut off/);
        fs.heal();
        const deadline = Date.now() + 10_000;
        while (writer.failure !== undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
        expect(writer.failure).toBeUndefined();
        await writer.append("db", cpuBatch(4, 200));
        await writer.close();
        writer = undefined;
        const rows: number[] = [];
        await recoverWal({ dir, onBatch: (_db, _m, batch) => void rows.push(batch.rows) });
        expect(rows).toEqual([2, 4]);
    });

    it("starts without a WAL file on a full disk, refuses appends with a retryable error, and takes them once a file can be made", async () => {
        const fs = new FaultyFileSystem();
        fs.failAlways("create", "ENOSPC", /\.wal$/);
        writer = await WalWriter.open(walOptions({ dir, fileSystem: fs }));
        expect(writer.activeFile).toBeUndefined();
        expect(writer.failure).toMatchObject({ code: "wal-io", errno: "ENOSPC" });
        await expect(writer.append("db", cpuBatch(2))).rejects.toMatchObject({ code: "wal-unavailable", retryable: true });
        fs.heal();
        const deadline = Date.now() + 10_000;
        let result: { sequence: number } | undefined;
        while (result === undefined && Date.now() < deadline) {
            result = await writer.append("db", cpuBatch(2)).catch(() => undefined);
            if (result === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(result).toMatchObject({ sequence: 0 });
        expect(writer.failure).toBeUndefined();
    });

    it("keeps the old file active when rotation cannot create the next one", async () => {
        const fs = new FaultyFileSystem();
        writer = await WalWriter.open(walOptions({ dir, fileSystem: fs, maxFileBytes: 1024 }));
        while (writer.stats.bytes < 900) await writer.append("db", cpuBatch(2));
        const active = writer.activeFile;
        fs.failNext("create", "ENOSPC");
        await expect(writer.append("db", cpuBatch(20))).rejects.toMatchObject({ code: "wal-io" });
        expect(writer.activeFile).toBe(active);
        const next = await writer.append("db", cpuBatch(20));
        expect(next.file).not.toBe(active);
        expect(await readdir(dir)).toContain(next.file);
        expect((await stat(join(dir, active!))).size).toBeLessThanOrEqual(1024);
    });
});

/**
 * The commit protocol (flush/commit.ts) over the local lake layout: changes recorded in the
 * manifest and applied to partitions behind links, crash leftovers finished or discarded on
 * open, and fail-stop whenever the manifest's state is uncertain (issue 10 item 6), with the
 * faults injected through the file-system seam.
 */
import { appendFile, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CommitProtocol, CommitBlockedError, CommitUncertainError, type LakeChange, NO_CHANGE } from "../flush/commit.js";
import { RETIRED_KEEP_MS } from "../flush/lake/local-layout.js";
import { openLake } from "../flush/lake/open.js";
import { ManualClock } from "../src/clock.js";
import { manifestPathOf, tempDirOf } from "../flush/layout.js";
import type { LegacyCommitRecord, PartitionRef } from "../flush/manifest/records.js";
import type { FileSystem } from "../src/fs/file-system.js";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { silentLogger } from "../src/log.js";
import { tempDir } from "./helpers/batches.js";
import { FaultyFileSystem } from "./helpers/faulty-fs.js";

const HOUR: PartitionRef = { database: "db", measurement: "m", date: "2026-11-22", hour: "05" };

async function filesUnder(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries
        .filter((entry) => entry.isFile())
        .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
        .sort();
}

/** The files of the test's partition. */
async function visible(data: string): Promise<string[]> {
    return (await readdir(join(data, "parquet", "db", "m", `date=${HOUR.date}`, `hour=${HOUR.hour}`)).catch(() => [])).sort();
}

describe("commit protocol", () => {
    let data: string;
    let cleanup: () => Promise<void>;
    const clock = new ManualClock();
    const open = (fs: FileSystem = nodeFileSystem, floor = 0) => openLake({ backend: "local" }, { fs, dataDir: data, log: silentLogger, clock, walFloor: async () => floor });
    beforeEach(async () => ({ path: data, cleanup } = await tempDir()));
    afterEach(() => cleanup());

    async function staged(commit: CommitProtocol, name: string, through: number): Promise<LakeChange> {
        const temp = await commit.stage(Buffer.from("PAR1"));
        return { ...NO_CHANGE, flushed: [{ database: "db", measurement: "m", min: 0, through }], adds: [{ partition: HOUR, files: [{ temp, name, rows: 1, bytes: 4 }] }] };
    }

    it("moves committed files into their partition and remembers the flushed-through sequence across reopen", async () => {
        const { commit } = await open();
        expect(commit.flushedThrough("db", "m")).toBe(-1);
        await commit.commit(await staged(commit, "x.parquet", 41));
        expect(commit.flushedThrough("db", "m")).toBe(41);
        expect(await visible(data)).toEqual(["x.parquet"]);
        expect(await filesUnder(join(data, "parquet"))).toEqual(["db/m/date=2026-11-22/hour=05/x.parquet"]);
        expect(await readdir(tempDirOf(data))).toEqual([]);
        await commit.commit(await staged(commit, "y.parquet", 42));
        expect(await visible(data)).toEqual(["x.parquet", "y.parquet"]);
        await commit.close();
        const { commit: reopened, recovery } = await open();
        expect(reopened.flushedThrough("db", "m")).toBe(42);
        expect(recovery).toEqual({ finishedCommits: 0, discardedTemps: 0 });
        await reopened.close();
    });

    it("keeps a replaced partition's old files outside the lake until RETIRED_KEEP_MS passed (a listing begun before the swap reads them whole), then sweeps them", async () => {
        const { commit, lake } = await open();
        await commit.commit(await staged(commit, "x.parquet", 1));
        await commit.commit(await staged(commit, "y.parquet", 2));
        const temp = await commit.stage(Buffer.from("PAR1"));
        await commit.commit({ ...NO_CHANGE, replaces: [{ partition: HOUR, inputs: ["x.parquet", "y.parquet"], outputs: [{ temp, name: "z.parquet", rows: 2, bytes: 4 }] }] });
        expect(await visible(data)).toEqual(["z.parquet"]);
        const retired = await filesUnder(join(data, "flush", "stage"));
        expect(retired.map((path) => path.split("/").at(-1)).sort()).toEqual(["x.parquet", "y.parquet"]);
        expect(await lake.sweep()).toBe(0);
        clock.advance(RETIRED_KEEP_MS - 1);
        expect(await lake.sweep()).toBe(0);
        clock.advance(1);
        expect(await lake.sweep()).toBe(1);
        expect(await filesUnder(join(data, "flush", "stage"))).toEqual([]);
        // A restart deletes what a stop left there at once.
        await commit.commit({ ...NO_CHANGE, drops: [HOUR] });
        expect(await filesUnder(join(data, "flush", "stage"))).toHaveLength(1);
        await commit.close();
        const reopened = await open();
        expect(await filesUnder(join(data, "flush", "stage"))).toEqual([]);
        await reopened.commit.close();
    });

    it("on open finishes a recorded change whose files were not moved yet, deletes temps no record names, cuts a torn tail", async () => {
        const { commit } = await open();
        await commit.close();
        await writeFile(join(tempDirOf(data), "committed.tmp"), "PAR1");
        await writeFile(join(tempDirOf(data), "orphan.tmp"), "PAR1");
        const change = {
            type: "change",
            id: 1,
            ...NO_CHANGE,
            flushed: [{ database: "db", measurement: "m", min: 0, through: 7 }],
            adds: [{ partition: HOUR, files: [{ temp: "committed.tmp", name: "y.parquet", rows: 1, bytes: 4 }] }],
        };
        const json = JSON.stringify(change);
        const good = `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`;
        await appendFile(manifestPathOf(data), `${good}${"0".repeat(8)} {"torn`);
        const { commit: reopened, recovery } = await open();
        expect(recovery).toEqual({ finishedCommits: 1, discardedTemps: 1, damagedAt: 2 });
        expect(reopened.flushedThrough("db", "m")).toBe(7);
        expect(await visible(data)).toEqual(["y.parquet"]);
        expect(await readdir(tempDirOf(data))).toEqual([]);
        // The torn tail is cut off (no rewrite needed, so none on a full disk): the next append starts on a clean line.
        expect(await readFile(manifestPathOf(data), "utf8")).toBe(good);
        await reopened.commit(await staged(reopened, "z.parquet", 8));
        await reopened.close();
        const { commit: third } = await open();
        expect(third.flushedThrough("db", "m")).toBe(8);
        await third.close();
    });

    it("applies a flush recorded by Sluice 0.1 (a path under the Parquet root) on open", async () => {
        const { commit } = await open();
        await commit.close();
        await writeFile(join(tempDirOf(data), "old.tmp"), "PAR1");
        const record: LegacyCommitRecord = {
            type: "commit",
            database: "db",
            measurement: "m",
            through: 3,
            min: 0,
            files: [{ path: "db/m/date=2026-11-22/hour=06/a.parquet", temp: "old.tmp", rows: 1, bytes: 4 }],
        };
        const json = JSON.stringify(record);
        await appendFile(manifestPathOf(data), `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`);
        const { commit: reopened, recovery } = await open();
        expect(recovery.finishedCommits).toBe(1);
        expect(reopened.flushedThrough("db", "m")).toBe(3);
        expect(await filesUnder(join(data, "parquet"))).toEqual(["db/m/date=2026-11-22/hour=06/a.parquet"]);
        await reopened.close();
    });

    it("stops at a damaged line: later records are ignored, their rows come back from the WAL", async () => {
        const { commit } = await open();
        await commit.commit(await staged(commit, "a.parquet", 1));
        await commit.close();
        const json = JSON.stringify({ type: "change", id: 9, ...NO_CHANGE, flushed: [{ database: "db", measurement: "m", min: 0, through: 9 }] });
        await appendFile(manifestPathOf(data), `deadbeef ${json}\n`);
        const { commit: reopened, recovery } = await open();
        expect(recovery.damagedAt).toBe(2);
        expect(reopened.flushedThrough("db", "m")).toBe(1);
        await reopened.close();
    });

    it("refuses changes while an append could not be undone, until a rewrite settles it as not committed", async () => {
        const fs = new FaultyFileSystem();
        const { commit } = await open(fs);
        await commit.commit(await staged(commit, "a.parquet", 1));
        const change = await staged(commit, "b.parquet", 2);
        fs.failNext("datasync", "EIO", 1, /manifest\.log$/);
        fs.failNext("truncate", "EIO", 1, /manifest\.log$/);
        const failure = await commit.commit(change).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(CommitUncertainError);
        expect(commit.flushedThrough("db", "m")).toBe(1);
        expect(commit.failure).toMatch(/could not be undone/);
        // Fail-stop: nothing else commits while the manifest's last bytes are uncertain.
        fs.failNext("create", "EMFILE", 1, /manifest\.log\.tmp$/);
        await expect(commit.commit(await staged(commit, "c.parquet", 3))).rejects.toBeInstanceOf(CommitBlockedError);
        // The next repair (background repairs back off after a failure) rewrites the manifest without
        // the uncertain record: it is settled as not committed.
        await commit.repair();
        expect(commit.failure).toMatch(/could not be undone/);
        clock.advance(1000);
        await commit.repair();
        expect(commit.failure).toBeUndefined();
        await (failure as CommitUncertainError).settled;
        expect(await visible(data)).toEqual(["a.parquet"]);
        await commit.commit(await staged(commit, "d.parquet", 4));
        await commit.close();
        const { commit: reopened } = await open();
        expect(reopened.flushedThrough("db", "m")).toBe(4);
        await reopened.close();
    });

    it("never appends to a replaced manifest: a rewrite that cannot open its new file keeps the old one, a failed directory sync blocks until repaired", async () => {
        const fs = new FaultyFileSystem();
        const { commit } = await open(fs);
        for (let i = 0; i < 999; i++) await commit.commit({ ...NO_CHANGE, flushed: [{ database: "db", measurement: `m${i}`, min: 0, through: i }] });
        // The 1,000th record triggers a rewrite; its new file cannot be created (EMFILE): the old manifest stays in use.
        fs.failNext("create", "EMFILE", 1, /manifest\.log\.tmp$/);
        await commit.commit({ ...NO_CHANGE, flushed: [{ database: "db", measurement: "m999", min: 0, through: 999 }] });
        expect(commit.failure).toBeUndefined();
        // The next rewrite renames, but its directory sync fails: no change is committed until it succeeds.
        fs.failNext("syncDirectory", "EIO", 1, /flush$/);
        await commit.commit({ ...NO_CHANGE, flushed: [{ database: "db", measurement: "m1000", min: 0, through: 1000 }] });
        expect(commit.failure).toMatch(/directory/);
        fs.failNext("syncDirectory", "EIO", 1, /flush$/);
        await expect(commit.commit({ ...NO_CHANGE, flushed: [{ database: "db", measurement: "late", min: 0, through: 1001 }] })).rejects.toBeInstanceOf(CommitBlockedError);
        await commit.commit({ ...NO_CHANGE, flushed: [{ database: "db", measurement: "later", min: 0, through: 1002 }] });
        await commit.close();
        const { commit: reopened } = await open(nodeFileSystem);
        for (const [measurement, through] of [
            ["m0", 0],
            ["m999", 999],
            ["m1000", 1000],
            ["late", -1],
            ["later", 1002],
        ] as const) {
            expect(reopened.flushedThrough("db", measurement)).toBe(through);
        }
        await reopened.close();
    });

    it("keeps only the flushed-through marks that still matter when it rewrites itself (proportional to the live WAL)", async () => {
        const { commit } = await open(nodeFileSystem, 500);
        for (let i = 0; i < 1000; i++) await commit.commit({ ...NO_CHANGE, flushed: [{ database: "db", measurement: `m${i}`, min: i, through: i }] });
        const lines = (await readFile(manifestPathOf(data), "utf8")).split("\n").filter((line) => line !== "");
        expect(lines).toHaveLength(1);
        const snapshot = JSON.parse(lines[0]!.slice(9)) as { flushed: [string, string, number][]; highest: number };
        expect(snapshot.flushed).toHaveLength(500);
        expect(snapshot.highest).toBe(999);
        await commit.close();
        const { commit: reopened } = await open();
        expect(reopened.flushedThrough("db", "m499")).toBe(-1);
        expect(reopened.flushedThrough("db", "m500")).toBe(500);
        expect(reopened.highestFlushed()).toBe(999);
        await reopened.close();
    });
});

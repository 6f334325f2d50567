/**
 * `sluice compact` and `sluice retention [--dry-run]`, offline on a real data directory: the
 * same answers as the HTTP endpoints, the files on disk changed (or, dry, not), and a directory
 * a server holds refused.
 */
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "./helpers/batches.js";
import { runCli, startServe } from "./helpers/cli.js";
import { parquetFiles } from "./helpers/parquet.js";

const HOUR_NS = 3_600_000_000_000n;
const T0 = 1_700_000_000_000_000_000n - (1_700_000_000_000_000_000n % HOUR_NS);

describe("offline lake upkeep", () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
        for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    /** A data directory holding three flushes into one old hour and one into the current hour. */
    const prepared = async () => {
        const dir = await tempDir("sluice-upkeep-");
        cleanups.push(dir.cleanup);
        const server = await startServe(["--data-dir", dir.path, "--set", "compaction.enabled=false"]);
        cleanups.push(() => server.stop("SIGKILL"));
        const now = BigInt(Date.now()) * 1_000_000n;
        for (const body of [`m,host=a f=1 ${T0}`, `m,host=b f=2 ${T0 + 1n}`, `m,host=a f=3 ${T0}\nm,host=c f=4 ${now}`]) {
            const response = await fetch(`${server.url}/write?db=db`, { method: "POST", body });
            expect(response.status).toBe(204);
            expect((await fetch(`${server.url}/api/v1/flush`, { method: "POST" })).status).toBe(200);
        }
        return { dir: dir.path, server };
    };

    it("compacts an hour's files into one and reports it as the endpoint does", async () => {
        const { dir, server } = await prepared();
        const locked = await runCli(["compact", "--data-dir", dir]);
        expect(locked.code).toBe(2);
        expect(locked.stderr).toMatch(/in use|lock/i);
        expect(await server.stop()).toBe(0);
        expect((await parquetFiles(dir)).length).toBe(4);
        const result = await runCli(["compact", "--json", "--data-dir", dir]);
        expect(result.code, result.stderr).toBe(0);
        expect(JSON.parse(result.stdout)).toEqual({ partitions: 1, files_in: 3, files_out: 1, rows_in: 3, rows_out: 2, duplicates_merged: 1 });
        expect((await parquetFiles(dir)).length).toBe(2);
        const again = await runCli(["compact", "--data-dir", dir]);
        expect(again.stdout).toMatch(/nothing to compact/);
    });

    it("lists expired hours with --dry-run without deleting them, then deletes them", async () => {
        const { dir, server } = await prepared();
        expect(await server.stop()).toBe(0);
        const dry = await runCli(["retention", "--dry-run", "--json", "--data-dir", dir, "--set", "retention.period=30d"]);
        expect(dry.code, dry.stderr).toBe(0);
        const listed = JSON.parse(dry.stdout) as { dry_run: boolean; partitions: { database: string; measurement: string; files: number }[]; files: number };
        expect(listed).toMatchObject({ dry_run: true, files: 3, partitions: [{ database: "db", measurement: "m", files: 3 }] });
        expect((await parquetFiles(dir)).length).toBe(4);
        const text = await runCli(["retention", "--dry-run", "--data-dir", dir, "--set", "retention.period=30d"]);
        expect(text.stdout).toMatch(/would delete 1 hours \(3 files/);
        const done = await runCli(["retention", "--data-dir", dir, "--set", "retention.period=30d"]);
        expect(done.code, done.stderr).toBe(0);
        expect(done.stdout).toMatch(/^deleted 1 hours/m);
        const left = await parquetFiles(dir);
        expect(left).toHaveLength(1);
        expect(left[0]!.path).not.toContain("hour=22");
    });
});

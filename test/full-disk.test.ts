/**
 * A full disk (issue 10 item 3): `serve` still starts, answers writes 503 + Retry-After, flushes
 * what it can and resumes alone when space returns; `recover` reports without free space. The
 * disk is filled through the file-system seam: every write and every new file fails with ENOSPC.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createEncoder } from "../flush/encoder.js";
import { loadConfig } from "../src/config/load.js";
import { Engine } from "../src/engine.js";
import { silentLogger } from "../src/log.js";
import { listWalFiles } from "../src/wal/files.js";
import { tempDir } from "./helpers/batches.js";
import { FaultyFileSystem } from "./helpers/faulty-fs.js";
import { runCli, startServe } from "./helpers/cli.js";
import { readParquet } from "./helpers/parquet.js";
import { type TestServer, startTestServer } from "./helpers/server.js";

function fillDisk(fs: FaultyFileSystem): void {
    fs.failAlways("create", "ENOSPC");
    fs.failAlways("writev", "ENOSPC");
    fs.failAlways("mkdir", "ENOSPC");
}

const point = (seq: number) => `m,writer=w seq=${seq}i,v=${seq} ${seq}`;

describe("a full disk", () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
        for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it("serve starts, refuses writes with 503 + Retry-After while no WAL file can be made, and takes them again alone when space returns", async () => {
        const dir = await tempDir("sluice-full-");
        cleanups.push(dir.cleanup);
        const first = await startTestServer("node", {}, {}, dir.path);
        expect((await fetch(`${first.url}/write?db=d`, { method: "POST", body: point(1) })).status).toBe(204);
        await first.server.close();

        const fs = new FaultyFileSystem();
        fillDisk(fs);
        const server: TestServer = await startTestServer("node", {}, { fileSystem: fs }, dir.path);
        cleanups.push(() => server.stop());
        const health = await fetch(`${server.url}/health`);
        expect(health.status).toBe(503);
        expect(await health.json()).toMatchObject({ status: "fail", message: expect.stringMatching(/WAL.*ENOSPC/) });
        const refused = await fetch(`${server.url}/write?db=d`, { method: "POST", body: point(2) });
        expect(refused.status).toBe(503);
        expect(refused.headers.get("retry-after")).toBe("1");

        fs.heal();
        const deadline = Date.now() + 20_000;
        let status = 503;
        while (status !== 204 && Date.now() < deadline) {
            status = (await fetch(`${server.url}/write?db=d`, { method: "POST", body: point(3) })).status;
            if (status !== 204) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(status).toBe(204);
        expect((await fetch(`${server.url}/health`)).status).toBe(200);
        expect((await fetch(`${server.url}/api/v1/flush`, { method: "POST" })).status).toBe(200);
        const stored = await readParquet(dir.path);
        expect(stored.points.map((p) => Number(p.seq)).sort()).toEqual([1, 3]);
    });

    it("recover reads and reports the WAL without free space, keeps it when it cannot flush, and flushes it once space returns", async () => {
        const dir = await tempDir("sluice-full-");
        cleanups.push(dir.cleanup);
        const killed = await startServe(["--data-dir", dir.path]);
        expect((await fetch(`${killed.url}/write?db=d`, { method: "POST", body: [point(1), point(2)].join("\n") })).status).toBe(204);
        await killed.stop("SIGKILL");

        const config = loadConfig({ env: {}, flags: { data_dir: dir.path } });
        const fs = new FaultyFileSystem();
        fillDisk(fs);
        const encoder = createEncoder();
        const { engine, startup } = await Engine.open(config, silentLogger, encoder, { fileSystem: fs }, { writable: false });
        expect(startup.wal).toMatchObject({ recoveredEntries: 1, recoveredRows: 2 });
        await expect(engine.shutdown()).rejects.toThrow(/ENOSPC/);
        expect((await listWalFiles(join(dir.path, "wal"))).length).toBe(1);
        expect((await readParquet(dir.path)).points).toEqual([]);

        const again = await runCli(["recover", "--data-dir", dir.path, "--json"]);
        expect(again.code).toBe(0);
        expect(JSON.parse(again.stdout)).toMatchObject({ recoveredRows: 2, flushedRows: 2 });
        expect((await readParquet(dir.path)).points.map((p) => Number(p.seq)).sort()).toEqual([1, 2]);
    });
});

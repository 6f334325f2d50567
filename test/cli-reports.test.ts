/**
 * Issue 15.5, what the tools say about themselves: `recover --json` counts no skipped file on a
 * clean run (it opens the engine without a WAL writer, so it makes no file of its own), `wal
 * purge --help` says what `--inactive` deletes offline, and a `;` inside a quoted database name
 * does not split a query.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NO_CHANGE } from "../flush/commit.js";
import { openLake } from "../flush/lake/open.js";
import { systemClock } from "../src/clock.js";
import type { RecoverReport } from "../src/cli/recover-command.js";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { silentLogger } from "../src/log.js";
import { listWalFiles } from "../src/wal/files.js";
import { WalWriter } from "../src/wal/writer.js";
import { splitStatements } from "../ingest/routes/query.js";
import { cpuBatch, tempDir } from "./helpers/batches.js";
import { type ServerProcess, runCli, startServe } from "./helpers/cli.js";
import { type TestServer, startTestServer } from "./helpers/server.js";
import { walOptions } from "./helpers/wal.js";

let data: string;
let cleanup: () => Promise<void>;
let server: ServerProcess | undefined;
let t: TestServer | undefined;
beforeEach(async () => ({ path: data, cleanup } = await tempDir("sluice-reports-")));
afterEach(async () => {
    await server?.stop("SIGKILL");
    server = undefined;
    await t?.stop();
    t = undefined;
    await cleanup();
});

async function recover(): Promise<RecoverReport> {
    const result = await runCli(["recover", "--data-dir", data, "--json"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as RecoverReport;
}

async function writeLines(lines: string): Promise<void> {
    const response = await fetch(`${server!.url}/write?db=reports`, { method: "POST", body: lines });
    expect(response.status).toBe(204);
}

describe("sluice recover --json", () => {
    it("after a kill -9: recovers every row from the WAL and skips no file; run again, finds nothing and still skips none", async () => {
        server = await startServe(["--data-dir", data]);
        await writeLines("m,host=a f=1 1\nm,host=b f=2 2\n");
        await writeLines("m,host=c f=3 3\n");
        await server.stop("SIGKILL");
        server = undefined;
        expect((await listWalFiles(join(data, "wal"))).length).toBeGreaterThan(0);

        const first = await recover();
        expect(first).toMatchObject({ recoveredEntries: 2, recoveredRows: 3, skippedFiles: 0, corruptedEntries: 0, flushedRows: 3 });
        expect(first.recoveredFiles).toBeGreaterThan(0);
        expect(await listWalFiles(join(data, "wal"))).toEqual([]);

        const second = await recover();
        expect(second).toMatchObject({ recoveredFiles: 0, recoveredEntries: 0, recoveredRows: 0, skippedFiles: 0, flushedRows: 0 });
    });

    it("after a clean shutdown: nothing to recover, no file skipped", async () => {
        server = await startServe(["--data-dir", data]);
        await writeLines("m f=1 1\n");
        expect(await server.stop("SIGTERM")).toBe(0);
        server = undefined;
        expect(await recover()).toMatchObject({ recoveredFiles: 0, recoveredRows: 0, skippedFiles: 0, flushedRows: 0 });
    });
});

describe("sluice wal purge --inactive", () => {
    it("offline deletes every file whose entries are all in Parquet, the newest included, as its help says", async () => {
        const wal = join(data, "wal");
        const writer = await WalWriter.open(walOptions({ dir: wal, syncMode: "off", maxFileBytes: 1200 }));
        for (let i = 0; i < 6; i++) await writer.append("db", cpuBatch(3, i * 3));
        const last = writer.nextSequence - 1;
        await writer.close();
        const files = await listWalFiles(wal);
        expect(files.length).toBeGreaterThan(1);
        const { commit } = await openLake({ backend: "local" }, { fs: nodeFileSystem, dataDir: data, log: silentLogger, clock: systemClock, walFloor: async () => 0 });
        await commit.commit({ ...NO_CHANGE, flushed: [{ database: "db", measurement: "cpu", through: last, min: 0 }] });
        await commit.close();

        const help = await runCli(["wal", "purge", "--help"]);
        expect(help.stdout.replace(/\s+/g, " ")).toContain("--inactive files whose entries are all in Parquet, the newest included (offline no file is active)");
        const result = await runCli(["wal", "purge", "--inactive", "--data-dir", data, "--json"]);
        expect(result.code).toBe(0);
        const report = JSON.parse(result.stdout) as { deleted: { name: string }[] };
        expect(report.deleted.map((file) => file.name)).toEqual(files.map((file) => file.name));
        expect((await readdir(wal)).filter((name) => name.endsWith(".wal"))).toEqual([]);
    });
});

describe('CREATE DATABASE "a;b"', () => {
    it("splits a query at ; outside quotes only", () => {
        expect(splitStatements('CREATE DATABASE "a;b"')).toEqual(['CREATE DATABASE "a;b"']);
        expect(splitStatements(`CREATE DATABASE "x\\";y"; CREATE DATABASE 'p;q' ;; SHOW DATABASES;`)).toEqual([
            'CREATE DATABASE "x\\";y"',
            "CREATE DATABASE 'p;q'",
            "SHOW DATABASES",
        ]);
    });

    it("creates the database a;b over HTTP, and SHOW DATABASES lists it", async () => {
        t = await startTestServer("node");
        const created = await fetch(`${t.url}/query?q=${encodeURIComponent('CREATE DATABASE "a;b"; CREATE DATABASE c')}`, { method: "POST" });
        expect(created.status).toBe(200);
        expect(await created.json()).toEqual({ results: [{ statement_id: 0 }, { statement_id: 1 }] });
        const shown = await fetch(`${t.url}/query?q=${encodeURIComponent("SHOW DATABASES")}`);
        expect(await shown.json()).toEqual({ results: [{ statement_id: 0, series: [{ name: "databases", columns: ["name"], values: [["a;b"], ["c"]] }] }] });
    });
});

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { shebangNodeFlags } from "./helpers/sluice-process.js";
import { NO_CHANGE } from "../flush/commit.js";
import { openLake } from "../flush/lake/open.js";
import { systemClock } from "../src/clock.js";
import { nodeFileSystem } from "../src/fs/file-system.js";
import { silentLogger } from "../src/log.js";
import { listWalFiles } from "../src/wal/files.js";
import { WalWriter } from "../src/wal/writer.js";
import { walOptions } from "./helpers/wal.js";
import { cpuBatch, tempDir } from "./helpers/batches.js";
import { type ServerProcess, runCli, startServe } from "./helpers/cli.js";

describe("sluice CLI", () => {
    let data: string;
    let cleanup: () => Promise<void>;
    let server: ServerProcess | undefined;
    const wal = () => join(data, "wal");

    beforeEach(async () => ({ path: data, cleanup } = await tempDir()));
    afterEach(async () => {
        await server?.stop("SIGKILL");
        server = undefined;
        await cleanup();
    });

    async function writeWal(entries: number, maxFileBytes = 64 * 1024 * 1024): Promise<void> {
        const writer = await WalWriter.open(walOptions({ dir: wal(), syncMode: "off", maxFileBytes }));
        for (let i = 0; i < entries; i++) await writer.append(i % 2 ? "db" : "other", cpuBatch(3, i * 3, i % 2 ? "cpu" : "mem"));
        await writer.close();
    }

    it("wal read --json prints one documented object per entry, from --from-seq, at most --limit", async () => {
        await writeWal(5);
        const all = await runCli(["wal", "read", "--data-dir", data, "--json"]);
        expect(all.code).toBe(0);
        const lines = all.stdout
            .trim()
            .split("\n")
            .map((line) => JSON.parse(line) as Record<string, unknown>);
        expect(lines).toHaveLength(5);
        expect(lines[1]).toEqual({
            seq: 1,
            file: "00000000000000000000.wal",
            time_us: expect.any(Number),
            database: "db",
            measurement: "cpu",
            rows: 3,
            columns: { time: "t", host: "s", region: "s", usage: "f", count: "i", ok: "b" },
        });
        expect(Math.abs((lines[0]!.time_us as number) / 1000 - Date.now())).toBeLessThan(60_000);
        const page = await runCli(["wal", "read", "--data-dir", data, "--json", "--from-seq", "2", "--limit", "2"]);
        expect(
            page.stdout
                .trim()
                .split("\n")
                .map((line) => (JSON.parse(line) as { seq: number }).seq),
        ).toEqual([2, 3]);
        const human = await runCli(["wal", "read", "--data-dir", data]);
        expect(human.stdout).toMatch(/^0\t\S+Z\tother\tmem\t3 rows\ttime:t,host:s,region:s,usage:f,count:i,ok:b$/m);
    });

    it("wal stats --json gives sequences and per-file entries and bytes", async () => {
        await writeWal(12, 1200);
        const result = await runCli(["wal", "stats", "--json"], { SLUICE_DATA_DIR: data });
        expect(result.code).toBe(0);
        const stats = JSON.parse(result.stdout) as {
            first_sequence: number;
            current_sequence: number;
            total_bytes: number;
            files: { name: string; first_sequence: number; last_sequence: number; entries: number; bytes: number }[];
        };
        expect(stats.first_sequence).toBe(0);
        expect(stats.current_sequence).toBe(11);
        const files = await listWalFiles(wal());
        expect(stats.files.map((f) => f.name)).toEqual(files.map((f) => f.name));
        expect(stats.files.reduce((sum, f) => sum + f.entries, 0)).toBe(12);
        for (const [i, file] of stats.files.entries()) {
            const next = stats.files[i + 1];
            if (next !== undefined) expect(file.last_sequence).toBe(next.first_sequence - 1);
            expect(file.bytes).toBe((await readFile(join(wal(), file.name))).length);
        }
        expect(stats.total_bytes).toBe(stats.files.reduce((sum, f) => sum + f.bytes, 0));
        expect((await runCli(["wal", "stats", "--data-dir", data])).stdout).toMatch(/sequences 0\.\.11/);
    });

    it("wal verify --json exits 0 on a clean WAL and 1 with the counts when an entry is corrupted", async () => {
        await writeWal(4);
        const clean = await runCli(["wal", "verify", "--data-dir", data, "--json"]);
        expect(clean.code).toBe(0);
        expect(JSON.parse(clean.stdout)).toEqual({ files: 1, entries: 4, corrupted: 0, torn_tails: 0, bad_files: 0 });
        const [file] = await listWalFiles(wal());
        const bytes = await readFile(file!.path);
        bytes[7 + 16 + 30]! ^= 0x40;
        await writeFile(file!.path, bytes.subarray(0, bytes.length - 3));
        const broken = await runCli(["wal", "verify", "--data-dir", data, "--json"]);
        expect(broken.code).toBe(1);
        expect(JSON.parse(broken.stdout)).toEqual({ files: 1, entries: 3, corrupted: 1, torn_tails: 1, bad_files: 0 });
        expect(broken.stderr).toMatch(/"sequence":0,"reason":"CRC32 mismatch"/);
        const human = await runCli(["wal", "verify", "--data-dir", data]);
        expect(human.code).toBe(1);
        expect(human.stdout).toMatch(/1 files, 3 entries: 1 corrupted, 1 torn tails, 0 bad files/);
    });

    it("wal verify counts a file that is not a WAL file as bad and exits 1", async () => {
        await writeWal(1);
        await writeFile(join(wal(), "00000000000000000009.wal"), "this is not a WAL file");
        const result = await runCli(["wal", "verify", "--data-dir", data, "--json"]);
        expect(result.code).toBe(1);
        expect(JSON.parse(result.stdout)).toMatchObject({ files: 2, bad_files: 1 });
        expect(result.stderr).toMatch(/00000000000000000009.wal.*magic/);
    });

    it("wal purge refuses to delete entries not in Parquet unless --force", async () => {
        await writeWal(6, 1200);
        const before = await listWalFiles(wal());
        const refused = await runCli(["wal", "purge", "--inactive", "--data-dir", data, "--json"]);
        expect(refused.code).toBe(0);
        const report = JSON.parse(refused.stdout) as { deleted: unknown[]; kept: { name: string; reason: string }[] };
        expect(report.deleted).toEqual([]);
        expect(report.kept.map((k) => k.name)).toEqual(before.map((f) => f.name));
        expect(await listWalFiles(wal())).toEqual(before);
        const forced = await runCli(["wal", "purge", "--all", "--force", "--data-dir", data]);
        expect(forced.code).toBe(0);
        expect(forced.stdout).toMatch(new RegExp(`deleted ${before.length} files .* \\(forced\\)`));
        expect(await listWalFiles(wal())).toEqual([]);
        expect(await readFile(join(wal(), "sequence"), "utf8")).toBe("6\n");
    });

    it("wal purge deletes offline what the flush manifest says is in Parquet", async () => {
        await writeWal(6, 1200);
        const files = await listWalFiles(wal());
        const { commit } = await openLake({ backend: "local" }, { fs: nodeFileSystem, dataDir: data, log: silentLogger, clock: systemClock, walFloor: async () => 0 });
        // Everything of db/cpu and other/mem up to the second file's first entry is flushed.
        const through = files[1]!.firstSequence - 1;
        for (const [database, measurement] of [
            ["db", "cpu"],
            ["other", "mem"],
        ] as const) {
            await commit.commit({ ...NO_CHANGE, flushed: [{ database, measurement, through, min: 0 }] });
        }
        await commit.close();
        const result = await runCli(["wal", "purge", "--inactive", "--data-dir", data, "--json"]);
        expect(result.code).toBe(0);
        const report = JSON.parse(result.stdout) as { deleted: { name: string }[]; lowWaterMark: number };
        expect(report.lowWaterMark).toBe(files[1]!.firstSequence);
        expect(report.deleted.map((f) => f.name)).toEqual([files[0]!.name]);
    });

    it("gives clear errors with exit 2: missing directory, no purge mode, bad duration, bad config", async () => {
        const missing = await runCli(["wal", "stats", "--data-dir", join(data, "nope")]);
        expect(missing.code).toBe(2);
        expect(missing.stderr).toMatch(/no WAL directory at .*nope\/wal/);
        await writeWal(1);
        const noMode = await runCli(["wal", "purge", "--data-dir", data]);
        expect(noMode.code).toBe(2);
        expect(noMode.stderr).toMatch(/needs one of --inactive, --older-than DURATION, --all/);
        const duration = await runCli(["wal", "purge", "--older-than", "soon", "--data-dir", data]);
        expect(duration.code).toBe(2);
        expect(duration.stderr).toMatch(/"soon" is not a duration/);
        const config = await runCli(["wal", "stats", "--data-dir", data], { SLUICE_WAL_SYNC_MODE: "sometimes" });
        expect(config.code).toBe(2);
        expect(config.stderr).toMatch(/SLUICE_WAL_SYNC_MODE="sometimes"/);
    });

    it("serve listens, answers /ping and /health, refuses a second server on the same data, and exits 0 on SIGTERM", async () => {
        server = await startServe(["--data-dir", data]);
        expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        const ping = await fetch(`${server.url}/ping`);
        expect(ping.status).toBe(204);
        expect(ping.headers.get("x-influxdb-version")).toMatch(/sluice/);
        const health = await fetch(`${server.url}/health`);
        expect(health.status).toBe(200);
        expect(await health.json()).toMatchObject({ status: "pass" });
        const second = await runCli(["serve", "--port", "0", "--data-dir", data]);
        expect(second.code).toBe(2);
        expect(second.stderr).toMatch(/in use by another sluice process \(pid \d+ on /);
        expect(await server.stop("SIGTERM")).toBe(0);
        server = await startServe(["--data-dir", data]);
        expect(await server.stop("SIGTERM")).toBe(0);
    });
});

describe("node flags", () => {
    it("npm start and npm run sluice run node with the flags of the bin's #! line, which the benchmarks read", async () => {
        const root = new URL("../", import.meta.url);
        const source = await readFile(new URL("src/cli/main.ts", root), "utf8");
        const built = fileURLToPath(new URL("dist/src/cli/main.js", root));
        const shebang = /^#!\/usr\/bin\/env -S node((?: --[\w-]+=\w+)+)\n/.exec(source);
        expect(shebang).not.toBeNull();
        const flags = shebang![1]!.trim().split(" ");
        expect(shebangNodeFlags(built)).toEqual(flags);
        const { scripts } = JSON.parse(await readFile(new URL("package.json", root), "utf8")) as { scripts: Record<string, string> };
        for (const name of ["start", "sluice"]) expect(scripts[name]).toContain(`node ${flags.join(" ")} dist/src/cli/main.js`);
    });
});

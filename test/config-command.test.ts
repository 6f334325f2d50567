/**
 * `sluice config` on the built CLI, and what every command does with a configuration it cannot
 * trust: a mistyped SLUICE_ variable, an empty one, a bad --set value. Real processes.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigLine } from "../src/cli/config-command.js";
import { CONFIG_ENTRIES } from "../src/config/schema.js";
import { runCli } from "./helpers/cli.js";

let dir: string;
beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-config-cli-"));
});
afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
});

describe("sluice config", () => {
    it("--json: every key's effective value and where it came from", async () => {
        const file = join(dir, "sluice.toml");
        await writeFile(file, '[http]\nhost = "0.0.0.0"\nport = 9000\n[wal]\nsync_mode = "fsync"\n');
        const result = await runCli(["config", "--json", "--config", file, "--port", "9100", "--set", "flush.max_rows=5000", "--set", "retention.period=7d"], {
            SLUICE_WAL_SYNC_MODE: "async",
            SLUICE_AUTH_TOKENS: "first-secret,second-secret",
            SLUICE_S3_SECRET_ACCESS_KEY: "s3-secret-key",
            SLUICE_S3_ACCESS_KEY_ID: "s3-key-id",
        });
        expect(result.stderr).toBe("");
        expect(result.code).toBe(0);
        const lines = JSON.parse(result.stdout) as Record<string, ConfigLine>;
        expect(Object.keys(lines)).toEqual(CONFIG_ENTRIES.map(([key]) => key));
        expect(lines).toMatchObject({
            "http.host": { value: "0.0.0.0", source: "file", from: file },
            "http.port": { value: 9100, source: "flag", from: "--port" },
            "wal.sync_mode": { value: "async", source: "env", from: "SLUICE_WAL_SYNC_MODE" },
            "flush.max_rows": { value: 5000, source: "flag", from: "--set flush.max_rows" },
            "retention.period": { value: 7 * 86_400_000, source: "flag", from: "--set retention.period" },
            "auth.tokens": { value: "(hidden: 2 values)", source: "env", from: "SLUICE_AUTH_TOKENS" },
            "s3.secret_access_key": { value: "(hidden)", source: "env", from: "SLUICE_S3_SECRET_ACCESS_KEY" },
            "s3.bucket": { value: "", source: "default" },
            data_dir: { value: "./data", source: "default" },
        });
        expect(lines["data_dir"]).not.toHaveProperty("from");
        for (const secret of ["first-secret", "second-secret", "s3-secret-key", "s3-key-id"]) expect(result.stdout).not.toContain(secret);
    });

    it("prints one line per key: key, value, from", async () => {
        const result = await runCli(["config", "--data-dir", "/srv/sluice"], { SLUICE_HTTP_PORT: "8087" });
        expect(result.code).toBe(0);
        const rows = result.stdout.trimEnd().split("\n");
        expect(rows[0]).toMatch(/^key\s+value\s+from$/);
        expect(rows).toHaveLength(CONFIG_ENTRIES.length + 1);
        expect(rows).toContainEqual(expect.stringMatching(/^data_dir\s+"\/srv\/sluice"\s+flag --data-dir$/));
        expect(rows).toContainEqual(expect.stringMatching(/^http\.port\s+8087\s+env SLUICE_HTTP_PORT$/));
        expect(rows).toContainEqual(expect.stringMatching(/^http\.host\s+"127\.0\.0\.1"\s+default$/));
    });
});

describe("a configuration that cannot be trusted stops every command, saying why", () => {
    it("a mistyped SLUICE_ variable, naming the closest key", async () => {
        for (const args of [["config"], ["serve", "--data-dir", join(dir, "never")], ["wal", "stats", "--data-dir", join(dir, "never")]]) {
            const result = await runCli(args, { SLUICE_FLUSH_MAX_ROW: "10" });
            expect(result.code).toBe(2);
            expect(result.stderr).toContain("unknown environment variable SLUICE_FLUSH_MAX_ROW (did you mean SLUICE_FLUSH_MAX_ROWS, for flush.max_rows?)");
        }
    });

    it("an empty variable says it is empty", async () => {
        const result = await runCli(["serve", "--data-dir", join(dir, "never")], { SLUICE_HTTP_PORT: "" });
        expect(result.code).toBe(2);
        expect(result.stderr).toContain("SLUICE_HTTP_PORT is empty: http.port must be an integer from 0 to 65535");
    });

    it("--set is named as --set, --port as --port", async () => {
        const set = await runCli(["serve", "--data-dir", join(dir, "never"), "--set", "http.port=-1"]);
        expect(set.code).toBe(2);
        expect(set.stderr).toContain('--set http.port="-1": http.port must be an integer from 0 to 65535');
        const port = await runCli(["serve", "--data-dir", join(dir, "never"), "--port", "-1"]);
        expect(port.code).toBe(2);
        expect(port.stderr).toContain('--port="-1": http.port must be an integer from 0 to 65535');
    });
});

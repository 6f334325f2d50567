import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LogFormat, type LogLevel, createLogger } from "../src/log.js";
import { runCli, startServe } from "./helpers/cli.js";

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function capture(level: LogLevel, format: LogFormat) {
    const lines: string[] = [];
    const log = createLogger({ level, format }, (line) => lines.push(line));
    return { log, lines };
}

describe("the process log", () => {
    it("writes one JSON object per line: level, ISO time, the fields, the message; undefined fields left out", () => {
        const { log, lines } = capture("info", "json");
        log.info("flushed", { database: "db", rows: 10, ok: true, wal_seq: "0-1", gone: undefined });
        log.warn("careful");
        log.error("broken", { error: "line one\nline two" });
        expect(lines).toHaveLength(3);
        for (const line of lines) expect(line.endsWith("\n") && !line.slice(0, -1).includes("\n")).toBe(true);
        const [flushed, careful, broken] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
        expect(flushed).toEqual({ level: "info", time: expect.stringMatching(ISO_TIME) as unknown, database: "db", rows: 10, ok: true, wal_seq: "0-1", msg: "flushed" });
        expect(Object.keys(flushed!)).toEqual(["level", "time", "database", "rows", "ok", "wal_seq", "msg"]);
        expect(careful).toEqual({ level: "warn", time: expect.stringMatching(ISO_TIME) as unknown, msg: "careful" });
        expect(broken).toMatchObject({ level: "error", error: "line one\nline two", msg: "broken" });
    });

    it("writes text as one line per event: time, level, message, key=value with values quoted when they must be", () => {
        const { log, lines } = capture("info", "text");
        log.info("flushed", { database: "db", rows: 10, ok: false, note: "two words", empty: "", eq: "a=b", gone: undefined });
        log.error("broken", { error: 'line one\nline "two"' });
        expect(lines).toHaveLength(2);
        const [flushed, broken] = lines;
        expect(flushed).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}flushed database=db rows=10 ok=false note="two words" empty="" eq="a=b"\n$/);
        expect(broken).toMatch(/^\S+Z ERROR broken error="line one\\nline \\"two\\""\n$/);
    });

    it("drops events below log.level, and everything when silent", () => {
        for (const [level, expected] of [
            ["trace", ["info", "warn", "error"]],
            ["info", ["info", "warn", "error"]],
            ["warn", ["warn", "error"]],
            ["error", ["error"]],
            ["fatal", []],
            ["silent", []],
        ] as const) {
            const { log, lines } = capture(level, "json");
            log.info("i");
            log.warn("w");
            log.error("e");
            expect(
                lines.map((line) => (JSON.parse(line) as { level: string }).level),
                level,
            ).toEqual(expected);
        }
    });
});

describe("the CLI's log", () => {
    let dir: string;
    beforeAll(async () => {
        dir = await mkdtemp(join(tmpdir(), "sluice-log-"));
    });
    afterAll(async () => {
        await rm(dir, { recursive: true, force: true });
    });

    it("serve logs JSON lines on stdout by default, from listening to the clean shutdown", async () => {
        const server = await startServe(["--data-dir", join(dir, "json")]);
        expect((await fetch(`${server.url}/write?db=d`, { method: "POST", body: "m f=1" })).status).toBe(204);
        expect(await server.stop()).toBe(0);
        const lines = server
            .output()
            .split("\n")
            .filter((line) => line !== "");
        const events = lines.map((line) => JSON.parse(line) as { level: string; time: string; msg: string; url?: string; rows?: number });
        for (const event of events) {
            expect(["info", "warn", "error"]).toContain(event.level);
            expect(event.time).toMatch(ISO_TIME);
        }
        expect(events.find((event) => event.msg.startsWith("listening on "))?.url).toBe(server.url);
        expect(events.find((event) => event.msg === "flushed")).toMatchObject({ level: "info", database: "d", measurement: "m", rows: 1 });
        expect(events.at(-1)?.msg).toBe("shut down cleanly: every acknowledged write is in Parquet");
    });

    it("serve logs text lines with log.format = text", async () => {
        const server = await startServe(["--data-dir", join(dir, "text"), "--set", "log.format=text"]);
        expect(await server.stop()).toBe(0);
        const lines = server
            .output()
            .split("\n")
            .filter((line) => line !== "");
        expect(lines[0]).toMatch(new RegExp(`^\\S+Z INFO {2}listening on ${server.url.replaceAll(".", "\\.")} \\(http limits: .*\\) url=${server.url.replaceAll(".", "\\.")}$`));
        expect(lines.at(-1)).toMatch(/^\S+Z INFO {2}shut down cleanly: every acknowledged write is in Parquet$/);
    });

    it("recover reports through the log (silent with log.level = silent), and --json prints the report alone", async () => {
        const data = join(dir, "recover");
        const logged = await runCli(["recover", "--data-dir", data]);
        expect(logged.code).toBe(0);
        const messages = logged.stdout
            .trim()
            .split("\n")
            .map((line) => (JSON.parse(line) as { msg: string }).msg);
        expect(messages[0]).toMatch(/^recovered 0 entries \(0 rows\) from \d+ WAL files/);
        expect(messages.at(-1)).toBe("flushed 0 rows into 0 Parquet files; the WAL is purged");
        expect(await runCli(["recover", "--data-dir", data, "--set", "log.level=silent"])).toEqual({ code: 0, stdout: "", stderr: "" });
        const json = await runCli(["recover", "--data-dir", data, "--json"]);
        expect(json.stdout.trim().split("\n")).toHaveLength(1);
        expect(JSON.parse(json.stdout)).toMatchObject({ recoveredEntries: 0, flushedRows: 0 });
    });
});

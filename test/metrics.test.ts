import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../ingest/app.js";
import type { TokenAuthenticator } from "../ingest/auth.js";
import { REJECTION_LOG_LIMITS, RejectionLog } from "../ingest/rejection-log.js";
import { RequestMetrics } from "../ingest/request-metrics.js";
import type { BatchEncoder } from "../flush/flusher.js";
import { ManualClock } from "../src/clock.js";
import { loadConfig } from "../src/config/load.js";
import type { HttpServer } from "../src/config/schema.js";
import type { EngineSeams } from "../src/engine.js";
import { createLogger } from "../src/log.js";
import { type RunningServer, startServer } from "../src/server.js";
import { tempDir } from "./helpers/batches.js";
import { declaredTypes, expositionProblems, sampleValue } from "./helpers/exposition.js";

/** The ten counters that were gauges before issue 15. */
const STAT_COUNTERS = [
    "sluice_wal_entries_total",
    "sluice_wal_bytes_total",
    "sluice_wal_syncs_total",
    "sluice_wal_groups_total",
    "sluice_wal_failed_groups_total",
    "sluice_wal_rotations_total",
    "sluice_flushes_total",
    "sluice_flushed_rows_total",
    "sluice_flushed_files_total",
    "sluice_flush_failures_total",
];
const HISTOGRAMS = [
    "sluice_http_request_duration_seconds",
    "sluice_wal_sync_seconds",
    "sluice_wal_group_appends",
    "sluice_wal_group_bytes",
    "sluice_flush_duration_seconds",
    "sluice_compaction_duration_seconds",
];

type Event = Record<string, unknown> & { level: string; msg: string };

interface Started {
    readonly server: RunningServer;
    readonly url: string;
    readonly events: Event[];
    readonly clock: ManualClock;
    readonly stop: () => Promise<void>;
}

let running: Started | undefined;
afterEach(async () => {
    await running?.stop();
    running = undefined;
});

/** A server on a free port whose log (JSON) is kept, on a clock that moves only when told to. */
async function start(adapter: HttpServer = "node", settings: Record<string, unknown> = {}, seams: EngineSeams = {}): Promise<Started> {
    const dir = await tempDir("sluice-metrics-");
    const config = loadConfig({ env: {}, flags: { data_dir: dir.path, "http.host": "127.0.0.1", "http.port": 0, "http.server": adapter, ...settings } });
    const events: Event[] = [];
    const log = createLogger({ level: "info", format: "json" }, (line) => events.push(JSON.parse(line) as Event));
    const clock = new ManualClock();
    let server: RunningServer;
    try {
        server = await startServer(config, log, { ...seams, clock });
    } catch (error) {
        await dir.cleanup();
        throw error;
    }
    let stopped = false;
    return (running = {
        server,
        url: server.url,
        events,
        clock,
        stop: async () => {
            if (stopped) return;
            stopped = true;
            try {
                await server.close();
            } finally {
                await dir.cleanup();
            }
        },
    });
}

async function post(url: string, body = "", headers: Record<string, string> = {}): Promise<number> {
    const response = await fetch(url, { method: "POST", body, headers });
    await response.arrayBuffer();
    return response.status;
}

async function scrape(url: string): Promise<string> {
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    return response.text();
}

/** `promtool check metrics` on the text: its exit code and what it printed, or undefined without promtool. */
function promtool(text: string): { status: number | null; output: string } | undefined {
    const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    if ((run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") return undefined;
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Every counter sample: series → value. */
function counters(text: string): Map<string, number> {
    const types = declaredTypes(text);
    const values = new Map<string, number>();
    for (const match of text.matchAll(/^([a-z_]+)(\{[^}]*\})? (\S+)$/gm)) {
        if (types.get(match[1]!) === "counter") values.set(`${match[1]}${match[2] ?? ""}`, Number(match[3]));
    }
    return values;
}

describe("GET /metrics", () => {
    it("exposition rules hold for a bad exposition's every kind of fault (the checker can fail)", () => {
        const bad = [
            "# HELP sluice_things_total things",
            "# TYPE sluice_things_total gauge",
            "sluice_things_total 1",
            "# TYPE sluice_events counter",
            "sluice_events 2",
            "# HELP sluice_wait_milliseconds waits",
            "# TYPE sluice_wait_milliseconds histogram",
            'sluice_wait_milliseconds_bucket{le="1"} 3',
            'sluice_wait_milliseconds_bucket{le="2"} 2',
            "sluice_wait_milliseconds_count 3",
            "sluice_orphan 1",
        ].join("\n");
        expect(expositionProblems(bad)).toEqual([
            "line 11: sluice_orphan has no TYPE before it",
            'sluice_things_total: non-counter metrics should not have "_total" suffix',
            'sluice_events: counter metrics should have "_total" suffix',
            "sluice_events: no help text",
            'sluice_wait_milliseconds: use base unit "seconds" instead of "milliseconds"',
            "sluice_wait_milliseconds{}: bucket counts are not cumulative",
            'sluice_wait_milliseconds{}: no le="+Inf" bucket',
            "sluice_wait_milliseconds{}: no _sum",
        ]);
    });

    it("request durations land in the first bucket at or above them (le is inclusive), +Inf past the last", () => {
        const requests = new RequestMetrics();
        for (const seconds of [0, 0.0005, 0.00051, 60, 61]) requests.record('/a"b', 204, seconds);
        requests.record("/x", 503, 0.2);
        const text = requests.exposition();
        expect(expositionProblems(text)).toEqual([]);
        const at = (le: string) => sampleValue(text, "sluice_http_request_duration_seconds_bucket", { path: '/a\\"b', status: "204", le });
        expect([at("0.0005"), at("0.001"), at("30"), at("60"), at("+Inf")]).toEqual([2, 3, 3, 4, 5]);
        expect(sampleValue(text, "sluice_http_request_duration_seconds_sum", { path: '/a\\"b', status: "204" })).toBeCloseTo(121.00101, 9);
        expect(sampleValue(text, "sluice_http_requests_total", { path: "/x", status: "503" })).toBe(1);
    });

    it("is clean for promtool check metrics (and for the same rules checked here), with counters, histograms and the unflushed age", async () => {
        const { url, events, clock } = await start();
        const write = (body: string) => post(`${url}/write?db=d`, body);
        expect(await write("m,h=a f=1 1700000000000000000")).toBe(204);
        expect(await post(`${url}/api/v1/flush`)).toBe(200);
        expect(await write("m,h=a f=2 1700000000000000001\nbad line")).toBe(400);
        expect(await post(`${url}/api/v1/flush`)).toBe(200);
        expect(await post(`${url}/api/v1/compact`)).toBe(200);
        expect(await write("m,h=b f=3 1700000000000000002")).toBe(204);
        clock.advance(5_000);
        const text = await scrape(url);

        expect(expositionProblems(text)).toEqual([]);
        const checked = promtool(text);
        if (checked === undefined) process.stderr.write("promtool is not installed: /metrics was checked against its rules here only (npm run e2e -- promtool installs it)\n");
        else expect(checked).toEqual({ status: 0, output: "" });

        const types = declaredTypes(text);
        for (const name of STAT_COUNTERS) expect(types.get(name), name).toBe("counter");
        for (const name of HISTOGRAMS) expect(types.get(name), name).toBe("histogram");
        expect(types.get("sluice_oldest_unflushed_row_age_seconds")).toBe("gauge");

        const value = (name: string, labels: Record<string, string> = {}) => sampleValue(text, name, labels);
        expect(value("sluice_http_requests_total", { path: "/write", status: "204" })).toBe(2);
        expect(value("sluice_http_request_duration_seconds_count", { path: "/write", status: "204" })).toBe(2);
        expect(value("sluice_http_request_duration_seconds_count", { path: "/write", status: "400" })).toBe(1);
        expect(value("sluice_lines_rejected_total", { endpoint: "/write" })).toBe(1);
        // Three acknowledged writes, one after another: three groups of one append, each synced (fdatasync).
        expect(value("sluice_wal_groups_total")).toBe(3);
        expect(value("sluice_wal_group_appends_count")).toBe(3);
        expect(value("sluice_wal_group_appends_sum")).toBe(3);
        expect(value("sluice_wal_sync_seconds_count")).toBe(value("sluice_wal_syncs_total"));
        expect(value("sluice_wal_sync_seconds_count")).toBeGreaterThanOrEqual(3);
        expect(value("sluice_wal_group_bytes_sum")).toBe(value("sluice_wal_bytes_total"));
        expect(value("sluice_flush_duration_seconds_count")).toBe(2);
        expect(value("sluice_compaction_duration_seconds_count")).toBe(1);
        expect(value("sluice_compacted_partitions_total")).toBe(1);
        // The one buffered row arrived 5 s ago on the server's clock.
        expect(value("sluice_oldest_unflushed_row_age_seconds")).toBe(5);

        // The rejected write is one log line with what is known of it; the flushes are structured events.
        expect(events.filter((event) => event.msg === "request rejected")).toEqual([
            {
                level: "warn",
                time: expect.any(String) as unknown,
                status: 400,
                client: "127.0.0.1",
                method: "POST",
                path: "/write",
                reason: 'partial write: unable to parse \'bad line\' (line 2): field key "line" has no "=" and value dropped=1',
                database: "d",
                lines_accepted: 1,
                lines_rejected: 1,
                ms: expect.any(Number) as unknown,
                msg: "request rejected",
            },
        ]);
        expect(events.filter((event) => event.msg === "flushed")).toEqual([
            expect.objectContaining({ level: "info", database: "d", measurement: "m", rows: 1, files: 1, wal_seq: "0-0" }),
            expect.objectContaining({ level: "info", database: "d", measurement: "m", rows: 1, files: 1, wal_seq: "1-1" }),
        ]);

        // Counters only grow; the age falls to 0 once everything is in Parquet.
        expect(await write("m,h=c f=4 1700000000000000003")).toBe(204);
        expect(await post(`${url}/api/v1/flush`)).toBe(200);
        const later = await scrape(url);
        const before = counters(text);
        const after = counters(later);
        for (const [series, earlier] of before) expect(after.get(series), series).toBeGreaterThanOrEqual(earlier);
        expect(sampleValue(later, "sluice_wal_entries_total")).toBe(value("sluice_wal_entries_total")! + 1);
        expect(sampleValue(later, "sluice_flushes_total")).toBe(value("sluice_flushes_total")! + 1);
        expect(sampleValue(later, "sluice_oldest_unflushed_row_age_seconds")).toBe(0);
    });

    it("counts the age of rows in a flush under way, and of rows a failed flush put back", async () => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const encoder: BatchEncoder = {
            encode: async () => {
                await gate;
                throw new Error("the encoder failed");
            },
        };
        const { server, url, clock, stop } = await start("node", {}, { encoder });
        expect(await post(`${url}/write?db=d`, "m f=1 1700000000000000000")).toBe(204);
        clock.advance(2_000);
        const flushing = post(`${url}/api/v1/flush`);
        while (server.engine.flusher.inFlightBytes === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        expect(server.engine.buffers.rows).toBe(0);
        expect(sampleValue(await scrape(url), "sluice_oldest_unflushed_row_age_seconds")).toBe(2);
        release();
        expect(await flushing).toBe(503);
        expect(server.engine.buffers.rows).toBe(1);
        clock.advance(1_000);
        expect(sampleValue(await scrape(url), "sluice_oldest_unflushed_row_age_seconds")).toBe(3);
        // The shutdown flush fails the same way: the row stays in the WAL.
        await expect(stop()).rejects.toThrow(/the encoder failed/);
    });
});

describe.each(["node", "hyper-express"] as const)("the log of rejected requests on %s", (adapter) => {
    it("logs a burst per (status, client), then holds back and says how many at shutdown", async () => {
        const { url, events, stop } = await start(adapter, { "auth.tokens": "secret" });
        const refused = REJECTION_LOG_LIMITS.burst + 5;
        for (let i = 0; i < refused; i++) expect(await post(`${url}/write?db=d`, "m f=1")).toBe(401);
        expect((await fetch(`${url}/nope`, { headers: { authorization: "Token secret" } })).status).toBe(404);
        expect(await post(`${url}/write?db=d`, "m f=1", { authorization: "Token secret" })).toBe(204);
        await stop();
        const rejected = events.filter((event) => event.msg === "request rejected");
        expect(rejected).toHaveLength(REJECTION_LOG_LIMITS.burst + 1);
        expect(rejected[0]).toMatchObject({
            level: "warn",
            status: 401,
            client: "127.0.0.1",
            path: "/write",
            database: "d",
            reason: expect.stringMatching(/not authenticated/) as unknown,
        });
        expect(rejected.at(-1)).toMatchObject({ status: 404, client: "127.0.0.1", path: "/nope", reason: "no endpoint /nope" });
        expect(events.filter((event) => event.msg.startsWith("rejected requests not logged"))).toEqual([
            expect.objectContaining({ level: "warn", status: 401, client: "127.0.0.1", suppressed: 5 }),
        ]);
    });
});

describe("an internal error", () => {
    it("is answered 500, counted, and logged as an error with its stack", async () => {
        const { server, events } = await start();
        const failing = {
            check: () => {
                throw new TypeError("the authenticator broke");
            },
        } as unknown as TokenAuthenticator;
        const app = createApp(
            { ...server.context, auth: failing },
            new RejectionLog(
                createLogger({ level: "info", format: "json" }, (line) => events.push(JSON.parse(line) as Event)),
                new ManualClock(),
            ),
        );
        const reply = await app({ method: "GET", path: "/query", rawQuery: "", headers: new Map(), body: undefined as never });
        expect(reply.status).toBe(500);
        expect(JSON.parse(String(reply.body))).toEqual({ error: "internal error: the authenticator broke" });
        expect(events.find((event) => event.status === 500)).toMatchObject({
            level: "error",
            msg: "request rejected",
            client: "unknown",
            reason: "internal error: the authenticator broke",
            error: expect.stringMatching(/^TypeError: the authenticator broke\n\s+at /) as unknown,
        });
        expect(sampleValue(await scrape(server.url), "sluice_http_requests_total", { path: "/query", status: "500" })).toBe(1);
    });
});

import { describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock.js";
import type { LogFields, Logger } from "../src/log.js";
import { REJECTION_LOG_LIMITS, RejectionLog, replyReason } from "../ingest/rejection-log.js";

interface Line {
    readonly level: "info" | "warn" | "error";
    readonly message: string;
    readonly fields: LogFields | undefined;
}

function recording(): { log: Logger; lines: Line[] } {
    const lines: Line[] = [];
    const at = (level: Line["level"]) => (message: string, fields?: LogFields) => void lines.push({ level, message, fields });
    return { log: { info: at("info"), warn: at("warn"), error: at("error") }, lines };
}

const { burst, refillMs } = REJECTION_LOG_LIMITS;

describe("RejectionLog", () => {
    it("logs a burst per (status, client), then one line per refill naming how many it held back; computes fields only for lines it writes", () => {
        const { log, lines } = recording();
        const clock = new ManualClock();
        const rejections = new RejectionLog(log, clock);
        let computed = 0;
        const fields = () => {
            computed++;
            return { path: "/write", reason: "bad line" };
        };
        for (let i = 0; i < burst + 25; i++) rejections.record(400, "10.0.0.1", fields);
        expect(lines).toHaveLength(burst);
        expect(computed).toBe(burst);
        expect(lines[0]).toEqual({ level: "warn", message: "request rejected", fields: { status: 400, client: "10.0.0.1", path: "/write", reason: "bad line" } });
        // Another client and another status have buckets of their own.
        rejections.record(400, "10.0.0.2", fields);
        rejections.record(413, "10.0.0.1", fields);
        expect(lines.slice(burst).map((line) => [line.fields?.status, line.fields?.client])).toEqual([
            [400, "10.0.0.2"],
            [413, "10.0.0.1"],
        ]);
        clock.advance(refillMs - 1);
        rejections.record(400, "10.0.0.1", fields);
        expect(lines).toHaveLength(burst + 2);
        clock.advance(1);
        rejections.record(400, "10.0.0.1", fields);
        expect(lines.at(-1)?.fields).toEqual({ status: 400, client: "10.0.0.1", path: "/write", reason: "bad line", suppressed: 26 });
        rejections.close();
    });

    it("tells what it held back in a summary line, forgets clients whose bucket is full again, logs 500 as an error", () => {
        const { log, lines } = recording();
        const clock = new ManualClock();
        const rejections = new RejectionLog(log, clock);
        for (let i = 0; i < burst + 3; i++) rejections.record(503, undefined, () => ({}));
        rejections.record(500, "::1", () => ({ reason: "internal error: boom" }));
        rejections.summarize();
        expect(lines.at(-2)).toEqual({ level: "error", message: "request rejected", fields: { status: 500, client: "::1", reason: "internal error: boom" } });
        expect(lines.at(-1)).toEqual({ level: "warn", message: "rejected requests not logged (rate limit)", fields: { status: 503, client: "unknown", suppressed: 3 } });
        const logged = lines.length;
        rejections.summarize();
        expect(lines).toHaveLength(logged);
        // Once refilled and forgotten, a bucket starts full: a whole burst again.
        clock.advance(burst * refillMs);
        rejections.summarize();
        for (let i = 0; i < burst; i++) rejections.record(503, undefined, () => ({}));
        expect(lines.slice(logged).every((line) => line.message === "request rejected" && line.fields?.suppressed === undefined)).toBe(true);
        expect(lines).toHaveLength(logged + burst);
        rejections.close();
    });

    it("keeps at most maxBuckets buckets: further clients share one per status", () => {
        const { log, lines } = recording();
        const rejections = new RejectionLog(log, new ManualClock(), { ...REJECTION_LOG_LIMITS, maxBuckets: 3 });
        for (let client = 0; client < 20; client++) rejections.record(401, `10.0.0.${client}`, () => ({}));
        expect(lines.map((line) => line.fields?.client)).toEqual(["10.0.0.0", "10.0.0.1", "10.0.0.2", ...Array<string>(burst).fill("others")]);
        rejections.close();
        expect(lines.at(-1)?.fields).toEqual({ status: 401, client: "others", suppressed: 20 - 3 - burst });
    });
});

describe("replyReason", () => {
    it("takes the message each API family's error body carries, its first line, at most 300 characters", () => {
        expect(replyReason(JSON.stringify({ error: "partial write: unable to parse 'x' (line 1): bad\nunable to parse 'y' (line 2): bad dropped=2" }))).toBe(
            "partial write: unable to parse 'x' (line 1): bad",
        );
        expect(replyReason(Buffer.from(JSON.stringify({ code: "invalid", message: "database is required" })))).toBe("database is required");
        expect(replyReason(JSON.stringify({ error: "partial write of line protocol occurred", data: [{ error_message: "no fields", line_number: 3, original_line: "m" }] }))).toBe(
            "partial write of line protocol occurred: line 3: no fields",
        );
        expect(replyReason(JSON.stringify({ error: "nothing was written", data: { error_message: "no fields", line_number: 1, original_line: "m" } }))).toBe(
            "nothing was written: line 1: no fields",
        );
        expect(replyReason("not json")).toBe("not json");
        expect(replyReason(undefined)).toBe("");
        expect(replyReason(JSON.stringify({ error: "x".repeat(400) }))).toBe(`${"x".repeat(300)}…`);
    });
});

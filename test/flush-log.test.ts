import { describe, expect, it } from "vitest";
import { FlushLog } from "../bench/lib/flush-log.js";

describe("bench: FlushLog", () => {
    it("keeps each flush's rows, bytes and times from its log line, and totals those that ended in a window", () => {
        const log = new FlushLog();
        // A line split across chunks, a line that is not a flush, three flushes (one of several measurements).
        log.onOutput('{"level":"info","msg":"listening on http://127.0.0.1:1"}\n{"level":"info","database":"db","measurement":"cpu","rows":10,', 900);
        log.onOutput('"files":1,"bytes":2000000,"wal_seq":"0-1","encode_ms":60,"ms":100,"msg":"flushed"}\n', 1000);
        log.onOutput('{"level":"info","measurements":2,"rows":30,"files":2,"bytes":3000000,"encode_ms":50,"ms":550,"msg":"flushed"}\n', 2000);
        log.onOutput('{"level":"info","rows":5,"files":1,"bytes":1,"encode_ms":1,"ms":2,"msg":"flushed"}\n{"level":"info","msg":"flushed"', 3000);
        expect(log.events).toEqual([
            { endMs: 1000, rows: 10, bytes: 2_000_000, ms: 100, encodeMs: 60 },
            { endMs: 2000, rows: 30, bytes: 3_000_000, ms: 550, encodeMs: 50 },
            { endMs: 3000, rows: 5, bytes: 1, ms: 2, encodeMs: 1 },
        ]);
        // 5 MB written in (100 − 60) + (550 − 50) ms = 0.54 s.
        expect(log.totals(1000, 2000)).toEqual({ flushes: 2, rows: 40, bytes: 5_000_000, medianMs: 325, writeMBps: 5 / 0.54 });
        expect(log.totals().flushes).toBe(3);
    });

    it("reports no rate and no median without flushes", () => {
        const log = new FlushLog();
        log.onOutput('{"level":"info","rows":5,"files":1,"bytes":1,"encode_ms":1,"ms":2,"msg":"flushed"}\n', 3000);
        expect(log.totals(0, 2999)).toEqual({ flushes: 0, rows: 0, bytes: 0, medianMs: Number.NaN, writeMBps: Number.NaN });
    });
});

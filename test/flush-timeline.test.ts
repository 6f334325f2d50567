import { describe, expect, it } from "vitest";
import { FlushTimeline } from "../bench/lib/flush-timeline.js";

describe("bench: FlushTimeline", () => {
    it("dates each flush from its log line and splits request latency by overlap", () => {
        const timeline = new FlushTimeline();
        // A line split across chunks, a line that is not a flush, two flushes.
        timeline.onOutput('{"level":"info","msg":"listening on http://127.0.0.1:1"}\n{"level":"info","database":"db","measurement":"cpu","rows":10,', 900);
        timeline.onOutput('"files":1,"bytes":5,"wal_seq":"0-1","encode_ms":80,"ms":100,"msg":"flushed"}\n', 1000);
        timeline.onOutput('{"level":"info","database":"db","rows":10,"files":1,"bytes":5,"wal_seq":"2-3","encode_ms":40,"ms":50,"msg":"flushed"}\n', 2000);
        expect(timeline.flushes).toEqual([
            { start: 900, end: 1000 },
            { start: 1950, end: 2000 },
        ]);
        timeline.record(850, 60); // ends inside the first flush
        timeline.record(990, 5); // inside it
        timeline.record(1000, 10); // starts as it ends: not in flight during it
        timeline.record(1500, 20);
        timeline.record(1940, 30); // runs into the second flush
        timeline.record(2100, 7);
        expect(timeline.split()).toEqual({
            duringFlush: { requests: 3, p99Ms: 60 },
            otherwise: { requests: 3, p99Ms: 20 },
        });
    });

    it("reports no p99 for an empty share", () => {
        const timeline = new FlushTimeline();
        timeline.record(0, 3);
        expect(timeline.split()).toEqual({ duringFlush: { requests: 0, p99Ms: Number.NaN }, otherwise: { requests: 1, p99Ms: 3 } });
    });
});

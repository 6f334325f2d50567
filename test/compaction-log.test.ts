import { describe, expect, it } from "vitest";
import { CompactionLog } from "../bench/lib/compaction-log.js";

describe("bench: CompactionLog", () => {
    it("keeps each compacted partition from the server's JSON log lines, across chunks, and totals them", () => {
        const log = new CompactionLog();
        log.onOutput('{"level":"info","msg":"listening on http://127.0.0.1:1"}\n{"level":"info","time":"t","partition":"/d/parquet/db/cpu/date=2026-12-04/hour=00","files_in":7,');
        log.onOutput('"files_out":3,"rows_in":2930000,"rows_out":2930000,"duplicates_merged":0,"ms":19229,"msg":"compacted"}\n');
        log.onOutput('{"level":"info","partition":"p2","files_in":2,"files_out":1,"rows_in":10,"rows_out":9,"duplicates_merged":1,"ms":5,"msg":"compacted"}\n{"msg":"compacted"');
        expect(log.partitions).toEqual([
            { partition: "/d/parquet/db/cpu/date=2026-12-04/hour=00", filesIn: 7, filesOut: 3, rowsIn: 2_930_000, rowsOut: 2_930_000, ms: 19_229 },
            { partition: "p2", filesIn: 2, filesOut: 1, rowsIn: 10, rowsOut: 9, ms: 5 },
        ]);
        expect(log.totals()).toEqual({ partitions: 2, filesIn: 9, filesOut: 4, rowsIn: 2_930_010, ms: 19_234 });
    });
});

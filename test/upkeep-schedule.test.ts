/** The background upkeep schedule: a pass longer than its interval is followed by one pass, not a backlog. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { emptyCompactionReport } from "../flush/upkeep/compactor.js";
import type { RetentionReport } from "../flush/upkeep/retention.js";
import { type CompactionPasses, LakeUpkeep } from "../flush/upkeep/upkeep.js";
import { ManualClock } from "../src/clock.js";
import { silentLogger } from "../src/log.js";

const EMPTY: RetentionReport = { dry_run: false, partitions: [], files: 0, bytes: 0 };

describe("LakeUpkeep's background passes", () => {
    beforeEach(() => {
        vi.useFakeTimers();
    });
    afterEach(() => {
        vi.useRealTimers();
    });

    it("queues at most one retention check while one runs longer than the interval", async () => {
        let started = 0;
        let finish: () => void = () => undefined;
        const retention = (): Promise<RetentionReport> => {
            started++;
            return new Promise((resolve) => {
                finish = () => {
                    resolve(EMPTY);
                };
            });
        };
        // Compaction is off: the compactor is never called.
        const compactor: CompactionPasses = { scan: async () => 0, run: async () => emptyCompactionReport(), noteAdded: () => undefined };
        const upkeep = new LakeUpkeep(compactor, retention, { compactionEnabled: false, compactionIntervalMs: 10, retentionIntervalMs: 10 }, silentLogger, new ManualClock());
        upkeep.start();
        await vi.advanceTimersByTimeAsync(1_000);
        expect(started).toBe(1);
        // The interval fired 100 times meanwhile: no backlog starts now, the next pass waits for the next tick.
        finish();
        await vi.advanceTimersByTimeAsync(1);
        expect(started).toBe(1);
        await vi.advanceTimersByTimeAsync(10);
        expect(started).toBe(2);
        finish();
        await vi.advanceTimersByTimeAsync(1_000);
        expect(started).toBe(3);
        finish();
        await upkeep.close();
        expect(upkeep.stats.retentionChecks).toBeGreaterThanOrEqual(2);
    });
});

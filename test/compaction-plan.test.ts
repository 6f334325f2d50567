/** Which files compaction merges and how it cuts its outputs (flush/upkeep/compaction-plan.ts). */
import { describe, expect, it } from "vitest";
import { type PlannedFile, planCompaction } from "../flush/upkeep/compaction-plan.js";

const file = (name: string, rows: number, minTimeNs: bigint, maxTimeNs: bigint, writeRank: number): PlannedFile => ({ name, rows, minTimeNs, maxTimeNs, writeRank });

describe("planCompaction", () => {
    it("merges small files, oldest write first, and leaves a big file that overlaps nothing alone", () => {
        const plan = planCompaction([file("big", 900, 0n, 99n, 1), file("late", 10, 200n, 210n, 9), file("early", 10, 150n, 160n, 5)], 1000)!;
        expect(plan.inputs.map((input) => input.name)).toEqual(["early", "late"]);
        expect(plan.slices).toEqual([[150n, 211n]]);
    });

    it("takes a big file whose times overlap another's (they may hold the same point)", () => {
        const plan = planCompaction([file("big", 900, 0n, 99n, 3), file("retry", 10, 50n, 60n, 2)], 1000)!;
        expect(plan.inputs.map((input) => input.name)).toEqual(["retry", "big"]);
    });

    it("has nothing to do below two candidates", () => {
        expect(planCompaction([file("only", 10, 0n, 1n, 1)], 1000)).toBeUndefined();
        expect(planCompaction([file("a", 900, 0n, 9n, 1), file("b", 900, 10n, 19n, 2)], 1000)).toBeUndefined();
    });

    it("cuts outputs into time slices of about maxRowsPerFile rows that cover every input time once", () => {
        const inputs = Array.from({ length: 10 }, (_, i) => file(`f${i}`, 300, BigInt(i * 100), BigInt(i * 100 + 99), i));
        const plan = planCompaction(inputs, 1000)!;
        expect(plan.slices).toHaveLength(3);
        expect(plan.slices[0]![0]).toBe(0n);
        expect(plan.slices.at(-1)![1]).toBe(1000n);
        for (let i = 1; i < plan.slices.length; i++) expect(plan.slices[i]![0]).toBe(plan.slices[i - 1]![1]);
    });
});

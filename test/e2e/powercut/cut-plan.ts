/**
 * Where to cut: spread over the whole run (one random barrier in each of n equal strata), a few
 * inside each restart's recovery (between spawn and `listening on`, where the lock, the manifest
 * rewrite and the replay write), and always the last barrier (the disk as kill -9 and a clean
 * unmount left it). Each cut has its own seed, from which follow whether unflushed blocks of the
 * next epoch survive (and which), and whether `recover` or `serve` runs first on it: a cut is
 * replayed exactly from (barrier, seed) on the same recording.
 */
import { seededRandom } from "../../helpers/random.js";
import type { Life } from "./record.js";

export type Order = "recover, then serve" | "serve, then recover";

export interface PlannedCut {
    readonly barrier: number;
    readonly why: "spread" | "restart" | "last" | "asked";
    readonly seed: number;
    /** Probability that each unflushed block of the next epoch is kept; undefined: none is. */
    readonly unflushedKept: number | undefined;
    readonly order: Order;
    /** Draws which unflushed blocks are kept (its own stream, from the cut's seed). */
    readonly random: () => number;
}

/** The cut at `barrier` with everything else drawn from `seed`. */
export function cutAt(barrier: number, why: PlannedCut["why"], seed: number): PlannedCut {
    const draw = seededRandom(seed);
    const keeps = why !== "last" && draw() < 0.5;
    return {
        barrier,
        why,
        seed,
        unflushedKept: keeps ? 0.2 + 0.6 * draw() : undefined,
        order: draw() < 0.5 ? "recover, then serve" : "serve, then recover",
        random: seededRandom((seed ^ 0x9e3779b9) >>> 0),
    };
}

export interface PlanOptions {
    readonly barriers: number;
    readonly count: number;
    readonly lives: readonly Life[];
    /** Cuts placed inside each restart's recovery window (lives after the first). */
    readonly perRestart: number;
    readonly random: () => number;
}

export function planCuts(options: PlanOptions): PlannedCut[] {
    const { barriers, random } = options;
    const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
    const targets: { barrier: number; why: PlannedCut["why"] }[] = [{ barrier: barriers, why: "last" }];
    for (const life of options.lives.slice(1)) {
        const end = life.listeningAt ?? life.killedAt;
        if (end <= life.spawnedAt) continue;
        for (let k = 0; k < options.perRestart && targets.length < options.count; k++) targets.push({ barrier: between(life.spawnedAt + 1, end), why: "restart" });
    }
    const spread = Math.max(0, options.count - targets.length);
    for (let stratum = 0; stratum < spread; stratum++) {
        const low = 1 + Math.floor((stratum * (barriers - 1)) / spread);
        const high = Math.max(low, Math.floor(((stratum + 1) * (barriers - 1)) / spread));
        targets.push({ barrier: between(low, high), why: "spread" });
    }
    return targets.map(({ barrier, why }) => cutAt(barrier, why, Math.floor(random() * 2 ** 32))).sort((a, b) => a.barrier - b.barrier);
}

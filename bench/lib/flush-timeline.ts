/**
 * Request latency split by whether a flush ran while the request was in flight. Sluice logs one
 * `{"msg":"flushed",…,"ms":N}` line on stdout as each flush ends (the default JSON log format),
 * which dates that flush as [end − N, end] on this process's `performance.now()` clock (late by
 * the pipe's delay, a millisecond or so).
 */
import { performance } from "node:perf_hooks";
import { FlushLog } from "./flush-log.js";
import { LatencyReservoir } from "./latency.js";

export interface Interval {
    readonly start: number;
    readonly end: number;
}

export interface LatencyShare {
    readonly requests: number;
    /** Nearest-rank p99 (NaN without requests). */
    readonly p99Ms: number;
}

export interface LatencySplit {
    /** Requests in flight while some flush ran (drain → encode → commit). */
    readonly duringFlush: LatencyShare;
    readonly otherwise: LatencyShare;
}

function share(latencies: readonly number[]): LatencyShare {
    // A reservoir as large as the sample keeps every value: the percentile is exact.
    const reservoir = new LatencyReservoir(latencies.length);
    for (const latency of latencies) reservoir.record(latency);
    reservoir.sort();
    return { requests: latencies.length, p99Ms: reservoir.percentile(99) };
}

export class FlushTimeline {
    readonly #log = new FlushLog();
    readonly #sent: number[] = [];
    readonly #latency: number[] = [];

    /** The flushes so far, as [end − ms, end]. */
    get flushes(): Interval[] {
        return this.#log.events.map((event) => ({ start: event.endMs - event.ms, end: event.endMs }));
    }

    /** Feeds what the server wrote to stdout; `now` is when it arrived. */
    onOutput(chunk: Buffer | string, now = performance.now()): void {
        this.#log.onOutput(chunk, now);
    }

    /** One answered request: sent at `sentMs` (`performance.now()`), answered `latencyMs` later. */
    record(sentMs: number, latencyMs: number): void {
        this.#sent.push(sentMs);
        this.#latency.push(latencyMs);
    }

    split(): LatencySplit {
        const flushes = this.flushes;
        const during: number[] = [];
        const otherwise: number[] = [];
        for (let i = 0; i < this.#sent.length; i++) {
            const start = this.#sent[i]!;
            const end = start + this.#latency[i]!;
            const overlaps = flushes.some((flush) => start < flush.end && end > flush.start);
            (overlaps ? during : otherwise).push(this.#latency[i]!);
        }
        return { duringFlush: share(during), otherwise: share(otherwise) };
    }
}

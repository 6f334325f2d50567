/**
 * Request latency split by whether a flush ran while the request was in flight. Sluice logs one
 * `{"msg":"flushed",…,"ms":N}` line on stdout as each flush ends (the default JSON log format),
 * which dates that flush as [end − N, end] on this process's `performance.now()` clock (late by
 * the pipe's delay, a millisecond or so).
 */
import { performance } from "node:perf_hooks";
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

/** How long the flush a log line reports took, in ms, if the line is a `flushed` event. */
function flushMs(line: string): number | undefined {
    if (!line.startsWith("{")) return undefined;
    const event = JSON.parse(line) as { msg?: unknown; ms?: unknown };
    return event.msg === "flushed" && typeof event.ms === "number" ? event.ms : undefined;
}

function share(latencies: readonly number[]): LatencyShare {
    // A reservoir as large as the sample keeps every value: the percentile is exact.
    const reservoir = new LatencyReservoir(latencies.length);
    for (const latency of latencies) reservoir.record(latency);
    reservoir.sort();
    return { requests: latencies.length, p99Ms: reservoir.percentile(99) };
}

export class FlushTimeline {
    readonly flushes: Interval[] = [];
    readonly #sent: number[] = [];
    readonly #latency: number[] = [];
    #partial = "";

    /** Feeds what the server wrote to stdout; `now` is when it arrived. */
    onOutput(chunk: Buffer | string, now = performance.now()): void {
        const lines = (this.#partial + chunk.toString()).split("\n");
        this.#partial = lines.pop()!;
        for (const line of lines) {
            const ms = flushMs(line);
            if (ms !== undefined) this.flushes.push({ start: now - ms, end: now });
        }
    }

    /** One answered request: sent at `sentMs` (`performance.now()`), answered `latencyMs` later. */
    record(sentMs: number, latencyMs: number): void {
        this.#sent.push(sentMs);
        this.#latency.push(latencyMs);
    }

    split(): LatencySplit {
        const during: number[] = [];
        const otherwise: number[] = [];
        for (let i = 0; i < this.#sent.length; i++) {
            const start = this.#sent[i]!;
            const end = start + this.#latency[i]!;
            const overlaps = this.flushes.some((flush) => start < flush.end && end > flush.start);
            (overlaps ? during : otherwise).push(this.#latency[i]!);
        }
        return { duringFlush: share(during), otherwise: share(otherwise) };
    }
}

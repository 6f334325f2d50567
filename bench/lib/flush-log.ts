/**
 * What a server's flushes wrote, from the `{"msg":"flushed",…}` lines it logs on stdout (the
 * default JSON log format): rows, Parquet bytes, the whole flush's ms and its encode ms, each
 * dated by when the line arrived (`performance.now()`), so a benchmark can keep the flushes that
 * ended inside its measured window.
 */
import { performance } from "node:perf_hooks";
import { median } from "./stats.js";

export interface FlushEvent {
    /** When the line arrived, on `performance.now()`. */
    readonly endMs: number;
    readonly rows: number;
    readonly bytes: number;
    /** Drain → encode → write/upload → commit. */
    readonly ms: number;
    /** Parquet encoding alone (summed over the flush's measurements). */
    readonly encodeMs: number;
}

export interface FlushTotals {
    readonly flushes: number;
    readonly rows: number;
    readonly bytes: number;
    /** Median of the flushes' `ms`. */
    readonly medianMs: number;
    /** Σ bytes ÷ Σ (ms − encode ms), decimal MB/s: how fast a flush writes (local) or uploads (s3) once encoded. */
    readonly writeMBps: number;
}

function eventOf(line: string, now: number): FlushEvent | undefined {
    if (!line.startsWith("{")) return undefined;
    const event = JSON.parse(line) as { msg?: unknown; rows?: unknown; bytes?: unknown; ms?: unknown; encode_ms?: unknown };
    if (event.msg !== "flushed") return undefined;
    const number = (value: unknown) => (typeof value === "number" ? value : Number.NaN);
    return { endMs: now, rows: number(event.rows), bytes: number(event.bytes), ms: number(event.ms), encodeMs: number(event.encode_ms) };
}

export class FlushLog {
    readonly events: FlushEvent[] = [];
    #partial = "";

    /** Feeds what the server wrote to stdout; `now` is when it arrived. */
    onOutput(chunk: Buffer | string, now = performance.now()): void {
        const lines = (this.#partial + chunk.toString()).split("\n");
        this.#partial = lines.pop()!;
        for (const line of lines) {
            const event = eventOf(line, now);
            if (event !== undefined) this.events.push(event);
        }
    }

    /** The flushes that ended within [fromMs, toMs] (default: all). */
    totals(fromMs = Number.NEGATIVE_INFINITY, toMs = Number.POSITIVE_INFINITY): FlushTotals {
        const events = this.events.filter((event) => event.endMs >= fromMs && event.endMs <= toMs);
        const sum = (pick: (event: FlushEvent) => number) => events.reduce((total, event) => total + pick(event), 0);
        const writeMs = sum((event) => Math.max(0, event.ms - event.encodeMs));
        return {
            flushes: events.length,
            rows: sum((e) => e.rows),
            bytes: sum((e) => e.bytes),
            medianMs: median(events.map((e) => e.ms)),
            writeMBps: writeMs > 0 ? sum((e) => e.bytes) / 1e6 / (writeMs / 1000) : Number.NaN,
        };
    }
}

/**
 * The load generator the `http`, `peers`, `sustained` and `compact` benchmarks drive servers
 * with: C concurrent loops over one keep-alive agent (at most C sockets), each POSTing batches of
 * N lines from a `LineSource` and awaiting the answer before sending the next (or paced at an
 * offered rate).
 *
 * Counted: lines of 2xx-answered requests (`acked*`); non-2xx answers by status; errors (no
 * answer) by code. Rates and latencies cover the measured window (after an optional warm-up);
 * `total` covers the whole run (what a store must hold). Also what `MeasuredWindow` samples:
 * the client's and the server's CPU, the server's RSS, the machine's steal and busy time, and
 * which other processes used the CPU meanwhile.
 *
 * Bounded: no request starts after warm-up + S seconds; requests then in flight get at most
 * `drainTimeoutMs` (then are destroyed and counted as errors). Loopback targets only.
 */
import { performance } from "node:perf_hooks";
import { sleep } from "./benchmark.js";
import { HttpPoster, type Outcome } from "./http-poster.js";
import { LatencyReservoir } from "./latency.js";
import { FIELDS_PER_LINE, LineSource, gzipPool } from "./line-source.js";
import { type ClientSample, type MachineShare, MeasuredWindow, type OtherProcess, type ServerSample } from "./window.js";

export type { ServerSample } from "./window.js";

const LATENCY_CAPACITY = 1 << 20;
const RSS_EVERY_MS = 100;
/** Lines pre-compressed per second of a gzip run, unless `gzipLines` says otherwise. */
const GZIP_LINES_PER_SECOND = 400_000;

export interface LoadOptions {
    /** The write URL, e.g. `http://127.0.0.1:8086/write?db=bench` (loopback only). */
    readonly url: string;
    readonly connections: number;
    readonly batchLines: number;
    /** Measured seconds (after the warm-up). */
    readonly seconds: number;
    readonly warmupSeconds?: number;
    readonly gzip?: boolean;
    /** With gzip: how many lines to pre-compress (default 400,000 per second of the run). */
    readonly gzipLines?: number;
    readonly seed?: number;
    /** First timestamp (s); default now − 24 h. */
    readonly baseSeconds?: number;
    /** A server process to sample (CPU, RSS). */
    readonly serverPid?: number;
    /** How long requests in flight at the end may take before they are destroyed (default 60 s). */
    readonly drainTimeoutMs?: number;
    /** Extra request headers (e.g. Authorization). */
    readonly headers?: Readonly<Record<string, string>>;
    /** A prepared LineSource to reuse (its batch size must match). */
    readonly source?: LineSource;
    /** Awaited at the measured window's start and end (e.g. to scrape the server's metrics). */
    readonly onWindow?: (edge: "start" | "end") => Promise<void>;
    /** Called for each answered request of the window: when it was sent (`performance.now()`) and its latency, in ms. */
    readonly onAnswer?: (sentMs: number, latencyMs: number) => void;
    /**
     * Offered load in lines/s, spread evenly over the connections (each sends a batch every
     * connections × batchLines / rate seconds, at once when it is behind); unset: as fast as
     * the server answers.
     */
    readonly linesPerSecond?: number;
}

export interface LoadResult {
    readonly url: string;
    readonly connections: number;
    readonly batchLines: number;
    readonly gzip: boolean;
    readonly meanLineBytes: number;
    readonly warmupSeconds: number;
    /** The measured window as it ran. */
    readonly seconds: number;
    /** The window's edges on CLOCK_MONOTONIC in µs (the clock of V8's CPU profiles). */
    readonly windowMonotonicUs: { readonly start: number; readonly end: number };
    readonly window: {
        readonly ackedLines: number;
        readonly ackedRequests: number;
        readonly linesPerSec: number;
        readonly fieldValuesPerSec: number;
        /** Request-body bytes of acknowledged requests per second (decimal MB). */
        readonly wireMBps: number;
        readonly p50Ms: number;
        readonly p99Ms: number;
        readonly maxMs: number;
        readonly non2xx: number;
        readonly errors: number;
    };
    /** The whole run, warm-up and drain included: what the store must hold. */
    readonly total: {
        readonly sentRequests: number;
        readonly ackedRequests: number;
        readonly ackedLines: number;
        /** Status → requests. */
        readonly non2xx: Readonly<Record<string, number>>;
        readonly non2xxLines: number;
        /** Error code → requests (no answer: what the server made of them is unknown). */
        readonly errors: Readonly<Record<string, number>>;
        readonly errorLines: number;
        /** First answer body of each non-2xx status (truncated). */
        readonly samples: Readonly<Record<string, string>>;
        /** Timestamps (s) of the first and last line sent. */
        readonly firstSeconds: number;
        readonly lastSeconds: number;
    };
    readonly client: ClientSample;
    readonly server: ServerSample | undefined;
    readonly machine: MachineShare | undefined;
    /** Other processes that used ≥ 5 % of a core over the window (processes started meanwhile count from zero). */
    readonly others: readonly OtherProcess[];
    /** Why the run ended before its time, if it did. */
    readonly stoppedEarly: string | undefined;
}

/** What became of the requests: over the whole run, and over the measured window. */
class LoadTally {
    sentRequests = 0;
    ackedRequests = 0;
    ackedLines = 0;
    readonly non2xx: Record<string, number> = {};
    readonly samples: Record<string, string> = {};
    readonly errors: Record<string, number> = {};
    non2xxLines = 0;
    errorLines = 0;
    winAckedLines = 0;
    winAckedRequests = 0;
    winBytes = 0;
    winNon2xx = 0;
    winErrors = 0;
    readonly latency = new LatencyReservoir(LATENCY_CAPACITY);

    constructor(
        readonly batchLines: number,
        readonly onAnswer: LoadOptions["onAnswer"],
    ) {}

    /** Counts one request's outcome; `latencyMs` and `sentMs` count only when it was answered in the window. */
    record(outcome: Outcome, bodyBytes: number, inWindow: boolean, sentMs: number, latencyMs: number): void {
        const lines = this.batchLines;
        if ("error" in outcome) {
            this.errors[outcome.error] = (this.errors[outcome.error] ?? 0) + 1;
            this.errorLines += lines;
            if (inWindow) this.winErrors++;
            return;
        }
        if (outcome.status >= 200 && outcome.status < 300) {
            this.ackedRequests++;
            this.ackedLines += lines;
            if (inWindow) {
                this.winAckedRequests++;
                this.winAckedLines += lines;
                this.winBytes += bodyBytes;
                this.latency.record(latencyMs);
                this.onAnswer?.(sentMs, latencyMs);
            }
            return;
        }
        const key = String(outcome.status);
        this.non2xx[key] = (this.non2xx[key] ?? 0) + 1;
        this.samples[key] ??= outcome.body;
        this.non2xxLines += lines;
        if (inWindow) {
            this.winNon2xx++;
            this.latency.record(latencyMs);
            this.onAnswer?.(sentMs, latencyMs);
        }
    }

    window(seconds: number): LoadResult["window"] {
        this.latency.sort();
        return {
            ackedLines: this.winAckedLines,
            ackedRequests: this.winAckedRequests,
            linesPerSec: this.winAckedLines / seconds,
            fieldValuesPerSec: (this.winAckedLines * FIELDS_PER_LINE) / seconds,
            wireMBps: this.winBytes / 1e6 / seconds,
            p50Ms: this.latency.percentile(50),
            p99Ms: this.latency.percentile(99),
            maxMs: this.latency.max(),
            non2xx: this.winNon2xx,
            errors: this.winErrors,
        };
    }

    total(firstSeconds: number, lastSeconds: number): LoadResult["total"] {
        return {
            sentRequests: this.sentRequests,
            ackedRequests: this.ackedRequests,
            ackedLines: this.ackedLines,
            non2xx: this.non2xx,
            non2xxLines: this.non2xxLines,
            errors: this.errors,
            errorLines: this.errorLines,
            samples: this.samples,
            firstSeconds,
            lastSeconds,
        };
    }
}

function checked(options: LoadOptions): LineSource {
    const { connections, batchLines, seconds } = options;
    if (!Number.isSafeInteger(connections) || connections < 1) throw new Error(`connections must be a positive integer, got ${connections}`);
    if (!(seconds > 0)) throw new Error(`seconds must be positive, got ${seconds}`);
    const source =
        options.source ??
        new LineSource(batchLines, {
            ...(options.seed === undefined ? {} : { seed: options.seed }),
            ...(options.baseSeconds === undefined ? {} : { baseSeconds: options.baseSeconds }),
        });
    if (source.batchLines !== batchLines) throw new Error(`the LineSource has ${source.batchLines}-line batches, not ${batchLines}`);
    return source;
}

// Invariant kept: no request starts after the window's end, and every request sent is counted
// once in `total` (and in `window` too when it was answered while the window was open).
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
    const { connections, batchLines, seconds } = options;
    const source = checked(options);
    const warmupSeconds = options.warmupSeconds ?? 0;
    const drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
    const poster = new HttpPoster(options.url, connections, {
        "content-type": "text/plain; charset=utf-8",
        ...(options.gzip === true ? { "content-encoding": "gzip" } : {}),
        ...(options.headers ?? {}),
    });
    const gzipped =
        options.gzip === true
            ? await gzipPool(source, Math.max(connections, Math.ceil((options.gzipLines ?? Math.ceil((seconds + warmupSeconds) * GZIP_LINES_PER_SECOND)) / batchLines)))
            : undefined;
    const tally = new LoadTally(batchLines, options.onAnswer);
    let nextBatch = 0;
    let stoppedEarly: string | undefined;

    const tStart = performance.now();
    const tWindowStart = tStart + warmupSeconds * 1000;
    const tEnd = tWindowStart + seconds * 1000;
    // The window's edges are taken by timers, so they do not wait for a response.
    const window = new MeasuredWindow(options.serverPid, tWindowStart, tEnd);
    const windowStarted = (async () => {
        await sleep(Math.max(0, tWindowStart - performance.now()));
        await window.begin();
        await Promise.all([window.rss?.sample(), options.onWindow?.("start")]);
    })();
    window.rss?.every(RSS_EVERY_MS, () => window.open);
    const windowEnded = (async () => {
        await sleep(Math.max(0, tEnd - performance.now()));
        await windowStarted;
        await window.end();
        await options.onWindow?.("end");
    })();

    const scratchSize = source.maxBodyBytes;
    const pacingMs = options.linesPerSecond === undefined ? undefined : (1000 * connections * batchLines) / options.linesPerSecond;
    const loop = async (index: number) => {
        let scratch = Buffer.allocUnsafe(scratchSize);
        let due = performance.now() + (pacingMs === undefined ? 0 : (pacingMs * index) / connections);
        for (;;) {
            if (pacingMs !== undefined) {
                const wait = due - performance.now();
                if (wait > 0) await sleep(wait);
                due += pacingMs;
            }
            const started = performance.now();
            if (started >= tEnd) return;
            const k = nextBatch++;
            let body: Buffer;
            if (gzipped !== undefined) {
                if (k >= gzipped.length) {
                    stoppedEarly ??= `the ${gzipped.length} pre-compressed gzip bodies were used up after ${((started - tStart) / 1000).toFixed(1)} s (raise gzipLines)`;
                    return;
                }
                body = gzipped[k]!;
            } else body = source.fill(k, scratch);
            tally.sentRequests++;
            const outcome = await poster.post(body);
            const now = performance.now();
            tally.record(outcome, body.length, window.open, started, now - started);
            if ("error" in outcome) {
                // The socket may still hold this body: never refill it; and do not spin on a dead server.
                scratch = Buffer.allocUnsafe(scratchSize);
                await sleep(50);
            }
        }
    };
    const loops = Promise.all(Array.from({ length: connections }, (_, index) => loop(index)));
    await windowEnded;
    window.rss?.stop();
    // Drain: bounded.
    let drainTimer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
        loops.then(() => true),
        new Promise<false>((resolve) => {
            drainTimer = setTimeout(() => {
                resolve(false);
            }, drainTimeoutMs);
        }),
    ]);
    clearTimeout(drainTimer);
    if (!drained) {
        stoppedEarly ??= `${poster.inFlight} requests still unanswered ${drainTimeoutMs} ms after the end: destroyed`;
        poster.abandon("drain-timeout");
        await loops;
    }
    poster.close();

    const summary = await window.summary();
    const lastLine = nextBatch * batchLines - 1;
    return {
        url: options.url,
        connections,
        batchLines,
        gzip: gzipped !== undefined,
        meanLineBytes: source.meanLineBytes,
        warmupSeconds,
        seconds: summary.seconds,
        windowMonotonicUs: summary.monotonicUs,
        window: tally.window(summary.seconds),
        total: tally.total(source.secondsOf(0), source.secondsOf(Math.max(0, lastLine))),
        client: summary.client,
        server: summary.server,
        machine: summary.machine,
        others: summary.others,
        stoppedEarly,
    };
}

/**
 * A small load generator for crash and fault tests: several concurrent writers post batches of
 * uniquely identifiable points (tag `writer=w<k>`, int field `seq=<i>i`, float field `v`, a unique
 * nanosecond timestamp) over `/write` and `/api/v2/write`, to several databases and
 * measurements, and a ledger records what became of every point:
 * - `acked`: the server answered 2xx — the point must be in Parquet exactly once;
 * - `refused`: the server answered 5xx (shutting down, backpressure) — nothing of it may be stored;
 * - `unknown`: no answer (connection refused or reset, the process died) — stored at most once;
 * - `rejected`: a 4xx, which these well-formed points should never get (a test failure).
 * Never a point is sent twice, so a point found twice in Parquet is a duplicate of Sluice's.
 */
import { seededRandom } from "./random.js";

/** A seed from `SLUICE_CRASH_SEED` when set (to replay a failure), else a fresh one. */
export function seedFromEnv(): number {
    const given = process.env.SLUICE_CRASH_SEED;
    if (given !== undefined && given !== "") {
        const value = Number(given);
        if (!Number.isSafeInteger(value)) throw new Error(`SLUICE_CRASH_SEED="${given}" is not an integer`);
        return value >>> 0;
    }
    return (Date.now() ^ (process.pid << 16)) >>> 0;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `intervalMs` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, intervalMs = 25): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await check();
        if (value !== undefined && value !== false) return value;
        if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(intervalMs);
    }
}

/** 2023-11-14T22:13:20Z: points step ~1 s per seq, so a run spans several UTC hours (several files per flush). */
export const BASE_TIME_NS = 1_700_000_000_000_000_000n;

/** The unique timestamp of a writer's point: ~1 s per seq, the writer in the low nanoseconds. */
export function pointTime(writer: number, seq: number): bigint {
    return BASE_TIME_NS + BigInt(seq) * 1_000_000_007n + BigInt(writer);
}

/** A point's float field: exact in binary, so it must read back equal. */
export function pointValue(seq: number): number {
    return seq / 8;
}

export type Outcome = "pending" | "acked" | "refused" | "unknown" | "rejected";
export type Endpoint = "v1" | "v2";

export interface SentBatch {
    readonly writer: number;
    readonly firstSeq: number;
    readonly count: number;
    readonly database: string;
    readonly measurement: string;
    readonly endpoint: Endpoint;
    outcome: Outcome;
    /** The HTTP status, or the error message when there was no answer. */
    detail: string;
}

/** One row read back from Parquet (see helpers/parquet.ts). */
export interface StoredPoint {
    readonly database: string;
    readonly measurement: string;
    readonly writer: string;
    readonly seq: bigint;
    readonly timeNs: bigint;
    readonly v: number | null;
    readonly file: string;
}

export interface VerifyReport {
    readonly counts: Record<Exclude<Outcome, "pending">, number> & { stored: number; rows: number };
    /** Acknowledged points not in Parquet. */
    readonly missing: string[];
    /** Points found more than once (with how many times). */
    readonly duplicated: string[];
    /** Rows that match no point ever sent. */
    readonly neverSent: string[];
    /** Points whose request got a 5xx, yet stored. */
    readonly refusedButStored: string[];
    /** Rows whose database, measurement, time or value differ from what was sent. */
    readonly altered: string[];
    /** Requests answered 4xx (a test bug or a parser bug: every line is valid). */
    readonly rejected: string[];
}

/** Every point ever sent and what became of its request. */
export class Ledger {
    readonly batches: SentBatch[] = [];
    /** writer → the batches it sent, in seq order (their seqs are contiguous from 0). */
    readonly #byWriter = new Map<number, SentBatch[]>();
    readonly counts: Record<Outcome, number> = { pending: 0, acked: 0, refused: 0, unknown: 0, rejected: 0 };
    /** Requests (not points) per outcome. */
    readonly requests: Record<Outcome, number> = { pending: 0, acked: 0, refused: 0, unknown: 0, rejected: 0 };

    /** Records a batch about to be sent: it takes the writer's next `count` seqs. */
    sent(batch: Omit<SentBatch, "outcome" | "detail" | "firstSeq">): SentBatch {
        const previous = this.#byWriter.get(batch.writer)?.at(-1);
        const firstSeq = previous === undefined ? 0 : previous.firstSeq + previous.count;
        const entry: SentBatch = { ...batch, firstSeq, outcome: "pending", detail: "" };
        this.batches.push(entry);
        let list = this.#byWriter.get(batch.writer);
        if (list === undefined) this.#byWriter.set(batch.writer, (list = []));
        list.push(entry);
        this.counts.pending += batch.count;
        this.requests.pending++;
        return entry;
    }

    settle(batch: SentBatch, outcome: Exclude<Outcome, "pending">, detail: string): void {
        if (batch.outcome !== "pending") throw new Error("a batch settles once");
        batch.outcome = outcome;
        batch.detail = detail;
        this.counts.pending -= batch.count;
        this.counts[outcome] += batch.count;
        this.requests.pending--;
        this.requests[outcome]++;
    }

    /** The batch holding a writer's seq, by binary search. */
    find(writer: number, seq: number): SentBatch | undefined {
        const list = this.#byWriter.get(writer);
        if (list === undefined) return undefined;
        let lo = 0;
        let hi = list.length - 1;
        while (lo <= hi) {
            const mid = (lo + hi) >> 1;
            const batch = list[mid]!;
            if (seq < batch.firstSeq) hi = mid - 1;
            else if (seq >= batch.firstSeq + batch.count) lo = mid + 1;
            else return batch;
        }
        return undefined;
    }

    /**
     * Compares what Parquet holds with what was sent (call once no request is pending). A point
     * counts as missing when its batch is `required` (by default: acknowledged) and not stored.
     */
    verify(stored: readonly StoredPoint[], required: (batch: SentBatch) => boolean = (batch) => batch.outcome === "acked"): VerifyReport {
        if (this.counts.pending > 0) throw new Error(`${this.counts.pending} points still pending: stop the load first`);
        const seen = new Map<string, number>();
        const neverSent: string[] = [];
        const refusedButStored: string[] = [];
        const altered: string[] = [];
        for (const row of stored) {
            const match = /^w(\d+)$/.exec(row.writer);
            const writer = match === null ? -1 : Number(match[1]);
            const seq = Number(row.seq);
            const key = `${row.writer}:${row.seq}`;
            const batch = writer < 0 ? undefined : this.find(writer, seq);
            if (batch === undefined) {
                neverSent.push(`${key} in ${row.file}`);
                continue;
            }
            seen.set(key, (seen.get(key) ?? 0) + 1);
            if (batch.outcome === "refused") refusedButStored.push(`${key} (answered ${batch.detail}) in ${row.file}`);
            if (row.database !== batch.database || row.measurement !== batch.measurement || row.timeNs !== pointTime(writer, seq) || row.v !== pointValue(seq)) {
                altered.push(
                    `${key}: stored ${row.database}/${row.measurement} t=${row.timeNs} v=${row.v}, sent ${batch.database}/${batch.measurement} t=${pointTime(writer, seq)} v=${pointValue(seq)}`,
                );
            }
        }
        const missing: string[] = [];
        for (const batch of this.batches) {
            if (!required(batch)) continue;
            for (let seq = batch.firstSeq; seq < batch.firstSeq + batch.count; seq++) {
                const key = `w${batch.writer}:${seq}`;
                if (!seen.has(key)) missing.push(`${key} (${batch.database}/${batch.measurement} via ${batch.endpoint})`);
            }
        }
        const duplicated = [...seen].filter(([, count]) => count > 1).map(([key, count]) => `${key} ×${count}`);
        const rejected = this.batches.filter((batch) => batch.outcome === "rejected").map((batch) => `w${batch.writer}:${batch.firstSeq}+${batch.count}: ${batch.detail}`);
        return {
            counts: {
                acked: this.counts.acked,
                refused: this.counts.refused,
                unknown: this.counts.unknown,
                rejected: this.counts.rejected,
                stored: seen.size,
                rows: stored.length,
            },
            missing,
            duplicated,
            neverSent,
            refusedButStored,
            altered,
            rejected,
        };
    }
}

/** A report's problems, summarised (counts and the first few examples), empty when there are none. */
export function problemsOf(report: VerifyReport, examples = 5): Record<string, string> {
    const problems: Record<string, string> = {};
    for (const name of ["missing", "duplicated", "neverSent", "refusedButStored", "altered", "rejected"] as const) {
        const list = report[name];
        if (list.length > 0) problems[name] = `${list.length}: ${list.slice(0, examples).join("; ")}${list.length > examples ? "; …" : ""}`;
    }
    return problems;
}

export interface LoadOptions {
    readonly writers: number;
    readonly databases: readonly string[];
    readonly measurements: readonly string[];
    /** Points per request, drawn uniformly from this range. */
    readonly batchPoints: readonly [min: number, max: number];
    readonly seed: number;
    /** Writer numbers start here (several generators in one test must not share writers). */
    readonly firstWriter?: number;
    /** Record into this ledger (several generators, one account); a new one by default. */
    readonly ledger?: Ledger;
    /** A safety bound on the requests each writer sends over the generator's life. */
    readonly maxRequestsPerWriter?: number;
    /** Each request is abandoned (counted `unknown`) after this long. */
    readonly requestTimeoutMs?: number;
    /** Pause between requests, ms (0: back to back). */
    readonly pauseMs?: number;
    /** Called as each request settles, right after the ledger records its outcome. */
    readonly onSettle?: (batch: SentBatch) => void;
}

/**
 * Concurrent writers posting to the current target. `setTarget(undefined)` parks them (the
 * server is down); `setTarget(url)` resumes them against the new server. Requests to a target
 * that vanished fail and are counted `unknown`.
 */
export class LoadGenerator {
    readonly ledger: Ledger;
    readonly #options: Required<Omit<LoadOptions, "ledger">>;
    #target: string | undefined;
    #wake: () => void = () => undefined;
    #woken: Promise<void>;
    #stopped = false;
    #writers: Promise<void>[] = [];

    constructor(options: LoadOptions) {
        const { ledger, ...rest } = options;
        this.ledger = ledger ?? new Ledger();
        this.#options = { firstWriter: 0, maxRequestsPerWriter: 20_000, requestTimeoutMs: 20_000, pauseMs: 0, onSettle: () => undefined, ...rest };
        this.#woken = new Promise((resolve) => (this.#wake = resolve));
    }

    /** Points the writers at a server (or parks them with undefined). */
    setTarget(url: string | undefined): void {
        this.#target = url;
        const wake = this.#wake;
        this.#woken = new Promise((resolve) => (this.#wake = resolve));
        wake();
    }

    start(): void {
        if (this.#writers.length > 0) throw new Error("already started");
        for (let k = 0; k < this.#options.writers; k++) this.#writers.push(this.#run(this.#options.firstWriter + k));
    }

    /** Stops the writers and waits for every request under way to settle. */
    async stop(): Promise<void> {
        this.#stopped = true;
        this.#wake();
        await Promise.all(this.#writers);
    }

    /** Resolves once `count` more requests than now were acknowledged. */
    async acknowledged(count: number, timeoutMs = 15_000): Promise<void> {
        const target = this.ledger.requests.acked + count;
        await waitFor(`${count} acknowledged requests`, () => this.ledger.requests.acked >= target, timeoutMs, 10);
    }

    /** Sends `requests` requests per writer to `url` (stopping early if asked), then resolves with the ledger. */
    static async burst(url: string, options: LoadOptions & { readonly requests: number }): Promise<Ledger> {
        const generator = new LoadGenerator({ ...options, maxRequestsPerWriter: options.requests });
        generator.setTarget(url);
        generator.start();
        await Promise.all(generator.#writers);
        return generator.ledger;
    }

    async #run(writer: number): Promise<void> {
        const { batchPoints, databases, measurements, maxRequestsPerWriter, requestTimeoutMs, pauseMs, onSettle } = this.#options;
        // One PRNG per writer: each writer's batches (sizes, targets, endpoints) follow from the seed.
        const random = seededRandom((this.#options.seed + Math.imul(writer + 1, 0x9e3779b1)) >>> 0);
        const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
        for (let sent = 0; sent < maxRequestsPerWriter && !this.#stopped;) {
            const url = this.#target;
            if (url === undefined) {
                await this.#woken;
                continue;
            }
            const count = batchPoints[0] + Math.floor(random() * (batchPoints[1] - batchPoints[0] + 1));
            const batch = this.ledger.sent({
                writer,
                count,
                database: pick(databases),
                measurement: pick(measurements),
                endpoint: random() < 0.5 ? "v1" : "v2",
            });
            sent++;
            const lines: string[] = [];
            for (let seq = batch.firstSeq; seq < batch.firstSeq + count; seq++) {
                lines.push(`${batch.measurement},writer=w${writer} seq=${seq}i,v=${pointValue(seq)} ${pointTime(writer, seq)}`);
            }
            const db = encodeURIComponent(batch.database);
            const path = batch.endpoint === "v1" ? `/write?db=${db}` : `/api/v2/write?bucket=${db}&org=sluice&precision=ns`;
            let failed = false;
            try {
                const response = await fetch(`${url}${path}`, { method: "POST", body: `${lines.join("\n")}\n`, signal: AbortSignal.timeout(requestTimeoutMs) });
                const text = await response.text();
                if (response.status >= 200 && response.status < 300) this.ledger.settle(batch, "acked", String(response.status));
                else {
                    failed = true;
                    this.ledger.settle(batch, response.status >= 500 ? "refused" : "rejected", `${response.status} ${text.slice(0, 200)}`);
                }
            } catch (error) {
                failed = true;
                const cause = (error as { cause?: { code?: string } }).cause;
                this.ledger.settle(batch, "unknown", `${(error as Error).message}${cause?.code === undefined ? "" : ` (${cause.code})`}`);
            }
            onSettle(batch);
            // After a failure, wait a little (or for a new target) rather than spin on a dead port.
            // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by a callback, which the rule cannot see
            if (failed && !this.#stopped) await sleep(20);
            else if (pauseMs > 0) await sleep(pauseMs);
        }
    }
}

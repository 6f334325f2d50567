/**
 * The log of rejected requests (status 400 and above): one line each, `request rejected` with
 * the status, the client's address and what the app knows (path, reason, database, lines),
 * rate-limited per (status, client address) by a token bucket so that one bad client cannot
 * flood the log: up to `burst` lines at once, then one every `refillMs`. What a bucket holds back
 * is counted: its next line says how many (`suppressed`), and a client that goes quiet gets one
 * `rejected requests not logged` line with the count within `summaryMs` (and at close). Buckets
 * of clients that stopped are forgotten once full again, and at most `maxBuckets` are kept.
 * A held-back rejection costs a map lookup: its fields are never computed.
 */
import type { Clock } from "../src/clock.js";
import type { LogFields, Logger } from "../src/log.js";

export interface RejectionLogLimits {
    /** Lines a (status, client) may log at once. */
    readonly burst: number;
    /** Then one line per this many ms. */
    readonly refillMs: number;
    /** How often held-back counts are logged, at most. */
    readonly summaryMs: number;
    /** Buckets kept at most; beyond, new clients share one bucket per status (`client: "others"`). */
    readonly maxBuckets: number;
}

/** 10 lines at once, then 10 a minute, per (status, client); held-back counts once a minute. */
export const REJECTION_LOG_LIMITS: RejectionLogLimits = { burst: 10, refillMs: 6_000, summaryMs: 60_000, maxBuckets: 10_000 };

interface Bucket {
    readonly status: number;
    readonly client: string;
    tokens: number;
    refilledAt: number;
    suppressed: number;
}

const NO_ADDRESS = "unknown";
const OTHERS = "others";
/** The longest reason logged, in characters. */
const MAX_REASON = 300;

export class RejectionLog {
    readonly #buckets = new Map<string, Bucket>();
    #timer: NodeJS.Timeout | undefined;

    constructor(
        readonly log: Logger,
        readonly clock: Clock,
        readonly limits: RejectionLogLimits = REJECTION_LOG_LIMITS,
    ) {}

    /** A request answered `status`: logged with `fields()` if its bucket has a token, else counted. */
    record(status: number, client: string | undefined, fields: () => LogFields): void {
        const bucket = this.#bucket(status, client ?? NO_ADDRESS);
        const now = this.clock.now();
        bucket.tokens = Math.min(this.limits.burst, bucket.tokens + (now - bucket.refilledAt) / this.limits.refillMs);
        bucket.refilledAt = now;
        if (bucket.tokens < 1) {
            bucket.suppressed++;
            return;
        }
        bucket.tokens--;
        const suppressed = bucket.suppressed;
        bucket.suppressed = 0;
        const line = { status, client: bucket.client, ...fields(), ...(suppressed > 0 ? { suppressed } : {}) };
        if (status === 500) this.log.error("request rejected", line);
        else this.log.warn("request rejected", line);
    }

    /** Logs what every bucket held back since its last line, and forgets the buckets that are full again. */
    summarize(): void {
        const now = this.clock.now();
        for (const [key, bucket] of this.#buckets) {
            if (bucket.suppressed > 0) {
                this.log.warn("rejected requests not logged (rate limit)", { status: bucket.status, client: bucket.client, suppressed: bucket.suppressed });
                bucket.suppressed = 0;
            } else if (bucket.tokens + (now - bucket.refilledAt) / this.limits.refillMs >= this.limits.burst) this.#buckets.delete(key);
        }
        if (this.#buckets.size === 0) this.#stop();
    }

    /** Logs what is still held back and stops the timer. */
    close(): void {
        this.summarize();
        this.#stop();
    }

    #stop(): void {
        clearInterval(this.#timer);
        this.#timer = undefined;
    }

    #bucket(status: number, address: string): Bucket {
        const key = `${status} ${address}`;
        const found = this.#buckets.get(key);
        if (found !== undefined) return found;
        const client = this.#buckets.size < this.limits.maxBuckets ? address : OTHERS;
        const shared = client === OTHERS ? this.#buckets.get(`${status} ${OTHERS}`) : undefined;
        if (shared !== undefined) return shared;
        const bucket: Bucket = { status, client, tokens: this.limits.burst, refilledAt: this.clock.now(), suppressed: 0 };
        this.#buckets.set(`${status} ${client}`, bucket);
        // While there are buckets, they are looked at every summaryMs (and forgotten once full again).
        this.#timer ??= setInterval(() => {
            this.summarize();
        }, this.limits.summaryMs).unref();
        return bucket;
    }
}

/**
 * Why a reply refused its request, from its JSON body: `error` or `message`, and the first bad
 * line that InfluxDB 3's `data` lists; the first line of that, at most MAX_REASON characters.
 */
export function replyReason(body: string | Buffer | undefined): string {
    if (body === undefined) return "";
    const text = body.toString();
    let reason = text;
    try {
        const parsed = JSON.parse(text) as { error?: unknown; message?: unknown; data?: unknown };
        const said = typeof parsed.error === "string" ? parsed.error : typeof parsed.message === "string" ? parsed.message : text;
        const first = (Array.isArray(parsed.data) ? (parsed.data as unknown[])[0] : parsed.data) as { error_message?: unknown; line_number?: unknown } | undefined;
        reason = typeof first?.error_message === "string" ? `${said}: line ${String(first.line_number)}: ${first.error_message}` : said;
    } catch {
        // Not JSON: the body as it is.
    }
    const line = reason.split("\n", 1)[0]!;
    return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON)}…` : line;
}

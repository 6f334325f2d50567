/**
 * The server-wide budget of request-body bytes held in memory (`http.max_inflight_body_bytes`):
 * every request takes its body's bytes (raw, then after gunzip) from it before it reads them and
 * gives them all back when its reply is sent. A request that does not fit waits a short while in
 * line, then gets 503 with Retry-After, without its body having been read.
 */
import { UnavailableError } from "../errors.js";

/** How long a body waits for room before it gets 503. */
export const BODY_WAIT_MS = 1000;
/** The Retry-After of that 503. */
const RETRY_AFTER_SECONDS = 1;

interface Waiter {
    readonly lease: BodyLease;
    readonly bytes: number;
    readonly grant: () => void;
    readonly timer: NodeJS.Timeout;
}

export class BodyBudget {
    #held = 0;
    readonly #waiters: Waiter[] = [];

    constructor(
        readonly capacity: number,
        readonly waitMs = BODY_WAIT_MS,
    ) {}

    /** Bytes held by all requests now. */
    get held(): number {
        return this.#held;
    }

    /** A request's share, empty until it holds bytes; `release` it when the reply is sent. */
    lease(): BodyLease {
        return new BodyLease(this);
    }

    // Invariant kept: bytes held never exceed the capacity, except by one request that holds
    // everything held (so a body of the largest allowed size, raw plus gunzipped, always gets
    // through once the others are done); new requests are served in arrival order, a request
    // that already holds bytes (it is finishing, and will give them back) before them.
    /** @internal Called by `BodyLease.hold`. */
    take(lease: BodyLease, bytes: number): Promise<void> {
        if ((this.#waiters.length === 0 || lease.bytes > 0) && this.#fits(lease, bytes)) {
            this.#grant(lease, bytes);
            return Promise.resolve();
        }
        return new Promise((resolve, reject) => {
            const waiter: Waiter = {
                lease,
                bytes,
                grant: resolve,
                timer: setTimeout(() => {
                    this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
                    reject(
                        new UnavailableError(
                            `request bodies held in memory are at http.max_inflight_body_bytes (${this.capacity} bytes; ${this.#held} held, ${bytes} more asked): retry shortly`,
                            RETRY_AFTER_SECONDS,
                        ),
                    );
                    this.#serveWaiters();
                }, this.waitMs),
            };
            this.#waiters.push(waiter);
        });
    }

    /** @internal Called by `BodyLease.release`. */
    give(bytes: number): void {
        this.#held -= bytes;
        this.#serveWaiters();
    }

    #fits(lease: BodyLease, bytes: number): boolean {
        return this.#held + bytes <= this.capacity || this.#held === lease.bytes;
    }

    #grant(lease: BodyLease, bytes: number): void {
        this.#held += bytes;
        lease.bytes += bytes;
    }

    #serveWaiters(): void {
        for (let first = this.#waiters[0]; first !== undefined && this.#fits(first.lease, first.bytes); first = this.#waiters[0]) {
            this.#waiters.shift();
            clearTimeout(first.timer);
            if (!first.lease.released) this.#grant(first.lease, first.bytes);
            first.grant();
        }
    }
}

/** One request's bytes in a `BodyBudget`. */
export class BodyLease {
    /** Bytes this request holds. */
    bytes = 0;
    #released = false;

    constructor(readonly budget: BodyBudget) {}

    get released(): boolean {
        return this.#released;
    }

    /** Takes `bytes` more, waiting for room; rejects with `UnavailableError` (503) when none comes in time. */
    async hold(bytes: number): Promise<void> {
        if (this.#released) throw new Error("a body lease was used after its reply was sent");
        if (bytes > 0) await this.budget.take(this, bytes);
    }

    /** Gives back every byte held; later holds fail. */
    release(): void {
        if (this.#released) return;
        this.#released = true;
        const bytes = this.bytes;
        this.bytes = 0;
        this.budget.give(bytes);
    }
}

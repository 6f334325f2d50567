/**
 * Leases in a bucket: an object that says who holds something (an ingester's `node_id`, a
 * partition being compacted) until when. Taken with a create-only write, renewed and released
 * with compare-and-swap writes, taken over with one once it expired or was released; so at most
 * one holder succeeds at each step, however many race.
 *
 * Expiry compares the holder's clock (written in the lease) with the taker's, with `SKEW_MS` of
 * slack: ingesters sharing a bucket are expected to run NTP. A lease is never the only guard of
 * the data: manifests are changed by compare-and-swap whoever holds what.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { Clock } from "../../src/clock.js";
import type { ObjectStore } from "../storage/object-store.js";

/** How far two ingesters' clocks may disagree. */
export const SKEW_MS = 5_000;

export interface LeaseBody {
    /** Who holds it: `node_id/incarnation`. */
    readonly holder: string;
    readonly host: string;
    readonly pid: number;
    /** The holder's clock, ms since the epoch. */
    readonly expiresMs: number;
    readonly released: boolean;
    /** Makes every write's bytes unique (and so its ETag). */
    readonly nonce: string;
}

export type LeaseOutcome = { readonly held: true; readonly lease: Lease } | { readonly held: false; readonly by: LeaseBody };

function encode(body: LeaseBody): Uint8Array {
    return Buffer.from(JSON.stringify(body), "utf8");
}

function decode(bytes: Uint8Array): LeaseBody | undefined {
    try {
        const body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) as Partial<LeaseBody>;
        return typeof body.holder === "string" && typeof body.expiresMs === "number" ? (body as LeaseBody) : undefined;
    } catch {
        return undefined;
    }
}

export class Lease {
    #etag: string;
    #lost = false;

    private constructor(
        readonly store: ObjectStore,
        readonly key: string,
        readonly holder: string,
        readonly ttlMs: number,
        readonly clock: Clock,
        etag: string,
    ) {
        this.#etag = etag;
    }

    static #body(holder: string, clock: Clock, ttlMs: number, released = false): LeaseBody {
        return { holder, host: hostname(), pid: process.pid, expiresMs: clock.now() + ttlMs, released, nonce: randomBytes(6).toString("hex") };
    }

    /**
     * Takes the lease if it is free, released, expired, or already held by `holder` (an earlier
     * process of the same incarnation, which the data-directory lock proves is gone).
     */
    // Invariant kept: `held: true` only after our create-only or compare-and-swap write landed.
    static async acquire(store: ObjectStore, key: string, holder: string, ttlMs: number, clock: Clock): Promise<LeaseOutcome> {
        for (let attempt = 0; attempt < 5; attempt++) {
            const body = Lease.#body(holder, clock, ttlMs);
            const bytes = encode(body);
            const created = await store.putIfAbsent(key, bytes);
            if (created.created) return { held: true, lease: new Lease(store, key, holder, ttlMs, clock, created.etag) };
            const stored = await store.get(key);
            if (stored === undefined) continue;
            const current = decode(stored.body);
            // The create-only write may have landed on an earlier attempt inside the store.
            if (current?.nonce === body.nonce) return { held: true, lease: new Lease(store, key, holder, ttlMs, clock, stored.etag) };
            const free = current === undefined || current.released || current.holder === holder || current.expiresMs + SKEW_MS < clock.now();
            if (!free) return { held: false, by: current };
            const taken = await store.putIfMatch(key, bytes, stored.etag);
            if (taken.replaced) return { held: true, lease: new Lease(store, key, holder, ttlMs, clock, taken.etag) };
        }
        const stored = await store.get(key);
        const by = stored === undefined ? undefined : decode(stored.body);
        return by === undefined ? { held: false, by: { holder: "unknown", host: "unknown", pid: 0, expiresMs: 0, released: false, nonce: "" } } : { held: false, by };
    }

    /** False once a renewal found the lease taken by someone else (it had expired). */
    get held(): boolean {
        return !this.#lost;
    }

    /** Extends the lease by its time to live; false when it was lost. */
    async renew(): Promise<boolean> {
        if (this.#lost) return false;
        const result = await this.store.putIfMatch(this.key, encode(Lease.#body(this.holder, this.clock, this.ttlMs)), this.#etag);
        if (result.replaced) this.#etag = result.etag;
        else this.#lost = true;
        return result.replaced;
    }

    /** Marks the lease released (a compare-and-swap: a lease someone else took meanwhile is left alone). */
    async release(): Promise<void> {
        if (this.#lost) return;
        this.#lost = true;
        await this.store.putIfMatch(this.key, encode(Lease.#body(this.holder, this.clock, 0, true)), this.#etag);
    }
}

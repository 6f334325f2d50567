/**
 * An in-process object store for tests: the conditions of S3 enforced exactly (create-only and
 * compare-and-swap are atomic, ETags are MD5s of the bytes as S3 makes them), listings in UTF-8
 * key order and in pages, and faults on demand: fail the next calls of an operation before or
 * after the write took effect, slow every call down, or hold a call at a hook.
 *
 * Several stores can share one `MemoryBucket` (three ingesters on one bucket, each with its own
 * faults); each may have its own prefix, as `S3ObjectStore` does.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
    type ObjectInfo,
    type ObjectStore,
    type ObjectStoreErrorContext,
    type ObjectStoreOperation,
    type PutIfAbsentResult,
    type PutIfMatchResult,
    type StoredObject,
    ObjectStoreDeniedError,
    ObjectStoreKeyError,
    ObjectStoreMisconfiguredError,
    ObjectStoreUnavailableError,
    bareEtag,
    childPrefix,
    compareKeys,
    keyProblem,
    md5Hex,
    normalizePrefix,
} from "./object-store.js";

interface Stored {
    readonly body: Uint8Array;
    readonly etag: string;
    readonly modifiedMs: number;
}

/** The objects themselves, by full key. Shared by every `MemoryObjectStore` given it. */
export class MemoryBucket {
    readonly #objects = new Map<string, Stored>();

    constructor(readonly name = "memory") {}

    /** Full keys in S3's order. */
    keys(): string[] {
        return [...this.#objects.keys()].sort(compareKeys);
    }

    /** A copy of the bytes under a full key, for assertions. */
    read(key: string): Uint8Array | undefined {
        const stored = this.#objects.get(key);
        return stored === undefined ? undefined : stored.body.slice();
    }

    get size(): number {
        return this.#objects.size;
    }

    /** @internal the store's view; tests use `keys` and `read`. */
    lookup(key: string): Stored | undefined {
        return this.#objects.get(key);
    }

    /** @internal */
    write(key: string, body: Uint8Array): Stored {
        const stored = { body: body.slice(), etag: md5Hex(body), modifiedMs: Date.now() };
        this.#objects.set(key, stored);
        return stored;
    }

    /** @internal */
    remove(key: string): void {
        this.#objects.delete(key);
    }
}

/**
 * `retryable`: a 503 SlowDown (`ObjectStoreUnavailableError`); `fatal`: a 403 AccessDenied
 * (`ObjectStoreDeniedError`); `misconfigured`: a 404 NoSuchBucket (`ObjectStoreMisconfiguredError`).
 */
export type InjectedError = "retryable" | "fatal" | "misconfigured";

export interface InjectedFault {
    readonly error: InjectedError;
    /**
     * `before` (default): the call fails and changes nothing. `after`: the write takes effect,
     * then the call fails, as a timeout after a successful PUT does (reads behave as `before`).
     */
    readonly when?: "before" | "after";
    /** How many consecutive calls of the operation fail (default 1). */
    readonly times?: number;
}

export interface MemoryObjectStoreOptions {
    /** Share one bucket between stores; default a new one. */
    readonly bucket?: MemoryBucket;
    /** Prepended to every key, normalized as `S3ObjectStore`'s prefix is (no leading `/`, one trailing `/`). */
    readonly prefix?: string;
    /** Keys per listing page (S3 returns at most 1,000). */
    readonly listPageSize?: number;
    /** Delay before every call (and every listing page), in ms. */
    readonly latencyMs?: number;
}

export const memoryObjectStoreDefaults = {
    prefix: "",
    listPageSize: 1000,
    latencyMs: 0,
} as const satisfies { [K in keyof Required<Omit<MemoryObjectStoreOptions, "bucket">>]: MemoryObjectStoreOptions[K] };

export interface MemoryCall {
    readonly operation: ObjectStoreOperation;
    readonly key: string | undefined;
}

interface PendingFault {
    readonly error: InjectedError;
    readonly when: "before" | "after";
}

export class MemoryObjectStore implements ObjectStore {
    readonly bucket: MemoryBucket;
    readonly location: string;
    /** Every call in the order it was made (a listing counts once). */
    readonly calls: MemoryCall[] = [];
    latencyMs: number;
    /** Awaited at the start of every call after the latency: a test can hold a call here, or kill a process. */
    onCall: ((call: MemoryCall) => Promise<void> | void) | undefined;
    readonly #prefix: string;
    readonly #listPageSize: number;
    readonly #faults = new Map<ObjectStoreOperation, PendingFault[]>();
    #failingAll: InjectedError | undefined;

    constructor(options: MemoryObjectStoreOptions = {}) {
        this.bucket = options.bucket ?? new MemoryBucket();
        this.#prefix = normalizePrefix(options.prefix ?? memoryObjectStoreDefaults.prefix);
        this.#listPageSize = options.listPageSize ?? memoryObjectStoreDefaults.listPageSize;
        this.latencyMs = options.latencyMs ?? memoryObjectStoreDefaults.latencyMs;
        this.location = `memory://${this.bucket.name}/${this.#prefix}`;
    }

    /** Makes the next `fault.times` calls of `operation` fail (queued after any already pending). */
    failNext(operation: ObjectStoreOperation, fault: InjectedFault): void {
        const pending = Array.from({ length: fault.times ?? 1 }, () => ({ error: fault.error, when: fault.when ?? "before" }));
        this.#faults.set(operation, [...(this.#faults.get(operation) ?? []), ...pending]);
    }

    /**
     * Makes every call fail until `clearFaults()`, as an unreachable endpoint, bad credentials or
     * a missing bucket would. Like S3, `head` answers a missing bucket as a missing key.
     */
    failAll(error: InjectedError): void {
        this.#failingAll = error;
    }

    clearFaults(): void {
        this.#faults.clear();
        this.#failingAll = undefined;
    }

    count(operation: ObjectStoreOperation): number {
        return this.calls.filter((call) => call.operation === operation).length;
    }

    // Invariant kept: the condition check and the write happen in one synchronous step, so racing writers see exactly one winner.
    async putIfAbsent(key: string, body: Uint8Array): Promise<PutIfAbsentResult> {
        const fault = await this.#enter("putIfAbsent", key);
        const full = this.#prefix + key;
        if (this.bucket.lookup(full) !== undefined) return this.#finish(fault, "putIfAbsent", key, { created: false });
        return this.#finish(fault, "putIfAbsent", key, { created: true, etag: this.bucket.write(full, body).etag });
    }

    // Invariant kept: the ETag comparison and the write happen in one synchronous step.
    async putIfMatch(key: string, body: Uint8Array, etag: string): Promise<PutIfMatchResult> {
        const fault = await this.#enter("putIfMatch", key);
        const full = this.#prefix + key;
        if (this.bucket.lookup(full)?.etag !== bareEtag(etag)) return this.#finish(fault, "putIfMatch", key, { replaced: false });
        return this.#finish(fault, "putIfMatch", key, { replaced: true, etag: this.bucket.write(full, body).etag });
    }

    async get(key: string): Promise<StoredObject | undefined> {
        await this.#enter("get", key, true);
        const stored = this.bucket.lookup(this.#prefix + key);
        return stored === undefined ? undefined : { ...this.#info(key, stored), body: stored.body.slice() };
    }

    async head(key: string): Promise<ObjectInfo | undefined> {
        try {
            await this.#enter("head", key, true);
        } catch (error) {
            if (error instanceof MissingBucketHead) return undefined;
            throw error;
        }
        const stored = this.bucket.lookup(this.#prefix + key);
        return stored === undefined ? undefined : this.#info(key, stored);
    }

    // Invariant kept: each page holds the keys after the previous page's last key as they are when the page is read, as S3's continuation does.
    async *list(prefix: string): AsyncIterable<ObjectInfo> {
        await this.#enter("list", prefix, true, true);
        let after: string | undefined;
        for (;;) {
            const page = this.#keysUnder(prefix)
                .filter((key) => after === undefined || compareKeys(key, after) > 0)
                .slice(0, this.#listPageSize);
            for (const key of page) {
                const stored = this.bucket.lookup(this.#prefix + key);
                if (stored !== undefined) yield this.#info(key, stored);
            }
            if (page.length < this.#listPageSize) return;
            after = page[page.length - 1];
            if (this.latencyMs > 0) await sleep(this.latencyMs);
        }
    }

    async *listPrefixes(prefix: string): AsyncIterable<string> {
        await this.#enter("listPrefixes", prefix, true, true);
        const seen = new Set<string>();
        for (const key of this.#keysUnder(prefix)) {
            const child = childPrefix(prefix, key);
            if (child !== undefined && !seen.has(child)) {
                seen.add(child);
                yield child;
            }
        }
    }

    async delete(key: string): Promise<void> {
        const fault = await this.#enter("delete", key);
        this.bucket.remove(this.#prefix + key);
        this.#finish(fault, "delete", key, undefined);
    }

    async deleteMany(keys: readonly string[]): Promise<void> {
        for (const key of keys) this.#checkKey("deleteMany", key, false);
        const fault = await this.#enter("deleteMany", undefined);
        for (const key of keys) this.bucket.remove(this.#prefix + key);
        this.#finish(fault, "deleteMany", undefined, undefined);
    }

    async check(): Promise<void> {
        await this.#enter("check", undefined, true);
    }

    expectedEtag(body: Uint8Array): string {
        return md5Hex(body);
    }

    #keysUnder(prefix: string): string[] {
        return this.bucket
            .keys()
            .filter((full) => full.startsWith(this.#prefix + prefix))
            .map((full) => full.slice(this.#prefix.length));
    }

    #info(key: string, stored: Stored): ObjectInfo {
        return { key, size: stored.body.byteLength, etag: stored.etag, modifiedMs: stored.modifiedMs };
    }

    #checkKey(operation: ObjectStoreOperation, key: string, isPrefix: boolean): void {
        const problem = keyProblem(key, Buffer.byteLength(this.#prefix + key), isPrefix);
        if (problem !== undefined) throw new ObjectStoreKeyError(this.location, { operation, key }, problem);
    }

    /** Validates, records, waits, and either throws a `before` fault or returns an `after` one for `#finish`. */
    async #enter(operation: ObjectStoreOperation, key: string | undefined, read = false, isPrefix = false): Promise<PendingFault | undefined> {
        if (key !== undefined) this.#checkKey(operation, key, isPrefix);
        const call = { operation, key };
        this.calls.push(call);
        if (this.latencyMs > 0) await sleep(this.latencyMs);
        await this.onCall?.(call);
        if (this.#failingAll !== undefined) {
            if (operation === "head" && this.#failingAll === "misconfigured") throw new MissingBucketHead();
            throw this.#error({ error: this.#failingAll, when: "before" }, operation, key);
        }
        const fault = this.#faults.get(operation)?.shift();
        if (fault === undefined) return undefined;
        if (fault.when === "before" || read) throw this.#error(fault, operation, key);
        return fault;
    }

    #finish<T>(fault: PendingFault | undefined, operation: ObjectStoreOperation, key: string | undefined, result: T): T {
        if (fault !== undefined) throw this.#error(fault, operation, key);
        return result;
    }

    #error(fault: PendingFault, operation: ObjectStoreOperation, key: string | undefined): Error {
        const detail = `injected ${fault.when === "after" ? "after the call took effect" : "fault"}`;
        const context = (status: number, reason: string): ObjectStoreErrorContext => ({ operation, key, status, reason });
        switch (fault.error) {
            case "retryable":
                return new ObjectStoreUnavailableError(this.location, context(503, "SlowDown"), detail);
            case "fatal":
                return new ObjectStoreDeniedError(this.location, context(403, "AccessDenied"), detail);
            case "misconfigured":
                return new ObjectStoreMisconfiguredError(this.location, context(404, "NoSuchBucket"), detail);
        }
    }
}

/** HEAD has no body: S3 answers a missing bucket with the same bare 404 as a missing key. */
class MissingBucketHead extends Error {}

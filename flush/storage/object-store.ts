/**
 * The seam between the lake and S3-compatible object storage (DESIGN.md §4 "Object storage").
 *
 * Every write is conditional: a key is created once (`putIfAbsent`, `If-None-Match: *`) or
 * replaced only from a known version (`putIfMatch`, `If-Match`), so a retried request can never
 * overwrite what another writer (or an earlier attempt of the same call) put there. There is no
 * blind overwrite on purpose.
 *
 * Outcomes a caller must handle:
 * - `{ created: false }` / `{ replaced: false }`: the server refused the condition (412). When the
 *   call was retried inside the store (a timeout or a 5xx first), the earlier attempt may be the
 *   one that wrote: compare what is stored with what you meant to write before concluding.
 * - a thrown `ObjectStoreError` with `retryable = true`: the write may or may not have taken
 *   effect. Re-read (`expectedEtag` tells whether the stored bytes are yours), or retry the same
 *   conditional call (it cannot apply twice).
 *
 * radosgw 16.2 answers most losers of racing `If-Match` writes with 500 (op status -125,
 * ECANCELED), not 412, and a loser may get 500 on every retry. `S3ObjectStore.putIfMatch` settles
 * a final 5xx/409 with a HEAD: our bytes there → replaced; another version → refused; the old
 * version still there → the error stands.
 * - a thrown `ObjectStoreError` with `retryable = false`: configuration or permission; retrying
 *   the same request will not help.
 *
 * ETags are opaque, unquoted strings. Equal bytes written twice usually get the same ETag (S3
 * and radosgw use the MD5 of a single-part body), so a compare-and-swap that writes the bytes
 * already stored leaves the ETag unchanged and a second writer holding that ETag still wins:
 * make every CAS body unique (a counter, a holder id, a nonce).
 *
 * Keys are relative to the store's prefix, `/`-separated, listed in UTF-8 byte order.
 */
import { createHash } from "node:crypto";
import { SluiceError } from "../../src/errors.js";

/** One object as a listing or a HEAD describes it. */
export interface ObjectInfo {
    /** Relative to the store's prefix. */
    readonly key: string;
    readonly size: number;
    readonly etag: string;
    /** The server's clock at the last write, in ms since the epoch (S3 rounds to seconds). */
    readonly modifiedMs: number;
}

export interface StoredObject extends ObjectInfo {
    readonly body: Uint8Array;
}

export type PutIfAbsentResult = { readonly created: true; readonly etag: string } | { readonly created: false };
export type PutIfMatchResult = { readonly replaced: true; readonly etag: string } | { readonly replaced: false };

export interface ObjectStore {
    /** Where the objects live, for logs and errors: `s3://bucket/prefix/`, never a credential. */
    readonly location: string;
    /** Create-only write (`If-None-Match: *`): `created: false` when the key already exists. */
    putIfAbsent(key: string, body: Uint8Array): Promise<PutIfAbsentResult>;
    /** Compare-and-swap (`If-Match`): `replaced: false` when the object is not at `etag` or is gone. */
    putIfMatch(key: string, body: Uint8Array, etag: string): Promise<PutIfMatchResult>;
    get(key: string): Promise<StoredObject | undefined>;
    head(key: string): Promise<ObjectInfo | undefined>;
    /** Every object whose key starts with `prefix`, in key order, page by page. */
    list(prefix: string): AsyncIterable<ObjectInfo>;
    /** The distinct next path levels under `prefix` (`a/b/` for `a/b/c` under `a/`), in key order. */
    listPrefixes(prefix: string): AsyncIterable<string>;
    /** Unconditional and idempotent: deleting a missing key succeeds. */
    delete(key: string): Promise<void>;
    /** Deletes every key (in batches); missing keys are not an error. */
    deleteMany(keys: readonly string[]): Promise<void>;
    /** Proves the bucket and prefix can be listed with these credentials (call it at start). */
    check(): Promise<void>;
    /**
     * The ETag this store's server gives `body` when its ETags are MD5-based (S3 without KMS
     * encryption, radosgw, MinIO; multipart bodies get S3's MD5-of-MD5s form). After
     * `created: false`, `head(key).etag === expectedEtag(body)` proves the same bytes are there
     * without a GET; a mismatch means other bytes, or a server with other ETags: then compare bytes.
     */
    expectedEtag(body: Uint8Array): string;
}

export const OBJECT_STORE_OPERATIONS = ["putIfAbsent", "putIfMatch", "get", "head", "list", "listPrefixes", "delete", "deleteMany", "check"] as const;
export type ObjectStoreOperation = (typeof OBJECT_STORE_OPERATIONS)[number];

/** What an error knows about the request that failed; nothing in it is a credential. */
export interface ObjectStoreErrorContext {
    readonly operation: ObjectStoreOperation;
    /** The key (or prefix) relative to the store, when the operation had one. */
    readonly key?: string | undefined;
    /** HTTP status, when a response arrived. */
    readonly status?: number | undefined;
    /** The S3 error code (`SlowDown`, `AccessDenied`) or the socket error (`ECONNREFUSED`). */
    readonly reason?: string | undefined;
    readonly requestId?: string | undefined;
}

/** Every failure of an object store call. The fields are safe to log; credentials never appear. */
export abstract class ObjectStoreError extends SluiceError {
    readonly operation: ObjectStoreOperation;
    readonly key: string | undefined;
    readonly status: number | undefined;
    readonly reason: string | undefined;
    readonly requestId: string | undefined;

    constructor(location: string, context: ObjectStoreErrorContext, detail?: string) {
        const target = context.key === undefined ? location : `${location}${context.key}`;
        const what = [context.status, context.reason].filter((part) => part !== undefined).join(" ");
        super(`object store ${context.operation} ${target} failed${what === "" ? "" : `: ${what}`}${detail === undefined ? "" : ` (${detail})`}`);
        this.operation = context.operation;
        this.key = context.key;
        this.status = context.status;
        this.reason = context.reason;
        this.requestId = context.requestId;
    }
}

/**
 * Worth retrying with backoff: a timeout, a refused or reset connection, throttling (429,
 * SlowDown), any 5xx, a 409 conflict between concurrent conditional writes. A write that failed
 * this way may have taken effect.
 */
export class ObjectStoreUnavailableError extends ObjectStoreError {
    readonly code = "object-store-unavailable";
    override readonly retryable = true;
}

/** 401/403 or no usable credentials: the access key, secret or policy is wrong. */
export class ObjectStoreDeniedError extends ObjectStoreError {
    readonly code = "object-store-denied";
}

/** The bucket does not exist, its name is invalid, or the region or endpoint is wrong. */
export class ObjectStoreMisconfiguredError extends ObjectStoreError {
    readonly code = "object-store-misconfigured";
}

/** Any other 4xx: the server refused this request as malformed (a body too large, a bad argument). */
export class ObjectStoreRejectedError extends ObjectStoreError {
    readonly code = "object-store-rejected";
}

/** A key or prefix the seam refuses before sending it (empty, `.`/`..` segments, control bytes, too long). */
export class ObjectStoreKeyError extends ObjectStoreError {
    readonly code = "object-store-bad-key";
}

/** S3's limit on a whole key, prefix included, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

// A control byte or an empty, `.` or `..` segment: HTTP stacks normalize or reject those paths.
const UNSAFE_KEY = /\p{Cc}|^\/|\/\/|(^|\/)\.{1,2}(\/|$)/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks a key (or, with `allowEmpty`, a listing prefix) and returns why it is refused, or
 * undefined. `fullKeyBytes` is the length with the store's prefix.
 */
export function keyProblem(key: string, fullKeyBytes: number, allowEmpty = false): string | undefined {
    if (key === "") return allowEmpty ? undefined : "empty key";
    if (UNSAFE_KEY.test(key)) return "a control byte, a leading '/', or an empty, '.' or '..' segment";
    if (fullKeyBytes > MAX_KEY_BYTES) return `${fullKeyBytes} bytes with the prefix, above S3's ${MAX_KEY_BYTES}`;
    if (LONE_SURROGATE.test(key)) return "a lone surrogate (not valid UTF-8)";
    return undefined;
}

/** Key order as S3 lists it: by UTF-8 bytes (JavaScript's `<` compares UTF-16 code units). */
export function compareKeys(a: string, b: string): number {
    return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function md5Hex(body: Uint8Array): string {
    return createHash("md5").update(body).digest("hex");
}

/** ETags arrive quoted in headers and sometimes bare in listings; the seam keeps them bare. */
export function bareEtag(etag: string): string {
    return etag.length >= 2 && etag.startsWith('"') && etag.endsWith('"') ? etag.slice(1, -1) : etag;
}

/** A store's key prefix: no leading `/`, one trailing `/`, or empty. */
export function normalizePrefix(prefix: string): string {
    const trimmed = prefix.replace(/^\/+/, "").replace(/\/+$/, "");
    return trimmed === "" ? "" : `${trimmed}/`;
}

/** The next path level of `key` under `prefix` (`a/b/` for `a/b/c` under `a/`), or undefined for a leaf. */
export function childPrefix(prefix: string, key: string): string | undefined {
    const slash = key.indexOf("/", prefix.length);
    return slash === -1 ? undefined : key.slice(0, slash + 1);
}

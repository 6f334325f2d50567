/**
 * What every `ObjectStore` must do, as plain async cases with node:assert, so the same suite runs
 * under vitest against `MemoryObjectStore` (test/object-store.test.ts) and from
 * `npm run e2e -- s3-store` against `S3ObjectStore` on a real radosgw.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import {
    type ObjectStore,
    type PutIfMatchResult,
    ObjectStoreDeniedError,
    ObjectStoreError,
    ObjectStoreKeyError,
    ObjectStoreMisconfiguredError,
    ObjectStoreUnavailableError,
    compareKeys,
} from "../../flush/storage/object-store.js";

export type BrokenKind = "missing-bucket" | "denied" | "unreachable";

export interface ConformanceFixture {
    /** A store over a fresh, empty namespace (its own prefix or bucket). */
    store(): Promise<ObjectStore>;
    /** A store that fails as the kind says, and the strings its errors must never contain. */
    broken(kind: BrokenKind): Promise<{ readonly store: ObjectStore; readonly secrets: readonly string[] }>;
    /** A body size that takes the store's large-object path (multipart for S3). */
    readonly largeBodyBytes: number;
}

export interface ConformanceCase {
    readonly name: string;
    /** Resolves with an optional note of what was observed (counts), printed by the e2e. */
    run(fixture: ConformanceFixture): Promise<string | undefined>;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
    const all: T[] = [];
    for await (const item of items) all.push(item);
    return all;
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
        while (next < items.length) await work(items[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

async function bodyOf(store: ObjectStore, key: string): Promise<string | undefined> {
    const object = await store.get(key);
    return object === undefined ? undefined : Buffer.from(object.body).toString();
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
    try {
        await promise;
    } catch (error) {
        return error;
    }
    assert.fail("expected the call to fail");
}

function assertNoSecrets(error: unknown, secrets: readonly string[]): void {
    const renderings = [String(error), inspect(error, { depth: 10 }), JSON.stringify(error), (error as Error).stack ?? ""];
    for (const secret of secrets) for (const rendering of renderings) assert.ok(!rendering.includes(secret), `a credential appears in the error: ${rendering.slice(0, 200)}`);
}

const RACERS = 10;
const ROUNDS = 5;

/** Keys that HTTP paths, URL encoders and Hive partitions make interesting. */
const AWKWARD_KEYS = [
    "db/cpu load/date=2024-01-01/hour=00/a b.parquet",
    "db/cpu+load/date=2024-01-01/hour=00/a+b.parquet",
    "db/cpu%2Fx/date=2024-01-01/hour=00/100%25.parquet",
    "db/mé/date=2024-01-01/hour=00/日本.parquet",
    "db/q?x&y=1#f/date=2024-01-01/hour=00/~!$'()*,;:@.parquet",
];

export const conformanceCases: readonly ConformanceCase[] = [
    {
        name: "putIfAbsent creates a key once; a second write is refused and changes nothing",
        async run(fixture) {
            const store = await fixture.store();
            const first = await store.putIfAbsent("a/one", text("first"));
            assert.equal(first.created, true);
            const again = await store.putIfAbsent("a/one", text("second"));
            assert.deepEqual(again, { created: false });
            const stored = await store.get("a/one");
            assert.ok(stored !== undefined && first.created);
            assert.equal(Buffer.from(stored.body).toString(), "first");
            assert.equal(stored.etag, first.etag);
            assert.equal(stored.size, 5);
            const head = await store.head("a/one");
            assert.deepEqual({ key: head?.key, size: head?.size, etag: head?.etag }, { key: "a/one", size: 5, etag: first.etag });
            assert.ok(!first.etag.includes('"'), "ETags are returned without quotes");
            assert.equal(store.expectedEtag(text("first")), first.etag);
            assert.notEqual(store.expectedEtag(text("second")), first.etag);
            return undefined;
        },
    },
    {
        name: `racing create-only writers: exactly one of ${RACERS} wins, and its bytes are stored`,
        async run(fixture) {
            const store = await fixture.store();
            for (let round = 0; round < ROUNDS; round++) {
                const key = `race/${round}`;
                const results = await Promise.all(Array.from({ length: RACERS }, (_, writer) => store.putIfAbsent(key, text(`writer ${writer}`))));
                const winners = results.flatMap((result, writer) => (result.created ? [writer] : []));
                assert.equal(winners.length, 1, `round ${round}: ${winners.length} writers created the key`);
                assert.equal(await bodyOf(store, key), `writer ${winners[0]!}`);
            }
            return `${ROUNDS} rounds, one winner each`;
        },
    },
    {
        name: "putIfMatch replaces only from the current ETag; a stale ETag or a missing key is refused",
        async run(fixture) {
            const store = await fixture.store();
            const created = await store.putIfAbsent("lease", text("v1"));
            assert.ok(created.created);
            const swapped = await store.putIfMatch("lease", text("v2"), created.etag);
            assert.ok(swapped.replaced);
            assert.notEqual(swapped.etag, created.etag);
            assert.equal(await bodyOf(store, "lease"), "v2");
            assert.equal((await store.head("lease"))?.etag, swapped.etag);
            assert.deepEqual(await store.putIfMatch("lease", text("v3"), created.etag), { replaced: false });
            assert.equal(await bodyOf(store, "lease"), "v2");
            assert.deepEqual(await store.putIfMatch("absent", text("v1"), created.etag), { replaced: false });
            assert.equal(await store.head("absent"), undefined);
            const quoted = await store.putIfMatch("lease", text("v4"), `"${swapped.etag}"`);
            assert.ok(quoted.replaced, "an ETag given with its quotes still matches");
            return undefined;
        },
    },
    {
        name: `racing compare-and-swap writers: exactly one of ${RACERS} wins from one ETag`,
        async run(fixture) {
            const store = await fixture.store();
            let refused = 0;
            let retryableErrors = 0;
            for (let round = 0; round < ROUNDS; round++) {
                const key = `cas/${round}`;
                const base = await store.putIfAbsent(key, text("base"));
                assert.ok(base.created);
                const settled = await Promise.allSettled(Array.from({ length: RACERS }, (_, writer) => store.putIfMatch(key, text(`writer ${writer}`), base.etag)));
                const winners: number[] = [];
                settled.forEach((outcome, writer) => {
                    if (outcome.status === "fulfilled") {
                        if (outcome.value.replaced) winners.push(writer);
                        else refused++;
                        return;
                    }
                    // radosgw 16.2 may answer a loser 500 (ECANCELED) even after retries: retryable, never a silent success.
                    assert.ok(outcome.reason instanceof ObjectStoreUnavailableError, `round ${round}: ${String(outcome.reason)}`);
                    retryableErrors++;
                });
                assert.equal(winners.length, 1, `round ${round}: ${winners.length} writers replaced the object`);
                assert.equal(await bodyOf(store, key), `writer ${winners[0]!}`);
            }
            return `${ROUNDS} rounds, one winner each; losers: ${refused} refused (412), ${retryableErrors} retryable errors`;
        },
    },
    {
        name: "equal bytes get equal ETags, so a CAS that rewrites the same bytes leaves the old ETag valid",
        async run(fixture) {
            const store = await fixture.store();
            const first = await store.putIfAbsent("same", text("holder=a n=1"));
            assert.ok(first.created);
            const rewrite: PutIfMatchResult = await store.putIfMatch("same", text("holder=a n=1"), first.etag);
            assert.ok(rewrite.replaced);
            assert.equal(rewrite.etag, first.etag);
            const stale = await store.putIfMatch("same", text("holder=b n=1"), first.etag);
            assert.ok(stale.replaced, "a writer still holding the old ETag wins: CAS bodies must be unique");
            return undefined;
        },
    },
    {
        name: "missing keys: get and head answer undefined, delete succeeds; a deleted key can be created again",
        async run(fixture) {
            const store = await fixture.store();
            assert.equal(await store.get("nothing/here"), undefined);
            assert.equal(await store.head("nothing/here"), undefined);
            await store.delete("nothing/here");
            assert.ok((await store.putIfAbsent("k", text("one"))).created);
            await store.delete("k");
            await store.delete("k");
            assert.equal(await store.get("k"), undefined);
            assert.deepEqual(await collect(store.list("")), []);
            assert.ok((await store.putIfAbsent("k", text("two"))).created);
            assert.equal(await bodyOf(store, "k"), "two");
            return undefined;
        },
    },
    {
        name: "list: only the keys under the prefix, in UTF-8 byte order, with the size and ETag HEAD reports",
        async run(fixture) {
            const store = await fixture.store();
            // U+FFFF sorts before U+10000 in UTF-8 but after it in JavaScript's UTF-16 order.
            const keys = ["a/b/1", "a/b/2", "a/b0", "a/bb/1", "a/c", "a", "ab/1", "b/1", "a/\uffff", "a/\u{10000}", ...AWKWARD_KEYS];
            await inParallel(keys, 8, async (key) => {
                assert.ok((await store.putIfAbsent(key, text(`body of ${key}`))).created, key);
            });
            const all = await collect(store.list(""));
            assert.deepEqual(
                all.map((info) => info.key),
                [...keys].sort(compareKeys),
            );
            for (const info of all) {
                const head = await store.head(info.key);
                assert.deepEqual({ size: info.size, etag: info.etag }, { size: head?.size, etag: head?.etag }, info.key);
                assert.equal(info.size, Buffer.byteLength(`body of ${info.key}`));
                assert.ok(info.modifiedMs > Date.UTC(2020, 0, 1), `${info.key}: modifiedMs ${info.modifiedMs}`);
            }
            assert.deepEqual(
                (await collect(store.list("a/b"))).map((info) => info.key),
                ["a/b/1", "a/b/2", "a/b0", "a/bb/1"],
            );
            assert.deepEqual(
                (await collect(store.list("a/b/"))).map((info) => info.key),
                ["a/b/1", "a/b/2"],
            );
            assert.deepEqual(await collect(store.list("zzz/")), []);
            for (const key of AWKWARD_KEYS) {
                assert.equal(await bodyOf(store, key), `body of ${key}`, key);
                assert.deepEqual(
                    (await collect(store.list(key))).map((info) => info.key),
                    [key],
                );
            }
            return undefined;
        },
    },
    {
        name: "listPrefixes: each next path level under a prefix once, in key order",
        async run(fixture) {
            const store = await fixture.store();
            const keys = [
                "db/m/date=2024-01-02/hour=00/f",
                "db/m/date=2024-01-01/hour=23/f",
                "db/m/date=2024-01-01/hour=01/f",
                "db/m/date=2024-01-01/hour=01/g",
                "db/m/loose",
                "db/n/x",
            ];
            await inParallel(keys, 8, async (key) => {
                await store.putIfAbsent(key, text("x"));
            });
            assert.deepEqual(await collect(store.listPrefixes("db/")), ["db/m/", "db/n/"]);
            assert.deepEqual(await collect(store.listPrefixes("db/m/")), ["db/m/date=2024-01-01/", "db/m/date=2024-01-02/"]);
            assert.deepEqual(await collect(store.listPrefixes("db/m/date=2024-01-01/")), ["db/m/date=2024-01-01/hour=01/", "db/m/date=2024-01-01/hour=23/"]);
            assert.deepEqual(await collect(store.listPrefixes("db/m/date=2024-01-01/hour=01/")), []);
            return undefined;
        },
    },
    {
        name: "list pages through 1,100 keys (S3 pages hold 1,000); deleteMany removes them all",
        async run(fixture) {
            const store = await fixture.store();
            const keys = Array.from({ length: 1100 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
            await inParallel(keys, 16, async (key) => {
                assert.ok((await store.putIfAbsent(key, text(key))).created);
            });
            await store.putIfAbsent("other/keep", text("keep"));
            const listed = (await collect(store.list("many/"))).map((info) => info.key);
            assert.equal(listed.length, keys.length);
            assert.deepEqual(listed, keys);
            await store.deleteMany([...keys, "many/never-written"]);
            assert.deepEqual(await collect(store.list("many/")), []);
            assert.deepEqual(
                (await collect(store.list(""))).map((info) => info.key),
                ["other/keep"],
            );
            return `${keys.length} keys listed in order and deleted`;
        },
    },
    {
        name: "a large body (multipart on S3) is created once, read back intact, and refused the second time",
        async run(fixture) {
            const store = await fixture.store();
            const body = randomBytes(fixture.largeBodyBytes);
            const started = performance.now();
            const created = await store.putIfAbsent("big/file.parquet", body);
            const uploadMs = performance.now() - started;
            assert.ok(created.created);
            assert.equal(store.expectedEtag(body), created.etag, "the multipart ETag is the one the store predicts");
            const head = await store.head("big/file.parquet");
            assert.equal(head?.size, body.byteLength);
            assert.equal(head.etag, created.etag);
            const stored = await store.get("big/file.parquet");
            assert.ok(stored !== undefined && Buffer.from(stored.body).equals(body), "the bytes read back differ");
            assert.equal(stored.etag, created.etag);
            assert.deepEqual(await store.putIfAbsent("big/file.parquet", randomBytes(fixture.largeBodyBytes)), { created: false });
            assert.ok(Buffer.from((await store.get("big/file.parquet"))?.body ?? []).equals(body), "the refused upload changed the object");
            const listed = await collect(store.list("big/"));
            assert.deepEqual(
                listed.map((info) => [info.key, info.size, info.etag]),
                [["big/file.parquet", body.byteLength, created.etag]],
            );
            return `${(body.byteLength / 1024 / 1024).toFixed(1)} MiB, ETag ${created.etag}, uploaded in ${uploadMs.toFixed(0)} ms`;
        },
    },
    {
        name: "bad keys are refused before any request, with ObjectStoreKeyError",
        async run(fixture) {
            const store = await fixture.store();
            const bad = ["", "/abs", "a//b", "a/./b", "a/../b", "..", "tab\there", "x".repeat(1025), "lone\ud800"];
            for (const key of bad) {
                const error = await rejection(store.putIfAbsent(key, text("x")));
                assert.ok(error instanceof ObjectStoreKeyError, `${JSON.stringify(key)}: ${String(error)}`);
                assert.equal(error.retryable, false);
            }
            assert.ok((await rejection(store.get("a/../b"))) instanceof ObjectStoreKeyError);
            assert.ok((await rejection(store.deleteMany(["ok", "a//b"]))) instanceof ObjectStoreKeyError);
            await store.check();
            assert.deepEqual(await collect(store.list("")), []);
            return undefined;
        },
    },
    {
        name: "a missing bucket: check, writes, reads and listings fail non-retryable (ObjectStoreMisconfiguredError)",
        async run(fixture) {
            const { store, secrets } = await fixture.broken("missing-bucket");
            const failures = [
                await rejection(store.check()),
                await rejection(store.putIfAbsent("k", text("x"))),
                await rejection(store.putIfMatch("k", text("x"), "0123")),
                await rejection(store.get("k")),
                await rejection(collect(store.list(""))),
            ];
            for (const error of failures) {
                assert.ok(error instanceof ObjectStoreMisconfiguredError, String(error));
                assert.equal(error.code, "object-store-misconfigured");
                assert.equal(error.retryable, false);
                assertNoSecrets(error, secrets);
            }
            return `e.g. ${String(failures[1])}`;
        },
    },
    {
        name: "refused credentials: non-retryable ObjectStoreDeniedError that names no credential",
        async run(fixture) {
            const { store, secrets } = await fixture.broken("denied");
            const failures = [await rejection(store.check()), await rejection(store.putIfAbsent("k", text("x"))), await rejection(store.get("k"))];
            for (const error of failures) {
                assert.ok(error instanceof ObjectStoreDeniedError, String(error));
                assert.equal(error.retryable, false);
                assert.ok(error.status === 403 || error.status === 401, `status ${error.status}`);
                assertNoSecrets(error, secrets);
            }
            return `e.g. ${String(failures[1])}`;
        },
    },
    {
        name: "an unreachable endpoint: retryable ObjectStoreUnavailableError",
        async run(fixture) {
            const { store, secrets } = await fixture.broken("unreachable");
            const failures = [await rejection(store.check()), await rejection(store.putIfAbsent("k", text("x"))), await rejection(store.head("k"))];
            for (const error of failures) {
                assert.ok(error instanceof ObjectStoreUnavailableError, String(error));
                assert.ok(error instanceof ObjectStoreError);
                assert.equal(error.code, "object-store-unavailable");
                assert.equal(error.retryable, true);
                assertNoSecrets(error, secrets);
            }
            return `e.g. ${String(failures[1])}`;
        },
    },
];

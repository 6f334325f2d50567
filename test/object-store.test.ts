import { describe, expect, it } from "vitest";
import { MemoryBucket, MemoryObjectStore } from "../flush/storage/memory-store.js";
import { ObjectStoreDeniedError, ObjectStoreMisconfiguredError, ObjectStoreUnavailableError } from "../flush/storage/object-store.js";
import { type ConformanceFixture, collect, conformanceCases } from "./helpers/object-store-conformance.js";

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

const memoryFixture: ConformanceFixture = {
    store: async () => new MemoryObjectStore({ prefix: "lake/" }),
    broken: async (kind) => {
        const store = new MemoryObjectStore();
        store.failAll(kind === "missing-bucket" ? "misconfigured" : kind === "denied" ? "fatal" : "retryable");
        return { store, secrets: [] };
    },
    largeBodyBytes: 12 * 1024 * 1024 + 123,
};

describe("object store conformance: MemoryObjectStore", () => {
    for (const conformance of conformanceCases) it(conformance.name, () => conformance.run(memoryFixture), 60_000);
});

describe("MemoryObjectStore faults and seams", () => {
    it("a fault `before` fails the next calls of one operation and changes nothing", async () => {
        const store = new MemoryObjectStore();
        store.failNext("putIfAbsent", { error: "retryable", times: 2 });
        const first = store.putIfAbsent("k", text("x"));
        await expect(first).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        await expect(first).rejects.toMatchObject({ retryable: true, status: 503, reason: "SlowDown", operation: "putIfAbsent", key: "k" });
        await expect(store.putIfAbsent("k", text("x"))).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        expect(store.bucket.size).toBe(0);
        expect(await store.get("k")).toBeUndefined();
        expect(await store.putIfAbsent("k", text("x"))).toMatchObject({ created: true });
        expect(store.count("putIfAbsent")).toBe(3);
    });

    it("a fault `after` lets the write take effect and then fails, as a timeout after a successful PUT", async () => {
        const store = new MemoryObjectStore();
        store.failNext("putIfAbsent", { error: "retryable", when: "after" });
        await expect(store.putIfAbsent("seg/1", text("bytes"))).rejects.toMatchObject({ retryable: true, message: expect.stringContaining("after the call took effect") });
        expect(Buffer.from(store.bucket.read("seg/1") ?? []).toString()).toBe("bytes");
        // The caller's retry of the same create-only write is refused: it must verify, not write twice.
        expect(await store.putIfAbsent("seg/1", text("bytes"))).toEqual({ created: false });

        const lease = await store.get("seg/1");
        store.failNext("putIfMatch", { error: "retryable", when: "after" });
        await expect(store.putIfMatch("seg/1", text("renewed"), lease?.etag ?? "")).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        expect(Buffer.from(store.bucket.read("seg/1") ?? []).toString()).toBe("renewed");
        expect(await store.putIfMatch("seg/1", text("renewed"), lease?.etag ?? "")).toEqual({ replaced: false });

        store.failNext("delete", { error: "retryable", when: "after" });
        await expect(store.delete("seg/1")).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        expect(store.bucket.size).toBe(0);
    });

    it("fatal and misconfigured faults are typed and not retryable; reads fail before reading", async () => {
        const store = new MemoryObjectStore();
        await store.putIfAbsent("k", text("x"));
        store.failNext("get", { error: "fatal", when: "after" });
        store.failNext("list", { error: "misconfigured" });
        const denied = store.get("k");
        await expect(denied).rejects.toBeInstanceOf(ObjectStoreDeniedError);
        await expect(denied).rejects.toMatchObject({ retryable: false, code: "object-store-denied", status: 403 });
        await expect(collect(store.list(""))).rejects.toBeInstanceOf(ObjectStoreMisconfiguredError);
        expect((await collect(store.list(""))).map((info) => info.key)).toEqual(["k"]);
    });

    it("failAll fails every call until clearFaults, and HEAD of a missing bucket answers undefined as S3's does", async () => {
        const store = new MemoryObjectStore();
        await store.putIfAbsent("k", text("x"));
        store.failAll("misconfigured");
        await expect(store.check()).rejects.toBeInstanceOf(ObjectStoreMisconfiguredError);
        expect(await store.head("k")).toBeUndefined();
        store.failAll("retryable");
        await expect(store.head("k")).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        store.clearFaults();
        expect(await store.head("k")).toMatchObject({ key: "k", size: 1 });
    });

    it("latency delays every call; onCall can hold a call while others proceed", async () => {
        const store = new MemoryObjectStore({ latencyMs: 30 });
        const started = performance.now();
        await store.putIfAbsent("k", text("x"));
        expect(performance.now() - started).toBeGreaterThanOrEqual(25);
        store.latencyMs = 0;

        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => (release = resolve));
        store.onCall = (call) => (call.operation === "putIfAbsent" && call.key === "slow" ? held : undefined);
        const slow = store.putIfAbsent("slow", text("late"));
        expect(await store.putIfAbsent("fast", text("early"))).toMatchObject({ created: true });
        expect(store.bucket.keys()).toEqual(["fast", "k"]);
        release();
        expect(await slow).toMatchObject({ created: true });
        expect(store.calls.map((call) => `${call.operation} ${call.key ?? ""}`)).toEqual(["putIfAbsent k", "putIfAbsent slow", "putIfAbsent fast"]);
    });

    it("stores sharing a bucket see each other's writes under their own prefixes, with their own faults", async () => {
        const bucket = new MemoryBucket("shared");
        const a = new MemoryObjectStore({ bucket, prefix: "lake/" });
        const b = new MemoryObjectStore({ bucket, prefix: "lake/" });
        const other = new MemoryObjectStore({ bucket, prefix: "/other" });
        expect(a.location).toBe("memory://shared/lake/");
        b.failNext("putIfAbsent", { error: "retryable" });
        expect(await a.putIfAbsent("m/node-a.parquet", text("a"))).toMatchObject({ created: true });
        await expect(b.putIfAbsent("m/node-b.parquet", text("b"))).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        expect(await b.putIfAbsent("m/node-a.parquet", text("b"))).toEqual({ created: false });
        expect(await other.putIfAbsent("m/node-a.parquet", text("o"))).toMatchObject({ created: true });
        expect((await collect(b.list("m/"))).map((info) => info.key)).toEqual(["m/node-a.parquet"]);
        expect(bucket.keys()).toEqual(["lake/m/node-a.parquet", "other/m/node-a.parquet"]);
    });

    it("keeps its own copy of bodies: changing a buffer after put or after get changes nothing stored", async () => {
        const store = new MemoryObjectStore();
        const body = text("original");
        await store.putIfAbsent("k", body);
        body.fill(0);
        const read = await store.get("k");
        read?.body.fill(0);
        expect(Buffer.from((await store.get("k"))?.body ?? []).toString()).toBe("original");
    });

    it("lists page by page: a key written behind the cursor is missed, one ahead is seen, as with S3 continuation", async () => {
        const store = new MemoryObjectStore({ listPageSize: 2 });
        for (const key of ["b", "d", "f", "h"]) await store.putIfAbsent(key, text(key));
        const seen: string[] = [];
        for await (const info of store.list("")) {
            seen.push(info.key);
            if (info.key === "d") {
                await store.putIfAbsent("a", text("a"));
                await store.putIfAbsent("g", text("g"));
            }
        }
        expect(seen).toEqual(["b", "d", "f", "g", "h"]);
    });
});

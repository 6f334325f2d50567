/**
 * The in-process S3 test server (test/helpers/s3-server.ts): the object-store conformance suite
 * through `S3ObjectStore` and the real AWS SDK, then what the suite does not reach: listing pages
 * with delimiters, DeleteObjects, multipart uploads and their create-only race, the wire format,
 * faults, clients that die mid-request, and the CLI.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import {
    AbortMultipartUploadCommand,
    CompleteMultipartUploadCommand,
    CreateMultipartUploadCommand,
    DeleteObjectsCommand,
    ListObjectsV2Command,
    S3Client,
    UploadPartCommand,
} from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../flush/storage/memory-store.js";
import { ObjectStoreUnavailableError, md5Hex } from "../flush/storage/object-store.js";
import { S3ObjectStore, type S3ObjectStoreOptions, multipartEtag } from "../flush/storage/s3-store.js";
import { lakeSettings } from "../src/config/components.js";
import { loadConfig } from "../src/config/load.js";
import { type ConformanceFixture, collect, conformanceCases } from "./helpers/object-store-conformance.js";
import { INTERNAL_ERROR, S3Server, SLOW_DOWN } from "./helpers/s3-server.js";

// The SDK warns once per process that releases after January 2027 need Node 22; not this test's subject.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const MiB = 1024 * 1024;
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** Stores and clients opened by a test, destroyed after it. */
const opened: { destroy(): void }[] = [];
function track<T extends { destroy(): void }>(client: T): T {
    opened.push(client);
    return client;
}
function destroyOpened(): void {
    for (const client of opened.splice(0)) client.destroy();
}

/** An endpoint nothing listens on: a server started and closed. */
async function deadEndpoint(): Promise<string> {
    const gone = await S3Server.start();
    await gone.close();
    return gone.endpoint;
}

describe("object store conformance: S3ObjectStore on the in-process S3 server", () => {
    const ACCEPTED_KEY = "CONFORMANCEKEY";
    let server: S3Server;
    let unreachable: string;
    let stores = 0;

    beforeAll(async () => {
        server = await S3Server.start({ accessKeyIds: [ACCEPTED_KEY] });
        unreachable = await deadEndpoint();
    });
    afterEach(destroyOpened);
    afterAll(async () => {
        await server.close();
    });

    const open = (options: Partial<S3ObjectStoreOptions>): S3ObjectStore => track(new S3ObjectStore({ ...server.storeOptions(), ...options }));
    const secrets = (): string[] => [server.credentials.accessKeyId, server.credentials.secretAccessKey];
    const fixture: ConformanceFixture = {
        // S3's smallest part size as the threshold, so the large case goes through three parts.
        store: async () => open({ prefix: `conformance/${stores++}`, multipartThresholdBytes: 5 * MiB, multipartPartBytes: 5 * MiB }),
        broken: async (kind) => {
            switch (kind) {
                case "missing-bucket":
                    return { store: open({ bucket: `${server.bucket.name}-missing` }), secrets: secrets() };
                case "denied": {
                    const wrong = { accessKeyId: "AKIDNOTACCEPTED", secretAccessKey: randomBytes(24).toString("base64url") };
                    return { store: open({ credentials: wrong }), secrets: [...secrets(), wrong.accessKeyId, wrong.secretAccessKey] };
                }
                case "unreachable":
                    return { store: open({ endpoint: unreachable, maxAttempts: 1 }), secrets: secrets() };
            }
        },
        largeBodyBytes: 12 * MiB + 123,
    };

    for (const conformance of conformanceCases) it(conformance.name, () => conformance.run(fixture), 60_000);
});

/** A server per test, a store factory on it, and everything closed afterwards. */
function perTest(options: Parameters<typeof S3Server.start>[0] = {}) {
    const context = {} as { server: S3Server };
    beforeEach(async () => {
        context.server = await S3Server.start(options);
    });
    afterEach(async () => {
        destroyOpened();
        await context.server.close();
    });
    return {
        get server() {
            return context.server;
        },
        store: (options: Partial<S3ObjectStoreOptions> = {}): S3ObjectStore => track(new S3ObjectStore({ ...context.server.storeOptions(), maxAttempts: 1, ...options })),
        client: (): S3Client => {
            const { endpoint, region, credentials } = context.server;
            return track(new S3Client({ endpoint, region, credentials, forcePathStyle: true, maxAttempts: 1 }));
        },
    };
}

/** What a failed SDK call reports: status and S3 code. */
async function sdkFailure(send: Promise<unknown>): Promise<{ status: number | undefined; code: string | undefined }> {
    try {
        await send;
    } catch (error) {
        const shape = error as { $metadata?: { httpStatusCode?: number }; Code?: string; name?: string };
        return { status: shape.$metadata?.httpStatusCode, code: shape.Code ?? shape.name };
    }
    throw new Error("expected the call to fail");
}

/** A request with a SigV4-shaped Authorization header (the server reads the access key id, never the signature). */
async function raw(
    server: S3Server,
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: Uint8Array,
): Promise<{ status: number; headers: Headers; body: string }> {
    const authorization = "AWS4-HMAC-SHA256 Credential=RAWCLIENT/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
    const response = await fetch(`${server.endpoint}${path}`, { method, headers: { authorization, ...headers }, ...(body === undefined ? {} : { body }) });
    return { status: response.status, headers: response.headers, body: await response.text() };
}

const xmlCode = (body: string): string | undefined => /<Code>([^<]*)<\/Code>/.exec(body)?.[1];

describe("S3 test server: the wire", () => {
    const s3 = perTest();

    it("PutObject with If-None-Match: * and If-Match, with S3's statuses, quoted MD5 ETags and XML errors", async () => {
        const { server } = s3;
        const created = await raw(server, "PUT", "/lake/k", { "if-none-match": "*" }, text("one"));
        expect(created.status).toBe(200);
        expect(created.headers.get("etag")).toBe(`"${md5Hex(text("one"))}"`);
        const refused = await raw(server, "PUT", "/lake/k", { "if-none-match": "*" }, text("two"));
        expect(refused.status).toBe(412);
        expect(refused.headers.get("content-type")).toBe("application/xml");
        expect(xmlCode(refused.body)).toBe("PreconditionFailed");
        expect(refused.body).toContain(`<RequestId>${refused.headers.get("x-amz-request-id") ?? "missing"}</RequestId>`);
        expect(refused.body).toMatch(/<Message>[^<]+<\/Message>/);

        const stale = await raw(server, "PUT", "/lake/k", { "if-match": `"${md5Hex(text("other"))}"` }, text("three"));
        expect([stale.status, xmlCode(stale.body)]).toEqual([412, "PreconditionFailed"]);
        const missing = await raw(server, "PUT", "/lake/absent", { "if-match": md5Hex(text("one")) }, text("x"));
        expect([missing.status, xmlCode(missing.body)]).toEqual([404, "NoSuchKey"]);
        const swapped = await raw(server, "PUT", "/lake/k", { "if-match": md5Hex(text("one")) }, text("four"));
        expect(swapped.status).toBe(200);
        expect(Buffer.from(server.bucket.read("k") ?? []).toString()).toBe("four");
        expect(server.bucket.keys()).toEqual(["k"]);

        const plain = await raw(server, "PUT", "/lake/k", {}, text("five"));
        expect(plain.status).toBe(200);
        expect(Buffer.from(server.bucket.read("k") ?? []).toString()).toBe("five");
    });

    it("GetObject and HeadObject: bytes, Content-Length, ETag, Last-Modified; a missing key is 404, bare for HEAD", async () => {
        const { server } = s3;
        await raw(server, "PUT", "/lake/dir/f%20g", {}, text("hello"));
        const got = await raw(server, "GET", "/lake/dir/f%20g");
        expect(got.status).toBe(200);
        expect(got.body).toBe("hello");
        expect(got.headers.get("content-length")).toBe("5");
        expect(got.headers.get("etag")).toBe(`"${md5Hex(text("hello"))}"`);
        const modifiedMs = server.bucket.lookup("dir/f g")?.modifiedMs ?? 0;
        expect(Date.parse(got.headers.get("last-modified") ?? "")).toBe(Math.floor(modifiedMs / 1000) * 1000);
        const head = await raw(server, "HEAD", "/lake/dir/f%20g");
        expect([head.status, head.headers.get("content-length"), head.body]).toEqual([200, "5", ""]);
        expect((await raw(server, "GET", "/lake/dir/f%20g", { "if-none-match": md5Hex(text("hello")) })).status).toBe(304);
        expect((await raw(server, "GET", "/lake/dir/f%20g", { "if-match": '"0000"' })).status).toBe(412);

        const missing = await raw(server, "GET", "/lake/nope");
        expect([missing.status, xmlCode(missing.body)]).toEqual([404, "NoSuchKey"]);
        expect(missing.body).toContain("<Key>nope</Key>");
        const headMissing = await raw(server, "HEAD", "/lake/nope");
        expect([headMissing.status, headMissing.body]).toEqual([404, ""]);
        expect((await raw(server, "DELETE", "/lake/dir/f%20g")).status).toBe(204);
        expect((await raw(server, "DELETE", "/lake/dir/f%20g")).status).toBe(204);
        expect(server.bucket.size).toBe(0);
    });

    it("a body that does not match its Content-MD5 or x-amz-content-sha256 is refused and nothing is stored", async () => {
        const { server } = s3;
        const wrongMd5 = await raw(server, "PUT", "/lake/k", { "content-md5": createHash("md5").update("other").digest("base64") }, text("body"));
        expect([wrongMd5.status, xmlCode(wrongMd5.body)]).toEqual([400, "BadDigest"]);
        const wrongSha = await raw(server, "PUT", "/lake/k", { "x-amz-content-sha256": createHash("sha256").update("other").digest("hex") }, text("body"));
        expect([wrongSha.status, xmlCode(wrongSha.body)]).toEqual([400, "XAmzContentSHA256Mismatch"]);
        expect(server.bucket.size).toBe(0);
        const right = await raw(server, "PUT", "/lake/k", { "content-md5": createHash("md5").update("body").digest("base64") }, text("body"));
        expect(right.status).toBe(200);
    });

    it("refuses what it does not implement (501), anonymous requests (403) and other buckets (404 NoSuchBucket)", async () => {
        const { server } = s3;
        await raw(server, "PUT", "/lake/k", {}, text("0123456789"));
        for (const [method, path, headers] of [
            ["GET", "/lake/k", { range: "bytes=0-3" }],
            ["GET", "/lake/k?acl", {}],
            ["GET", "/lake", {}],
            ["GET", "/lake?list-type=2&encoding-type=url", {}],
            ["PUT", "/lake/copy", { "x-amz-copy-source": "/lake/k" }],
            ["GET", "/", {}],
        ] as const) {
            const answer = await raw(server, method, path, headers);
            expect([answer.status, xmlCode(answer.body)], `${method} ${path}`).toEqual([501, "NotImplemented"]);
        }
        const anonymous = await fetch(`${server.endpoint}/lake/k`);
        expect([anonymous.status, xmlCode(await anonymous.text())]).toEqual([403, "AccessDenied"]);
        const other = await raw(server, "GET", "/other/k");
        expect([other.status, xmlCode(other.body)]).toEqual([404, "NoSuchBucket"]);
        expect((await raw(server, "HEAD", "/lake")).status).toBe(200);
        expect((await raw(server, "HEAD", "/other")).status).toBe(404);
        expect(server.bucket.keys()).toEqual(["k"]);
    });

    it("a client that dies in the middle of its body writes nothing", async () => {
        const { server } = s3;
        const socket = connect(Number(new URL(server.endpoint).port), "127.0.0.1");
        await once(socket, "connect");
        socket.write(
            "PUT /lake/partial HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=DYING/20260101/us-east-1/s3/aws4_request\r\nContent-Length: 1000\r\n\r\n0123456789",
        );
        await expect.poll(() => server.requests.length).toBe(1);
        socket.destroy();
        // That body can never be complete now: whenever the server notices, it must store nothing.
        expect((await raw(server, "HEAD", "/lake/partial")).status).toBe(404);
        expect(server.bucket.size).toBe(0);
        expect(server.requests[0]?.status).toBe(0);
    });

    it("If-Match on a missing key answers 412 with ifMatchMissing = PreconditionFailed (radosgw's way); the store reads both as refused", async () => {
        const radosgwLike = await S3Server.start({ ifMatchMissing: "PreconditionFailed" });
        try {
            const missing = await raw(radosgwLike, "PUT", "/lake/absent", { "if-match": "0123" }, text("x"));
            expect([missing.status, xmlCode(missing.body)]).toEqual([412, "PreconditionFailed"]);
            for (const server of [radosgwLike, s3.server]) {
                const store = track(new S3ObjectStore({ ...server.storeOptions(), maxAttempts: 1 }));
                expect(await store.putIfMatch("absent", text("x"), "0123")).toEqual({ replaced: false });
                expect(server.bucket.size).toBe(0);
            }
        } finally {
            await radosgwLike.close();
        }
    });
});

describe("S3 test server: ListObjectsV2", () => {
    const s3 = perTest();
    const KEYS = ["a/1", "a/2", "b/x/1", "b/x/2", "b/y", "c", "d/1", "d/2/3", "e", "é/1", "\u{10000}"];

    beforeEach(() => {
        for (const key of KEYS) s3.server.bucket.write(key, text(key));
    });

    interface Listed {
        readonly contents: string[];
        readonly prefixes: string[];
        readonly keyCount: number | undefined;
        readonly truncated: boolean | undefined;
        readonly token: string | undefined;
    }
    const listOnce = async (
        client: S3Client,
        input: { Prefix?: string; Delimiter?: string; MaxKeys?: number; ContinuationToken?: string; StartAfter?: string },
    ): Promise<Listed> => {
        const page = await client.send(new ListObjectsV2Command({ Bucket: "lake", ...input }));
        return {
            contents: (page.Contents ?? []).map((object) => object.Key ?? ""),
            prefixes: (page.CommonPrefixes ?? []).map((common) => common.Prefix ?? ""),
            keyCount: page.KeyCount,
            truncated: page.IsTruncated,
            token: page.NextContinuationToken,
        };
    };
    /** Every page until the end: keys and common prefixes in the order they came. */
    const listAll = async (client: S3Client, input: { Prefix?: string; Delimiter?: string; MaxKeys?: number; StartAfter?: string }): Promise<string[]> => {
        const entries: string[] = [];
        let token: string | undefined;
        for (let pages = 0; pages < 100; pages++) {
            const page = await listOnce(client, { ...input, ...(token === undefined ? {} : { ContinuationToken: token }) });
            expect(page.keyCount).toBe(page.contents.length + page.prefixes.length);
            entries.push(...page.contents, ...page.prefixes);
            if (page.truncated !== true) return entries.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
            token = page.token;
            expect(token).toBeDefined();
        }
        throw new Error("more than 100 pages");
    };

    it("a delimiter rolls keys up into common prefixes that count against max-keys, and pages resume after them", async () => {
        const client = s3.client();
        const first = await listOnce(client, { Delimiter: "/", MaxKeys: 2 });
        expect(first).toMatchObject({ contents: [], prefixes: ["a/", "b/"], keyCount: 2, truncated: true });
        const second = await listOnce(client, { Delimiter: "/", MaxKeys: 2, ContinuationToken: first.token ?? "" });
        expect(second).toMatchObject({ contents: ["c"], prefixes: ["d/"], keyCount: 2, truncated: true });
        const third = await listOnce(client, { Delimiter: "/", MaxKeys: 2, ContinuationToken: second.token ?? "" });
        expect(third).toMatchObject({ contents: ["e"], prefixes: ["é/"], keyCount: 2, truncated: true });
        const last = await listOnce(client, { Delimiter: "/", MaxKeys: 2, ContinuationToken: third.token ?? "" });
        expect(last).toMatchObject({ contents: ["\u{10000}"], prefixes: [], keyCount: 1, truncated: false, token: undefined });

        expect(await listOnce(client, { Prefix: "b/", Delimiter: "/" })).toMatchObject({ contents: ["b/y"], prefixes: ["b/x/"], truncated: false });
        expect(await listOnce(client, { Prefix: "d", Delimiter: "/" })).toMatchObject({ contents: [], prefixes: ["d/"] });
        expect(await listOnce(client, { StartAfter: "b/x/1", MaxKeys: 3 })).toMatchObject({ contents: ["b/x/2", "b/y", "c"], truncated: true });
        expect(await listOnce(client, { Prefix: "b/", StartAfter: "b/x/9", Delimiter: "/" })).toMatchObject({ contents: ["b/y"], prefixes: [] });
    });

    it("for every page size, prefix and delimiter the pages add up to the one-page listing", async () => {
        const client = s3.client();
        const expected = new Map<string, string[]>([
            ["|", KEYS],
            ["|/", ["a/", "b/", "c", "d/", "e", "é/", "\u{10000}"]],
            ["b/|", ["b/x/1", "b/x/2", "b/y"]],
            ["b/|/", ["b/x/", "b/y"]],
            ["d/|/", ["d/1", "d/2/"]],
            ["z|/", []],
        ]);
        for (const [query, entries] of expected) {
            const [prefix = "", delimiter = ""] = query.split("|");
            const input = { Prefix: prefix, ...(delimiter === "" ? {} : { Delimiter: delimiter }) };
            expect(await listAll(client, input), query).toEqual(entries);
            for (let size = 1; size <= 4; size++) expect(await listAll(client, { ...input, MaxKeys: size }), `${query} by ${size}`).toEqual(entries);
        }
    });

    it("a page resumes after the last key it returned, as the bucket is then: keys added behind it are not seen, keys ahead are", async () => {
        const client = s3.client();
        const first = await listOnce(client, { Prefix: "b/", MaxKeys: 2 });
        expect(first.contents).toEqual(["b/x/1", "b/x/2"]);
        s3.server.bucket.write("b/a", text("behind"));
        s3.server.bucket.write("b/z", text("ahead"));
        s3.server.bucket.remove("b/y");
        expect(await listOnce(client, { Prefix: "b/", MaxKeys: 2, ContinuationToken: first.token ?? "" })).toMatchObject({ contents: ["b/z"], truncated: false });
    });

    it("a bad continuation token or max-keys is 400 InvalidArgument", async () => {
        const client = s3.client();
        expect(await sdkFailure(listOnce(client, { ContinuationToken: "not-a-token" }))).toEqual({ status: 400, code: "InvalidArgument" });
        const answer = await raw(s3.server, "GET", "/lake?list-type=2&max-keys=lots");
        expect([answer.status, xmlCode(answer.body)]).toEqual([400, "InvalidArgument"]);
    });

    it("S3ObjectStore pages through small pages with listPageSize, keys and prefixes alike", async () => {
        const store = s3.store({ listPageSize: 2 });
        expect((await collect(store.list(""))).map((info) => info.key)).toEqual(KEYS);
        expect(await collect(store.listPrefixes(""))).toEqual(["a/", "b/", "d/", "é/"]);
        expect(s3.server.count("ListObjectsV2")).toBe(Math.ceil(KEYS.length / 2) + Math.ceil(7 / 2));
    });
});

describe("S3 test server: DeleteObjects", () => {
    const s3 = perTest();

    it("deletes the keys named, reports each as deleted (missing ones too), keeps the rest; Quiet reports nothing", async () => {
        const { server } = s3;
        const awkward = [`a&b<c>"d"'e`, "sp ace/x", "keep"];
        for (const key of awkward) server.bucket.write(key, text(key));
        const client = s3.client();
        const answer = await client.send(new DeleteObjectsCommand({ Bucket: "lake", Delete: { Objects: [{ Key: awkward[0] }, { Key: "sp ace/x" }, { Key: "never/there" }] } }));
        expect((answer.Deleted ?? []).map((entry) => entry.Key)).toEqual([awkward[0], "sp ace/x", "never/there"]);
        expect(answer.Errors ?? []).toEqual([]);
        expect(server.bucket.keys()).toEqual(["keep"]);
        const quiet = await client.send(new DeleteObjectsCommand({ Bucket: "lake", Delete: { Objects: [{ Key: "keep" }], Quiet: true } }));
        expect([quiet.Deleted ?? [], quiet.Errors ?? []]).toEqual([[], []]);
        expect(server.bucket.size).toBe(0);
    });

    it("refuses a request without Content-MD5 or checksum, malformed XML, and more than 1,000 keys, deleting nothing", async () => {
        const { server } = s3;
        server.bucket.write("k", text("x"));
        const body = (keys: string[]): Uint8Array => text(`<Delete>${keys.map((key) => `<Object><Key>${key}</Key></Object>`).join("")}</Delete>`);
        const md5 = (bytes: Uint8Array): Record<string, string> => ({ "content-md5": createHash("md5").update(bytes).digest("base64") });
        const unsigned = await raw(server, "POST", "/lake?delete", {}, body(["k"]));
        expect([unsigned.status, xmlCode(unsigned.body)]).toEqual([400, "InvalidRequest"]);
        const malformed = text("<Nope/>");
        expect(xmlCode((await raw(server, "POST", "/lake?delete", md5(malformed), malformed)).body)).toBe("MalformedXML");
        const many = body(Array.from({ length: 1001 }, (_, i) => `k${i}`));
        expect(xmlCode((await raw(server, "POST", "/lake?delete", md5(many), many)).body)).toBe("MalformedXML");
        expect(server.bucket.keys()).toEqual(["k"]);
        const one = body(["k"]);
        expect((await raw(server, "POST", "/lake?delete", md5(one), one)).status).toBe(200);
        expect(server.bucket.size).toBe(0);
    });
});

describe("S3 test server: multipart uploads", () => {
    const s3 = perTest();

    it("Complete checks the parts (order, ETags, sizes), answers S3's multipart ETag, and honours If-None-Match and If-Match", async () => {
        const { server } = s3;
        const client = s3.client();
        const body = randomBytes(5 * MiB + 1000);
        const [head, tail] = [body.subarray(0, 5 * MiB), body.subarray(5 * MiB)];
        const create = async (): Promise<string> => (await client.send(new CreateMultipartUploadCommand({ Bucket: "lake", Key: "big" }))).UploadId ?? "";
        const part = async (UploadId: string, PartNumber: number, Body: Uint8Array): Promise<string> =>
            (await client.send(new UploadPartCommand({ Bucket: "lake", Key: "big", UploadId, PartNumber, Body }))).ETag ?? "";
        const complete = (UploadId: string, Parts: { PartNumber: number; ETag: string }[], condition: { IfNoneMatch?: string; IfMatch?: string } = {}) =>
            client.send(new CompleteMultipartUploadCommand({ Bucket: "lake", Key: "big", UploadId, MultipartUpload: { Parts }, ...condition }));

        const upload = await create();
        const etags = [await part(upload, 1, head), await part(upload, 2, tail)];
        expect(etags).toEqual([`"${md5Hex(head)}"`, `"${md5Hex(tail)}"`]);
        expect(
            await sdkFailure(
                complete(upload, [
                    { PartNumber: 1, ETag: etags[1]! },
                    { PartNumber: 2, ETag: etags[1]! },
                ]),
            ),
        ).toEqual({ status: 400, code: "InvalidPart" });
        expect(
            await sdkFailure(
                complete(upload, [
                    { PartNumber: 2, ETag: etags[1]! },
                    { PartNumber: 1, ETag: etags[0]! },
                ]),
            ),
        ).toEqual({ status: 400, code: "InvalidPartOrder" });
        const small = await create();
        const smallParts = [await part(small, 1, tail), await part(small, 2, tail)];
        expect(
            await sdkFailure(
                complete(
                    small,
                    smallParts.map((ETag, index) => ({ PartNumber: index + 1, ETag })),
                ),
            ),
        ).toEqual({ status: 400, code: "EntityTooSmall" });
        expect(server.bucket.size).toBe(0);

        const done = await complete(
            upload,
            etags.map((ETag, index) => ({ PartNumber: index + 1, ETag })),
            { IfNoneMatch: "*" },
        );
        expect(done.ETag).toBe(`"${multipartEtag(body, 5 * MiB)}"`);
        expect(Buffer.from(server.bucket.read("big") ?? []).equals(body)).toBe(true);
        const store = s3.store();
        expect(await store.head("big")).toMatchObject({ size: body.byteLength, etag: multipartEtag(body, 5 * MiB) });
        expect((await collect(store.list("big"))).map((info) => info.etag)).toEqual([multipartEtag(body, 5 * MiB)]);

        const second = await create();
        const secondParts = [await part(second, 1, head), await part(second, 2, text("other tail"))].map((ETag, index) => ({ PartNumber: index + 1, ETag }));
        expect(await sdkFailure(complete(second, secondParts, { IfNoneMatch: "*" }))).toEqual({ status: 412, code: "PreconditionFailed" });
        expect(await sdkFailure(complete(second, secondParts, { IfMatch: md5Hex(body) }))).toEqual({ status: 412, code: "PreconditionFailed" });
        expect(Buffer.from(server.bucket.read("big") ?? []).equals(body)).toBe(true);
        expect(server.openUploads()).toEqual(["big", "big"]);
        await complete(second, secondParts, { IfMatch: multipartEtag(body, 5 * MiB) });
        expect(Buffer.from(server.bucket.read("big") ?? []).toString("utf8", 5 * MiB)).toBe("other tail");

        await client.send(new AbortMultipartUploadCommand({ Bucket: "lake", Key: "big", UploadId: small }));
        expect(server.openUploads()).toEqual([]);
        expect(await sdkFailure(client.send(new AbortMultipartUploadCommand({ Bucket: "lake", Key: "big", UploadId: small })))).toEqual({ status: 404, code: "NoSuchUpload" });
        expect(await sdkFailure(part(upload, 3, tail))).toEqual({ status: 404, code: "NoSuchUpload" });
    });

    it("racing multipart putIfAbsent from separate clients: exactly one is created, its bytes are stored, the losers' uploads are aborted", async () => {
        const { server } = s3;
        const stores = Array.from({ length: 4 }, () => s3.store({ multipartThresholdBytes: 5 * MiB, multipartPartBytes: 5 * MiB }));
        for (let round = 0; round < 3; round++) {
            const bodies = stores.map(() => randomBytes(6 * MiB));
            const results = await Promise.all(stores.map((store, writer) => store.putIfAbsent(`big/${round}`, bodies[writer]!)));
            const winners = results.flatMap((result, writer) => (result.created ? [writer] : []));
            expect(winners, `round ${round}`).toHaveLength(1);
            expect(Buffer.from(server.bucket.read(`big/${round}`) ?? []).equals(bodies[winners[0]!]!)).toBe(true);
        }
        // The losers were refused by Complete's If-None-Match, not only by the store's HEAD before the upload.
        expect(server.count("CompleteMultipartUpload", 412)).toBeGreaterThan(0);
        expect(server.count("CompleteMultipartUpload", 200)).toBe(3);
        expect(server.openUploads()).toEqual([]);
    });
    it("a multipart upload whose Complete answer is lost: the store reports a retryable error, the object is there, a retry is refused and verifiable", async () => {
        const { server } = s3;
        const store = s3.store({ multipartThresholdBytes: 5 * MiB, multipartPartBytes: 5 * MiB });
        const body = randomBytes(6 * MiB);
        server.failNext("CompleteMultipartUpload", { answer: INTERNAL_ERROR, when: "after" });
        await expect(store.putIfAbsent("big", body)).rejects.toMatchObject({ retryable: true, status: 500 });
        expect(Buffer.from(server.bucket.read("big") ?? []).equals(body)).toBe(true);
        expect(server.count("AbortMultipartUpload", 404)).toBe(1);
        expect(await store.putIfAbsent("big", body)).toEqual({ created: false });
        expect((await store.head("big"))?.etag).toBe(store.expectedEtag(body));
        expect(server.openUploads()).toEqual([]);
    });
});

describe("S3 test server: faults", () => {
    const s3 = perTest();

    it("failNext answers the next requests of one operation with an S3 error; the SDK's retries get through", async () => {
        const { server } = s3;
        server.failNext("PutObject", { answer: SLOW_DOWN, times: 2 });
        const store = s3.store({ maxAttempts: 3 });
        expect(await store.putIfAbsent("k", text("x"))).toMatchObject({ created: true });
        expect([server.count("PutObject", 503), server.count("PutObject", 200)]).toEqual([2, 1]);

        server.failNext("GetObject", { answer: INTERNAL_ERROR });
        const failure = s3.store().get("k");
        await expect(failure).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        await expect(failure).rejects.toMatchObject({ status: 500, reason: "InternalError" });
        expect(await s3.store().get("k")).toMatchObject({ size: 1 });
    });

    it("a fault `after` lets the write take effect and loses its answer: the retry is refused, the bytes are there", async () => {
        const { server } = s3;
        const store = s3.store();
        server.failNext("PutObject", { answer: SLOW_DOWN, when: "after" });
        await expect(store.putIfAbsent("seg", text("bytes"))).rejects.toMatchObject({ retryable: true, status: 503 });
        expect(Buffer.from(server.bucket.read("seg") ?? []).toString()).toBe("bytes");
        expect(await store.putIfAbsent("seg", text("bytes"))).toEqual({ created: false });
        expect((await store.head("seg"))?.etag).toBe(store.expectedEtag(text("bytes")));

        server.failNext("DeleteObjects", { answer: INTERNAL_ERROR, when: "after" });
        await expect(store.deleteMany(["seg"])).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        expect(server.bucket.size).toBe(0);
    });

    it("hang: no answer until the client's idle timeout (after: the write is stored); close() drops hung requests", async () => {
        const { server } = s3;
        const store = s3.store({ idleTimeoutMs: 300 });
        server.failNext("PutObject", { answer: "hang", when: "after" });
        await expect(store.putIfAbsent("k", text("x"))).rejects.toMatchObject({ retryable: true, status: undefined });
        expect(server.bucket.keys()).toEqual(["k"]);
        expect(await store.get("k")).toMatchObject({ size: 1 });

        server.failNext("HeadObject", { answer: "hang" });
        const patient = s3.store({ idleTimeoutMs: 60_000 }).head("k");
        await expect.poll(() => server.count("HeadObject")).toBe(1);
        await server.close();
        await expect(patient).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
    });

    it("reset: the connection is reset, a retryable error", async () => {
        const { server } = s3;
        server.failNext("HeadObject", { answer: "reset" });
        await expect(s3.store().head("k")).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        expect(await s3.store().head("k")).toBeUndefined();
    });

    it("failAll: an outage until clearFaults", async () => {
        const { server } = s3;
        const store = s3.store();
        server.failAll(SLOW_DOWN);
        await expect(store.check()).rejects.toMatchObject({ retryable: true, status: 503, reason: "SlowDown" });
        await expect(store.putIfAbsent("k", text("x"))).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        server.clearFaults();
        await store.check();
        expect(server.bucket.size).toBe(0);
    });

    it("latencyMs delays every request", async () => {
        const { server } = s3;
        const store = s3.store();
        server.latencyMs = 200;
        const started = performance.now();
        await store.head("k");
        expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    });

    it("onRequest holds a request: the condition is decided when it is served, so the writer that was held loses", async () => {
        const { server } = s3;
        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => (release = resolve));
        server.onRequest = async (request) => {
            if (request.operation === "PutObject" && server.count("PutObject") === 1) await held;
        };
        const first = s3.store().putIfAbsent("lease", text("first"));
        await expect.poll(() => server.count("PutObject")).toBe(1);
        expect(await s3.store().putIfAbsent("lease", text("second"))).toMatchObject({ created: true });
        release();
        expect(await first).toEqual({ created: false });
        expect(Buffer.from(server.bucket.read("lease") ?? []).toString()).toBe("second");
    });
});

describe("S3 test server: one bucket, many clients", () => {
    const s3 = perTest();

    it("a MemoryObjectStore on the same MemoryBucket and the S3 clients see each other's objects and ETags", async () => {
        const { server } = s3;
        const memory = new MemoryObjectStore({ bucket: server.bucket, prefix: "lake/" });
        const remote = s3.store({ prefix: "lake/" });
        const created = await memory.putIfAbsent("from-memory", text("m"));
        expect(created.created).toBe(true);
        expect(await remote.get("from-memory")).toMatchObject({ size: 1, etag: created.created ? created.etag : "" });
        expect(await remote.putIfAbsent("from-memory", text("again"))).toEqual({ created: false });
        const swapped = await remote.putIfMatch("from-memory", text("s3"), created.created ? created.etag : "");
        expect(swapped.replaced).toBe(true);
        expect(Buffer.from((await memory.get("from-memory"))?.body ?? []).toString()).toBe("s3");
        expect(server.bucket.keys()).toEqual(["lake/from-memory"]);
    });

    it("sluiceEnv configures a Sluice lake on this server", async () => {
        const { server } = s3;
        const settings = lakeSettings(loadConfig({ env: server.sluiceEnv("lakes/one") }));
        if (settings.backend !== "s3" || !(settings.store instanceof S3ObjectStore)) throw new Error("not an S3 lake");
        track(settings.store);
        expect(await settings.store.putIfAbsent("db/m/f.parquet", text("parquet"))).toMatchObject({ created: true });
        expect(server.bucket.keys()).toEqual(["lakes/one/db/m/f.parquet"]);
    });

    it("child processes racing create-only writes on the same keys: each key is created by exactly one of them", async () => {
        const { server } = s3;
        const keys = 30;
        const children = [0, 1, 2].map((writer) => writerProcess(server.storeOptions("race/"), { writer, keys }));
        const outputs = await Promise.all(children.map((child) => child.finished));
        const creators = new Map<string, number[]>();
        outputs.forEach((lines, writer) => {
            for (const line of lines) if (line.startsWith("created ")) creators.set(line.slice(8), [...(creators.get(line.slice(8)) ?? []), writer]);
        });
        expect(server.bucket.keys()).toHaveLength(keys);
        for (const key of server.bucket.keys()) {
            const relative = key.slice("race/".length);
            expect(creators.get(relative), relative).toHaveLength(1);
            expect(Buffer.from(server.bucket.read(key) ?? []).toString()).toBe(`writer ${creators.get(relative)?.[0] ?? -1}`);
        }
    });

    it("a child killed with SIGKILL while its PUT is being served: the write it never heard of is stored", async () => {
        const { server } = s3;
        const child = writerProcess(server.storeOptions("kill/"), { writer: 0, keys: 1000 });
        server.onRequest = async (request) => {
            if (request.operation === "PutObject" && request.key === "kill/k0005") {
                child.process.kill("SIGKILL");
                await once(child.process, "exit");
            }
        };
        const lines = await child.finished;
        expect(child.process.signalCode).toBe("SIGKILL");
        const acknowledged = lines.filter((line) => line.startsWith("created ")).map((line) => `kill/${line.slice(8)}`);
        expect(acknowledged).toEqual(["kill/k0000", "kill/k0001", "kill/k0002", "kill/k0003", "kill/k0004"]);
        expect(server.bucket.keys()).toEqual([...acknowledged, "kill/k0005"]);
    });
});

/** The built store module and server, for child processes (npm test builds first). */
const STORE_MODULE = new URL("../dist/flush/storage/s3-store.js", import.meta.url).href;
const SERVER_CLI = fileURLToPath(new URL("../dist/test/helpers/s3-server.js", import.meta.url));

/**
 * A node process that tries `putIfAbsent("kNNNN", "writer W")` for `keys` keys in order with
 * `S3ObjectStore`, printing `created kNNNN` or `exists kNNNN`; resolves with its lines when it exits.
 */
function writerProcess(options: S3ObjectStoreOptions, { writer, keys }: { writer: number; keys: number }): { process: ChildProcess; finished: Promise<string[]> } {
    const script = `
        const { S3ObjectStore } = await import(process.env.STORE_MODULE);
        const store = new S3ObjectStore(JSON.parse(process.env.STORE_OPTIONS));
        for (let i = 0; i < ${keys}; i++) {
            const key = "k" + String(i).padStart(4, "0");
            const result = await store.putIfAbsent(key, new TextEncoder().encode("writer ${writer}"));
            process.stdout.write((result.created ? "created " : "exists ") + key + "\\n");
        }
        store.destroy();`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
        env: { PATH: process.env.PATH ?? "", STORE_MODULE, STORE_OPTIONS: JSON.stringify(options), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
        stdio: ["ignore", "pipe", "pipe"],
    });
    opened.push({ destroy: () => void child.kill("SIGKILL") });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const finished = once(child, "close").then(() => output.split("\n").filter((line) => line !== ""));
    return { process: child, finished };
}

describe("S3 test server: the CLI", () => {
    afterEach(destroyOpened);

    it("prints its endpoint, serves its bucket to any credentials after --latency-ms, and stops on SIGTERM", async () => {
        const child = spawn(process.execPath, [SERVER_CLI, "--port", "0", "--bucket", "cli-bucket", "--latency-ms", "300"], { stdio: ["ignore", "pipe", "pipe"] });
        opened.push({ destroy: () => void child.kill("SIGKILL") });
        const closed = once(child, "close");
        let output = "";
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
        const endpoint = await new Promise<string>((resolve, reject) => {
            child.stdout.on("data", (chunk: Buffer) => {
                output += chunk.toString();
                const match = /^(http:\/\/127\.0\.0\.1:\d+)\n/.exec(output);
                if (match) resolve(match[1]!);
            });
            void closed.then(() => {
                reject(new Error(`the CLI exited before printing its endpoint:\n${output}`));
            });
        });
        expect(output).toContain("bucket cli-bucket");
        expect(output).toContain("300 ms added to every request");
        const store = track(
            new S3ObjectStore({ endpoint, bucket: "cli-bucket", forcePathStyle: true, credentials: { accessKeyId: "anyone", secretAccessKey: "anything" }, maxAttempts: 1 }),
        );
        const started = performance.now();
        expect(await store.putIfAbsent("k", text("by the CLI"))).toMatchObject({ created: true });
        expect(performance.now() - started).toBeGreaterThanOrEqual(290);
        expect(Buffer.from((await store.get("k"))?.body ?? []).toString()).toBe("by the CLI");
        store.destroy();
        child.kill("SIGTERM");
        await closed;
        expect(child.exitCode).toBe(0);
    });
});

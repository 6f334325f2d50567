/**
 * `S3ObjectStore` against a scripted HTTP server on 127.0.0.1: the headers it sends, and how
 * each S3 answer (412, 404, 403, 5xx, throttling, silence) becomes a result or a typed error.
 * The real-server behaviour is checked by `npm run e2e -- s3-store` (Ceph radosgw).
 */
import { createHash } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ObjectStoreDeniedError, ObjectStoreMisconfiguredError, ObjectStoreRejectedError, ObjectStoreUnavailableError, normalizePrefix } from "../flush/storage/object-store.js";
import { S3ObjectStore, type S3ObjectStoreOptions, multipartEtag } from "../flush/storage/s3-store.js";
import { collect } from "./helpers/object-store-conformance.js";

interface Recorded {
    readonly method: string;
    readonly url: URL;
    readonly headers: IncomingMessage["headers"];
    readonly body: Buffer;
}

interface Reply {
    readonly status: number;
    readonly headers?: Record<string, string>;
    readonly body?: string;
    /** Never answer (a hung server). */
    readonly silent?: boolean;
}

// The SDK warns once per process that releases after January 2027 need Node 22; not this test's subject.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const ACCESS_KEY = "AKIDSCRIPTED123456";
const SECRET = "scripted/secret+key=shh";

/** An HTTP server that answers each request with the next scripted reply (200 when none is left). */
class ScriptedS3 {
    readonly requests: Recorded[] = [];
    readonly #replies: Reply[] = [];
    readonly #server: Server;
    readonly #hung: ServerResponse[] = [];

    constructor() {
        this.#server = createServer((request, response) => void this.#answer(request, response));
    }

    async start(): Promise<string> {
        await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
        const address = this.#server.address();
        if (address === null || typeof address === "string") throw new Error("no address");
        return `http://127.0.0.1:${address.port}`;
    }

    reply(...replies: Reply[]): void {
        this.#replies.push(...replies);
    }

    async stop(): Promise<void> {
        for (const response of this.#hung) response.destroy();
        this.#server.closeAllConnections();
        await new Promise((resolve) => this.#server.close(resolve));
    }

    async #answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
        const chunks: Buffer[] = [];
        for await (const chunk of request) chunks.push(chunk as Buffer);
        this.requests.push({ method: request.method ?? "", url: new URL(request.url ?? "/", "http://x"), headers: request.headers, body: Buffer.concat(chunks) });
        const reply = this.#replies.shift() ?? { status: 200, headers: { ETag: '"0123456789abcdef0123456789abcdef"' } };
        if (reply.silent === true) {
            this.#hung.push(response);
            return;
        }
        response.writeHead(reply.status, { "x-amz-request-id": `req-${this.requests.length}`, ...reply.headers });
        response.end(request.method === "HEAD" ? undefined : reply.body);
    }
}

const s3Error = (code: string, extra = ""): string =>
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>scripted ${code}</Message>${extra}<RequestId>r1</RequestId></Error>`;

describe("S3ObjectStore against a scripted server", () => {
    let server: ScriptedS3;
    let endpoint: string;
    let store: S3ObjectStore | undefined;

    beforeEach(async () => {
        server = new ScriptedS3();
        endpoint = await server.start();
    });
    afterEach(async () => {
        store?.destroy();
        store = undefined;
        await server.stop();
    });

    const open = (options: Partial<S3ObjectStoreOptions> = {}): S3ObjectStore =>
        (store = new S3ObjectStore({
            endpoint,
            bucket: "lake",
            prefix: "/sluice/",
            region: "us-east-1",
            forcePathStyle: true,
            credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
            maxAttempts: 1,
            ...options,
        }));

    it("putIfAbsent sends If-None-Match: * and Content-MD5 to the prefixed key; 200 is created, 412 is not", async () => {
        const s3 = open();
        const body = Buffer.from("parquet bytes");
        server.reply({ status: 200, headers: { ETag: '"abc123"' } }, { status: 412, body: s3Error("PreconditionFailed") });
        expect(await s3.putIfAbsent("db/m/f.parquet", body)).toEqual({ created: true, etag: "abc123" });
        expect(await s3.putIfAbsent("db/m/f.parquet", body)).toEqual({ created: false });
        const [put] = server.requests;
        expect(put?.method).toBe("PUT");
        expect(put?.url.pathname).toBe("/lake/sluice/db/m/f.parquet");
        expect(put?.headers["if-none-match"]).toBe("*");
        expect(put?.headers["if-match"]).toBeUndefined();
        expect(put?.headers["content-md5"]).toBe(createHash("md5").update(body).digest("base64"));
        expect(put?.body.equals(body)).toBe(true);
        expect(put?.headers.authorization).toContain(`Credential=${ACCESS_KEY}/`);
    });

    it("putIfMatch sends the ETag unquoted; 412, and 404 on a missing key, are not replaced", async () => {
        const s3 = open();
        server.reply({ status: 200, headers: { ETag: '"new"' } }, { status: 412, body: s3Error("PreconditionFailed") }, { status: 404, body: s3Error("NoSuchKey") });
        expect(await s3.putIfMatch("lease", Buffer.from("n=2"), '"old"')).toEqual({ replaced: true, etag: "new" });
        expect(await s3.putIfMatch("lease", Buffer.from("n=3"), "old")).toEqual({ replaced: false });
        expect(await s3.putIfMatch("gone", Buffer.from("n=1"), "old")).toEqual({ replaced: false });
        expect(server.requests.map((request) => request.headers["if-match"])).toEqual(["old", "old", "old"]);
    });

    it("a 500 on If-Match (radosgw's racing loser) is retried, and the retry's 412 is the answer", async () => {
        const s3 = open({ maxAttempts: 3 });
        server.reply({ status: 500, body: s3Error("UnknownError") }, { status: 412, body: s3Error("PreconditionFailed") });
        expect(await s3.putIfMatch("lease", Buffer.from("n=2"), "old")).toEqual({ replaced: false });
        expect(server.requests).toHaveLength(2);
    });

    it("a final 5xx on If-Match is settled by HEAD: our bytes → replaced, another version → refused, unchanged → the error", async () => {
        const s3 = open();
        const body = Buffer.from("holder=a n=2");
        const ours = createHash("md5").update(body).digest("hex");
        const unknown500 = { status: 500, body: s3Error("UnknownError") };
        server.reply(unknown500, { status: 200, headers: { ETag: `"${ours}"` } });
        expect(await s3.putIfMatch("lease", body, "old")).toEqual({ replaced: true, etag: ours });
        server.reply(unknown500, { status: 200, headers: { ETag: '"someone-else"' } });
        expect(await s3.putIfMatch("lease", body, "old")).toEqual({ replaced: false });
        server.reply(unknown500, { status: 404 });
        expect(await s3.putIfMatch("lease", body, "old")).toEqual({ replaced: false });
        server.reply(unknown500, { status: 200, headers: { ETag: '"old"' } });
        await expect(s3.putIfMatch("lease", body, "old")).rejects.toMatchObject({ retryable: true, status: 500, code: "object-store-unavailable" });
        server.reply(unknown500, { status: 503, body: s3Error("SlowDown") });
        await expect(s3.putIfMatch("lease", body, "old")).rejects.toMatchObject({ status: 500 });
        expect(server.requests.map((request) => request.method)).toEqual(["PUT", "HEAD", "PUT", "HEAD", "PUT", "HEAD", "PUT", "HEAD", "PUT", "HEAD"]);
    });

    it("throttling and 5xx are retryable ObjectStoreUnavailableError after the SDK's attempts", async () => {
        const s3 = open({ maxAttempts: 2 });
        server.reply({ status: 503, body: s3Error("SlowDown") }, { status: 503, body: s3Error("SlowDown") });
        const failure = s3.putIfAbsent("k", Buffer.from("x"));
        await expect(failure).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
        await expect(failure).rejects.toMatchObject({ retryable: true, status: 503, reason: "SlowDown", operation: "putIfAbsent", key: "k" });
        await expect(failure).rejects.toThrow(/after 2 attempts/);
        expect(server.requests).toHaveLength(2);

        s3.destroy();
        const once = open({ maxAttempts: 1 });
        server.reply({ status: 400, body: s3Error("RequestTimeout") }, { status: 409, body: s3Error("ConditionalRequestConflict") }, { status: 200, headers: { ETag: '"e"' } });
        await expect(once.putIfAbsent("k", Buffer.from("x"))).rejects.toMatchObject({ retryable: true, status: 400, reason: "RequestTimeout" });
        await expect(once.putIfMatch("k", Buffer.from("x"), "e")).rejects.toMatchObject({ retryable: true, status: 409, reason: "ConditionalRequestConflict" });
    });

    it("403 is a non-retryable ObjectStoreDeniedError with no credential in any rendering", async () => {
        const s3 = open();
        const echoed = `<AWSAccessKeyId>${ACCESS_KEY}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 ${SECRET}</StringToSign><SignatureProvided>sig</SignatureProvided>`;
        server.reply({ status: 403, body: s3Error("SignatureDoesNotMatch", echoed) });
        const error = await s3.get("k").catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(ObjectStoreDeniedError);
        expect(error).toMatchObject({ retryable: false, status: 403, reason: "SignatureDoesNotMatch", code: "object-store-denied" });
        for (const rendering of [String(error), inspect(error, { depth: 10 }), JSON.stringify(error), (error as Error).stack ?? ""]) {
            expect(rendering).not.toContain(ACCESS_KEY);
            expect(rendering).not.toContain(SECRET);
        }
    });

    it("credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when none are given, and are scrubbed from socket errors", async () => {
        const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
        process.env.AWS_ACCESS_KEY_ID = "AKIDFROMENVIRONMENT";
        process.env.AWS_SECRET_ACCESS_KEY = "environment-secret";
        try {
            const s3 = new S3ObjectStore({ endpoint, bucket: "lake", forcePathStyle: true, maxAttempts: 1 });
            store = s3;
            server.reply({ status: 200, headers: { ETag: '"e"' } });
            await s3.putIfAbsent("k", Buffer.from("x"));
            expect(server.requests[0]?.headers.authorization).toContain("Credential=AKIDFROMENVIRONMENT/");
            s3.destroy();
            const unreachable = new S3ObjectStore({ endpoint: "http://AKIDFROMENVIRONMENT:environment-secret@127.0.0.1:1", bucket: "lake", forcePathStyle: true, maxAttempts: 1 });
            const error = await unreachable.head("k").catch((caught: unknown) => caught);
            unreachable.destroy();
            expect(error).toBeInstanceOf(ObjectStoreUnavailableError);
            expect(inspect(error)).not.toContain("environment-secret");
            expect(inspect(error)).not.toContain("AKIDFROMENVIRONMENT");
        } finally {
            restore("AWS_ACCESS_KEY_ID", saved.id);
            restore("AWS_SECRET_ACCESS_KEY", saved.secret);
        }
    });

    it("a missing bucket is ObjectStoreMisconfiguredError, other 4xx ObjectStoreRejectedError, neither retryable", async () => {
        const s3 = open();
        server.reply({ status: 404, body: s3Error("NoSuchBucket") }, { status: 404, body: s3Error("NoSuchBucket") }, { status: 400, body: s3Error("EntityTooLarge") });
        await expect(s3.check()).rejects.toBeInstanceOf(ObjectStoreMisconfiguredError);
        await expect(s3.putIfMatch("k", Buffer.from("x"), "e")).rejects.toMatchObject({ retryable: false, code: "object-store-misconfigured" });
        const rejected = s3.putIfAbsent("k", Buffer.from("x"));
        await expect(rejected).rejects.toBeInstanceOf(ObjectStoreRejectedError);
        await expect(rejected).rejects.toMatchObject({ retryable: false, status: 400, reason: "EntityTooLarge" });
    });

    it("a server that goes silent mid-request is a retryable error after the idle timeout", async () => {
        const s3 = open({ idleTimeoutMs: 300 });
        server.reply({ status: 0, silent: true });
        const error = await s3.get("k").catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(ObjectStoreUnavailableError);
        expect(error).toMatchObject({ retryable: true, status: undefined });
    });

    it("get and head answer undefined for 404; HEAD's bare 404 for a missing bucket too", async () => {
        const s3 = open();
        server.reply({ status: 404, body: s3Error("NoSuchKey") }, { status: 404 });
        expect(await s3.get("k")).toBeUndefined();
        expect(await s3.head("k")).toBeUndefined();
        server.reply({ status: 200, headers: { ETag: '"e1"', "Content-Length": "0", "Last-Modified": "Wed, 02 Dec 2026 10:00:00 GMT" } });
        expect(await s3.head("k")).toEqual({ key: "k", size: 0, etag: "e1", modifiedMs: Date.UTC(2026, 11, 2, 10) });
    });

    it("lists page by page with continuation tokens, keys relative to the prefix, ETags unquoted", async () => {
        const s3 = open({ listPageSize: 2 });
        const page = (keys: string[], next?: string): Reply => ({
            status: 200,
            headers: { "Content-Type": "application/xml" },
            body: `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>lake</Name><Prefix>sluice/db/</Prefix><MaxKeys>2</MaxKeys><IsTruncated>${next !== undefined}</IsTruncated>${
                next === undefined ? "" : `<NextContinuationToken>${next}</NextContinuationToken>`
            }${keys.map((key) => `<Contents><Key>sluice/${key}</Key><LastModified>2026-12-02T10:00:00.000Z</LastModified><ETag>&quot;${key.length}&quot;</ETag><Size>${key.length}</Size></Contents>`).join("")}</ListBucketResult>`,
        });
        server.reply(page(["db/a", "db/b"], "tok1"), page(["db/c"]));
        const listed = await collect(s3.list("db/"));
        expect(listed.map((info) => [info.key, info.etag, info.size])).toEqual([
            ["db/a", "4", 4],
            ["db/b", "4", 4],
            ["db/c", "4", 4],
        ]);
        expect(
            server.requests.map((request) => [
                request.url.searchParams.get("prefix"),
                request.url.searchParams.get("continuation-token"),
                request.url.searchParams.get("max-keys"),
            ]),
        ).toEqual([
            ["sluice/db/", null, "2"],
            ["sluice/db/", "tok1", "2"],
        ]);
    });

    it("deleteMany sends batches of 1,000, ignores NoSuchKey, and fails on any other per-key error", async () => {
        const s3 = open();
        const keys = Array.from({ length: 1500 }, (_, i) => `old/${i}`);
        const result = (errors: string): Reply => ({ status: 200, body: `<?xml version="1.0" encoding="UTF-8"?><DeleteResult>${errors}</DeleteResult>` });
        server.reply(result("<Error><Key>sluice/old/3</Key><Code>NoSuchKey</Code></Error>"), result(""));
        await s3.deleteMany(keys);
        expect(server.requests.map((request) => (request.body.toString().match(/<Key>/g) ?? []).length)).toEqual([1000, 500]);
        expect(server.requests.every((request) => request.method === "POST" && request.url.searchParams.has("delete"))).toBe(true);

        server.reply(result("<Error><Key>sluice/old/7</Key><Code>AccessDenied</Code><Message>no</Message></Error>"));
        const failure = s3.deleteMany(["old/7"]);
        await expect(failure).rejects.toBeInstanceOf(ObjectStoreDeniedError);
        await expect(failure).rejects.toMatchObject({ key: "old/7", message: expect.stringContaining("1 of 1 keys not deleted") });
    });

    it("predicts S3's ETags: MD5 below the multipart threshold, MD5 of part MD5s above it", () => {
        const s3 = open({ multipartThresholdBytes: 10, multipartPartBytes: 4 });
        const small = Buffer.from("123456789");
        expect(s3.expectedEtag(small)).toBe(createHash("md5").update(small).digest("hex"));
        const large = Buffer.from("0123456789");
        const parts = [large.subarray(0, 4), large.subarray(4, 8), large.subarray(8)].map((part) => createHash("md5").update(part).digest());
        expect(s3.expectedEtag(large)).toBe(`${createHash("md5").update(Buffer.concat(parts)).digest("hex")}-3`);
        expect(multipartEtag(large, 4)).toBe(s3.expectedEtag(large));
        // At or below one part, lib-storage sends a plain PUT: a plain MD5.
        s3.destroy();
        const onePart = open({ multipartThresholdBytes: 1, multipartPartBytes: 16 });
        expect(onePart.expectedEtag(large)).toBe(createHash("md5").update(large).digest("hex"));
        expect(s3.location).toBe("s3://lake/sluice/");
        expect(s3.description).toBe(`s3://lake/sluice/ at ${new URL(endpoint).host}`);
        expect([normalizePrefix(""), normalizePrefix("/"), normalizePrefix("a"), normalizePrefix("/a/b//")]).toEqual(["", "", "a/", "a/b/"]);
    });
});

function restore(name: string, value: string | undefined): void {
    if (value === undefined) Reflect.deleteProperty(process.env, name);
    else process.env[name] = value;
}

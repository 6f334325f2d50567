/**
 * An S3-compatible HTTP server for tests, in the test process, over a `MemoryBucket`: real
 * clients (`S3ObjectStore` through the AWS SDK, also in child processes that a test kills with
 * SIGKILL) share one bucket that the test reads directly and makes fail on demand.
 *
 *     const s3 = await S3Server.start({ bucket: new MemoryBucket("lake") });
 *     try {
 *         const store = new S3ObjectStore(s3.storeOptions("ingester-1/"));  // or spawn with s3.sluiceEnv("lake/")
 *         s3.failNext("PutObject", { answer: SLOW_DOWN, times: 2 });
 *         ...
 *         expect(s3.bucket.keys()).toEqual([...]);
 *     } finally {
 *         await s3.close();
 *     }
 *
 * Speaks path-style addressing only (`http://127.0.0.1:PORT/BUCKET/KEY`), one bucket:
 * PutObject (`If-None-Match: *`, `If-Match`, `Content-MD5`), GetObject and HeadObject (with
 * `If-Match` / `If-None-Match`), DeleteObject, DeleteObjects, ListObjectsV2 (prefix, delimiter,
 * max-keys, continuation-token, start-after), HeadBucket, and multipart uploads (Create,
 * UploadPart, Complete with `If-None-Match` / `If-Match`, Abort). ETags are S3's: the MD5 of the
 * bytes, or for a multipart upload the MD5 of the parts' MD5s, a dash and the part count.
 * Anything else (Range, CopyObject, ListObjects v1, `encoding-type=url`, aws-chunked bodies,
 * subresources such as `?acl`) answers 501 NotImplemented rather than something approximate.
 *
 * Credentials: a request must name an access key (SigV4 `Authorization` header or presigned
 * `X-Amz-Credential`); with `accessKeyIds` only those are accepted (403 InvalidAccessKeyId).
 * Signatures are never verified: a wrong secret is not noticed.
 *
 * A write takes effect only once its whole body arrived and matched its `Content-MD5` (and a hex
 * `x-amz-content-sha256`): a client killed mid-upload leaves nothing. Conditions are checked and
 * the write made in one synchronous step, so racing writers see exactly one winner. Objects written
 * through another client of the `MemoryBucket` (a `MemoryObjectStore`) are served too; a multipart
 * object's ETag is known only to this server (the bucket itself keeps MD5s).
 *
 * CLI for a human (and `npm run bench -- s3`): `node dist/test/helpers/s3-server.js [--port 9000]
 * [--bucket lake] [--latency-ms 0]` prints the endpoint and serves until SIGINT/SIGTERM (in
 * memory: everything is gone afterwards).
 */
import { createHash, randomBytes } from "node:crypto";
import { type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { MemoryBucket } from "../../flush/storage/memory-store.js";
import { MAX_KEY_BYTES, bareEtag, compareKeys, md5Hex } from "../../flush/storage/object-store.js";
import type { S3ObjectStoreOptions } from "../../flush/storage/s3-store.js";
import { envVarName } from "../../src/config/schema.js";

export const S3_OPERATIONS = [
    "PutObject",
    "GetObject",
    "HeadObject",
    "DeleteObject",
    "DeleteObjects",
    "ListObjectsV2",
    "HeadBucket",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
] as const;
export type S3Operation = (typeof S3_OPERATIONS)[number];

/** Operations that change the bucket: a fault `after` lets them take effect first. */
const WRITES: ReadonlySet<S3Operation> = new Set([
    "PutObject",
    "DeleteObject",
    "DeleteObjects",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "UploadPart",
    "CreateMultipartUpload",
]);

/** An S3 error answer: the HTTP status and the `<Code>` of the XML body. */
export interface S3ErrorAnswer {
    readonly status: number;
    readonly code: string;
}

export const SLOW_DOWN: S3ErrorAnswer = { status: 503, code: "SlowDown" };
export const INTERNAL_ERROR: S3ErrorAnswer = { status: 500, code: "InternalError" };

/**
 * What a faulted request gets: an S3 error; `hang`: no answer at all (the client's timeout
 * decides; `close()` drops the connection); `reset`: the connection is reset (ECONNRESET).
 */
export type S3FaultAnswer = S3ErrorAnswer | "hang" | "reset";

export interface S3Fault {
    readonly answer: S3FaultAnswer;
    /**
     * `before` (default): the request changes nothing. `after`: a write takes effect first and
     * then gets this answer, as when a timeout or a lost answer follows a successful PUT (reads
     * behave as `before`).
     */
    readonly when?: "before" | "after";
    /** How many consecutive requests of the operation get it (default 1). */
    readonly times?: number;
}

export interface S3ServerOptions {
    /** The bucket served, under its `name`. Default: a new `MemoryBucket("lake")`. */
    readonly bucket?: MemoryBucket;
    readonly host?: string;
    /** 0: a free port. */
    readonly port?: number;
    /** Answered by HeadBucket, and what `storeOptions` / `sluiceEnv` hand out. */
    readonly region?: string;
    /** The access key ids accepted (403 InvalidAccessKeyId for others); empty: any. The first is handed out. */
    readonly accessKeyIds?: readonly string[];
    /** What `If-Match` on a missing key answers: AWS S3's 404 NoSuchKey or radosgw's 412 PreconditionFailed. */
    readonly ifMatchMissing?: "NoSuchKey" | "PreconditionFailed";
    /** The smallest part of a multipart upload but the last (S3: 5 MiB; lib-storage refuses smaller ones anyway). */
    readonly minPartBytes?: number;
    /** Delay before every request is served, in ms (after its body arrived). */
    readonly latencyMs?: number;
}

const MiB = 1024 * 1024;

export const s3ServerDefaults = {
    host: "127.0.0.1",
    port: 0,
    region: "us-east-1",
    accessKeyIds: [],
    ifMatchMissing: "NoSuchKey",
    minPartBytes: 5 * MiB,
    latencyMs: 0,
} as const satisfies { [K in keyof Required<Omit<S3ServerOptions, "bucket">>]: S3ServerOptions[K] };

/** S3's largest single PUT and largest part. */
const MAX_BODY_BYTES = 5 * 1024 * MiB;
/** S3's largest listing page and DeleteObjects batch. */
const MAX_KEYS = 1000;
const MAX_PARTS = 10_000;
/** Handed out when any access key is accepted. */
const TEST_ACCESS_KEY_ID = "SLUICETESTKEY";
const TEST_SECRET = "sluice-test-secret";

/** One request as the server saw it. */
export interface S3RequestRecord {
    /** `unsupported` for anything answered 501, and for requests refused before routing. */
    readonly operation: S3Operation | "unsupported";
    readonly method: string;
    /** The object key (a listing's prefix, an upload's key), "" for bucket operations. */
    readonly key: string;
    /** The status answered; 0 while pending, or for a hang, a reset, or a client gone before its body arrived. */
    readonly status: number;
}

interface MutableRecord {
    operation: S3Operation | "unsupported";
    readonly method: string;
    key: string;
    status: number;
}

type Stored = NonNullable<ReturnType<MemoryBucket["lookup"]>>;

interface Reply {
    readonly status: number;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: Buffer;
}

/** A recognised request: what it is, and how to serve it (synchronously, so conditions and writes are atomic). */
interface Call {
    readonly operation: S3Operation;
    readonly key: string;
    serve(): Reply;
}

interface Upload {
    readonly key: string;
    readonly parts: Map<number, { readonly body: Buffer; readonly etag: string }>;
}

/** An S3 error answer raised while serving a request. Never leaves this module. */
class S3Refusal extends Error {
    constructor(
        readonly status: number,
        readonly code: string,
        message: string,
        readonly extra: Readonly<Record<string, string>> = {},
    ) {
        super(message);
    }
}

export class S3Server {
    readonly bucket: MemoryBucket;
    readonly region: string;
    /** `http://127.0.0.1:PORT`. */
    readonly endpoint: string;
    /** Credentials a client may use (the secret is never checked). */
    readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
    /** Every request in arrival order. */
    readonly requests: readonly S3RequestRecord[];
    latencyMs: number;
    /**
     * Awaited for every request after its body arrived and the latency passed, before it is
     * served: hold it, or kill a client at that instant. Throwing answers 500 InternalError.
     */
    onRequest: ((request: S3RequestRecord) => Promise<void> | void) | undefined;
    readonly #server: Server;
    readonly #accessKeyIds: readonly string[];
    readonly #ifMatchMissing: "NoSuchKey" | "PreconditionFailed";
    readonly #minPartBytes: number;
    readonly #records: MutableRecord[] = [];
    readonly #faults = new Map<S3Operation, { answer: S3FaultAnswer; when: "before" | "after" }[]>();
    #outage: S3FaultAnswer | undefined;
    readonly #uploads = new Map<string, Upload>();
    /** ETags of objects completed by multipart upload, by the bucket's own record of them (replaced on every write). */
    readonly #multipartEtags = new WeakMap<Stored, string>();
    readonly #hung = new Set<ServerResponse>();
    #requestCount = 0;
    #closed: Promise<void> | undefined;

    private constructor(server: Server, endpoint: string, options: S3ServerOptions) {
        const defaults = s3ServerDefaults;
        this.#server = server;
        this.endpoint = endpoint;
        this.bucket = options.bucket ?? new MemoryBucket("lake");
        this.region = options.region ?? defaults.region;
        this.#accessKeyIds = options.accessKeyIds ?? defaults.accessKeyIds;
        this.#ifMatchMissing = options.ifMatchMissing ?? defaults.ifMatchMissing;
        this.#minPartBytes = options.minPartBytes ?? defaults.minPartBytes;
        this.latencyMs = options.latencyMs ?? defaults.latencyMs;
        this.credentials = { accessKeyId: this.#accessKeyIds[0] ?? TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET };
        this.requests = this.#records;
    }

    /** Listens on `host:port` (default 127.0.0.1 and a free port). */
    static async start(options: S3ServerOptions = {}): Promise<S3Server> {
        const server = createServer();
        // Longer than any test's pause, so the server never closes a socket the SDK is about to reuse.
        server.keepAliveTimeout = 120_000;
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(options.port ?? s3ServerDefaults.port, options.host ?? s3ServerDefaults.host, () => {
                server.off("error", reject);
                resolve();
            });
        });
        const address = server.address();
        if (address === null || typeof address === "string") throw new Error("the S3 test server has no TCP address");
        const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
        const s3 = new S3Server(server, `http://${host}:${address.port}`, options);
        server.on("request", (request: IncomingMessage, response: ServerResponse) => void s3.#handle(request, response));
        return s3;
    }

    /** Options for an `S3ObjectStore` on this server (path-style, these credentials) under `prefix`. */
    storeOptions(prefix = ""): S3ObjectStoreOptions {
        return { endpoint: this.endpoint, region: this.region, bucket: this.bucket.name, prefix, forcePathStyle: true, credentials: this.credentials };
    }

    /** The `SLUICE_*` environment that points a Sluice process's lake at this server under `prefix`. */
    sluiceEnv(prefix = ""): Record<string, string> {
        return {
            [envVarName("storage.backend")]: "s3",
            [envVarName("s3.endpoint")]: this.endpoint,
            [envVarName("s3.bucket")]: this.bucket.name,
            [envVarName("s3.prefix")]: prefix,
            [envVarName("s3.region")]: this.region,
            [envVarName("s3.force_path_style")]: "true",
            [envVarName("s3.access_key_id")]: this.credentials.accessKeyId,
            [envVarName("s3.secret_access_key")]: this.credentials.secretAccessKey,
        };
    }

    /** Gives the next `fault.times` requests of `operation` this answer (queued after any already pending). */
    failNext(operation: S3Operation, fault: S3Fault): void {
        const pending = Array.from({ length: fault.times ?? 1 }, () => ({ answer: fault.answer, when: fault.when ?? "before" }));
        this.#faults.set(operation, [...(this.#faults.get(operation) ?? []), ...pending]);
    }

    /** Gives every request this answer until `clearFaults()`: an outage. */
    failAll(answer: S3FaultAnswer): void {
        this.#outage = answer;
    }

    clearFaults(): void {
        this.#faults.clear();
        this.#outage = undefined;
    }

    /** Requests of `operation` seen so far, optionally only those answered `status`. */
    count(operation: S3Operation, status?: number): number {
        return this.#records.filter((record) => record.operation === operation && (status === undefined || record.status === status)).length;
    }

    /** Multipart uploads created and neither completed nor aborted, by key. */
    openUploads(): string[] {
        return [...this.#uploads.values()].map((upload) => upload.key).sort(compareKeys);
    }

    /** Stops listening and drops every connection, hung ones included; idempotent. */
    async close(): Promise<void> {
        this.#closed ??= (async () => {
            for (const response of this.#hung) response.destroy();
            this.#hung.clear();
            this.#server.closeAllConnections();
            await new Promise<void>((resolve) => {
                this.#server.close(() => {
                    resolve();
                });
            });
        })();
        return this.#closed;
    }

    async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
        const requestId = (++this.#requestCount).toString(16).toUpperCase().padStart(16, "0");
        const record: MutableRecord = { operation: "unsupported", method: request.method ?? "", key: "", status: 0 };
        this.#records.push(record);
        let answer: Reply | "hang" | "reset";
        try {
            const length = Number(request.headers["content-length"] ?? 0);
            if (length > MAX_BODY_BYTES) throw new S3Refusal(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
            let body: Buffer;
            try {
                body = await readBody(request);
            } catch {
                return; // The client went away mid-body: nothing happens, nobody to answer.
            }
            const call = this.#route(request, body);
            record.operation = call.operation;
            record.key = call.key;
            answer = await this.#serve(call, record);
        } catch (error) {
            const refusal = error instanceof S3Refusal ? error : new S3Refusal(500, "InternalError", `the test server failed: ${String(error)}`);
            answer = errorReply(refusal, requestId, request.url ?? "/");
        }
        this.#answer(request, response, answer, record, requestId);
    }

    async #serve(call: Call, record: MutableRecord): Promise<Reply | "hang" | "reset"> {
        if (this.latencyMs > 0) await sleep(this.latencyMs);
        await this.onRequest?.(record);
        if (this.#outage !== undefined) return this.#faultReply(this.#outage);
        const fault = this.#faults.get(call.operation)?.shift();
        if (fault === undefined) return call.serve();
        if (fault.when === "after" && WRITES.has(call.operation)) {
            // The request is served (a refusal included), then its answer is replaced.
            try {
                call.serve();
            } catch (error) {
                if (!(error instanceof S3Refusal)) throw error;
            }
        }
        return this.#faultReply(fault.answer);
    }

    #faultReply(answer: S3FaultAnswer): Reply | "hang" | "reset" {
        if (answer === "hang" || answer === "reset") return answer;
        throw new S3Refusal(answer.status, answer.code, "injected by the S3 test server");
    }

    #answer(request: IncomingMessage, response: ServerResponse, answer: Reply | "hang" | "reset", record: MutableRecord, requestId: string): void {
        if (answer === "hang") {
            this.#hung.add(response);
            response.once("close", () => this.#hung.delete(response));
            return;
        }
        if (answer === "reset") {
            request.socket.resetAndDestroy();
            return;
        }
        record.status = answer.status;
        const body = answer.body ?? Buffer.alloc(0);
        response.writeHead(answer.status, {
            "x-amz-request-id": requestId,
            "x-amz-id-2": `sluice-test-${requestId}`,
            Server: "SluiceTestS3",
            "Content-Length": String(body.byteLength),
            ...answer.headers,
        });
        response.end(request.method === "HEAD" ? undefined : body);
    }

    /** Checks the credentials, the bucket and the request's shape; the returned call does the rest. */
    #route(request: IncomingMessage, body: Buffer): Call {
        const { bucket, key, query } = parseTarget(request.url ?? "/");
        const accessKeyId = accessKeyOf(request.headers, query);
        if (accessKeyId === undefined) throw new S3Refusal(403, "AccessDenied", "Anonymous access is not allowed: sign the request");
        if (this.#accessKeyIds.length > 0 && !this.#accessKeyIds.includes(accessKeyId))
            throw new S3Refusal(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
        if (bucket === "") throw notImplemented("ListBuckets");
        if (bucket !== this.bucket.name) throw new S3Refusal(404, "NoSuchBucket", "The specified bucket does not exist", { BucketName: bucket });
        if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new S3Refusal(400, "KeyTooLongError", "Your key is too long");
        refuseUnsupportedHeaders(request.headers);
        const method = request.method ?? "";
        const call = (operation: S3Operation, serve: () => Reply, allowed: readonly string[] = []): Call => {
            refuseUnknownParameters(query, allowed);
            return { operation, key, serve };
        };
        const headers = request.headers;
        if (key === "") {
            if (method === "HEAD") return call("HeadBucket", () => ({ status: 200, headers: { "x-amz-bucket-region": this.region } }));
            if (method === "GET" && query.get("list-type") === "2") {
                refuseUnknownParameters(query, LIST_PARAMETERS);
                return { operation: "ListObjectsV2", key: query.get("prefix") ?? "", serve: () => this.#list(query) };
            }
            if (method === "POST" && query.has("delete")) {
                checkBodyIntegrity(headers, body);
                if (header(headers, "content-md5") === undefined && !Object.keys(headers).some((name) => name.startsWith("x-amz-checksum-")))
                    throw new S3Refusal(400, "InvalidRequest", "Missing required header for this request: Content-MD5 or x-amz-checksum-*");
                return call("DeleteObjects", () => this.#deleteMany(body), ["delete"]);
            }
            throw notImplemented(`${method} on the bucket with ${[...query.keys()].join(", ") || "no parameters"}`);
        }
        const uploadId = query.get("uploadId");
        switch (method) {
            case "PUT":
                if (headers["x-amz-copy-source"] !== undefined) throw notImplemented("CopyObject");
                checkBodyIntegrity(headers, body);
                if (headers["content-length"] === undefined) throw new S3Refusal(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
                if (uploadId !== null) return call("UploadPart", () => this.#uploadPart(key, uploadId, query.get("partNumber"), body), ["uploadId", "partNumber"]);
                return call("PutObject", () => this.#put(key, headers, body));
            case "GET":
                return call("GetObject", () => this.#read(key, headers, true));
            case "HEAD":
                return call("HeadObject", () => this.#read(key, headers, false));
            case "DELETE":
                if (uploadId !== null) return call("AbortMultipartUpload", () => this.#abort(key, uploadId), ["uploadId"]);
                if (headers["if-match"] !== undefined) throw notImplemented("DeleteObject with If-Match");
                return call("DeleteObject", () => {
                    this.bucket.remove(key);
                    return { status: 204 };
                });
            case "POST":
                if (query.has("uploads")) return call("CreateMultipartUpload", () => this.#createUpload(key), ["uploads"]);
                if (uploadId !== null) {
                    checkBodyIntegrity(headers, body);
                    return call("CompleteMultipartUpload", () => this.#complete(key, uploadId, headers, body), ["uploadId"]);
                }
                throw notImplemented(`POST on an object with ${[...query.keys()].join(", ") || "no parameters"}`);
            default:
                throw new S3Refusal(405, "MethodNotAllowed", `The specified method is not allowed against this resource: ${method}`);
        }
    }

    #etagOf(stored: Stored): string {
        return this.#multipartEtags.get(stored) ?? stored.etag;
    }

    /**
     * Refuses a write whose condition the current object fails: `If-None-Match: *` when the key
     * exists, `If-Match` when the ETag differs or the key is missing.
     */
    #checkWriteConditions(key: string, headers: IncomingHttpHeaders): void {
        const ifNoneMatch = headers["if-none-match"];
        const ifMatch = headers["if-match"];
        if (ifNoneMatch !== undefined && ifMatch !== undefined) throw notImplemented("If-Match and If-None-Match together");
        if (ifNoneMatch !== undefined && ifNoneMatch !== "*") throw notImplemented("If-None-Match with an ETag on a write (only * is S3's)");
        const stored = this.bucket.lookup(key);
        if (ifNoneMatch === "*" && stored !== undefined) throw preconditionFailed("If-None-Match");
        if (ifMatch === undefined) return;
        if (stored === undefined) {
            if (this.#ifMatchMissing === "NoSuchKey") throw noSuchKey(key);
            throw preconditionFailed("If-Match");
        }
        if (!etagMatches(ifMatch, this.#etagOf(stored))) throw preconditionFailed("If-Match");
    }

    // Invariant kept: the condition is checked and the object written in one synchronous step.
    #put(key: string, headers: IncomingHttpHeaders, body: Buffer): Reply {
        this.#checkWriteConditions(key, headers);
        const stored = this.bucket.write(key, body);
        return { status: 200, headers: { ETag: `"${stored.etag}"` } };
    }

    #read(key: string, headers: IncomingHttpHeaders, withBody: boolean): Reply {
        const stored = this.bucket.lookup(key);
        if (stored === undefined) throw noSuchKey(key);
        const etag = this.#etagOf(stored);
        const described = {
            ETag: `"${etag}"`,
            "Last-Modified": new Date(wholeSeconds(stored.modifiedMs)).toUTCString(),
            "Content-Type": "binary/octet-stream",
        };
        const ifMatch = headers["if-match"];
        const ifNoneMatch = headers["if-none-match"];
        if (ifMatch !== undefined && !etagMatches(ifMatch, etag)) throw preconditionFailed("If-Match");
        if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, etag)) return { status: 304, headers: described };
        if (!withBody) return { status: 200, headers: { ...described, "Content-Length": String(stored.body.byteLength) } };
        return { status: 200, headers: described, body: Buffer.from(stored.body) };
    }

    // Invariant kept: each page holds the entries after the previous page's last one, as the bucket is when the page is read.
    #list(query: URLSearchParams): Reply {
        const prefix = query.get("prefix") ?? "";
        const delimiter = query.get("delimiter") ?? "";
        const maxKeys = parseMaxKeys(query.get("max-keys"));
        const token = query.get("continuation-token");
        const startAfter = query.get("start-after");
        if (query.has("encoding-type")) throw notImplemented("encoding-type (keys are sent raw, in UTF-8)");
        const from = token !== null ? decodeToken(token) : startAfter !== null && startAfter !== "" ? { after: startAfter, skipPrefix: false } : undefined;
        const page = listPage(this.bucket.keys(), prefix, delimiter, maxKeys, from);
        const contents = page.keys.map((key) => {
            // Listed from the bucket in this same synchronous step: every key is there.
            const stored = this.bucket.lookup(key)!;
            const modified = new Date(wholeSeconds(stored.modifiedMs)).toISOString();
            return element(
                "Contents",
                `${text("Key", key)}${text("LastModified", modified)}${text("ETag", `"${this.#etagOf(stored)}"`)}${text("Size", String(stored.body.byteLength))}${text("StorageClass", "STANDARD")}`,
            );
        });
        const xml = [
            text("Name", this.bucket.name),
            text("Prefix", prefix),
            delimiter === "" ? "" : text("Delimiter", delimiter),
            text("MaxKeys", String(maxKeys)),
            text("KeyCount", String(page.keys.length + page.prefixes.length)),
            text("IsTruncated", String(page.next !== undefined)),
            token === null ? "" : text("ContinuationToken", token),
            page.next === undefined ? "" : text("NextContinuationToken", encodeToken(page.next)),
            startAfter === null ? "" : text("StartAfter", startAfter),
            ...contents,
            ...page.prefixes.map((common) => element("CommonPrefixes", text("Prefix", common))),
        ];
        return xmlReply(200, element("ListBucketResult", xml.join(""), true));
    }

    #deleteMany(body: Buffer): Reply {
        const request = body.toString("utf8");
        if (!/<Delete[\s>]/.test(request)) throw malformedXml();
        const keys = elements(request, "Object").map((object) => {
            const key = firstText(object, "Key");
            if (key === undefined || key === "") throw malformedXml();
            return key;
        });
        if (keys.length === 0 || keys.length > MAX_KEYS) throw malformedXml();
        const quiet = firstText(request, "Quiet") === "true";
        for (const key of keys) this.bucket.remove(key);
        const deleted = quiet ? "" : keys.map((key) => element("Deleted", text("Key", key))).join("");
        return xmlReply(200, element("DeleteResult", deleted, true));
    }

    #createUpload(key: string): Reply {
        const uploadId = randomBytes(24).toString("base64url");
        this.#uploads.set(uploadId, { key, parts: new Map() });
        return xmlReply(200, element("InitiateMultipartUploadResult", `${text("Bucket", this.bucket.name)}${text("Key", key)}${text("UploadId", uploadId)}`, true));
    }

    #upload(key: string, uploadId: string): Upload {
        const upload = this.#uploads.get(uploadId);
        if (upload?.key !== key) throw new S3Refusal(404, "NoSuchUpload", "The specified upload does not exist.", { UploadId: uploadId });
        return upload;
    }

    #uploadPart(key: string, uploadId: string, partNumber: string | null, body: Buffer): Reply {
        const number = Number(partNumber);
        if (!Number.isInteger(number) || number < 1 || number > MAX_PARTS)
            throw new S3Refusal(400, "InvalidArgument", `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`);
        const etag = md5Hex(body);
        this.#upload(key, uploadId).parts.set(number, { body, etag });
        return { status: 200, headers: { ETag: `"${etag}"` } };
    }

    // Invariant kept: the parts are checked, the condition is checked and the object written in one synchronous step.
    #complete(key: string, uploadId: string, headers: IncomingHttpHeaders, body: Buffer): Reply {
        const upload = this.#upload(key, uploadId);
        const listed = parseCompletion(body.toString("utf8"));
        if (listed.some(({ partNumber }, index) => index > 0 && listed[index - 1]!.partNumber >= partNumber))
            throw new S3Refusal(400, "InvalidPartOrder", "The list of parts was not in ascending order.");
        const parts = listed.map(({ partNumber, etag }, index) => {
            const part = upload.parts.get(partNumber);
            if (part?.etag !== etag) throw new S3Refusal(400, "InvalidPart", "One or more of the specified parts could not be found.", { PartNumber: String(partNumber) });
            if (index < listed.length - 1 && part.body.byteLength < this.#minPartBytes)
                throw new S3Refusal(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size", { PartNumber: String(partNumber) });
            return part;
        });
        this.#checkWriteConditions(key, headers);
        const digests = parts.map((part) => Buffer.from(part.etag, "hex"));
        const etag = `${md5Hex(Buffer.concat(digests))}-${parts.length}`;
        const stored = this.bucket.write(key, Buffer.concat(parts.map((part) => part.body)));
        this.#multipartEtags.set(stored, etag);
        this.#uploads.delete(uploadId);
        const location = `${this.endpoint}/${encodeURIComponent(this.bucket.name)}/${key.split("/").map(encodeURIComponent).join("/")}`;
        return xmlReply(
            200,
            element("CompleteMultipartUploadResult", `${text("Location", location)}${text("Bucket", this.bucket.name)}${text("Key", key)}${text("ETag", `"${etag}"`)}`, true),
        );
    }

    #abort(key: string, uploadId: string): Reply {
        this.#upload(key, uploadId);
        this.#uploads.delete(uploadId);
        return { status: 204 };
    }
}

// ---- Requests ----

async function readBody(request: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}

/** Bucket and key of a path-style URL, decoded once (no dot-segment normalization, unlike `new URL`). */
function parseTarget(url: string): { bucket: string; key: string; query: URLSearchParams } {
    const mark = url.indexOf("?");
    const path = mark === -1 ? url : url.slice(0, mark);
    const query = new URLSearchParams(mark === -1 ? "" : url.slice(mark + 1));
    const slash = path.indexOf("/", 1);
    try {
        return {
            bucket: decodeURIComponent(slash === -1 ? path.slice(1) : path.slice(1, slash)),
            key: slash === -1 ? "" : decodeURIComponent(path.slice(slash + 1)),
            query,
        };
    } catch {
        throw new S3Refusal(400, "InvalidURI", "Couldn't parse the specified URI.");
    }
}

/** The access key id a SigV4 request names, from its `Authorization` header or a presigned URL. */
function accessKeyOf(headers: IncomingHttpHeaders, query: URLSearchParams): string | undefined {
    const match = /Credential=([^/,\s]+)\//.exec(headers.authorization ?? "");
    if (match !== null) return match[1];
    const presigned = query.get("X-Amz-Credential");
    return presigned === null ? undefined : presigned.split("/")[0];
}

const LIST_PARAMETERS = ["list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after", "fetch-owner", "encoding-type"];

/** A query parameter this server does not know (a subresource such as `acl`) would change the operation: refuse it. */
function refuseUnknownParameters(query: URLSearchParams, allowed: readonly string[]): void {
    for (const name of query.keys()) {
        if (name === "x-id" || name.toLowerCase().startsWith("x-amz-") || allowed.includes(name)) continue;
        throw notImplemented(`the ${name} parameter`);
    }
}

/** Headers that would change what a request means, which this server does not implement. */
function refuseUnsupportedHeaders(headers: IncomingHttpHeaders): void {
    for (const name of ["range", "if-modified-since", "if-unmodified-since", "x-amz-write-offset-bytes"])
        if (headers[name] !== undefined) throw notImplemented(`the ${name} header`);
    if ((header(headers, "x-amz-content-sha256") ?? "").startsWith("STREAMING-") || (headers["content-encoding"] ?? "").includes("aws-chunked"))
        throw notImplemented("aws-chunked bodies");
}

/** A header's value; repeated ones joined as HTTP joins them. */
function header(headers: IncomingHttpHeaders, name: string): string | undefined {
    const value = headers[name];
    return Array.isArray(value) ? value.join(", ") : value;
}

/** Refuses a body that does not match its `Content-MD5` or hex `x-amz-content-sha256`. */
function checkBodyIntegrity(headers: IncomingHttpHeaders, body: Buffer): void {
    const md5 = header(headers, "content-md5");
    if (md5 !== undefined) {
        if (!/^[A-Za-z0-9+/]{22}==$/.test(md5)) throw new S3Refusal(400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
        if (createHash("md5").update(body).digest("base64") !== md5) throw new S3Refusal(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
    }
    const sha = header(headers, "x-amz-content-sha256");
    if (sha !== undefined && /^[0-9a-f]{64}$/.test(sha) && createHash("sha256").update(body).digest("hex") !== sha)
        throw new S3Refusal(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
}

function parseMaxKeys(raw: string | null): number {
    if (raw === null) return MAX_KEYS;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value)) throw new S3Refusal(400, "InvalidArgument", "Provided max-keys not an integer or within integer range");
    return Math.min(value, MAX_KEYS);
}

/** A comma-separated list of ETags (quoted or not) or `*` matches `etag`. */
function etagMatches(condition: string, etag: string): boolean {
    return condition
        .split(",")
        .map((part) => part.trim())
        .some((part) => part === "*" || bareEtag(part) === etag);
}

function wholeSeconds(ms: number): number {
    return Math.floor(ms / 1000) * 1000;
}

// ---- Listing ----

/** Where a listing resumes: after this key, or after every key under this common prefix. */
interface Cursor {
    readonly after: string;
    readonly skipPrefix: boolean;
}

interface Page {
    readonly keys: string[];
    readonly prefixes: string[];
    /** Set when more entries follow. */
    readonly next: Cursor | undefined;
}

/**
 * One ListObjectsV2 page over `keys` (in S3's order): the keys under `prefix` after `from`, each
 * rolled up to its common prefix when `delimiter` follows the prefix; keys and common prefixes
 * count alike against `maxKeys`.
 */
function listPage(keys: readonly string[], prefix: string, delimiter: string, maxKeys: number, from: Cursor | undefined): Page {
    const page: { keys: string[]; prefixes: string[] } = { keys: [], prefixes: [] };
    let last: Cursor | undefined;
    for (const key of keys) {
        if (!key.startsWith(prefix)) continue;
        if (from !== undefined && (compareKeys(key, from.after) <= 0 || (from.skipPrefix && key.startsWith(from.after)))) continue;
        const cut = delimiter === "" ? -1 : key.indexOf(delimiter, prefix.length);
        const entry: Cursor = cut === -1 ? { after: key, skipPrefix: false } : { after: key.slice(0, cut + delimiter.length), skipPrefix: true };
        if (entry.skipPrefix && last?.skipPrefix === true && last.after === entry.after) continue;
        if (page.keys.length + page.prefixes.length >= maxKeys) return { ...page, next: last };
        (entry.skipPrefix ? page.prefixes : page.keys).push(entry.after);
        last = entry;
    }
    return { ...page, next: undefined };
}

function encodeToken(cursor: Cursor): string {
    return Buffer.from(JSON.stringify([cursor.after, cursor.skipPrefix])).toString("base64url");
}

function decodeToken(token: string): Cursor {
    try {
        const [after, skipPrefix] = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown[];
        if (typeof after === "string" && typeof skipPrefix === "boolean") return { after, skipPrefix };
    } catch {
        // Falls through to the refusal.
    }
    throw new S3Refusal(400, "InvalidArgument", "The continuation token provided is incorrect");
}

// ---- XML ----

const XML_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/";

const XML_ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;" };

function escapeXml(value: string): string {
    return value.replace(/[&<>"'\r]/g, (char) => XML_ESCAPES[char] ?? char);
}

function element(name: string, inner: string, root = false): string {
    return `<${name}${root ? ` xmlns="${XML_NAMESPACE}"` : ""}>${inner}</${name}>`;
}

function text(name: string, value: string): string {
    return element(name, escapeXml(value));
}

function xmlReply(status: number, document: string): Reply {
    return { status, headers: { "Content-Type": "application/xml" }, body: Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${document}`) };
}

function errorReply(refusal: S3Refusal, requestId: string, resource: string): Reply {
    const extra = Object.entries(refusal.extra)
        .map(([name, value]) => text(name, value))
        .join("");
    const inner = `${text("Code", refusal.code)}${text("Message", refusal.message)}${extra}${text("Resource", resource.split("?")[0] ?? "/")}${text("RequestId", requestId)}`;
    const retryAfter: Record<string, string> = refusal.status === 503 ? { "Retry-After": "1" } : {};
    const reply = xmlReply(refusal.status, element("Error", inner));
    return { ...reply, headers: { ...reply.headers, ...retryAfter } };
}

/** The inner text of every `<name>` element (not nested in itself), entities left as they are. */
function elements(xml: string, name: string): string[] {
    return [...xml.matchAll(new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>`, "g"))].map((match) => match[1] ?? "");
}

function firstText(xml: string, name: string): string | undefined {
    const inner = elements(xml, name)[0];
    return inner === undefined ? undefined : unescapeXml(inner);
}

function unescapeXml(value: string): string {
    return value.replace(/&(?:#x([0-9a-fA-F]+)|#(\d+)|(amp|lt|gt|quot|apos));/g, (_, hex: string | undefined, decimal: string | undefined, named: string | undefined) => {
        if (hex !== undefined) return String.fromCodePoint(parseInt(hex, 16));
        if (decimal !== undefined) return String.fromCodePoint(parseInt(decimal, 10));
        return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[named as "amp"];
    });
}

function parseCompletion(xml: string): { partNumber: number; etag: string }[] {
    if (!/<CompleteMultipartUpload[\s>]/.test(xml)) throw malformedXml();
    const parts = elements(xml, "Part").map((part) => {
        const partNumber = Number(firstText(part, "PartNumber"));
        const etag = firstText(part, "ETag");
        if (!Number.isInteger(partNumber) || etag === undefined) throw malformedXml();
        return { partNumber, etag: bareEtag(etag) };
    });
    if (parts.length === 0) throw malformedXml();
    return parts;
}

// ---- Errors ----

function notImplemented(what: string): S3Refusal {
    return new S3Refusal(501, "NotImplemented", `The S3 test server does not implement ${what}`);
}

function noSuchKey(key: string): S3Refusal {
    return new S3Refusal(404, "NoSuchKey", "The specified key does not exist.", { Key: key });
}

function preconditionFailed(condition: string): S3Refusal {
    return new S3Refusal(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", { Condition: condition });
}

function malformedXml(): S3Refusal {
    return new S3Refusal(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema");
}

// ---- CLI ----

async function main(argv: readonly string[]): Promise<void> {
    const { values } = parseArgs({
        args: [...argv],
        options: {
            port: { type: "string", default: "0" },
            host: { type: "string", default: s3ServerDefaults.host },
            bucket: { type: "string", default: "lake" },
            "latency-ms": { type: "string", default: String(s3ServerDefaults.latencyMs) },
        },
    });
    const latencyMs = Number(values["latency-ms"]);
    if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new Error(`--latency-ms must be a number ≥ 0, got "${values["latency-ms"]}"`);
    const server = await S3Server.start({ port: Number(values.port), host: values.host, bucket: new MemoryBucket(values.bucket), latencyMs });
    const { accessKeyId, secretAccessKey } = server.credentials;
    process.stdout.write(
        `${server.endpoint}\nbucket ${server.bucket.name}, path-style, region ${server.region}, ${latencyMs} ms added to every request; any access key (e.g. ${accessKeyId} / ${secretAccessKey}); in memory until SIGINT/SIGTERM\n`,
    );
    const stop = (): void => void server.close();
    process.once("SIGINT", stop).once("SIGTERM", stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2));

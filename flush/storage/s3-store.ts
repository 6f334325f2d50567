/**
 * `ObjectStore` on an S3-compatible service through `@aws-sdk/client-s3`, with
 * `@aws-sdk/lib-storage` for bodies above the multipart threshold.
 *
 * Conditional writes are the SDK's `IfNoneMatch: "*"` and `IfMatch` parameters; the ETag goes out
 * unquoted (radosgw 16.2 and DigitalOcean Spaces refuse a quoted one with 412; AWS takes both).
 * Single PUTs carry `Content-MD5`, so the server refuses a body damaged on the way.
 *
 * Multipart and create-only: AWS and MinIO honour `If-None-Match` on CompleteMultipartUpload;
 * radosgw 16.2 ignores it there (and on CopyObject), measured: a second upload replaced the
 * first, and of 4 racing multipart writers of one new key 2 were told `created`. So by default
 * every body up to S3's single-PUT limit (5 GiB) goes up in one conditional PUT, which radosgw
 * does enforce. Lower `multipartThresholdBytes` only on a server that enforces the condition on
 * multipart uploads. Above the threshold the store asks HEAD first (a key already there is
 * `created: false`) and afterwards (radosgw answers multipart uploads with an empty ETag, and the
 * stored ETag must be this body's), which narrows but does not close the race on such a server.
 */
import { createHash } from "node:crypto";
import {
    DeleteObjectCommand,
    DeleteObjectsCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
    S3Client,
    type ListObjectsV2CommandOutput,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import {
    type ObjectInfo,
    type ObjectStore,
    type ObjectStoreOperation,
    ObjectStoreError,
    type PutIfAbsentResult,
    type PutIfMatchResult,
    type StoredObject,
    ObjectStoreKeyError,
    ObjectStoreUnavailableError,
    bareEtag,
    keyProblem,
    md5Hex,
    normalizePrefix,
} from "./object-store.js";
import { classifyS3Error, httpStatusOf, s3CodeOf } from "./s3-errors.js";

export interface S3Credentials {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string | undefined;
}

export interface S3ObjectStoreOptions {
    readonly bucket: string;
    /** Prepended to every key; normalized to no leading `/` and one trailing `/` (or empty). */
    readonly prefix?: string | undefined;
    /** `http(s)://host:port` of an S3-compatible service; default AWS's endpoint for the region. */
    readonly endpoint?: string | undefined;
    readonly region?: string | undefined;
    /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, Ceph). */
    readonly forcePathStyle?: boolean | undefined;
    /** Default: the SDK's chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, profiles, instance roles). */
    readonly credentials?: S3Credentials | undefined;
    /** Tries per call, the SDK's backoff between them (1 = no retry inside the store). */
    readonly maxAttempts?: number | undefined;
    /** Time to establish a TCP connection, in ms. */
    readonly connectTimeoutMs?: number | undefined;
    /** Time a socket may stay silent in the middle of a request, in ms (no limit on a whole request). */
    readonly idleTimeoutMs?: number | undefined;
    /** Bodies of at least this many bytes go up as multipart uploads: atomic create-only only where the server enforces it (not radosgw 16.2). */
    readonly multipartThresholdBytes?: number | undefined;
    /** Part size of a multipart upload (S3's minimum is 5 MiB). */
    readonly multipartPartBytes?: number | undefined;
    /** Parts of one upload in flight at once. */
    readonly multipartConcurrency?: number | undefined;
    /** Keys per listing request (S3 returns at most 1,000). */
    readonly listPageSize?: number | undefined;
}

const MiB = 1024 * 1024;

export const s3ObjectStoreDefaults = {
    prefix: "",
    endpoint: undefined,
    region: "us-east-1",
    forcePathStyle: false,
    credentials: undefined,
    maxAttempts: 3,
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 30_000,
    // S3's largest single PUT: every smaller body gets the atomic conditional PUT.
    multipartThresholdBytes: 5 * 1024 * MiB,
    multipartPartBytes: 16 * MiB,
    multipartConcurrency: 4,
    listPageSize: 1000,
} as const satisfies { [K in keyof Required<Omit<S3ObjectStoreOptions, "bucket">>]: S3ObjectStoreOptions[K] };

/** S3's limit on keys per DeleteObjects request. */
const DELETE_BATCH = 1000;

export class S3ObjectStore implements ObjectStore {
    readonly location: string;
    /** `location` and the endpoint's host, for a start-up log line. */
    readonly description: string;
    readonly #client: S3Client;
    readonly #bucket: string;
    readonly #prefix: string;
    readonly #secrets: readonly string[];
    readonly #multipartThreshold: number;
    readonly #partBytes: number;
    readonly #concurrency: number;
    readonly #pageSize: number;

    constructor(options: S3ObjectStoreOptions) {
        const defaults = s3ObjectStoreDefaults;
        const endpoint = options.endpoint ?? defaults.endpoint;
        const credentials = options.credentials ?? defaults.credentials;
        this.#bucket = options.bucket;
        this.#prefix = normalizePrefix(options.prefix ?? defaults.prefix);
        this.#multipartThreshold = options.multipartThresholdBytes ?? defaults.multipartThresholdBytes;
        this.#partBytes = options.multipartPartBytes ?? defaults.multipartPartBytes;
        this.#concurrency = options.multipartConcurrency ?? defaults.multipartConcurrency;
        this.#pageSize = options.listPageSize ?? defaults.listPageSize;
        this.location = `s3://${this.#bucket}/${this.#prefix}`;
        this.description = endpoint === undefined ? this.location : `${this.location} at ${hostOf(endpoint)}`;
        this.#secrets = [
            credentials?.secretAccessKey,
            credentials?.accessKeyId,
            credentials?.sessionToken,
            process.env.AWS_SECRET_ACCESS_KEY,
            process.env.AWS_ACCESS_KEY_ID,
            process.env.AWS_SESSION_TOKEN,
        ].filter((secret): secret is string => secret !== undefined && secret !== "");
        this.#client = new S3Client({
            region: options.region ?? defaults.region,
            forcePathStyle: options.forcePathStyle ?? defaults.forcePathStyle,
            maxAttempts: options.maxAttempts ?? defaults.maxAttempts,
            // S3-compatible servers differ in the flexible checksums they accept; Content-MD5 (sent below) they all check.
            requestChecksumCalculation: "WHEN_REQUIRED",
            responseChecksumValidation: "WHEN_REQUIRED",
            requestHandler: {
                connectionTimeout: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
                socketTimeout: options.idleTimeoutMs ?? defaults.idleTimeoutMs,
            },
            ...(endpoint === undefined ? {} : { endpoint }),
            ...(credentials === undefined ? {} : { credentials: sdkCredentials(credentials) }),
        });
    }

    async putIfAbsent(key: string, body: Uint8Array): Promise<PutIfAbsentResult> {
        const full = this.#full("putIfAbsent", key);
        try {
            if (this.#multipart(body)) return await this.#putLargeIfAbsent(key, full, body);
            const output = await this.#client.send(
                new PutObjectCommand({ Bucket: this.#bucket, Key: full, Body: body, IfNoneMatch: "*", ContentMD5: md5Base64(body), ContentLength: body.byteLength }),
            );
            return { created: true, etag: await this.#etagOf("putIfAbsent", key, output.ETag) };
        } catch (error) {
            if (httpStatusOf(error) === 412) return { created: false };
            throw this.#error(error, "putIfAbsent", key);
        }
    }

    async putIfMatch(key: string, body: Uint8Array, etag: string): Promise<PutIfMatchResult> {
        const full = this.#full("putIfMatch", key);
        try {
            const output = await this.#client.send(
                new PutObjectCommand({
                    Bucket: this.#bucket,
                    Key: full,
                    Body: body,
                    IfMatch: bareEtag(etag),
                    ContentMD5: md5Base64(body),
                    ContentLength: body.byteLength,
                }),
            );
            return { replaced: true, etag: await this.#etagOf("putIfMatch", key, output.ETag) };
        } catch (error) {
            const status = httpStatusOf(error);
            if (status === 412 || (status === 404 && s3CodeOf(error) !== "NoSuchBucket")) return { replaced: false };
            const failure = this.#error(error, "putIfMatch", key);
            if (status !== undefined && failure.retryable) return this.#settleConflict(key, full, body, etag, failure);
            throw failure;
        }
    }

    /**
     * A conditional PUT answered 5xx or 409 after every attempt: the server decided, so HEAD says
     * what. Our bytes there: replaced. Another version there: refused (the object moved on). The
     * old version still there: nothing happened, and the error stands.
     */
    // Invariant kept: `replaced: true` only when the stored bytes' ETag is the one `body` gets (CAS bodies are unique).
    async #settleConflict(key: string, full: string, body: Uint8Array, etag: string, failure: ObjectStoreError): Promise<PutIfMatchResult> {
        const stored = await this.#head("putIfMatch", key, full).catch(() => {
            throw failure;
        });
        if (stored === undefined) return { replaced: false };
        if (stored.etag === this.expectedEtag(body)) return { replaced: true, etag: stored.etag };
        if (stored.etag !== bareEtag(etag)) return { replaced: false };
        throw failure;
    }

    async get(key: string): Promise<StoredObject | undefined> {
        const full = this.#full("get", key);
        try {
            const output = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: full }));
            if (output.Body === undefined) throw new ObjectStoreUnavailableError(this.location, { operation: "get", key }, "response without a body");
            const body = await output.Body.transformToByteArray();
            return { key, body, size: body.byteLength, etag: bareEtag(output.ETag ?? ""), modifiedMs: output.LastModified?.getTime() ?? 0 };
        } catch (error) {
            if (isMissingKey(error)) return undefined;
            throw this.#error(error, "get", key);
        }
    }

    async head(key: string): Promise<ObjectInfo | undefined> {
        return this.#head("head", key, this.#full("head", key));
    }

    async *list(prefix: string): AsyncIterable<ObjectInfo> {
        const full = this.#full("list", prefix, true);
        for await (const page of this.#pages("list", prefix, full, undefined)) {
            for (const object of page.Contents ?? []) {
                if (object.Key === undefined) continue;
                yield {
                    key: object.Key.slice(this.#prefix.length),
                    size: object.Size ?? 0,
                    etag: bareEtag(object.ETag ?? ""),
                    modifiedMs: object.LastModified?.getTime() ?? 0,
                };
            }
        }
    }

    async *listPrefixes(prefix: string): AsyncIterable<string> {
        const full = this.#full("listPrefixes", prefix, true);
        for await (const page of this.#pages("listPrefixes", prefix, full, "/")) {
            for (const common of page.CommonPrefixes ?? []) if (common.Prefix !== undefined) yield common.Prefix.slice(this.#prefix.length);
        }
    }

    async delete(key: string): Promise<void> {
        const full = this.#full("delete", key);
        try {
            await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: full }));
        } catch (error) {
            if (isMissingKey(error)) return;
            throw this.#error(error, "delete", key);
        }
    }

    async deleteMany(keys: readonly string[]): Promise<void> {
        const full = keys.map((key) => this.#full("deleteMany", key));
        for (let start = 0; start < full.length; start += DELETE_BATCH) {
            const batch = full.slice(start, start + DELETE_BATCH);
            let failed: { Key?: string | undefined; Code?: string | undefined }[];
            try {
                const output = await this.#client.send(new DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
                failed = (output.Errors ?? []).filter((entry) => entry.Code !== "NoSuchKey");
            } catch (error) {
                throw this.#error(error, "deleteMany", undefined);
            }
            const first = failed[0];
            if (first !== undefined) {
                const synthetic = { Code: first.Code, $metadata: { httpStatusCode: statusForCode(first.Code) } };
                throw this.#error(synthetic, "deleteMany", first.Key?.slice(this.#prefix.length), `${failed.length} of ${batch.length} keys not deleted`);
            }
        }
    }

    async check(): Promise<void> {
        try {
            await this.#client.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#prefix, MaxKeys: 1 }));
        } catch (error) {
            throw this.#error(error, "check", undefined);
        }
    }

    expectedEtag(body: Uint8Array): string {
        return this.#multipart(body) ? multipartEtag(body, this.#partBytes) : md5Hex(body);
    }

    /** Closes the SDK's sockets. */
    destroy(): void {
        this.#client.destroy();
    }

    // Invariant kept: `created: true` only when, right after the upload, the key holds this body's ETag.
    async #putLargeIfAbsent(key: string, full: string, body: Uint8Array): Promise<PutIfAbsentResult> {
        if ((await this.#head("putIfAbsent", key, full)) !== undefined) return { created: false };
        const upload = new Upload({
            client: this.#client,
            params: { Bucket: this.#bucket, Key: full, Body: body, IfNoneMatch: "*" },
            partSize: this.#partBytes,
            queueSize: this.#concurrency,
        });
        await upload.done();
        // radosgw answers a multipart upload with an empty ETag, and may let a racing upload replace this one: ask.
        const stored = await this.#head("putIfAbsent", key, full);
        if (stored === undefined) throw new ObjectStoreUnavailableError(this.location, { operation: "putIfAbsent", key }, "object missing right after its upload");
        return stored.etag === this.expectedEtag(body) ? { created: true, etag: stored.etag } : { created: false };
    }

    /** Multipart above the threshold, and only for more than one part (lib-storage PUTs a single part). */
    #multipart(body: Uint8Array): boolean {
        return body.byteLength >= this.#multipartThreshold && body.byteLength > this.#partBytes;
    }

    /** The ETag a PUT answered with, or the one HEAD reports when the answer had none. */
    async #etagOf(operation: ObjectStoreOperation, key: string, answered: string | undefined): Promise<string> {
        const etag = bareEtag(answered ?? "");
        if (etag !== "") return etag;
        const stored = await this.#head(operation, key, this.#prefix + key);
        if (stored === undefined) throw new ObjectStoreUnavailableError(this.location, { operation, key }, "object missing right after its write");
        return stored.etag;
    }

    async #head(operation: ObjectStoreOperation, key: string, full: string): Promise<ObjectInfo | undefined> {
        try {
            const output = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: full }));
            return { key, size: output.ContentLength ?? 0, etag: bareEtag(output.ETag ?? ""), modifiedMs: output.LastModified?.getTime() ?? 0 };
        } catch (error) {
            // HEAD has no body, so a missing bucket is a bare 404 too: `check()` tells them apart.
            if (httpStatusOf(error) === 404) return undefined;
            throw this.#error(error, operation, key);
        }
    }

    async *#pages(operation: ObjectStoreOperation, prefix: string, full: string, delimiter: string | undefined): AsyncIterable<ListObjectsV2CommandOutput> {
        let token: string | undefined;
        do {
            let page: ListObjectsV2CommandOutput;
            try {
                page = await this.#client.send(
                    new ListObjectsV2Command({
                        Bucket: this.#bucket,
                        Prefix: full,
                        MaxKeys: this.#pageSize,
                        ...(delimiter === undefined ? {} : { Delimiter: delimiter }),
                        ...(token === undefined ? {} : { ContinuationToken: token }),
                    }),
                );
            } catch (error) {
                throw this.#error(error, operation, prefix);
            }
            yield page;
            token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
        } while (token !== undefined);
    }

    #full(operation: ObjectStoreOperation, key: string, isPrefix = false): string {
        const full = this.#prefix + key;
        const problem = keyProblem(key, Buffer.byteLength(full), isPrefix);
        if (problem !== undefined) throw new ObjectStoreKeyError(this.location, { operation, key }, problem);
        return full;
    }

    #error(error: unknown, operation: ObjectStoreOperation, key: string | undefined, detail?: string): ObjectStoreError {
        if (error instanceof ObjectStoreError) return error;
        return classifyS3Error(error, { location: this.location, operation, key, detail, secrets: this.#secrets });
    }
}

function md5Base64(body: Uint8Array): string {
    return md5(body).toString("base64");
}

/** S3's ETag of a multipart upload: the MD5 of the parts' MD5s, a dash, the part count. */
export function multipartEtag(body: Uint8Array, partBytes: number): string {
    const digests: Buffer[] = [];
    for (let start = 0; start < body.byteLength; start += partBytes) digests.push(md5(body.subarray(start, start + partBytes)));
    return `${md5(Buffer.concat(digests)).toString("hex")}-${digests.length}`;
}

function md5(bytes: Uint8Array): Buffer {
    return createHash("md5").update(bytes).digest();
}

function isMissingKey(error: unknown): boolean {
    return httpStatusOf(error) === 404 && s3CodeOf(error) !== "NoSuchBucket";
}

/** DeleteObjects reports per-key failures as codes without statuses; map the common ones. */
function statusForCode(code: string | undefined): number {
    if (code === "AccessDenied") return 403;
    if (code === "SlowDown" || code === "InternalError") return 503;
    return 400;
}

function sdkCredentials(credentials: S3Credentials): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } {
    const { accessKeyId, secretAccessKey, sessionToken } = credentials;
    return sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
}

function hostOf(endpoint: string): string {
    try {
        return new URL(endpoint).host;
    } catch {
        return "(invalid endpoint)";
    }
}

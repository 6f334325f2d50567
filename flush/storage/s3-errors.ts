/**
 * Turns what the AWS SDK throws into the seam's typed errors, retryable or not. Only the HTTP
 * status, the S3 error code, the request id and (for socket errors) the socket's own message are
 * kept; the SDK's error object is dropped, since S3 echoes `AWSAccessKeyId`, `StringToSign` and
 * the like in some error bodies. Configured secrets are scrubbed from whatever text remains.
 */
import {
    type ObjectStoreError,
    type ObjectStoreErrorContext,
    type ObjectStoreOperation,
    ObjectStoreDeniedError,
    ObjectStoreMisconfiguredError,
    ObjectStoreRejectedError,
    ObjectStoreUnavailableError,
} from "./object-store.js";

/** S3 codes that say "later" whatever their status (some come with a 400 or 403). */
const TRANSIENT_CODES = new Set([
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "BandwidthLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
    "ConditionalRequestConflict",
    "RequestTimeTooSkewed",
    "ExpiredToken",
    "TokenRefreshRequired",
]);

/** S3 codes that name a setting: the bucket, its region or the endpoint. */
const MISCONFIGURED_CODES = new Set([
    "NoSuchBucket",
    "InvalidBucketName",
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "InvalidRegion",
]);

/** Socket and timeout failures: no response arrived. */
const NETWORK_CODES = new Set([
    "ECONNREFUSED",
    "ECONNRESET",
    "ECONNABORTED",
    "ETIMEDOUT",
    "EPIPE",
    "ENOTFOUND",
    "EAI_AGAIN",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EADDRNOTAVAIL",
    "ERR_STREAM_PREMATURE_CLOSE",
]);

/** The parts of an SDK error this module reads. */
interface SdkErrorShape {
    readonly name?: unknown;
    readonly code?: unknown;
    readonly Code?: unknown;
    readonly message?: unknown;
    readonly $metadata?: { readonly httpStatusCode?: unknown; readonly requestId?: unknown; readonly attempts?: unknown };
}

export function httpStatusOf(error: unknown): number | undefined {
    const status = (error as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
    return typeof status === "number" ? status : undefined;
}

/** The S3 error code (`NoSuchKey`, `SlowDown`), falling back to the SDK's error name. */
export function s3CodeOf(error: unknown): string | undefined {
    const shape = error as SdkErrorShape | undefined;
    if (typeof shape?.Code === "string") return shape.Code;
    return typeof shape?.name === "string" ? shape.name : undefined;
}

export interface ClassifyContext {
    readonly location: string;
    readonly operation: ObjectStoreOperation;
    readonly key?: string | undefined;
    /** What the caller adds, e.g. "3 of 1000 keys not deleted". */
    readonly detail?: string | undefined;
    /** Strings that must never appear in an error: the secret key, the access key id, a session token. */
    readonly secrets: readonly string[];
}

export function classifyS3Error(error: unknown, context: ClassifyContext): ObjectStoreError {
    const shape = error as SdkErrorShape | undefined;
    const status = httpStatusOf(error);
    const s3Code = s3CodeOf(error);
    const attempts = shape?.$metadata?.attempts;
    const requestId = typeof shape?.$metadata?.requestId === "string" ? shape.$metadata.requestId : undefined;
    const after = typeof attempts === "number" && attempts > 1 ? `after ${attempts} attempts` : undefined;
    const base = { operation: context.operation, key: context.key, requestId };
    const make = (Kind: ErrorKind, fields: Pick<ObjectStoreErrorContext, "status" | "reason">, detail?: string) =>
        new Kind(context.location, { ...base, ...fields }, redact([detail, context.detail, after].filter((part) => part !== undefined).join(", ") || undefined, context.secrets));

    if (status === undefined) {
        const socketCode = typeof shape?.code === "string" ? shape.code : undefined;
        if (s3Code === "CredentialsProviderError") return make(ObjectStoreDeniedError, { reason: "NoCredentials" });
        const message = typeof shape?.message === "string" ? shape.message : String(error);
        const reason = socketCode !== undefined && NETWORK_CODES.has(socketCode) ? socketCode : (s3Code ?? "Error");
        return make(ObjectStoreUnavailableError, { reason }, message);
    }
    const fields = { status, reason: s3Code };
    if (s3Code !== undefined && TRANSIENT_CODES.has(s3Code)) return make(ObjectStoreUnavailableError, fields);
    if ((s3Code !== undefined && MISCONFIGURED_CODES.has(s3Code)) || status === 301) return make(ObjectStoreMisconfiguredError, fields);
    if (status === 401 || status === 403) return make(ObjectStoreDeniedError, fields);
    if (status === 408 || status === 409 || status === 429 || status >= 500) return make(ObjectStoreUnavailableError, fields);
    return make(ObjectStoreRejectedError, fields);
}

type ErrorKind = new (location: string, context: ObjectStoreErrorContext, detail?: string) => ObjectStoreError;

/** Replaces every occurrence of a secret (and any `user:password@` in a URL) with `***`. */
export function redact(text: string | undefined, secrets: readonly string[]): string | undefined {
    if (text === undefined) return undefined;
    let clean = text.replace(/\/\/[^/\s@]+@/g, "//***@");
    for (const secret of secrets) if (secret !== "") clean = clean.split(secret).join("***");
    return clean;
}

/**
 * What a request can fail with, each error carrying its HTTP status. The routes format them in
 * the shape of the API family the client speaks (InfluxDB 1.x, 2.x, 3, Arc).
 */
import { SluiceError } from "../src/errors.js";

export abstract class IngestError extends SluiceError {
    abstract readonly status: number;
}

/** The request itself is wrong (parameters, encoding, names): never retried by clients. */
export class BadRequestError extends IngestError {
    readonly code = "bad-request";
    readonly status = 400;
}

export class UnauthorizedError extends IngestError {
    readonly code = "unauthorized";
    readonly status = 401;
    constructor() {
        super("the request was not authenticated: send a token (Authorization: Token|Bearer <token>, Basic with the token as password, ?p=<token> or x-api-key)");
    }
}

export class PayloadTooLargeError extends IngestError {
    readonly code = "payload-too-large";
    readonly status = 413;
    constructor(
        readonly limit: number,
        where: string,
    ) {
        super(`request body ${where} is larger than http.max_body_bytes (${limit} bytes)`);
    }
}

/** A request whose rows need more buffer than ingest.max_buffered_bytes could ever hold: retrying cannot help, splitting can. */
export class BeyondBudgetError extends IngestError {
    readonly code = "beyond-budget";
    readonly status = 413;
    constructor(
        readonly bytes: number,
        readonly limit: number,
    ) {
        super(`the request's rows need about ${bytes} bytes of buffer, more than ingest.max_buffered_bytes (${limit} bytes) can ever hold: send it in smaller requests`);
    }
}

export class UnsupportedEncodingError extends IngestError {
    readonly code = "unsupported-encoding";
    readonly status = 415;
}

/**
 * Sluice cannot take the write now (buffers at their budget, WAL write failed, shutting
 * down): nothing of the request was stored, and the same request may succeed later.
 */
export class UnavailableError extends IngestError {
    readonly code = "unavailable";
    readonly status = 503;
    override readonly retryable = true;
    constructor(
        message: string,
        readonly retryAfterSeconds: number,
        options?: { cause?: unknown },
    ) {
        super(message, options);
    }
}

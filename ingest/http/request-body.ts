/**
 * Phase two of a request: its body, read from the connection only when a route asks for it
 * (after the app checked the token), never beyond the size limit, its bytes taken from the
 * server's `BodyBudget` before they are read.
 */
import { Writable } from "node:stream";
import { errorOf } from "../../src/errors.js";
import { IngestError, PayloadTooLargeError } from "../errors.js";
import type { BodyLease } from "./body-budget.js";

/** How the request frames its body: none, `Content-Length`, or chunked (length unknown). */
export type BodyFraming = { readonly kind: "none" } | { readonly kind: "length"; readonly bytes: number } | { readonly kind: "chunked" };

/** The part of a `Readable` both adapters' request objects offer (hyper-express's Request only mimics one: pipe it, do not rely on `on("data")` to start it). */
export interface ReadableLike {
    on(event: "close", listener: () => void): unknown;
    on(event: "error", listener: (error: Error) => void): unknown;
    pipe(destination: Writable): unknown;
    unpipe(destination: Writable): unknown;
    pause(): unknown;
}

/** What an adapter gives for one request's body. */
export interface BodySource {
    readonly framing: BodyFraming;
    readonly readable: ReadableLike;
    /** True once the whole body arrived (false after an `end` caused by the client going away). */
    complete(): boolean;
    /** Called once before the first byte is read (node:http answers `Expect: 100-continue` here). */
    beforeRead?(): void;
}

/** The body did not arrive whole (the client went away): nothing of it is used; the reply rarely reaches anyone. */
export class IncompleteBodyError extends IngestError {
    readonly code = "incomplete-body";
    readonly status = 400;
}

/** `Content-Length` and `Transfer-Encoding` as a framing; HTTP parsers have already refused conflicting or invalid ones. */
export function framingOf(contentLength: string | undefined, transferEncoding: string | undefined): BodyFraming {
    if (transferEncoding !== undefined && transferEncoding !== "") return { kind: "chunked" };
    const bytes = contentLength === undefined ? 0 : Number(contentLength);
    return Number.isSafeInteger(bytes) && bytes > 0 ? { kind: "length", bytes } : { kind: "none" };
}

/** The smallest step a chunked body takes from the budget at a time. */
const CHUNKED_STEP_BYTES = 64 * 1024;

export class RequestBody {
    #state: "unread" | "reading" | "read" | "abandoned";
    #body: Promise<Buffer> | undefined;

    constructor(
        readonly source: BodySource,
        readonly lease: BodyLease,
    ) {
        this.#state = source.framing.kind === "none" ? "read" : "unread";
    }

    /** True when nothing of the body is left on the connection (it can be kept alive). */
    get fullyRead(): boolean {
        return this.#state === "read";
    }

    /**
     * The raw body (not yet decompressed). Above `limit` bytes: `PayloadTooLargeError`, the rest
     * left unread. No room in the budget in time: `UnavailableError` (503), nothing read.
     * A second call gives the same body.
     */
    read(limit: number): Promise<Buffer> {
        this.#body ??= this.#read(limit);
        return this.#body;
    }

    /** Takes `bytes` more from the budget for this request (the body after gunzip). */
    hold(bytes: number): Promise<void> {
        return this.lease.hold(bytes);
    }

    async #read(limit: number): Promise<Buffer> {
        const { framing } = this.source;
        if (framing.kind === "none") return Buffer.alloc(0);
        if (framing.kind === "length" && framing.bytes > limit) {
            this.#state = "abandoned";
            throw new PayloadTooLargeError(limit, "as declared by Content-Length");
        }
        try {
            if (framing.kind === "length") {
                await this.lease.hold(framing.bytes);
                return await this.#readDeclared(framing.bytes);
            }
            return await this.#readChunked(limit);
        } catch (error) {
            this.#state = "abandoned";
            throw error;
        }
    }

    // Invariant kept: holds exactly the declared bytes, copied once into their final buffer.
    async #readDeclared(bytes: number): Promise<Buffer> {
        const body = Buffer.allocUnsafe(bytes);
        let at = 0;
        await this.#pipe((chunk) => {
            if (at + chunk.length > bytes) throw new IncompleteBodyError("the body is longer than its Content-Length");
            body.set(chunk, at);
            at += chunk.length;
        });
        if (at !== bytes) throw new IncompleteBodyError(`the body ended after ${at} of ${bytes} bytes`);
        return body;
    }

    // Invariant kept: never holds more than `limit` body bytes, and takes them from the budget
    // before keeping them.
    async #readChunked(limit: number): Promise<Buffer> {
        const chunks: Buffer[] = [];
        let size = 0;
        await this.#pipe(async (chunk) => {
            size += chunk.length;
            if (size > limit) throw new PayloadTooLargeError(limit, "as sent");
            if (size > this.lease.bytes) await this.lease.hold(Math.min(limit, Math.max(size, 2 * this.lease.bytes, CHUNKED_STEP_BYTES)) - this.lease.bytes);
            chunks.push(chunk);
        });
        return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    }

    /** Feeds every chunk to `take`, the connection paused while a promise it returns is pending. */
    #pipe(take: (chunk: Buffer) => void | Promise<void>): Promise<void> {
        const { readable } = this.source;
        this.#state = "reading";
        return new Promise<void>((resolve, reject) => {
            const sink = new Writable({
                write: (chunk: Buffer, _encoding, callback) => {
                    let result: void | Promise<void>;
                    try {
                        result = take(chunk);
                    } catch (error) {
                        callback(errorOf(error));
                        return;
                    }
                    if (result === undefined) callback();
                    else
                        result.then(() => {
                            callback();
                        }, callback);
                },
                // A source also ends when its client went away (hyper-express): only a whole body counts.
                final: (callback) => {
                    callback(this.source.complete() ? undefined : new IncompleteBodyError("the client went away before its body ended"));
                },
            });
            sink.on("finish", () => {
                this.#state = "read";
                resolve();
            });
            sink.on("error", (error) => {
                readable.unpipe(sink);
                readable.pause();
                reject(error);
            });
            readable.on("error", (error) => sink.destroy(error));
            readable.on("close", () => {
                if (!sink.writableEnded) sink.destroy(new IncompleteBodyError("the client went away before its body ended"));
            });
            this.source.beforeRead?.();
            readable.pipe(sink);
        });
    }
}

/**
 * The request and reply the routes see, whatever HTTP library carries them (DESIGN.md §5): the
 * adapters translate to and from these, and nothing else knows which library is in use.
 *
 * A request comes in two phases: method, path, query and headers first (the app checks the
 * token on them), the body only when a route reads it. A reply sent before the body was read
 * whole closes the connection, so an unread body is never read at all.
 */
import type { Logger } from "../../src/log.js";
import type { BodyBudget } from "./body-budget.js";
import type { RequestBody } from "./request-body.js";

export interface HttpRequest {
    readonly method: string;
    /** The path without the query string. */
    readonly path: string;
    /** The raw query string, without `?` (decode it with `parseQuery`). */
    readonly rawQuery: string;
    /** Header values by lower-case name (repeated headers joined with ", "). */
    readonly headers: ReadonlyMap<string, string>;
    /** Phase two: the body, read on demand (routes use `decodedBody`). */
    readonly body: RequestBody;
    /** The client's IP address, looked up on demand (the log of rejected requests names it). */
    readonly clientAddress?: () => string | undefined;
}

export interface HttpReply {
    readonly status: number;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: string | Buffer;
}

export type RequestHandler = (request: HttpRequest) => Promise<HttpReply>;

export interface ListenOptions {
    readonly host: string;
    readonly port: number;
    /** Bytes of request bodies held in memory at once, across all requests. */
    readonly budget: BodyBudget;
    /** Connections open at once: at the cap a new one closes an idle one (ConnectionTable; node:http only). */
    readonly maxConnections: number;
    /** Time to receive a request's headers, from the connection's first byte or from the end of the previous request (node:http). */
    readonly headersTimeoutMs: number;
    /** Time to receive a whole request, headers and body (node:http). */
    readonly requestTimeoutMs: number;
    /** How long an idle keep-alive connection stays open (node:http). */
    readonly keepAliveTimeoutMs: number;
    /** On close, how long requests in flight may still take before their connections are cut. */
    readonly closeGraceMs: number;
    /** Where refused connections are reported. */
    readonly log: Logger;
}

export interface ListeningServer {
    readonly host: string;
    readonly port: number;
    /** Stops accepting connections and resolves once open requests have been answered. */
    close(): Promise<void>;
}

export function jsonReply(status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): HttpReply {
    return { status, headers: { "content-type": "application/json; charset=utf-8", ...headers }, body: JSON.stringify(value) };
}

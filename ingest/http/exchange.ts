/**
 * The request and reply the routes see, whatever HTTP library carries them (DESIGN.md §5): the
 * adapters translate to and from these, and nothing else knows which library is in use.
 */

export interface HttpRequest {
    readonly method: string;
    /** The path without the query string. */
    readonly path: string;
    /** The raw query string, without `?` (decode it with `parseQuery`). */
    readonly rawQuery: string;
    /** Header values by lower-case name (repeated headers joined with ", "). */
    readonly headers: ReadonlyMap<string, string>;
    /** The raw body, as received (not yet decompressed). */
    readonly body: Buffer;
    /** Set when the body was larger than the limit and not read (the route answers 413). */
    readonly oversized?: boolean;
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
    /** Bodies above this many bytes are refused with 413 before they are read whole. */
    readonly maxBodyBytes: number;
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

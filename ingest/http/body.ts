/** Request bodies: Content-Encoding (gzip, multi-member too) undone within the size limit. */
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { BadRequestError, PayloadTooLargeError, UnsupportedEncodingError } from "../errors.js";
import type { HttpRequest } from "./exchange.js";

const gunzipAsync = promisify(gunzip);
const GZIP_MAGIC = [0x1f, 0x8b] as const;

export function looksGzipped(body: Buffer): boolean {
    return body.length >= 2 && body[0] === GZIP_MAGIC[0] && body[1] === GZIP_MAGIC[1];
}

// Invariant kept: never inflates more than `limit` bytes (a decompression bomb gets a 413, not
// the memory it asks for).
export async function gunzipWithin(body: Buffer, limit: number): Promise<Buffer> {
    try {
        return await gunzipAsync(body, { maxOutputLength: limit });
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw new PayloadTooLargeError(limit, "after gunzip");
        throw new BadRequestError(`body is not valid gzip: ${(error as Error).message}`);
    }
}

/**
 * The body as the client meant it: `Content-Encoding: gzip` (or `x-gzip`) is inflated,
 * `identity` or none is taken as is, anything else is refused. With `sniffGzip`, a gzip magic
 * number is inflated without the header too (Arc's msgpack clients rely on it).
 */
export async function decodedBody(request: HttpRequest, limit: number, sniffGzip = false): Promise<Buffer> {
    const encoding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
    if (encoding === "gzip" || encoding === "x-gzip") return gunzipWithin(request.body, limit);
    if (encoding !== "identity" && encoding !== "") {
        throw new UnsupportedEncodingError(`Content-Encoding "${encoding}" is not supported (use gzip or identity)`);
    }
    return sniffGzip && looksGzipped(request.body) ? gunzipWithin(request.body, limit) : request.body;
}

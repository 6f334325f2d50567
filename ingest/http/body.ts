/** Request bodies: Content-Encoding (gzip, multi-member too) undone within the size limit. */
import { createGunzip } from "node:zlib";
import { BadRequestError, IngestError, PayloadTooLargeError, UnsupportedEncodingError } from "../errors.js";
import type { HttpRequest } from "./exchange.js";
import { messageOf } from "../../src/errors.js";

const GZIP_MAGIC = [0x1f, 0x8b] as const;
/** Inflated bytes per step: each step is taken from the body budget before it is kept. */
const INFLATE_CHUNK_BYTES = 256 * 1024;

export function looksGzipped(body: Buffer): boolean {
    return body.length >= 2 && body[0] === GZIP_MAGIC[0] && body[1] === GZIP_MAGIC[1];
}

// Invariant kept: never inflates more than `limit` bytes (a decompression bomb gets a 413, not
// the memory it asks for), and takes each inflated step from `hold` before keeping it.
export async function gunzipWithin(body: Buffer, limit: number, hold: (bytes: number) => Promise<void> = async () => undefined): Promise<Buffer> {
    const inflater = createGunzip({ chunkSize: INFLATE_CHUNK_BYTES });
    inflater.end(body);
    const chunks: Buffer[] = [];
    let size = 0;
    try {
        for await (const chunk of inflater as AsyncIterable<Buffer>) {
            size += chunk.length;
            if (size > limit) throw new PayloadTooLargeError(limit, "after gunzip");
            await hold(chunk.length);
            chunks.push(chunk);
        }
    } catch (error) {
        if (error instanceof IngestError) throw error;
        throw new BadRequestError(`body is not valid gzip: ${messageOf(error)}`);
    } finally {
        inflater.destroy();
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/**
 * The body as the client meant it: `Content-Encoding: gzip` (or `x-gzip`) is inflated,
 * `identity` or none is taken as is, anything else is refused (before the body is read). With
 * `sniffGzip`, a gzip magic number is inflated without the header too (Arc's msgpack clients
 * rely on it). Raw and inflated bytes both count against the server's body budget until the
 * reply is sent; each is limited to `limit` bytes.
 */
export async function decodedBody(request: HttpRequest, limit: number, sniffGzip = false): Promise<Buffer> {
    const encoding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
    const gzip = encoding === "gzip" || encoding === "x-gzip";
    if (!gzip && encoding !== "identity" && encoding !== "") {
        throw new UnsupportedEncodingError(`Content-Encoding "${encoding}" is not supported (use gzip or identity)`);
    }
    const raw = await request.body.read(limit);
    const hold = (bytes: number) => request.body.hold(bytes);
    if (gzip) return gunzipWithin(raw, limit, hold);
    return sniffGzip && looksGzipped(raw) ? gunzipWithin(raw, limit, hold) : raw;
}

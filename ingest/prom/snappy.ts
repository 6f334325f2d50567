/**
 * Snappy's block format (remote write 1.0 bodies; the framed format is refused), undone within
 * the body limit. The block's varint preamble states its uncompressed length: it is checked
 * against the limit before anything is allocated, so a decompression bomb gets a 413.
 *
 * Implementations, chosen once at load. Measured here on 2,000-sample Prometheus-like requests
 * (460 KB uncompressed, 53 KB compressed), ms per request over 3 runs: `snappy` 7.4 (napi-rs,
 * Rust) 0.21–0.38 with `copyOutputData` (its default external buffers took RSS to 1.7 GB in a
 * loop and ran 0.36–1.6), `hysnappy` 1.1 (a C decoder compiled to wasm) 0.19–0.50, `snappyjs` 0.7
 * (pure JS) 0.97–1.23. So `snappy`, a prebuilt binary per platform installed as an optional
 * dependency (no install script); when it cannot load (a platform without one,
 * `--omit=optional`), `hysnappy`, whose wasm memory grows to the largest body and is never
 * returned. Not `snappyjs`: given a truncated block it returns the full length with the tail
 * left zero instead of failing, which would turn a cut body into silently wrong data.
 */
import { createRequire } from "node:module";
import { snappyUncompressor } from "hysnappy";
import { BadRequestError, PayloadTooLargeError } from "../errors.js";
import { messageOf } from "../../src/errors.js";

/** One way to undo a snappy block whose uncompressed length (from its preamble) is already checked. */
export interface SnappyBlockCodec {
    readonly name: "snappy (native)" | "hysnappy (wasm)";
    uncompress(block: Buffer, uncompressedLength: number): Buffer;
}

interface NativeSnappy {
    uncompressSync(input: Uint8Array, options: { asBuffer: true; copyOutputData: true }): Buffer;
}

/** The wasm decoder, instantiated at its first use. */
function wasmCodec(): SnappyBlockCodec {
    let uncompress: ((input: Uint8Array, outputLength: number) => Uint8Array) | undefined;
    return {
        name: "hysnappy (wasm)",
        uncompress: (block, uncompressedLength) => {
            uncompress ??= snappyUncompressor();
            const out = uncompress(block, uncompressedLength);
            return Buffer.from(out.buffer, out.byteOffset, out.length);
        },
    };
}

const wasm = wasmCodec();

/** The native binding when it loads on this platform, else the wasm codec. */
function loadCodec(): SnappyBlockCodec {
    try {
        const native = createRequire(import.meta.url)("snappy") as NativeSnappy;
        return { name: "snappy (native)", uncompress: (block) => native.uncompressSync(block, { asBuffer: true, copyOutputData: true }) };
    } catch {
        return wasm;
    }
}

export const SNAPPY_CODECS = { native: loadCodec(), wasm } as const;

/** Snappy's framed format starts with its stream identifier chunk: 0xff, length 6, "sNaPpY". */
const FRAMED_MAGIC = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);

/** The uncompressed length a block's preamble states (a varint of at most 32 bits), or -1 when it is malformed. */
export function blockLength(block: Uint8Array): number {
    let value = 0;
    for (let i = 0; i < 5 && i < block.length; i++) {
        const byte = block[i]!;
        value += (byte & 0x7f) * 2 ** (7 * i);
        if (byte < 0x80) return value <= 0xffff_ffff ? value : -1;
    }
    return -1;
}

// Invariant kept: never allocates more than `limit` bytes for the output, whatever the body says.
export function uncompressBlock(body: Buffer, limit: number, codec: SnappyBlockCodec = SNAPPY_CODECS.native): Buffer {
    if (body.length === 0) return body;
    if (body.length >= FRAMED_MAGIC.length && body.subarray(0, FRAMED_MAGIC.length).equals(FRAMED_MAGIC)) {
        throw new BadRequestError("body is snappy's framed format: remote write uses the block format (Content-Encoding: snappy)");
    }
    const length = blockLength(body);
    if (length < 0) throw new BadRequestError("body is not snappy-compressed (block format): its length preamble is malformed");
    if (length > limit) throw new PayloadTooLargeError(limit, `after snappy decompression (${length} bytes)`);
    let out: Buffer;
    try {
        out = codec.uncompress(body, length);
    } catch (error) {
        throw new BadRequestError(`body is not valid snappy (block format): ${messageOf(error)}`);
    }
    if (out.length !== length) throw new BadRequestError(`body is not valid snappy (block format): it decompressed to ${out.length} bytes, its preamble says ${length}`);
    return out;
}

/** `uncompressBlock` with the decompressed size taken from `hold` (the server's body budget) before it is allocated. */
export async function uncompressBlockHeld(body: Buffer, limit: number, hold: (bytes: number) => Promise<void>): Promise<Buffer> {
    const length = blockLength(body);
    if (length > 0 && length <= limit) await hold(length);
    return uncompressBlock(body, limit);
}

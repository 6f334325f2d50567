/**
 * Snappy block decompression for remote-write bodies, with both codecs (the native binding and
 * the wasm fallback), each fed blocks compressed by the native binding and by snappyjs.
 */
import { createRequire } from "node:module";
import SnappyJS from "snappyjs";
import { describe, expect, it } from "vitest";
import { BadRequestError, PayloadTooLargeError } from "../ingest/errors.js";
import { SNAPPY_CODECS, blockLength, uncompressBlock } from "../ingest/prom/snappy.js";

const native = createRequire(import.meta.url)("snappy") as { compressSync(input: Buffer): Buffer };
const LIMIT = 1 << 20;

function payload(bytes: number): Buffer {
    const out = Buffer.alloc(bytes);
    for (let i = 0; i < bytes; i++) out[i] = (i * 7 + (i >> 9)) & 0xff;
    return out;
}

describe("snappy block bodies", () => {
    it("loads the native binding on this platform", () => {
        expect(SNAPPY_CODECS.native.name).toBe("snappy (native)");
    });

    describe.each([SNAPPY_CODECS.native, SNAPPY_CODECS.wasm])("with $name", (codec) => {
        it("undoes blocks compressed by either library", () => {
            for (const size of [1, 100, 65_536, 300_000]) {
                const data = payload(size);
                expect(uncompressBlock(native.compressSync(data), LIMIT, codec).equals(data)).toBe(true);
                expect(uncompressBlock(Buffer.from(SnappyJS.compress(data)), LIMIT, codec).equals(data)).toBe(true);
            }
        });

        it("refuses a block whose preamble claims more than the limit, before decompressing it", () => {
            const bomb = Buffer.concat([Buffer.from([0x80, 0x80, 0x80, 0x80, 0x0f]), Buffer.alloc(16)]); // claims 4 GiB − …
            expect(blockLength(bomb)).toBe(0xf000_0000);
            expect(() => uncompressBlock(bomb, LIMIT, codec)).toThrow(PayloadTooLargeError);
            const real = native.compressSync(Buffer.alloc(LIMIT + 1));
            expect(() => uncompressBlock(real, LIMIT, codec)).toThrow(PayloadTooLargeError);
        });

        it("answers corrupt and truncated blocks, and the framed format, with a 400", () => {
            const good = native.compressSync(payload(10_000));
            const corrupt = [
                Buffer.concat([good, Buffer.from([1, 2, 3])]),
                ...[1, 3, 10, 50].map((cut) => good.subarray(0, good.length - cut)),
                Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
                Buffer.from([0x0a, 0x05, 0x01]),
                Buffer.concat([Buffer.from([0xff, 0x06, 0x00, 0x00]), Buffer.from("sNaPpY"), good]),
            ];
            for (const body of corrupt) expect(() => uncompressBlock(body, LIMIT, codec), body.toString("hex").slice(0, 20)).toThrow(BadRequestError);
        });
    });

    it("takes an empty body as an empty request", () => {
        expect(uncompressBlock(Buffer.alloc(0), LIMIT).length).toBe(0);
    });
});

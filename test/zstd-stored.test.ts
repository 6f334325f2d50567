/**
 * Stored Zstandard frames (the ZSTD pages of tiny flush files): decoded by an independent
 * decoder (hyparquet-compressors' fzstd) to exactly their content, across the 128 KiB block
 * boundary. DuckDB and parquet-wasm read them in test/small-parquet.test.ts.
 */
import { decompressZstd } from "hyparquet-compressors";
import { describe, expect, it } from "vitest";
import { zstdStored } from "../flush/encode/zstd-stored.js";

function content(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = (i * 131 + (i >>> 9)) & 0xff;
    return bytes;
}

describe("zstdStored", () => {
    it.each([0, 1, 1000, 128 * 1024 - 1, 128 * 1024, 128 * 1024 + 1, 400_000])("a frame of %i bytes decodes to exactly them", (length) => {
        const bytes = content(length);
        const frame = zstdStored(bytes);
        expect(Buffer.from(decompressZstd(frame))).toEqual(Buffer.from(bytes));
        // Magic number, then a 4-byte content size: readers can size their output.
        expect(new DataView(frame.buffer).getUint32(0, true)).toBe(0xfd2fb528);
        expect(new DataView(frame.buffer).getUint32(5, true)).toBe(length);
        expect(frame.length).toBe(9 + 3 * Math.max(1, Math.ceil(length / (128 * 1024))) + length);
    });
});

/**
 * Zstandard frames that store their content as it is (RFC 8878: one frame of Raw blocks), so a
 * tiny Parquet file written without a ZSTD encoder (Node 20 has none; hyparquet-writer ships
 * none) still declares the ZSTD codec that DESIGN.md §4 promises, and every ZSTD reader (DuckDB,
 * parquet-wasm, pyarrow, Spark) decodes it. A page of a few values does not compress anyway;
 * compacting their partition rewrites such files with real ZSTD.
 */

const MAGIC = 0xfd2fb528;
/** Frame header descriptor: Frame_Content_Size_flag 2 (a 4-byte content size), Single_Segment_flag set, no checksum, no dictionary. */
const DESCRIPTOR = (2 << 6) | (1 << 5);
/** A block holds at most 128 KiB (Block_Maximum_Size). */
const MAX_BLOCK = 128 * 1024;
/** Block_Header: 3 bytes, Last_Block in bit 0, Block_Type in bits 1–2 (Raw = 0), Block_Size above. */
const BLOCK_HEADER = 3;
const FRAME_HEADER = 4 + 1 + 4;

// Invariant kept: the result is one complete Zstandard frame whose decompressed content is exactly `content`.
export function zstdStored(content: Uint8Array): Uint8Array {
    if (content.length > 0xffffffff) throw new RangeError(`a stored Zstandard frame holds at most 4 GiB, not ${content.length} bytes`);
    const blocks = Math.max(1, Math.ceil(content.length / MAX_BLOCK));
    const frame = new Uint8Array(FRAME_HEADER + blocks * BLOCK_HEADER + content.length);
    const view = new DataView(frame.buffer);
    view.setUint32(0, MAGIC, true);
    frame[4] = DESCRIPTOR;
    view.setUint32(5, content.length, true);
    let at = FRAME_HEADER;
    for (let block = 0, from = 0; block < blocks; block++, from += MAX_BLOCK) {
        const size = Math.min(MAX_BLOCK, content.length - from);
        const header = (size << 3) | (block === blocks - 1 ? 1 : 0);
        frame[at] = header & 0xff;
        frame[at + 1] = (header >>> 8) & 0xff;
        frame[at + 2] = (header >>> 16) & 0xff;
        frame.set(content.subarray(from, from + size), at + BLOCK_HEADER);
        at += BLOCK_HEADER + size;
    }
    return frame;
}

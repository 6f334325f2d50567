/**
 * Byte values the line-protocol scanner tests for, and the small helpers every scanning module
 * shares. The decoder reads the body's bytes by index; nothing here allocates on the hot path.
 */
import { isUtf8 } from "node:buffer";

export const TAB = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SPACE = 0x20;
export const QUOTE = 0x22;
export const HASH = 0x23;
export const COMMA = 0x2c;
export const MINUS = 0x2d;
export const DOT = 0x2e;
export const ZERO = 0x30;
export const NINE = 0x39;
export const EQUALS = 0x3d;
export const BACKSLASH = 0x5c;
export const DEL = 0x7f;

/** FNV-1a's starting value and multiplier (32 bits). */
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * A hash of `bytes[start, end)` read four bytes at a time through `view` (a DataView of the same
 * memory), in two independent multiply chains: content-defined whatever the alignment. Measured
 * on 75-byte series keys: 25 ns, against 75 ns for byte-at-a-time FNV-1a.
 */
export function hashBytes(view: DataView, bytes: Uint8Array, start: number, end: number): number {
    let a = FNV_OFFSET ^ (end - start);
    let b = 0x9e3779b9 | 0;
    let i = start;
    for (; i + 8 <= end; i += 8) {
        a = Math.imul(a ^ view.getInt32(i, true), FNV_PRIME);
        b = Math.imul(b ^ view.getInt32(i + 4, true), 0x5bd1e995);
    }
    for (; i < end; i++) a = Math.imul(a ^ bytes[i]!, FNV_PRIME);
    return a ^ (a >>> 15) ^ Math.imul(b ^ (b >>> 13), 0x27d4eb2d);
}

/** Whether `bytes[a, a + length)` equals `other[b, b + length)` (each with a DataView of its memory). */
export function rangesEqualAcross(view: DataView, bytes: Uint8Array, a: number, otherView: DataView, other: Uint8Array, b: number, length: number): boolean {
    let k = 0;
    for (; k + 4 <= length; k += 4) if (view.getInt32(a + k, true) !== otherView.getInt32(b + k, true)) return false;
    for (; k < length; k++) if (bytes[a + k] !== other[b + k]) return false;
    return true;
}

/** A DataView of a buffer's bytes. */
export function viewOf(bytes: Uint8Array): DataView {
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The body being decoded, as each of its readers takes it. */
export interface Body {
    readonly bytes: Buffer;
    /** A DataView of the same memory, for word reads. */
    readonly view: DataView;
    /** The body is not all valid UTF-8, so names and strings are checked one by one. */
    readonly checkUtf8: boolean;
}

export function bodyOf(bytes: Buffer): Body {
    return { bytes, view: viewOf(bytes), checkUtf8: !isUtf8(bytes) };
}

/** Whether `bytes[start, end)` is valid UTF-8 (the check runs in native code). */
export function isUtf8Range(bytes: Uint8Array, start: number, end: number): boolean {
    return isUtf8(bytes.subarray(start, end));
}

/** A byte as error messages show it: `0x0d`. */
export function hexByte(byte: number): string {
    return `0x${byte.toString(16).padStart(2, "0")}`;
}

const EXCERPT_BYTES = 64;

/** `bytes[start, end)` quoted for an error message (JSON-escaped, cut to 64 bytes). */
export function excerpt(bytes: Buffer, start: number, end: number): string {
    const cut = end - start > EXCERPT_BYTES;
    const text = bytes.toString("utf8", start, cut ? start + EXCERPT_BYTES : end);
    return cut ? `${JSON.stringify(text).slice(0, -1)}…"` : JSON.stringify(text);
}

/** Whether index `i` ends a line: the end of the body, LF, or CR followed by LF or the end (a lone CR does not). */
export function isLineEnd(bytes: Uint8Array, i: number, end: number): boolean {
    if (i >= end) return true;
    const byte = bytes[i]!;
    return byte === LF || (byte === CR && (i + 1 === end || bytes[i + 1] === LF));
}

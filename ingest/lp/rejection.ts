/**
 * Rejected entries: why (the reason the reader that refused the line recorded), where they end
 * (error recovery), and how an error report shows them.
 *
 * Recovery re-reads the entry structurally (not validated) from its start: the series key ends at
 * the first unescaped space; in the field section a `"` right after an unescaped `=` opens a
 * string, inside which newlines do not end the entry. So a multi-line string in a rejected line
 * does not turn its later lines into entries of their own.
 */
import { BACKSLASH, COMMA, CR, EQUALS, LF, QUOTE, SPACE } from "./bytes.js";

/** One rejected entry as an error report shows it. */
export interface LineError {
    /** The physical 1-based line on which the rejected entry starts (blank and comment lines count). */
    readonly line: number;
    /** The reason, e.g. `field type conflict: field "f" of measurement "m" is float, line has integer`. */
    readonly message: string;
    /** The rejected entry's text, at most 1 KiB. */
    readonly text: string;
}

/** How many rejected entries a parse keeps in detail for its answer; the rest are only counted. */
export const MAX_LISTED_LINE_ERRORS = 1000;

/**
 * The rejected entries of one body. A body of 100,000 bad lines would otherwise hold 100,000
 * reasons and texts (tens of MB) that no answer shows.
 */
// Invariant kept: every rejected entry is counted; the first MAX_LISTED_LINE_ERRORS are listed, in body order.
export class LineErrors {
    readonly listed: LineError[] = [];
    count = 0;

    add(line: number, reason: Reason, bytes: Buffer, start: number, stop: number): void {
        this.count++;
        if (this.listed.length < MAX_LISTED_LINE_ERRORS) this.listed.push({ line, message: typeof reason === "string" ? reason : reason(), text: entryText(bytes, start, stop) });
    }
}

/** What a reader that returns an index or a code returns when it refuses the line. */
export const REJECTED = -1;

/** Why a line is rejected: the text, or how to write it (for reasons given to many lines of a body, written only if listed). */
export type Reason = string | (() => string);

/** Why the line being read is rejected: one per body, written by whichever reader refuses the line, read by the body loop. */
export class Rejection {
    reason: Reason = "";
}

/** Whether a backslash before `byte` escapes it in a name (the union of every element's escapes). */
function escapable(byte: number | undefined): boolean {
    return byte === SPACE || byte === COMMA || byte === EQUALS;
}

/** The index of the LF that ends the entry starting at `start` (or `end`). */
// Invariant kept: every LF in `bytes[start, result)` is inside a string value of the entry.
export function entryEnd(bytes: Uint8Array, start: number, end: number): number {
    let i = start;
    // Series key.
    for (; i < end; i++) {
        const c = bytes[i]!;
        if (c === LF) break;
        if (c === BACKSLASH && escapable(bytes[i + 1])) i++;
        else if (c === SPACE) break;
    }
    // Field section: keys, values, strings.
    if (i < end && bytes[i] === SPACE) {
        while (i < end && bytes[i] === SPACE) i++;
        for (; i < end; i++) {
            const c = bytes[i]!;
            if (c === LF || c === SPACE) break;
            if (c === BACKSLASH && escapable(bytes[i + 1])) {
                i++;
            } else if (c === EQUALS && bytes[i + 1] === QUOTE) {
                for (i += 2; i < end; i++) {
                    const s = bytes[i]!;
                    if (s === QUOTE) break;
                    if (s === BACKSLASH) i++;
                }
            }
        }
    }
    // Timestamp and anything else: to the end of the line.
    while (i < end && bytes[i] !== LF) i++;
    return Math.min(i, end);
}

/** LFs in `bytes[start, stop)` (inside an entry: the ones in its strings, which count as physical lines). */
export function lineFeedsIn(bytes: Uint8Array, start: number, stop: number): number {
    let count = 0;
    for (let i = bytes.indexOf(LF, start); i >= 0 && i < stop; i = bytes.indexOf(LF, i + 1)) count++;
    return count;
}

const MAX_TEXT_BYTES = 1024;

/** The entry `[start, stop)` as an error report shows it: without the line ending, at most 1 KiB, cut at a character boundary. */
export function entryText(bytes: Buffer, start: number, stop: number): string {
    let cut = stop;
    if (cut > start && bytes[cut - 1] === CR) cut--;
    if (cut - start > MAX_TEXT_BYTES) {
        cut = start + MAX_TEXT_BYTES;
        while (cut > start && (bytes[cut]! & 0xc0) === 0x80) cut--;
    }
    return bytes.toString("utf8", start, cut);
}

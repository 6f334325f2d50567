/**
 * String field values: `"…"` with `\"` and `\\` escapes, decoded to a JS string. The closing
 * quote, escapes and newlines are found with the body's native searches, whose results are kept
 * across values (measured on the string-heavy bench: a byte loop here was 40% of it); bytes are
 * copied only when an escape collapses.
 */
import { BACKSLASH, type Body, COMMA, CR, LF, QUOTE, SPACE, excerpt, isUtf8Range } from "./bytes.js";
import { LP_LIMITS } from "./limits.js";
import { valueTokenEnd } from "./numbers.js";
import type { Rejection } from "./rejection.js";
import type { BodySearches, ByteSearch } from "./searches.js";

/** The string values of one body. */
export class StringValueReader {
    readonly #bytes: Buffer;
    readonly #end: number;
    readonly #checkUtf8: boolean;
    readonly #quotes: ByteSearch;
    readonly #backslashes: ByteSearch;
    readonly #lineFeeds: ByteSearch;
    readonly #rejection: Rejection;
    /** Positions of the backslashes of the value's collapsing escapes, and a buffer to unescape into. */
    readonly #collapsing: number[] = [];
    #scratch = Buffer.allocUnsafe(256);
    /** After a read: the index just past the closing quote. */
    end = 0;
    /** After a read: the LFs inside the value (each starts a physical line). */
    newlines = 0;

    constructor(body: Body, searches: BodySearches, rejection: Rejection) {
        this.#bytes = body.bytes;
        this.#end = body.bytes.length;
        this.#checkUtf8 = body.checkUtf8;
        this.#quotes = searches.quote;
        this.#backslashes = searches.backslash;
        this.#lineFeeds = searches.lineFeed;
        this.#rejection = rejection;
    }

    /** The value of field `key` whose opening quote is at `start`, or null with the reason recorded. */
    // Invariant kept: a value is returned only if it is closed, within the size limit, valid UTF-8 and followed by a separator.
    read(key: string, start: number): string | null {
        const bytes = this.#bytes;
        const end = this.#end;
        const quotes = this.#quotes;
        const backslashes = this.#backslashes;
        const valueStart = start + 1;
        // \" and \\ pairs become one byte: their backslashes' positions, for decoding.
        const collapsing = this.#collapsing;
        let collapsed = 0;
        let pos = valueStart;
        let close: number;
        for (;;) {
            const quote = quotes.after(pos);
            const backslash = backslashes.after(pos);
            if (backslash >= quote) {
                close = quote;
                break;
            }
            // A backslash before the next quote: it and the byte after it are one pair.
            const next = bytes[backslash + 1];
            if (next === QUOTE || next === BACKSLASH) collapsing[collapsed++] = backslash;
            pos = backslash + 2;
        }
        if (close >= end) return this.#fail(`unterminated string value for field "${key}" (it runs to the end of the body)`);
        const length = close - valueStart - collapsed;
        if (length > LP_LIMITS.maxStringBytes) return this.#fail(`string value of field "${key}" is ${length} bytes, the limit is ${LP_LIMITS.maxStringBytes}`);
        if (this.#checkUtf8 && !isUtf8Range(bytes, valueStart, close)) return this.#fail(`string value of field "${key}" is not valid UTF-8`);
        const after = close + 1;
        if (after < end) {
            const c = bytes[after]!;
            if (c !== COMMA && c !== SPACE && c !== LF && c !== CR) {
                return this.#fail(`unexpected text after the string value of field "${key}": ${excerpt(bytes, after, valueTokenEnd(bytes, after, end))}`);
            }
        }
        let newlines = 0;
        const lineFeeds = this.#lineFeeds;
        for (let lineFeed = lineFeeds.after(valueStart); lineFeed < close; lineFeed = lineFeeds.after(lineFeed + 1)) newlines++;
        this.newlines = newlines;
        this.end = after;
        return collapsed === 0 ? bytes.toString("utf8", valueStart, close) : this.#unescape(valueStart, close, collapsed);
    }

    #fail(reason: string): null {
        this.#rejection.reason = reason;
        return null;
    }

    /** The string `[start, end)` with its `collapsed` collapsing pairs (positions in #collapsing) unescaped. */
    #unescape(start: number, end: number, collapsed: number): string {
        const bytes = this.#bytes;
        let out = this.#scratch;
        if (out.length < end - start) out = this.#scratch = Buffer.allocUnsafe(Math.max(end - start, out.length * 2));
        let length = 0;
        let from = start;
        for (let k = 0; k < collapsed; k++) {
            const backslash = this.#collapsing[k]!;
            length += bytes.copy(out, length, from, backslash);
            from = backslash + 1; // keep the escaped byte, drop the backslash
        }
        length += bytes.copy(out, length, from, end);
        return out.toString("utf8", 0, length);
    }
}

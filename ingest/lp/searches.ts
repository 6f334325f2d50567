/**
 * Forward searches over one body: the next LF, `"`, backslash and unescaped space at or after a
 * position. Each runs natively (`indexOf`) and its answer is kept until a caller asks from past
 * it, so the readers that share them (series keys, comments, string values) scan every byte of a
 * body at most once per search, however many lines ask. Callers ask from positions that never
 * decrease: the body is read front to back.
 */
import { BACKSLASH, LF, QUOTE, SPACE } from "./bytes.js";

/** The first occurrence of one byte value. */
// Invariant kept: the kept answer is the first match at or after every position asked since it was found.
export class ByteSearch {
    readonly #bytes: Buffer;
    readonly #byte: number;
    #next = -1;

    constructor(bytes: Buffer, byte: number) {
        this.#bytes = bytes;
        this.#byte = byte;
    }

    /** The first match at or after `from` (the end of the body when there is none). */
    after(from: number): number {
        let next = this.#next;
        if (next < from) {
            next = this.#bytes.indexOf(this.#byte, from);
            if (next < 0) next = this.#bytes.length;
            this.#next = next;
        }
        return next;
    }
}

/** The searches of one body. */
export class BodySearches {
    readonly lineFeed: ByteSearch;
    readonly quote: ByteSearch;
    readonly backslash: ByteSearch;
    readonly #space: ByteSearch;
    readonly #bytes: Buffer;

    constructor(bytes: Buffer) {
        this.lineFeed = new ByteSearch(bytes, LF);
        this.quote = new ByteSearch(bytes, QUOTE);
        this.backslash = new ByteSearch(bytes, BACKSLASH);
        this.#space = new ByteSearch(bytes, SPACE);
        this.#bytes = bytes;
    }

    /** The first space not preceded by a backslash at or after `from` (the end of the body when there is none). */
    unescapedSpaceAfter(from: number): number {
        const bytes = this.#bytes;
        let space = this.#space.after(from);
        while (space < bytes.length && bytes[space - 1] === BACKSLASH) space = this.#space.after(space + 1);
        return space;
    }
}

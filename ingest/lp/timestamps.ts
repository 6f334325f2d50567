/**
 * A line's timestamp in the request's precision, scaled to nanoseconds as two 32-bit words; the
 * server clock, truncated to that precision, for lines without one.
 */
import { type Body, excerpt } from "./bytes.js";
import { type Scanned, TIMESTAMP_OK, TIMESTAMP_OUT_OF_RANGE, bigIntToWords, scanTimestamp, valueTokenEnd, wordsToBigInt } from "./numbers.js";
import { NANOS_PER_UNIT, PRECISION_ZEROS, type Precision, defaultTimestamp } from "./precision.js";
import type { Rejection } from "./rejection.js";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** The timestamps of one body. */
export class TimestampReader {
    readonly #bytes: Buffer;
    readonly #view: DataView;
    readonly #precision: Precision;
    /** Decimal zeros that scale timestamps to ns (-1: auto; null: m/h, BigInt path). */
    readonly #zeros: number | null;
    readonly #rejection: Rejection;
    readonly #out: Scanned;
    /** The server clock's words: the time of lines without a timestamp. */
    readonly defaultLo: number;
    readonly defaultHi: number;

    /** Throws a RangeError when the server clock `nowNs` does not fit in int64 (a caller's bug, not bad input). */
    constructor(body: Body, precision: Precision, nowNs: bigint, rejection: Rejection, out: Scanned) {
        this.#bytes = body.bytes;
        this.#view = body.view;
        this.#precision = precision;
        this.#zeros = PRECISION_ZEROS[precision];
        this.#rejection = rejection;
        this.#out = out;
        const now = defaultTimestamp(nowNs, precision);
        if (now < INT64_MIN || now > INT64_MAX) throw new RangeError(`nowNs ${nowNs} does not fit in int64`);
        bigIntToWords(now, out);
        this.defaultLo = out.lo;
        this.defaultHi = out.hi;
    }

    /** Reads the timestamp at `start` into `out` (words in ns, `end` past its digits); false with the reason recorded. */
    // Invariant kept: a timestamp is accepted only if its value in nanoseconds fits in int64.
    read(start: number): boolean {
        const bytes = this.#bytes;
        const end = bytes.length;
        const zeros = this.#zeros;
        const out = this.#out;
        const status = scanTimestamp(this.#view, bytes, start, end, zeros ?? 0, out);
        if (status === TIMESTAMP_OK && zeros === null) {
            // m and h: not a power of ten.
            const ns = wordsToBigInt(out.lo, out.hi) * NANOS_PER_UNIT[this.#precision];
            if (ns >= INT64_MIN && ns <= INT64_MAX) {
                bigIntToWords(ns, out);
                return true;
            }
        } else if (status === TIMESTAMP_OK) {
            return true;
        }
        const token = excerpt(bytes, start, valueTokenEnd(bytes, start, end));
        this.#rejection.reason =
            status === TIMESTAMP_OUT_OF_RANGE || status === TIMESTAMP_OK
                ? `timestamp ${token} (precision ${this.#precision}) is out of range: in nanoseconds it must fit in a signed 64-bit integer`
                : `invalid timestamp ${token}: expected an optional "-" and decimal digits`;
        return false;
    }
}

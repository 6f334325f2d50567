/**
 * Number readers: float, integer (`i`), unsigned (`u`) field values and timestamps, read straight
 * from the body's bytes. 64-bit integers never go through BigInt on the common path: the reader
 * keeps the first 15 significant digits in one double (exact below 2^53) and at most five more
 * in another, range-checks on the digit count, then builds the two 32-bit words of the value
 * with exact double arithmetic. Results land in the caller's `Scanned` (one per body, so a read
 * allocates nothing).
 */
import { COMMA, CR, DOT, LF, MINUS, NINE, SPACE, ZERO } from "./bytes.js";
import { guessZeros } from "./precision.js";

/** What the last successful read into it produced. */
export class Scanned {
    /** Index just past the value's token (its terminator, or the end). */
    end = 0;
    /** A float value. */
    float = 0;
    /** An integer, unsigned or timestamp value: low and high 32-bit words, two's complement. */
    lo = 0;
    hi = 0;
}

// Value kinds (> 0) and reasons a number is rejected (< 0).
export const NUMBER_FLOAT = 1;
export const NUMBER_INTEGER = 2;
export const NUMBER_UNSIGNED = 3;
export const BAD_FLOAT = -1;
export const BAD_INTEGER = -2;
export const BAD_UNSIGNED = -3;
export const FLOAT_OUT_OF_RANGE = -4;
export const INTEGER_OUT_OF_RANGE = -5;
export const UNSIGNED_OUT_OF_RANGE = -6;

/** Why a number `token` (as quoted for messages) of field `key` is rejected, by the reason `scanNumber` returned. */
export function numberProblem(reason: number, key: string, token: string): string {
    switch (reason) {
        case BAD_FLOAT:
            return `invalid number ${token} for field "${key}"`;
        case BAD_INTEGER:
            return `invalid integer ${token} for field "${key}": expected an optional "-", digits and "i"`;
        case BAD_UNSIGNED:
            return `invalid unsigned integer ${token} for field "${key}": expected digits and "u"`;
        case FLOAT_OUT_OF_RANGE:
            return `float ${token} for field "${key}" is out of range (NaN and ±Inf are not allowed)`;
        case INTEGER_OUT_OF_RANGE:
            return `integer ${token} for field "${key}" is out of range: -9223372036854775808i … 9223372036854775807i`;
        default:
            return `unsigned integer ${token} for field "${key}" is out of range: 0u … 18446744073709551615u`;
    }
}

// Timestamp outcomes.
export const TIMESTAMP_OK = 0;
export const BAD_TIMESTAMP = -1;
export const TIMESTAMP_OUT_OF_RANGE = -2;

const SUFFIX_INTEGER = 0x69; // i
const SUFFIX_UNSIGNED = 0x75; // u
const EXPONENT_LOWER = 0x65; // e
const EXPONENT_UPPER = 0x45; // E
const PLUS = 0x2b;

/** Significant digits held exactly in one double (10^15 < 2^53). */
const HEAD_DIGITS = 15;
const TWO_24 = 16_777_216;
const TWO_32 = 4_294_967_296;
const TWO_31 = 2_147_483_648;

/** Exact powers of ten: 10^0 … 10^22 are exact doubles, so one multiply or divide by them rounds correctly. */
const POW10 = Float64Array.from({ length: 23 }, (_, i) => 10 ** i);

/** Whether `byte` ends a field value's token outside a string. */
function endsValue(byte: number): boolean {
    return byte === COMMA || byte === SPACE || byte === LF || byte === CR;
}

/** Index of the first byte at or after `pos` that ends a field value's token (for messages). */
export function valueTokenEnd(bytes: Uint8Array, pos: number, end: number): number {
    let i = pos;
    while (i < end && !endsValue(bytes[i]!)) i++;
    return i;
}

/**
 * Sets `out.lo/hi` to `head * 10^tail + rest` (head < 10^15, tail ≤ 5, rest < 10^tail) and
 * returns the high word unmasked, so the caller can see a value past 2^64 (never past 2^67).
 */
function setWords(head: number, tail: number, rest: number, out: Scanned): number {
    if (tail === 0) {
        out.lo = head % TWO_32;
        out.hi = Math.floor(head / TWO_32);
        return out.hi;
    }
    const scale = POW10[tail]!;
    const a = Math.floor(head / TWO_24); // < 2^26
    const b = head - a * TWO_24; // < 2^24
    const aScaled = a * scale; // < 2^43: exact
    const q = Math.floor(aScaled / 256);
    const r = aScaled - q * 256; // a*scale*2^24 = q*2^32 + r*2^24
    const sum = b * scale + r * TWO_24 + rest; // < 2^42: exact
    const carry = Math.floor(sum / TWO_32);
    out.lo = sum - carry * TWO_32;
    out.hi = q + carry;
    return out.hi;
}

/** Two's complement negation of `out.lo/hi`. */
function negateWords(out: Scanned): void {
    if (out.lo === 0) {
        out.hi = (TWO_32 - out.hi) % TWO_32;
    } else {
        out.lo = TWO_32 - out.lo;
        out.hi = TWO_32 - 1 - out.hi;
    }
}

/**
 * Sets the words of a value given as its significant digits: `head` (the first ≤ 15 digits),
 * `rest` (the following `restDigits` ≤ 5 digits), then `zeros` virtual trailing zeros. Returns
 * false when the value does not fit: int64 when `signed` (−2^63 included), else uint64.
 */
function digitsToWords(head: number, headDigits: number, rest: number, restDigits: number, zeros: number, negative: boolean, signed: boolean, out: Scanned): boolean {
    let scaledHead = head;
    let extra = zeros;
    if (headDigits < HEAD_DIGITS && extra > 0) {
        const move = Math.min(extra, HEAD_DIGITS - headDigits);
        scaledHead *= POW10[move]!;
        extra -= move;
    }
    const tail = restDigits + extra;
    if (tail > 5) return false; // more than 20 digits: past 2^64
    const hi = setWords(scaledHead, tail, rest * POW10[extra]!, out);
    if (signed) {
        if (hi >= TWO_31 && !(negative && hi === TWO_31 && out.lo === 0)) return false;
    } else if (hi >= TWO_32) {
        return false;
    }
    if (negative) negateWords(out);
    return true;
}

/**
 * Reads a float, `i` or `u` value starting at `pos` (its first byte is `-`, `.` or a digit).
 * Returns the kind, or why it is rejected; on success the value is in `out` and `out.end` is the
 * token's end.
 *
 * Fast path, for what agents send (`12.34`, `-5`, `123456i`): at most 15 digits, no exponent.
 * Anything else (and every error) takes scanNumberFully.
 */
export function scanNumber(bytes: Buffer, pos: number, end: number, out: Scanned): number {
    let i = pos;
    const negative = bytes[i] === MINUS;
    if (negative) i++;
    const intStart = i;
    // The first 9 digits accumulate in small integers (int32 arithmetic: a shorter dependency
    // chain than doubles), the rest in a double.
    let small = 0;
    let digit = 0;
    let stop = Math.min(end, i + 9);
    while (i < stop && (digit = bytes[i]! - ZERO) >= 0 && digit <= 9) {
        small = small * 10 + digit;
        i++;
    }
    let value = small;
    if (i === stop) {
        while (i < end && (digit = bytes[i]! - ZERO) >= 0 && digit <= 9) {
            value = value * 10 + digit;
            i++;
        }
    }
    const intDigits = i - intStart;
    if (intDigits === 0 || intDigits > HEAD_DIGITS) return scanNumberFully(bytes, pos, end, out);
    let c = i < end ? bytes[i]! : SPACE;
    let fracDigits = 0;
    if (c === DOT) {
        const fracStart = ++i;
        if (intDigits < 9) {
            stop = Math.min(end, i + 9 - intDigits);
            small = value;
            while (i < stop && (digit = bytes[i]! - ZERO) >= 0 && digit <= 9) {
                small = small * 10 + digit;
                i++;
            }
            value = small;
        }
        while (i < end && (digit = bytes[i]! - ZERO) >= 0 && digit <= 9) {
            value = value * 10 + digit;
            i++;
        }
        fracDigits = i - fracStart;
        if (intDigits + fracDigits > HEAD_DIGITS) return scanNumberFully(bytes, pos, end, out);
        c = i < end ? bytes[i]! : SPACE;
    } else if (c === SUFFIX_INTEGER || c === SUFFIX_UNSIGNED) {
        if (i + 1 < end && !endsValue(bytes[i + 1]!)) return scanNumberFully(bytes, pos, end, out);
        if (negative) {
            if (c === SUFFIX_UNSIGNED) return BAD_UNSIGNED;
            value = -value;
        }
        out.lo = value >>> 0;
        out.hi = Math.floor(value / TWO_32) >>> 0;
        out.end = i + 1;
        return c === SUFFIX_INTEGER ? NUMBER_INTEGER : NUMBER_UNSIGNED;
    }
    if (!endsValue(c)) return scanNumberFully(bytes, pos, end, out);
    out.end = i;
    // Clinger's fast path: value < 10^15 < 2^53 and 10^fracDigits are exact, one division rounds correctly.
    if (fracDigits > 0) value /= POW10[fracDigits]!;
    out.float = negative ? -value : value;
    return NUMBER_FLOAT;
}

/** scanNumber's general path: the whole float grammar, 16+ digit integers, every error. */
function scanNumberFully(bytes: Buffer, pos: number, end: number, out: Scanned): number {
    let i = pos;
    let negative = false;
    if (bytes[i] === MINUS) {
        negative = true;
        i++;
    }
    // Integer part: the first 15 significant digits in `head`, the next 5 in `rest`.
    let head = 0;
    let headDigits = 0;
    let rest = 0;
    let restDigits = 0;
    let extraDigits = 0; // significant digits past head and rest (only a float can hold them)
    const intStart = i;
    let c = 0;
    while (i < end && (c = bytes[i]!) >= ZERO && c <= NINE) {
        if (headDigits < HEAD_DIGITS) {
            if (headDigits > 0 || c !== ZERO) {
                head = head * 10 + (c - ZERO);
                headDigits++;
            }
        } else if (restDigits < 5) {
            rest = rest * 10 + (c - ZERO);
            restDigits++;
        } else {
            extraDigits++;
        }
        i++;
    }
    const intDigits = i - intStart;
    if (i < end) {
        c = bytes[i]!;
        if (c === SUFFIX_INTEGER || c === SUFFIX_UNSIGNED) {
            const unsigned = c === SUFFIX_UNSIGNED;
            if (intDigits === 0 || (i + 1 < end && !endsValue(bytes[i + 1]!))) return unsigned ? BAD_UNSIGNED : BAD_INTEGER;
            if (unsigned && negative) return BAD_UNSIGNED;
            out.end = i + 1;
            if (extraDigits > 0 || !digitsToWords(head, headDigits, rest, restDigits, 0, negative, !unsigned, out)) {
                return unsigned ? UNSIGNED_OUT_OF_RANGE : INTEGER_OUT_OF_RANGE;
            }
            return unsigned ? NUMBER_UNSIGNED : NUMBER_INTEGER;
        }
    }
    // A float: [digits] [. [digits]] [e [+-] digits], with at least one digit before the exponent.
    let exact = restDigits === 0;
    let exponent = 0;
    let fracDigits = 0;
    if (i < end && bytes[i] === DOT) {
        i++;
        const fracStart = i;
        while (i < end && (c = bytes[i]!) >= ZERO && c <= NINE) {
            if (exact) {
                if (headDigits === 0 && c === ZERO) {
                    exponent--;
                } else if (headDigits < HEAD_DIGITS) {
                    head = head * 10 + (c - ZERO);
                    headDigits++;
                    exponent--;
                } else {
                    exact = false;
                }
            }
            i++;
        }
        fracDigits = i - fracStart;
    }
    if (intDigits + fracDigits === 0) return BAD_FLOAT;
    if (i < end && ((c = bytes[i]!) === EXPONENT_LOWER || c === EXPONENT_UPPER)) {
        i++;
        let exponentNegative = false;
        if (i < end && ((c = bytes[i]!) === PLUS || c === MINUS)) {
            exponentNegative = c === MINUS;
            i++;
        }
        const expStart = i;
        let value = 0;
        while (i < end && (c = bytes[i]!) >= ZERO && c <= NINE) {
            if (value < 100_000) value = value * 10 + (c - ZERO);
            i++;
        }
        if (i === expStart) return BAD_FLOAT;
        exponent += exponentNegative ? -value : value;
    }
    if (i < end && !endsValue(bytes[i]!)) return BAD_FLOAT;
    out.end = i;
    let value: number;
    if (exact && exponent >= -22 && exponent <= 22) {
        // Clinger's fast path: head < 2^53 and 10^|exponent| are exact, one operation rounds correctly.
        value = exponent < 0 ? head / POW10[-exponent]! : head * POW10[exponent]!;
        if (negative) value = -value;
    } else {
        // Measured rare (≥ 16 significant digits or a large exponent): the grammar is checked, let V8 round.
        value = Number(bytes.toString("latin1", pos, i));
    }
    if (value === Infinity || value === -Infinity) return FLOAT_OUT_OF_RANGE;
    out.float = value;
    return NUMBER_FLOAT;
}

/**
 * Reads a timestamp `[-]digits` at `pos`, scaled to nanoseconds by appending `zeros` decimal
 * zeros (-1: guess them from the magnitude, `auto`). On success the words are in `out` and
 * `out.end` is the first byte after the digits (the caller checks what follows).
 */
export function scanTimestamp(view: DataView, bytes: Uint8Array, pos: number, end: number, zeros: number, out: Scanned): number {
    // Fastest path: 19 digits in ns (every timestamp since 2001), 8 digits per two word reads.
    if (zeros === 0 && pos + 19 <= end && (pos + 19 === end || endsTimestamp(bytes[pos + 19]!)) && bytes[pos] !== ZERO) {
        const a = eightDigits(view, pos);
        const b = eightDigits(view, pos + 8);
        const c0 = bytes[pos + 16]! - ZERO;
        const c1 = bytes[pos + 17]! - ZERO;
        const c2 = bytes[pos + 18]! - ZERO;
        if (a >= 0 && b >= 0 && c0 >= 0 && c0 <= 9 && c1 >= 0 && c1 <= 9 && c2 >= 0 && c2 <= 9) {
            out.end = pos + 19;
            const tenth = Math.floor(b / 10);
            const ok = digitsToWords(a * 10_000_000 + tenth, HEAD_DIGITS, (b - tenth * 10) * 1000 + c0 * 100 + c1 * 10 + c2, 4, 0, false, true, out);
            return ok ? TIMESTAMP_OK : TIMESTAMP_OUT_OF_RANGE;
        }
    }
    // Fast path: 1–19 digits without a leading zero, in a known unit.
    const negative = bytes[pos] === MINUS;
    let i = negative ? pos + 1 : pos;
    const digitStart = i;
    const headEnd = Math.min(end, i + HEAD_DIGITS);
    let head = 0;
    let digit = 0;
    while (i < headEnd && (digit = bytes[i]! - ZERO) >= 0 && digit <= 9) {
        head = head * 10 + digit;
        i++;
    }
    const headDigits = i - digitStart;
    let rest = 0;
    if (headDigits === HEAD_DIGITS) {
        const restEnd = Math.min(end, i + 4);
        while (i < restEnd && (digit = bytes[i]! - ZERO) >= 0 && digit <= 9) {
            rest = rest * 10 + digit;
            i++;
        }
    }
    const restDigits = i - digitStart - headDigits;
    if (headDigits === 0 || zeros < 0 || bytes[digitStart] === ZERO || headDigits + restDigits + zeros > 19 || (i < end && !endsTimestamp(bytes[i]!))) {
        return scanTimestampFully(bytes, pos, end, zeros, out);
    }
    out.end = i;
    return digitsToWords(head, headDigits, rest, restDigits, zeros, negative, true, out) ? TIMESTAMP_OK : TIMESTAMP_OUT_OF_RANGE;
}

/**
 * The value of the 8 ASCII digits at `at`, or -1 when one is not a digit (SWAR: each half is
 * checked and converted four digits at a time; the first character is the low byte).
 */
function eightDigits(view: DataView, at: number): number {
    const first = view.getUint32(at, true);
    const second = view.getUint32(at + 4, true);
    if (((first & 0xf0f0f0f0) | (((first + 0x06060606) & 0xf0f0f0f0) >>> 4)) !== 0x33333333) return -1;
    if (((second & 0xf0f0f0f0) | (((second + 0x06060606) & 0xf0f0f0f0) >>> 4)) !== 0x33333333) return -1;
    return fourDigits(first) * 10_000 + fourDigits(second);
}

/** Four validated ASCII digits (first in the low byte) as a number. */
function fourDigits(word: number): number {
    let w = word & 0x0f0f0f0f;
    w = (Math.imul(w, 10) + (w >>> 8)) & 0x00ff00ff; // bytes 0 and 2: d0*10 + d1, d2*10 + d3
    return (Math.imul(w, 100) + (w >>> 16)) & 0xffff;
}

function endsTimestamp(byte: number): boolean {
    return byte === SPACE || byte === LF || byte === CR;
}

/** scanTimestamp's general path: leading zeros, `auto`, too many digits, every error. */
function scanTimestampFully(bytes: Uint8Array, pos: number, end: number, zeros: number, out: Scanned): number {
    let i = pos;
    let negative = false;
    if (bytes[i] === MINUS) {
        negative = true;
        i++;
    }
    let head = 0;
    let headDigits = 0;
    let rest = 0;
    let restDigits = 0;
    let tooLong = false;
    const digitStart = i;
    let c = 0;
    while (i < end && (c = bytes[i]!) >= ZERO && c <= NINE) {
        if (headDigits < HEAD_DIGITS) {
            if (headDigits > 0 || c !== ZERO) {
                head = head * 10 + (c - ZERO);
                headDigits++;
            }
        } else if (restDigits < 5) {
            rest = rest * 10 + (c - ZERO);
            restDigits++;
        } else {
            tooLong = true;
        }
        i++;
    }
    if (i === digitStart) return BAD_TIMESTAMP;
    if (i < end && (c = bytes[i]!) !== SPACE && c !== LF && c !== CR) return BAD_TIMESTAMP;
    out.end = i;
    if (tooLong) return TIMESTAMP_OUT_OF_RANGE;
    let scale = zeros;
    if (scale < 0) scale = restDigits > 1 ? 0 : guessZeros(restDigits === 0 ? head : head * 10 + rest);
    return digitsToWords(head, headDigits, rest, restDigits, scale, negative, true, out) ? TIMESTAMP_OK : TIMESTAMP_OUT_OF_RANGE;
}

/** Two words as a signed BigInt (the rare paths: `m`/`h` scaling, the server clock). */
export function wordsToBigInt(lo: number, hi: number): bigint {
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

/** Sets `out.lo/hi` from a signed 64-bit BigInt. */
export function bigIntToWords(value: bigint, out: Scanned): void {
    const unsigned = BigInt.asUintN(64, value);
    out.lo = Number(unsigned & 0xffff_ffffn);
    out.hi = Number(unsigned >> 32n);
}

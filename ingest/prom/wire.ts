/**
 * Protobuf's wire format, read straight off the bytes (developers.google.com/protocol-buffers,
 * "Encoding"): a field is a varint key (field number << 3 | wire type) and a value whose size the
 * wire type gives. Only what remote write needs: varints, 64-bit fixed values and
 * length-delimited fields; groups (wire types 3 and 4, unused since proto2) are malformed here.
 */
import { BadRequestError } from "../errors.js";

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

/** A field's key byte for field numbers below 16. */
export function keyByte(field: number, wire: number): number {
    return (field << 3) | wire;
}

/** The body is not a protobuf message of the expected shape: a 400, it will never decode. */
export function malformed(reason: string, at: number): BadRequestError {
    return new BadRequestError(`body is not a valid remote-write WriteRequest (protobuf): ${reason} at byte ${at}`);
}

/**
 * A position in a message's bytes. `varint32` and `skip` move it; reads past `end` (the end of
 * the enclosing message) are malformed.
 */
export class WireReader {
    pos = 0;

    constructor(readonly bytes: Uint8Array) {}

    /** A varint that must fit in 32 bits unsigned (keys, lengths). */
    varint32(end: number): number {
        const bytes = this.bytes;
        let pos = this.pos;
        // Keys and short lengths are one byte.
        if (pos < end && bytes[pos]! < 0x80) {
            this.pos = pos + 1;
            return bytes[pos]!;
        }
        let value = 0;
        for (let shift = 0; shift < 35; shift += 7) {
            if (pos >= end) throw malformed("truncated varint", pos);
            const byte = bytes[pos++]!;
            value += (byte & 0x7f) * 2 ** shift;
            if (byte < 0x80) {
                if (value > 0xffff_ffff) break;
                this.pos = pos;
                return value;
            }
        }
        throw malformed("varint too long for a key or length", this.pos);
    }

    /** A length-delimited field's length (the key read): the field's end, checked against `end`. */
    lengthEnd(end: number): number {
        const length = this.varint32(end);
        const stop = this.pos + length;
        if (stop > end) throw malformed(`length ${length} runs past the end of its message`, this.pos);
        // A small integer (`stop` ≤ `end`, a buffer index): a multi-byte varint is summed as a
        // double, and one double stored in `pos` turned the field into a boxed double for every
        // reader (seen with %DebugPrint after decoding the promwrite bench's requests).
        return stop | 0;
    }

    /** Skips the value of the field whose key was just read (field number 0 does not exist: malformed). */
    skipField(key: number, end: number): void {
        if (key < 8) throw malformed(`field number 0 (key ${key})`, this.pos);
        this.skip(key & 7, end);
    }

    // Invariant kept: leaves `pos` just past the field's value, never past `end`.
    /** Skips the value of a field of wire type `wire` (its key already read). */
    skip(wire: number, end: number): void {
        switch (wire) {
            case WIRE_VARINT: {
                const bytes = this.bytes;
                for (let i = 0; i < 10; i++) {
                    if (this.pos >= end) throw malformed("truncated varint", this.pos);
                    if (bytes[this.pos++]! < 0x80) return;
                }
                throw malformed("varint longer than 10 bytes", this.pos);
            }
            case WIRE_FIXED64:
                this.#advance(8, end);
                return;
            case WIRE_LEN:
                this.pos = this.lengthEnd(end);
                return;
            case WIRE_FIXED32:
                this.#advance(4, end);
                return;
            default:
                throw malformed(`wire type ${wire} is not valid here`, this.pos);
        }
    }

    #advance(count: number, end: number): void {
        if (this.pos + count > end) throw malformed("truncated fixed-size value", this.pos);
        this.pos += count;
    }
}

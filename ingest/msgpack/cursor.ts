/**
 * A msgpack reader over a byte buffer that keeps what generic decoders lose: whether a number
 * was sent as a float or an integer. Arc's columnar payloads need it, because a float column
 * whose values happen to be whole must stay a float column.
 */
import { BadRequestError } from "../errors.js";

export type ScalarKind = "nil" | "bool" | "int" | "uint64" | "float" | "string";

const utf8 = new TextDecoder("utf-8", { fatal: true });

export class MsgpackCursor {
    #offset = 0;

    constructor(readonly bytes: Buffer) {}

    get offset(): number {
        return this.#offset;
    }

    /** Goes back to an offset read earlier (to read a column a second time). */
    rewind(offset: number): void {
        this.#offset = offset;
    }

    get done(): boolean {
        return this.#offset >= this.bytes.length;
    }

    #need(count: number): void {
        if (this.#offset + count > this.bytes.length) throw new BadRequestError(`msgpack ends early at byte ${this.#offset}`);
    }

    #byte(): number {
        this.#need(1);
        return this.bytes[this.#offset++]!;
    }

    peek(): number {
        this.#need(1);
        return this.bytes[this.#offset]!;
    }

    #length(size: 1 | 2 | 4): number {
        this.#need(size);
        const value = size === 1 ? this.bytes[this.#offset]! : size === 2 ? this.bytes.readUInt16BE(this.#offset) : this.bytes.readUInt32BE(this.#offset);
        this.#offset += size;
        return value;
    }

    /** The entry count of a map header, or undefined (nothing consumed) when the next value is not a map. */
    mapHeader(): number | undefined {
        const type = this.peek();
        if (type >= 0x80 && type <= 0x8f) return (this.#offset++, type & 0x0f);
        if (type === 0xde) return (this.#offset++, this.#length(2));
        if (type === 0xdf) return (this.#offset++, this.#length(4));
        return undefined;
    }

    arrayHeader(): number | undefined {
        const type = this.peek();
        if (type >= 0x90 && type <= 0x9f) return (this.#offset++, type & 0x0f);
        if (type === 0xdc) return (this.#offset++, this.#length(2));
        if (type === 0xdd) return (this.#offset++, this.#length(4));
        return undefined;
    }

    /** The kind of the next value if it is a scalar (nil, bool, number, string), else undefined. */
    scalarKind(): ScalarKind | undefined {
        const type = this.peek();
        if (type <= 0x7f || type >= 0xe0 || (type >= 0xcc && type <= 0xce) || (type >= 0xd0 && type <= 0xd3)) return "int";
        if (type === 0xcf) {
            this.#need(9);
            return this.bytes.readBigUInt64BE(this.#offset + 1) > 0x7fffffffffffffffn ? "uint64" : "int";
        }
        if (type === 0xca || type === 0xcb) return "float";
        if (type === 0xc0) return "nil";
        if (type === 0xc2 || type === 0xc3) return "bool";
        if ((type >= 0xa0 && type <= 0xbf) || type === 0xd9 || type === 0xda || type === 0xdb) return "string";
        return undefined;
    }

    string(): string {
        const type = this.#byte();
        const length = type >= 0xa0 && type <= 0xbf ? type & 0x1f : type === 0xd9 ? this.#length(1) : type === 0xda ? this.#length(2) : type === 0xdb ? this.#length(4) : -1;
        if (length < 0) throw new BadRequestError(`expected a msgpack string at byte ${this.#offset - 1}`);
        this.#need(length);
        const start = this.#offset;
        this.#offset += length;
        try {
            return utf8.decode(this.bytes.subarray(start, start + length));
        } catch {
            throw new BadRequestError(`string at byte ${start} is not valid UTF-8`);
        }
    }

    /** An integer (fixint, int8–64, uint8–64) as a bigint. */
    integer(): bigint {
        const type = this.#byte();
        if (type <= 0x7f) return BigInt(type);
        if (type >= 0xe0) return BigInt(type - 0x100);
        const size = { 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8 }[type];
        if (size === undefined) throw new BadRequestError(`expected a msgpack integer at byte ${this.#offset - 1}`);
        this.#need(size);
        const at = this.#offset;
        this.#offset += size;
        const b = this.bytes;
        switch (type) {
            case 0xcc:
                return BigInt(b.readUInt8(at));
            case 0xcd:
                return BigInt(b.readUInt16BE(at));
            case 0xce:
                return BigInt(b.readUInt32BE(at));
            case 0xcf:
                return b.readBigUInt64BE(at);
            case 0xd0:
                return BigInt(b.readInt8(at));
            case 0xd1:
                return BigInt(b.readInt16BE(at));
            case 0xd2:
                return BigInt(b.readInt32BE(at));
            default:
                return b.readBigInt64BE(at);
        }
    }

    /** A number of any msgpack numeric type, as a float64. */
    float(): number {
        const type = this.peek();
        if (type === 0xca || type === 0xcb) {
            this.#offset++;
            const size = type === 0xca ? 4 : 8;
            this.#need(size);
            const value = type === 0xca ? this.bytes.readFloatBE(this.#offset) : this.bytes.readDoubleBE(this.#offset);
            this.#offset += size;
            return value;
        }
        return Number(this.integer());
    }

    boolean(): boolean {
        const type = this.#byte();
        if (type !== 0xc2 && type !== 0xc3) throw new BadRequestError(`expected a msgpack boolean at byte ${this.#offset - 1}`);
        return type === 0xc3;
    }

    /** Skips one value of any type (nested ones included). */
    skip(): void {
        const type = this.peek();
        const entries = this.mapHeader();
        if (entries !== undefined) {
            for (let i = 0; i < 2 * entries; i++) this.skip();
            return;
        }
        const items = this.arrayHeader();
        if (items !== undefined) {
            for (let i = 0; i < items; i++) this.skip();
            return;
        }
        switch (this.scalarKind()) {
            case "nil":
            case "bool":
                this.#offset++;
                return;
            case "int":
            case "uint64":
                this.integer();
                return;
            case "float":
                this.float();
                return;
            case "string":
                this.string();
                return;
            case undefined:
                throw new BadRequestError(`unsupported msgpack type 0x${type.toString(16)} at byte ${this.#offset} (bin and extension types are not accepted)`);
        }
    }
}

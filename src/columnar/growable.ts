/**
 * Growable typed storage: arrays that grow to the next power of two bytes (at least 64) as they
 * fill, and bitmaps appended at any bit offset. `view()` is a subarray of the live memory;
 * nothing is copied until the capacity runs out. A given initial capacity is taken exactly, so
 * storage filled to it (or to a power of two bytes) is covered by its view, whole.
 */
import { bitIsSet, bitmapBytes } from "./batch.js";

type Typed = BigInt64Array | BigUint64Array | Float64Array | Uint32Array;
interface TypedConstructor<T extends Typed> {
    new (length: number): T;
    readonly BYTES_PER_ELEMENT: number;
}

function grownCapacity(needed: number, bytesPerElement: number): number {
    const bytes = Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(1, needed) * bytesPerElement)));
    return Math.ceil(bytes / bytesPerElement);
}

export class GrowableArray<T extends Typed> {
    #data: T;
    #length = 0;

    constructor(
        private readonly Type: TypedConstructor<T>,
        capacity = 0,
    ) {
        this.#data = new Type(capacity > 0 ? capacity : grownCapacity(0, Type.BYTES_PER_ELEMENT));
    }

    get length(): number {
        return this.#length;
    }

    get capacityBytes(): number {
        return this.#data.byteLength;
    }

    #reserve(extra: number): void {
        const needed = this.#length + extra;
        if (needed <= this.#data.length) return;
        const grown = new this.Type(grownCapacity(needed, this.Type.BYTES_PER_ELEMENT));
        grown.set(this.#data.subarray(0, this.#length) as never);
        this.#data = grown;
    }

    push(value: T[number]): void {
        this.#reserve(1);
        this.#data[this.#length++] = value;
    }

    /** Appends every value of `values`. */
    append(values: ArrayLike<T[number]>): void {
        this.#reserve(values.length);
        this.#data.set(values as never, this.#length);
        this.#length += values.length;
    }

    /** Appends `count` zeros (memory past `length` was never written: it is still zero). */
    appendZeros(count: number): void {
        this.#reserve(count);
        this.#length += count;
    }

    view(): T {
        return this.#data.subarray(0, this.#length) as T;
    }
}

/** A bitmap, LSB first, that grows one bit or one run at a time. */
export class GrowableBitmap {
    #bytes: Uint8Array;
    #bits = 0;

    constructor(capacityBits = 0) {
        this.#bytes = new Uint8Array(capacityBits > 0 ? bitmapBytes(capacityBits) : grownCapacity(0, 1));
    }

    get length(): number {
        return this.#bits;
    }

    get capacityBytes(): number {
        return this.#bytes.byteLength;
    }

    #reserve(extraBits: number): void {
        const needed = bitmapBytes(this.#bits + extraBits);
        if (needed <= this.#bytes.length) return;
        const grown = new Uint8Array(grownCapacity(needed, 1));
        grown.set(this.#bytes.subarray(0, bitmapBytes(this.#bits)));
        this.#bytes = grown;
    }

    push(bit: boolean): void {
        this.#reserve(1);
        if (bit) this.#bytes[this.#bits >>> 3]! |= 1 << (this.#bits & 7);
        this.#bits++;
    }

    /** Appends `count` copies of `bit`. */
    appendRun(bit: boolean, count: number): void {
        this.#reserve(count);
        if (!bit) {
            this.#bits += count; // fresh capacity is zeroed, and cleared bits were never set
            return;
        }
        for (let i = 0; i < count; i++) this.#bytes[(this.#bits + i) >>> 3]! |= 1 << ((this.#bits + i) & 7);
        this.#bits += count;
    }

    /** Appends bits [0, count) of `bitmap`. */
    appendBits(bitmap: Uint8Array, count: number): void {
        this.#reserve(count);
        if ((this.#bits & 7) === 0) {
            this.#bytes.set(bitmap.subarray(0, bitmapBytes(count)), this.#bits >>> 3);
            const tail = count & 7;
            if (tail !== 0) this.#bytes[(this.#bits + count) >>> 3]! &= (1 << tail) - 1;
        } else {
            for (let i = 0; i < count; i++) if (bitIsSet(bitmap, i)) this.#bytes[(this.#bits + i) >>> 3]! |= 1 << ((this.#bits + i) & 7);
        }
        this.#bits += count;
    }

    view(): Uint8Array {
        return this.#bytes.subarray(0, bitmapBytes(this.#bits));
    }
}

/**
 * The WAL stores numbers as little-endian bytes. On a little-endian host (every platform Node
 * ships for today) the typed array's own memory is those bytes; elsewhere they are swapped.
 */
import { endianness } from "node:os";

type Wide = BigInt64Array | BigUint64Array | Float64Array | Uint32Array;
type WideConstructor<T extends Wide> = { new (length: number): T; readonly BYTES_PER_ELEMENT: number };

const HOST_IS_LITTLE_ENDIAN = endianness() === "LE";

/** The array's values as little-endian bytes: a view of its memory on little-endian hosts. */
export function toLittleEndianBytes(array: Wide): Buffer {
    const view = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
    if (HOST_IS_LITTLE_ENDIAN) return view;
    const copy = Buffer.from(view);
    if (array.BYTES_PER_ELEMENT === 8) copy.swap64();
    else copy.swap32();
    return copy;
}

/** A new, aligned typed array holding the little-endian values in `bytes` (which it never aliases). */
export function fromLittleEndian<T extends Wide>(Type: WideConstructor<T>, bytes: Uint8Array): T {
    const array = new Type(bytes.length / Type.BYTES_PER_ELEMENT);
    const target = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
    target.set(bytes);
    if (!HOST_IS_LITTLE_ENDIAN) {
        if (Type.BYTES_PER_ELEMENT === 8) target.swap64();
        else target.swap32();
    }
    return array;
}

/**
 * A hash table keyed by raw bytes: the decoder finds what it already decoded for the same raw
 * bytes (a series key, a field key) without creating a string. Keys are looked up as ranges of
 * any buffer (the body being parsed) and copied into a compact arena on insertion: measured, comparing against a key's first occurrence in a 50 MB body cost a cache miss
 * per lookup (82 ns per series key against ~25 ns from the arena). Open addressing, linear
 * probing, power-of-two capacity.
 */
import { rangesEqualAcross } from "./bytes.js";

const INITIAL_SLOTS = 64;
const INITIAL_ARENA_BYTES = 4096;

/** Raw key bytes, packed one after the other; offsets stay valid when it grows. */
export class KeyArena {
    bytes = new Uint8Array(INITIAL_ARENA_BYTES);
    view = new DataView(this.bytes.buffer);
    size = 0;

    /** Drops every key (offsets handed out before are no longer valid). */
    reset(): void {
        this.bytes = new Uint8Array(INITIAL_ARENA_BYTES);
        this.view = new DataView(this.bytes.buffer);
        this.size = 0;
    }

    /** Copies `source[start, start + length)` in; returns its offset. */
    add(source: Uint8Array, start: number, length: number): number {
        const offset = this.size;
        if (offset + length > this.bytes.length) {
            let capacity = this.bytes.length * 2;
            while (capacity < offset + length) capacity *= 2;
            const bytes = new Uint8Array(capacity);
            bytes.set(this.bytes.subarray(0, offset));
            this.bytes = bytes;
            this.view = new DataView(bytes.buffer);
        }
        this.bytes.set(source.subarray(start, start + length), offset);
        this.size = offset + length;
        return offset;
    }
}

export class ByteKeyTable<V> {
    readonly #arena: KeyArena;
    /** Slot → entry index + 1 (0: empty). */
    #slots = new Int32Array(INITIAL_SLOTS);
    #mask = INITIAL_SLOTS - 1;
    #hashes = new Int32Array(INITIAL_SLOTS / 2);
    #offsets = new Int32Array(INITIAL_SLOTS / 2);
    #lengths = new Int32Array(INITIAL_SLOTS / 2);
    #values: V[] = [];

    /** Keys are copied into `arena` (which may be shared with other tables). */
    constructor(arena: KeyArena) {
        this.#arena = arena;
    }

    get size(): number {
        return this.#values.length;
    }

    /** The value stored for the key `source[start, start + length)` (`view`: a DataView of `source`), whose `hashBytes` is `hash`. */
    get(view: DataView, source: Uint8Array, hash: number, start: number, length: number): V | undefined {
        const slots = this.#slots;
        const mask = this.#mask;
        const arena = this.#arena;
        for (let slot = mix(hash) & mask; ; slot = (slot + 1) & mask) {
            const entry = slots[slot]! - 1;
            if (entry < 0) return undefined;
            if (this.#hashes[entry] === hash && this.#lengths[entry] === length && rangesEqualAcross(view, source, start, arena.view, arena.bytes, this.#offsets[entry]!, length)) {
                return this.#values[entry];
            }
        }
    }

    /** Stores `value` for the key `source[start, start + length)` (not in the table yet). */
    set(source: Uint8Array, hash: number, start: number, length: number, value: V): void {
        const entry = this.#values.length;
        if (entry >= this.#hashes.length) this.#growEntries();
        if ((entry + 1) * 2 > this.#slots.length) this.#rehash(this.#slots.length * 2);
        this.#hashes[entry] = hash;
        this.#offsets[entry] = this.#arena.add(source, start, length);
        this.#lengths[entry] = length;
        this.#values.push(value);
        this.#place(hash, entry);
    }

    /** Forgets every key (the arena is the owner's to reset). */
    clear(): void {
        this.#slots = new Int32Array(INITIAL_SLOTS);
        this.#mask = INITIAL_SLOTS - 1;
        this.#hashes = new Int32Array(INITIAL_SLOTS / 2);
        this.#offsets = new Int32Array(INITIAL_SLOTS / 2);
        this.#lengths = new Int32Array(INITIAL_SLOTS / 2);
        this.#values = [];
    }

    #place(hash: number, entry: number): void {
        const slots = this.#slots;
        const mask = this.#mask;
        let slot = mix(hash) & mask;
        while (slots[slot] !== 0) slot = (slot + 1) & mask;
        slots[slot] = entry + 1;
    }

    #growEntries(): void {
        const capacity = this.#hashes.length * 2;
        const grow = (old: Int32Array) => {
            const next = new Int32Array(capacity);
            next.set(old);
            return next;
        };
        this.#hashes = grow(this.#hashes);
        this.#offsets = grow(this.#offsets);
        this.#lengths = grow(this.#lengths);
    }

    #rehash(slotCount: number): void {
        this.#slots = new Int32Array(slotCount);
        this.#mask = slotCount - 1;
        for (let entry = 0; entry < this.#values.length; entry++) this.#place(this.#hashes[entry]!, entry);
    }
}

/** Spreads the hash's bits into the low ones (the table indexes with them). */
function mix(hash: number): number {
    const h = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b);
    return h ^ (h >>> 16);
}

/**
 * Decoded series keys shared by every parse: the raw `measurement,tagset` bytes → the unescaped
 * measurement, tag keys and tag values. Decoding is a pure function of the bytes (and only keys
 * that decoded cleanly are stored), so the cache can outlive a request: Telegraf sends every
 * series once per interval, in bodies of ~1,000 lines, so a per-body cache alone would decode
 * nearly every key of every request again. Bounded: when full it is emptied and refills.
 */
import { ByteKeyTable, KeyArena } from "./byte-table.js";
import type { Series } from "./measurement.js";

export interface SeriesKeyCacheOptions {
    /** Keys held before the cache is emptied. */
    readonly maxEntries?: number;
    /** Bytes of raw keys held before the cache is emptied. */
    readonly maxBytes?: number;
}

export const SERIES_KEY_CACHE_DEFAULTS = {
    maxEntries: 100_000,
    maxBytes: 16 * 1024 * 1024,
} as const satisfies { [K in keyof Required<SeriesKeyCacheOptions>]: SeriesKeyCacheOptions[K] };

export class SeriesKeyCache {
    readonly maxEntries: number;
    readonly maxBytes: number;
    readonly #arena = new KeyArena();
    readonly #table = new ByteKeyTable<Series>(this.#arena);

    constructor(options: SeriesKeyCacheOptions = {}) {
        this.maxEntries = options.maxEntries ?? SERIES_KEY_CACHE_DEFAULTS.maxEntries;
        this.maxBytes = options.maxBytes ?? SERIES_KEY_CACHE_DEFAULTS.maxBytes;
    }

    get size(): number {
        return this.#table.size;
    }

    get(view: DataView, source: Uint8Array, hash: number, start: number, length: number): Series | undefined {
        return this.#table.get(view, source, hash, start, length);
    }

    // Invariant kept: the cache never holds more than maxEntries keys or maxBytes of key bytes.
    set(source: Uint8Array, hash: number, start: number, length: number, value: Series): void {
        if (length > this.maxBytes) return;
        if (this.#table.size >= this.maxEntries || this.#arena.size + length > this.maxBytes) this.clear();
        this.#table.set(source, hash, start, length, value);
    }

    clear(): void {
        this.#table.clear();
        this.#arena.reset();
    }
}

/** The process-wide cache the decoder uses. */
export const sharedSeriesKeys = new SeriesKeyCache();

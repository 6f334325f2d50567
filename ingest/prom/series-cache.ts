/**
 * Decoded label sets shared by every remote-write request: the raw bytes of a TimeSeries' label
 * fields → its measurement (`__name__`) and tags. Prometheus sends every series again each scrape
 * interval with the same label bytes, so a label set is decoded and validated once, not once per
 * sample. Decoding is a pure function of the bytes and only sets that decoded cleanly are stored,
 * so an entry can outlive its request. Bounded: when full it is emptied and refills (the
 * line-protocol series-key cache's policy).
 */
import { ByteKeyTable, KeyArena } from "../lp/byte-table.js";
import { Series } from "../lp/measurement.js";

/** A label set: an LP series (measurement, tag keys and values, per-request binding) plus what the schema said of it. */
export class PromSeries extends Series {
    /**
     * The database whose registry already holds every declaration this series needs (its tags,
     * and `value` as a float field): its later requests there skip the schema check. Declarations
     * are never withdrawn, so this stays true.
     */
    settledIn: string | undefined = undefined;
}

export interface PromSeriesCacheOptions {
    /** Label sets held before the cache is emptied. */
    readonly maxEntries?: number;
    /** Bytes of raw label fields held before the cache is emptied. */
    readonly maxBytes?: number;
}

export const PROM_SERIES_CACHE_DEFAULTS = {
    maxEntries: 200_000,
    maxBytes: 32 * 1024 * 1024,
} as const satisfies { [K in keyof Required<PromSeriesCacheOptions>]: PromSeriesCacheOptions[K] };

export class PromSeriesCache {
    readonly maxEntries: number;
    readonly maxBytes: number;
    #arena = new KeyArena();
    #table = new ByteKeyTable<PromSeries>(this.#arena);

    constructor(options: PromSeriesCacheOptions = {}) {
        this.maxEntries = options.maxEntries ?? PROM_SERIES_CACHE_DEFAULTS.maxEntries;
        this.maxBytes = options.maxBytes ?? PROM_SERIES_CACHE_DEFAULTS.maxBytes;
    }

    get size(): number {
        return this.#table.size;
    }

    get(view: DataView, source: Uint8Array, hash: number, start: number, length: number): PromSeries | undefined {
        return this.#table.get(view, source, hash, start, length);
    }

    // Invariant kept: the cache never holds more than maxEntries label sets or maxBytes of label bytes.
    set(source: Uint8Array, hash: number, start: number, length: number, series: PromSeries): void {
        if (length > this.maxBytes) return;
        if (this.#table.size >= this.maxEntries || this.#arena.size + length > this.maxBytes) this.clear();
        this.#table.set(source, hash, start, length, series);
    }

    clear(): void {
        this.#arena = new KeyArena();
        this.#table = new ByteKeyTable<PromSeries>(this.#arena);
    }
}

/** The process-wide cache the decoder uses by default. */
export const sharedPromSeries = new PromSeriesCache();

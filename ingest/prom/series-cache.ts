/**
 * Decoded label sets shared by every remote-write request: the raw bytes of a TimeSeries' label
 * fields → its metric (`__name__`) and tags. Prometheus sends every series again each scrape
 * interval with the same label bytes, so a label set is decoded and validated once, not once per
 * sample. Decoding is a pure function of the bytes and only sets that decoded cleanly are stored,
 * so an entry can outlive its request. Metrics are interned too (one object per name), so a
 * request finds a series' batch without a lookup by name. Bounded: a request that finds the
 * cache over its limits empties it first (never during a request, so one request never sees two
 * objects for one metric).
 */
import { ByteKeyTable, KeyArena } from "../lp/byte-table.js";

/** A metric name (a measurement) and, for the request that last used it, its place in that request. */
export class PromMetric {
    /** The request (its decode number) that `index` and `series` belong to; 0: none. */
    request = 0;
    /** Index of its batch in that request. */
    index = -1;
    /** Its series bound in that request, in order of first sample. */
    series: PromSeries[] = [];

    constructor(readonly name: string) {}
}

/** A label set: its metric, its tags (labels but `__name__`, empty values left out), and its binding to a request. */
export class PromSeries {
    /**
     * The database whose registry already holds every declaration this series needs (its tags,
     * and `value` as a float field): its later requests there skip the schema check. Declarations
     * are never withdrawn, so this stays true.
     */
    settledIn: string | undefined = undefined;
    /** The request (decode number) `local` belongs to; 0: none. */
    request = 0;
    /** Index in its metric's `series` for that request; -1: refused in that request. */
    local = -1;

    constructor(
        readonly metric: PromMetric,
        readonly tagKeys: readonly string[],
        readonly tagValues: readonly string[],
    ) {}
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
    #metrics = new Map<string, PromMetric>();
    /** Label names and values, one string object each: equal ones compare by reference when batches are built. */
    #strings = new Map<string, string>();

    constructor(options: PromSeriesCacheOptions = {}) {
        this.maxEntries = options.maxEntries ?? PROM_SERIES_CACHE_DEFAULTS.maxEntries;
        this.maxBytes = options.maxBytes ?? PROM_SERIES_CACHE_DEFAULTS.maxBytes;
    }

    get size(): number {
        return this.#table.size;
    }

    // Invariant kept: between requests the cache holds at most maxEntries label sets and maxBytes
    // of label bytes (a request adds at most its own label sets, which its body bounds).
    /** Called before each request: empties the cache when it is over its limits. */
    trim(): void {
        if (this.#table.size >= this.maxEntries || this.#arena.size >= this.maxBytes) this.clear();
    }

    get(view: DataView, source: Uint8Array, hash: number, start: number, length: number): PromSeries | undefined {
        return this.#table.get(view, source, hash, start, length);
    }

    set(source: Uint8Array, hash: number, start: number, length: number, series: PromSeries): void {
        this.#table.set(source, hash, start, length, series);
    }

    /** The one metric object of `name` (until the cache is emptied). */
    metric(name: string): PromMetric {
        let metric = this.#metrics.get(name);
        if (metric === undefined) {
            metric = new PromMetric(name);
            this.#metrics.set(name, metric);
        }
        return metric;
    }

    /** The one string object equal to `text` (until the cache is emptied). */
    intern(text: string): string {
        const known = this.#strings.get(text);
        if (known !== undefined) return known;
        this.#strings.set(text, text);
        return text;
    }

    clear(): void {
        this.#arena = new KeyArena();
        this.#table = new ByteKeyTable<PromSeries>(this.#arena);
        this.#metrics = new Map();
        this.#strings = new Map();
    }
}

/** The process-wide cache the decoder uses by default. */
export const sharedPromSeries = new PromSeriesCache();

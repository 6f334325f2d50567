/**
 * Decoded label sets shared by every remote-write request: the raw bytes of a TimeSeries' label
 * fields → its metric (`__name__`) and tags. Prometheus sends every series again each scrape
 * interval with the same label bytes, so a label set is decoded and validated once, not once per
 * sample. Decoding is a pure function of the bytes and only sets that decoded cleanly are stored,
 * so an entry can outlive its request. Metrics, tag values and lists of tag names are interned
 * too (one object each), so a request finds a series' batch without a lookup by name, tells two
 * series' tag names apart by reference, and knows each tag value by a number whose msgpack bytes
 * are ready to copy into a WAL entry. Bounded: a request that finds the cache over its limits empties it first (never during
 * a request, so one request never sees two objects for one metric).
 */
import { msgpackString } from "../../src/wal/entry-writer.js";
import { ByteKeyTable, KeyArena } from "../lp/byte-table.js";

/** A metric name (a measurement) and, for the request that last used it, its place in that request. */
export class PromMetric {
    /** The request (its decode number) that `index` and `series` belong to; 0: none. */
    request = 0;
    /** Index of its batch in that request. */
    index = -1;
    /** Its series bound in that request, in order of first sample. */
    series: PromSeries[] = [];
    /** Where each one's tag value numbers are in that request's rows (RequestRows.keepTags). */
    tagAt: number[] = [];

    constructor(readonly name: string) {}
}

/** Tag values by number: their text, and their msgpack bytes packed one after the other. */
export class TagValueTable {
    readonly texts: string[] = [];
    readonly #ids = new Map<string, number>();
    /** Value i's msgpack string is `bytes[offsets[i], offsets[i + 1])`. */
    bytes = new Uint8Array(4096);
    offsets = new Int32Array(1024);

    get size(): number {
        return this.texts.length;
    }

    /** The number of `text` (the same for every equal text). */
    id(text: string): number {
        let id = this.#ids.get(text);
        if (id !== undefined) return id;
        id = this.texts.push(text) - 1;
        this.#ids.set(text, id);
        const encoded = msgpackString(text);
        if (id + 2 > this.offsets.length) {
            const offsets = new Int32Array(2 * this.offsets.length);
            offsets.set(this.offsets);
            this.offsets = offsets;
        }
        const start = this.offsets[id]!;
        if (start + encoded.length > this.bytes.length) {
            const bytes = new Uint8Array(Math.max(2 * this.bytes.length, start + encoded.length));
            bytes.set(this.bytes.subarray(0, start));
            this.bytes = bytes;
        }
        this.bytes.set(encoded, start);
        this.offsets[id + 1] = start + encoded.length;
        return id;
    }
}

/** A label set: its metric, its tags (labels but `__name__`, empty values left out), and its binding to a request. */
export class PromSeries {
    /**
     * The database, and the registry, that hold every declaration this series needs, committed
     * (its tags, and `value` as a float field): its later requests there skip the schema. Set
     * once a request that reserved them all is durable; declarations are never withdrawn.
     */
    settledIn: string | undefined = undefined;
    settledBy: object | undefined = undefined;
    /** The request (decode number) `local` belongs to; 0: none. */
    request = 0;
    /** Index in its metric's `series` for that request; -1: refused in that request. */
    local = -1;
    /** Its place in the staged rows `slotOwner` (generation `slotGeneration`) keeps (ingest/prom/staged-rows.ts). */
    slotOwner: object | undefined = undefined;
    slotGeneration = 0;
    slot = 0;
    /** Where its label bytes are in the cache's arena (`keyArena`), once cached. */
    keyArena: KeyArena | undefined = undefined;
    keyOffset = 0;
    keyLength = 0;
    /** The series that came after it in the last request that had both: usually the next one again. */
    next: PromSeries | undefined = undefined;

    constructor(
        readonly metric: PromMetric,
        /** Interned: series with the same tag names in the same order share this array. */
        readonly tagKeys: readonly string[],
        readonly tagTexts: readonly string[],
        /** Where its tag values' numbers (in its cache's TagValueTable) are in the cache's `tagIds`. */
        readonly tagStart: number,
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
    /** Label names, one string object each. */
    #names = new Map<string, string>();
    #values = new TagValueTable();
    #tagIds = new Int32Array(4096);
    #tagIdsLength = 0;
    /** Lists of tag names, by their names each prefixed with its length (so no two lists share a key). */
    #keyLists = new Map<string, readonly string[]>();

    constructor(options: PromSeriesCacheOptions = {}) {
        this.maxEntries = options.maxEntries ?? PROM_SERIES_CACHE_DEFAULTS.maxEntries;
        this.maxBytes = options.maxBytes ?? PROM_SERIES_CACHE_DEFAULTS.maxBytes;
    }

    get size(): number {
        return this.#table.size;
    }

    // Invariant kept: between requests the cache holds at most maxEntries label sets and maxBytes
    // of label bytes and tag value numbers (a request adds at most its own, which its body bounds).
    /** Called before each request: empties the cache when it is over its limits. */
    trim(): void {
        if (this.#table.size >= this.maxEntries || this.#arena.size + 4 * this.#tagIdsLength >= this.maxBytes) this.clear();
    }

    get(view: DataView, source: Uint8Array, hash: number, start: number, length: number): PromSeries | undefined {
        return this.#table.get(view, source, hash, start, length);
    }

    set(source: Uint8Array, hash: number, start: number, length: number, series: PromSeries): void {
        // The table copies the key to the end of the arena.
        series.keyArena = this.#arena;
        series.keyOffset = this.#arena.size;
        series.keyLength = length;
        this.#table.set(source, hash, start, length, series);
    }

    /**
     * Whether the label fields at `source[start, end)` are `series`' (a cached one): its label
     * bytes come first, and no other label field right after them. Cheaper than `get` (no hash,
     * no table): for a guess, such as the series that followed the previous one last time. The
     * bytes are compared natively (memcmp): label sets run to hundreds of bytes, where a loop in
     * JS took 7% of a request's CPU (profiled, the promwrite bench's requests).
     */
    matches(series: PromSeries, source: Buffer, start: number, end: number, labelKey: number): boolean {
        const arena = series.keyArena;
        const stop = start + series.keyLength;
        if (arena !== this.#arena || stop > end || (stop < end && source[stop] === labelKey)) return false;
        return source.compare(arena.bytes, series.keyOffset, series.keyOffset + series.keyLength, start, stop) === 0;
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

    /** The one string object equal to the label name `text`. */
    name(text: string): string {
        const known = this.#names.get(text);
        if (known !== undefined) return known;
        this.#names.set(text, text);
        return text;
    }

    /** The tag values of the label sets held (emptied with them). */
    get values(): TagValueTable {
        return this.#values;
    }

    /** The series' tag value numbers, series after series in the order they were made (a request reads them in about that order). */
    get tagIds(): Int32Array {
        return this.#tagIds;
    }

    /** Keeps the numbers of `texts` at the end of `tagIds`; returns where they start. */
    keepTags(texts: readonly string[]): number {
        const start = this.#tagIdsLength;
        if (start + texts.length > this.#tagIds.length) {
            const ids = new Int32Array(2 * (start + texts.length));
            ids.set(this.#tagIds.subarray(0, start));
            this.#tagIds = ids;
        }
        for (let t = 0; t < texts.length; t++) this.#tagIds[start + t] = this.#values.id(texts[t]!);
        this.#tagIdsLength = start + texts.length;
        return start;
    }

    /** The one array equal to `keys` (interned names, in that order). */
    keys(keys: readonly string[]): readonly string[] {
        let joined = "";
        for (const key of keys) joined += `${key.length}:${key}`;
        const known = this.#keyLists.get(joined);
        if (known !== undefined) return known;
        this.#keyLists.set(joined, keys);
        return keys;
    }

    clear(): void {
        this.#arena = new KeyArena();
        this.#table = new ByteKeyTable<PromSeries>(this.#arena);
        this.#metrics = new Map();
        this.#names = new Map();
        this.#values = new TagValueTable();
        this.#tagIds = new Int32Array(4096);
        this.#tagIdsLength = 0;
        this.#keyLists = new Map();
    }
}

/** The process-wide cache the decoder uses by default. */
export const sharedPromSeries = new PromSeriesCache();

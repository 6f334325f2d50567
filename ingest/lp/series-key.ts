/**
 * Series keys: the raw `measurement,tagset` of a line → its decoded `Series`. A key seen before
 * (by any body) is found in the shared cache by its bytes, which were validated then; a new one
 * is decoded here, validated, and cached once its line is accepted. Keys that fail to decode,
 * and keys of lines rejected for another reason (a hostile body of 100,000 lines past the
 * measurement limit), are never cached: they die young instead of filling the old generation.
 */
import { TIME_COLUMN } from "../../src/columnar/batch.js";
import { type Body, COMMA, EQUALS, SPACE, hashBytes } from "./bytes.js";
import { LP_LIMITS } from "./limits.js";
import { Series } from "./measurement.js";
import { MEASUREMENT, TAG_KEY, TAG_VALUE, readName } from "./names.js";
import type { Rejection } from "./rejection.js";
import type { BodySearches, ByteSearch } from "./searches.js";
import { sharedSeriesKeys } from "./series-cache.js";

/** Whether a line of a measurement may be accepted (the database's measurement limit); records the reason when not. */
export interface MeasurementGate {
    measurementAllowed(measurement: string): boolean;
}

/** Series keys up to this long are looked up without first finding the end of the line. */
const SHORT_KEY_BYTES = 256;

/** The series keys of one body. */
export class SeriesKeyReader {
    readonly #bytes: Buffer;
    readonly #view: DataView;
    readonly #lineFeeds: ByteSearch;
    readonly #rejection: Rejection;
    readonly #checkUtf8: boolean;
    readonly #gate: MeasurementGate;
    /** The key `read` decoded last: cached by `keep` when a line of it is accepted. */
    #fresh: { readonly hash: number; readonly start: number; readonly length: number; readonly series: Series } | null = null;

    constructor(body: Body, searches: BodySearches, rejection: Rejection, gate: MeasurementGate) {
        this.#gate = gate;
        this.#bytes = body.bytes;
        this.#view = body.view;
        this.#checkUtf8 = body.checkUtf8;
        this.#lineFeeds = searches.lineFeed;
        this.#rejection = rejection;
    }

    /**
     * The series of the key at `[start, keyEnd)` (`keyEnd`: the first unescaped space at or after
     * `start`, or the end of the body), or null with the reason recorded.
     */
    // Invariant kept: only a key that decodes cleanly and ends at `keyEnd` is returned or cached.
    read(start: number, keyEnd: number): Series | null {
        const bytes = this.#bytes;
        const view = this.#view;
        // A short candidate is looked up straight away: a known key has no LF, so a hit proves the
        // key ends on this line. A long one is first checked to end before the line does, so a
        // body of lines without spaces cannot make every line hash up to a far-away space.
        let hash = 0;
        if (keyEnd - start <= SHORT_KEY_BYTES || keyEnd < this.#lineFeeds.after(start)) {
            hash = hashBytes(view, bytes, start, keyEnd);
            const known = sharedSeriesKeys.get(view, bytes, hash, start, keyEnd - start);
            if (known !== undefined) return known;
        }
        const decoded = decodeSeriesKey(bytes, start, keyEnd, this.#checkUtf8, this.#gate);
        if (decoded === null) return null;
        if (typeof decoded === "string") {
            this.#rejection.reason = decoded;
            return null;
        }
        // A key that decodes has no LF, so it was looked up above and `hash` is its hash.
        this.#fresh = { hash, start, length: keyEnd - start, series: decoded };
        return decoded;
    }

    /** The first accepted line of `series` in this body: if `read` decoded it (it was not cached), it joins the shared cache. */
    keep(series: Series): void {
        const fresh = this.#fresh;
        if (fresh?.series !== series) return;
        sharedSeriesKeys.set(this.#bytes, fresh.hash, fresh.start, fresh.length, fresh.series);
        this.#fresh = null;
    }
}

/**
 * Reads and validates the series key at `start`, which a fast scan says ends at `keyEnd`: the
 * decoded series, why the line is rejected, or null if the gate refused its measurement (the
 * gate recorded why). The gate is asked before the tags are read, so a body of lines past the
 * measurement limit allocates no tags.
 */
function decodeSeriesKey(bytes: Buffer, start: number, keyEnd: number, checkUtf8: boolean, gate: MeasurementGate): Series | string | null {
    const end = bytes.length;
    const measurement = readName(bytes, start, end, MEASUREMENT, checkUtf8);
    if (typeof measurement === "string") return measurement;
    let i = measurement.end;
    if (i === start) return "missing measurement";
    if (!gate.measurementAllowed(measurement.value)) return null;
    const keys: string[] = [];
    const values: string[] = [];
    let keySet: Set<string> | null = null; // for the duplicate check once there are many tags
    while (i < end && bytes[i] === COMMA) {
        const key = readName(bytes, i + 1, end, TAG_KEY, checkUtf8);
        if (typeof key === "string") return key;
        i = key.end;
        if (key.value === "") return "empty tag key";
        if (i >= end || bytes[i] !== EQUALS) return `tag key "${key.value}" has no "=" and value`;
        if (key.value === TIME_COLUMN) return `tag key "${TIME_COLUMN}" is not allowed: it is the time column`;
        const value = readName(bytes, i + 1, end, TAG_VALUE, checkUtf8);
        if (typeof value === "string") return `tag "${key.value}": ${value}`;
        i = value.end;
        if (value.value === "") return `tag "${key.value}" has an empty value`;
        if (keys.length >= 8) {
            keySet ??= new Set(keys);
            if (keySet.has(key.value)) return `duplicate tag key "${key.value}"`;
            keySet.add(key.value);
        } else if (keys.includes(key.value)) {
            return `duplicate tag key "${key.value}"`;
        }
        keys.push(key.value);
        values.push(value.value);
    }
    if (i >= end || bytes[i] !== SPACE) return "missing fields: a line needs at least one field=value after the measurement and tags";
    if (i !== keyEnd) throw new Error(`line-protocol scanner disagreement: series key ends at ${i}, fast scan said ${keyEnd}`);
    if (i - start > LP_LIMITS.maxSeriesKeyBytes) return `series key (measurement and tags) is ${i - start} bytes, the limit is ${LP_LIMITS.maxSeriesKeyBytes}`;
    return new Series(measurement.value, keys, values);
}

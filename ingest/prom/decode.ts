/**
 * The remote-write 1.0 decoder: an uncompressed protobuf `WriteRequest` in, one columnar batch
 * per measurement out (DESIGN.md §5; InfluxDB 1.x's mapping): measurement = `__name__`, every
 * other label a tag, one float field `value`, time = the sample's ms × 10⁶ ns.
 *
 * Field numbers (prometheus/prometheus prompb/remote.proto and types.proto): WriteRequest
 * {timeseries = 1, metadata = 3}; TimeSeries {labels = 1, samples = 2, exemplars = 3,
 * histograms = 4}; Label {name = 1, value = 2}; Sample {value = 1 (double), timestamp = 2 (int64)}.
 *
 * Like the line-protocol decoder it reads the bytes by index, with no per-sample object: each
 * sample becomes a row of flat typed arrays (ingest/prom/batches.ts), turned into one batch per
 * metric at the end. A series' label fields are recognised by their raw bytes in a cache shared
 * across requests, so a label set is decoded and validated once, not every scrape; within a
 * request each series is bound to its metric once.
 *
 * What is rejected (a 400 once the rest is stored: a retry cannot fix it) is a series, or a
 * sample, never the request, unless the bytes themselves are not a WriteRequest. Per series:
 * no or empty `__name__`; a label name that is empty, repeated, not UTF-8, or `time` / `value`
 * (the time column and the sample's field: relabel them in Prometheus); a label value that is
 * not UTF-8; a schema conflict (ingest/prom/schema.ts). Per sample: a time outside what int64
 * nanoseconds hold (years 1677–2262). Accepted as they are: labels in any order (the spec asks
 * senders to sort them; the order changes nothing here), a label with an empty value (Prometheus
 * treats it as absent, so it is: no tag), NaN and ±Inf values. Stale markers (the NaN
 * 0x7ff0000000000002) are dropped and counted; metadata, exemplars and native histograms are
 * ignored and counted.
 */
import { isUtf8 } from "node:buffer";
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import { TIME_COLUMN } from "../../src/columnar/batch.js";
import { nameProblem } from "../../src/names.js";
import { BadRequestError } from "../errors.js";
import { hashBytes, viewOf } from "../lp/bytes.js";
import { LP_LIMITS } from "../lp/index.js";
import type { SchemaRegistry } from "../schema.js";
import { type GroupedRows, RequestRows, rowBytes } from "./batches.js";
import { PromDeclarations, VALUE_FIELD, admitSeries } from "./schema.js";
import { type PromMetric, PromSeries, type PromSeriesCache, sharedPromSeries } from "./series-cache.js";
import { WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, WireReader, keyByte, malformed } from "./wire.js";

export interface RemoteWriteOptions {
    readonly database: string;
    readonly schema: SchemaRegistry;
    /** The label-set cache (default: the process-wide one). */
    readonly cache?: PromSeriesCache;
}

/** A series or sample not stored, and why. */
export interface RejectedSeries {
    /** 0-based index of the TimeSeries in the request. */
    readonly index: number;
    /** The label set as text, at most about 1 KiB. */
    readonly labels: string;
    readonly reason: string;
    /** Samples not stored because of it. */
    readonly samples: number;
}

export interface RemoteWriteResult {
    /** The database and registry it was decoded for. */
    readonly database: string;
    readonly schema: SchemaRegistry;
    /** The samples stored, grouped by metric (undefined when there are none). */
    readonly rows: GroupedRows | undefined;
    /** One batch per measurement, rows in request order (built when asked for). */
    readonly batches: ColumnarBatch[];
    /** What the registry must hold before the batches are stored (ingest/prom/schema.ts). */
    readonly declarations: PromDeclarations;
    /** Rows in the batches. */
    readonly samples: number;
    /** The first MAX_LISTED_REJECTIONS rejections. */
    readonly rejected: readonly RejectedSeries[];
    /** Rejections in all (series, and samples of accepted series). */
    readonly rejections: number;
    /** Samples in rejected series, and rejected samples. */
    readonly rejectedSamples: number;
    readonly staleMarkers: number;
    readonly metadata: number;
    readonly exemplars: number;
    readonly histograms: number;
}

/** How many rejections a result lists at most (all are counted). */
export const MAX_LISTED_REJECTIONS = 100;

/** Largest |ms| whose ns fits in int64: ⌊(2^63 − 1) / 10^6⌋. */
const MAX_MS = 9_223_372_036_854;
const TWO_32 = 4_294_967_296;
/** A varint of up to 7 bytes (49 bits) is summed exactly in a double. */
const EXACT_VARINT_BYTES = 7;
/** Where the 64-bit words of a Float64 sit: the stale marker is lo = 2, hi = 0x7ff00000. */
const STALE_LO = 2;
const STALE_HI = 0x7ff0_0000;

const TIMESERIES = keyByte(1, WIRE_LEN);
const METADATA = keyByte(3, WIRE_LEN);
const LABEL = keyByte(1, WIRE_LEN);
const SAMPLE = keyByte(2, WIRE_LEN);
const EXEMPLAR = keyByte(3, WIRE_LEN);
const HISTOGRAM = keyByte(4, WIRE_LEN);
const LABEL_NAME = keyByte(1, WIRE_LEN);
const LABEL_VALUE = keyByte(2, WIRE_LEN);
const SAMPLE_VALUE = keyByte(1, WIRE_FIXED64);
const SAMPLE_TIMESTAMP = keyByte(2, WIRE_VARINT);

const NAME_LABEL = "__name__";
const LABEL_TEXT_LIMIT = 1024;

/** The number of the latest decode (a series' and a metric's per-request binding names it; decodes never interleave). */
let lastDecode = 0;

// Invariant kept: rejects the request (throws a 400) only when its bytes are not a WriteRequest
// or its batches would outgrow their budget; otherwise every sample is stored or reported.
export function decodeRemoteWrite(body: Buffer, options: RemoteWriteOptions): RemoteWriteResult {
    return new RequestDecoder(body, options).run();
}

/** One decode of one request body. */
class RequestDecoder {
    readonly #decode = ++lastDecode;
    readonly #bytes: Buffer;
    readonly #view: DataView;
    readonly #reader: WireReader;
    readonly #database: string;
    readonly #schema: SchemaRegistry;
    readonly #cache: PromSeriesCache;
    /** The request's metrics, by their `index`. */
    readonly #metrics: PromMetric[] = [];
    readonly #rows = new RequestRows();
    readonly #declarations = new PromDeclarations();
    readonly #rejected: RejectedSeries[] = [];
    /** The last series resolved in this request. */
    #previous: PromSeries | undefined;
    /** Bytes of the batches' columns so far and their budget (every tag column spans every row of its batch). */
    #batchBytes = 0;
    readonly #batchBytesLimit: number;
    #series = 0;
    #rejections = 0;
    #rejectedSamples = 0;
    #stale = 0;
    #metadata = 0;
    #exemplars = 0;
    #histograms = 0;
    /** The last timestamp read, as int64 ns words; `#tsOk` false when it was out of range. */
    #tsLo = 0;
    #tsHi = 0;
    #tsOk = true;

    constructor(body: Buffer, options: RemoteWriteOptions) {
        this.#bytes = body;
        this.#view = viewOf(body);
        this.#reader = new WireReader(body);
        this.#database = options.database;
        this.#schema = options.schema;
        this.#cache = options.cache ?? sharedPromSeries;
        this.#cache.trim();
        this.#batchBytesLimit = LP_LIMITS.batchBytesBase + LP_LIMITS.batchBytesPerBodyByte * body.length;
    }

    run(): RemoteWriteResult {
        const reader = this.#reader;
        const end = this.#bytes.length;
        while (reader.pos < end) {
            const key = reader.varint32(end);
            if (key === TIMESERIES) {
                const stop = reader.lengthEnd(end);
                this.#timeSeries(reader.pos, stop);
                reader.pos = stop;
            } else if (key === METADATA) {
                this.#metadata++;
                reader.skip(WIRE_LEN, end);
            } else reader.skipField(key, end);
        }
        const rows = this.#rows.rows === 0 ? undefined : this.#rows.group(this.#metrics, this.#cache.values, this.#batchBytesLimit);
        if (typeof rows === "number") throw this.#overBudget(rows);
        return {
            database: this.#database,
            schema: this.#schema,
            rows,
            get batches() {
                return rows?.toBatches() ?? [];
            },
            declarations: this.#declarations,
            samples: this.#rows.rows,
            rejected: this.#rejected,
            rejections: this.#rejections,
            rejectedSamples: this.#rejectedSamples,
            staleMarkers: this.#stale,
            metadata: this.#metadata,
            exemplars: this.#exemplars,
            histograms: this.#histograms,
        };
    }

    /** One TimeSeries message, `[start, end)`. */
    #timeSeries(start: number, end: number): void {
        const index = this.#series++;
        const reader = this.#reader;
        let series: PromSeries | string | undefined;
        // Where the label fields are (one contiguous run, as senders write them, is the cache key) and the samples start.
        let labelsStart = -1;
        let labelsEnd = -1;
        let scattered = false;
        let firstSample = -1;
        let sampleCount = 0;
        reader.pos = start;
        // A sender repeats its series in the same order: first, the one that followed the previous series last time.
        const guess = this.#previous?.next;
        if (guess !== undefined && this.#cache.matches(guess, this.#bytes, start, end, LABEL)) {
            series = guess;
            labelsStart = start;
            labelsEnd = reader.pos = start + guess.keyLength;
        }
        while (reader.pos < end) {
            const fieldStart = reader.pos;
            const key = reader.varint32(end);
            if (key === LABEL) {
                reader.pos = reader.lengthEnd(end);
                if (labelsStart < 0) labelsStart = fieldStart;
                else if (labelsEnd !== fieldStart) scattered = true;
                labelsEnd = reader.pos;
            } else if (key === SAMPLE) {
                reader.pos = reader.lengthEnd(end);
                if (firstSample < 0) firstSample = fieldStart;
                sampleCount++;
            } else if (key === EXEMPLAR) {
                this.#exemplars++;
                reader.skip(WIRE_LEN, end);
            } else if (key === HISTOGRAM) {
                this.#histograms++;
                reader.skip(WIRE_LEN, end);
            } else reader.skipField(key, end);
        }
        if (sampleCount === 0) return;

        if (series === undefined || scattered) series = this.#resolve(start, end, labelsStart, labelsEnd, scattered);
        if (typeof series === "string") {
            this.#reject(index, start, end, series, sampleCount);
            return;
        }
        if (this.#previous !== undefined && this.#previous.next !== series) this.#previous.next = series;
        this.#previous = series;
        if (series.request !== this.#decode || series.local < 0) {
            // A settled series (most, once a sender's series have been seen) is told here: the call
            // allocated about 48 bytes of heap per series even when it returned at once (measured).
            const settled = series.settledIn === this.#database && series.settledBy === this.#schema;
            const problem = settled ? undefined : admitSeries(this.#schema, this.#database, series, this.#declarations);
            series.request = this.#decode;
            if (problem !== undefined) {
                series.local = -1;
                this.#reject(index, start, end, problem, sampleCount);
                return;
            }
            this.#bind(series);
        }
        this.#samples(series, index, start, firstSample, end);
    }

    /** The series a label run names: from the cache by its bytes, else decoded (and cached when contiguous). */
    #resolve(start: number, end: number, labelsStart: number, labelsEnd: number, scattered: boolean): PromSeries | string {
        if (labelsStart < 0) return `no labels: a series needs a ${NAME_LABEL} label`;
        let hash = 0;
        if (!scattered) {
            if (labelsEnd - labelsStart > LP_LIMITS.maxSeriesKeyBytes) {
                return `the labels take ${labelsEnd - labelsStart} bytes, the limit is ${LP_LIMITS.maxSeriesKeyBytes}`;
            }
            hash = hashBytes(this.#view, this.#bytes, labelsStart, labelsEnd);
            const cached = this.#cache.get(this.#view, this.#bytes, hash, labelsStart, labelsEnd - labelsStart);
            if (cached !== undefined) return cached;
        }
        const decoded = this.#decodeLabels(start, end);
        if (typeof decoded !== "string" && !scattered) this.#cache.set(this.#bytes, hash, labelsStart, labelsEnd - labelsStart, decoded);
        return decoded;
    }

    /** Reads and validates the labels of the TimeSeries `[start, end)`. */
    #decodeLabels(start: number, end: number): PromSeries | string {
        const reader = new WireReader(this.#bytes);
        const bytes = this.#bytes;
        let measurement: string | undefined;
        const keys: string[] = [];
        const values: string[] = [];
        const names = new Set<string>();
        reader.pos = start;
        while (reader.pos < end) {
            const key = reader.varint32(end);
            if (key !== LABEL) {
                reader.skipField(key, end);
                continue;
            }
            const labelEnd = reader.lengthEnd(end);
            let nameStart = reader.pos;
            let nameEnd = reader.pos;
            let valueStart = reader.pos;
            let valueEnd = reader.pos;
            while (reader.pos < labelEnd) {
                const key = reader.varint32(labelEnd);
                if (key === LABEL_NAME || key === LABEL_VALUE) {
                    const stop = reader.lengthEnd(labelEnd);
                    if (key === LABEL_NAME) [nameStart, nameEnd] = [reader.pos, stop];
                    else [valueStart, valueEnd] = [reader.pos, stop];
                    reader.pos = stop;
                } else reader.skipField(key, labelEnd);
            }
            if (nameEnd === nameStart) return "a label has an empty name";
            if (!isUtf8(bytes.subarray(nameStart, nameEnd))) return "a label name is not valid UTF-8";
            const name = this.#cache.name(bytes.toString("utf8", nameStart, nameEnd));
            if (!isUtf8(bytes.subarray(valueStart, valueEnd))) return `the value of label "${name}" is not valid UTF-8`;
            if (names.has(name)) return `label "${name}" appears twice`;
            names.add(name);
            const value = bytes.toString("utf8", valueStart, valueEnd);
            if (name === NAME_LABEL) measurement = value;
            else if (name === TIME_COLUMN || name === VALUE_FIELD) {
                return `label "${name}" is reserved: Sluice stores the sample's ${name === TIME_COLUMN ? "time" : "value"} under that name (rename the label with write_relabel_configs)`;
            } else if (value !== "") {
                keys.push(name);
                values.push(value);
            }
        }
        if (measurement === undefined || measurement === "") return `no ${NAME_LABEL} label: a series needs one (it names the measurement)`;
        const problem = nameProblem("measurement", measurement);
        if (problem !== undefined) return problem;
        const tagStart = this.#cache.keepTags(values);
        const { tagIds } = this.#cache;
        const texts = this.#cache.values.texts;
        return new PromSeries(
            this.#cache.metric(measurement),
            this.#cache.keys(keys),
            values.map((_, t) => texts[tagIds[tagStart + t]!]!),
            tagStart,
        );
    }

    /** Binds an admitted series to this request: a place among its metric's series, and its metric a batch. */
    #bind(series: PromSeries): void {
        const metric = series.metric;
        if (metric.request !== this.#decode) {
            metric.request = this.#decode;
            metric.index = this.#metrics.push(metric) - 1;
            metric.series = [];
            metric.tagAt = [];
        }
        series.local = metric.series.push(series) - 1;
        metric.tagAt.push(this.#rows.keepTags(this.#cache.tagIds, series.tagStart, series.tagKeys.length));
    }

    /** Appends the series' samples (the fields from `from` on) as rows. */
    #samples(series: PromSeries, index: number, seriesStart: number, from: number, end: number): void {
        const bytes = this.#bytes;
        const view = this.#view;
        const reader = this.#reader;
        const rows = this.#rows;
        const metric = series.metric.index;
        const local = series.local;
        const cost = rowBytes(series.tagKeys.length);
        reader.pos = from;
        while (reader.pos < end) {
            const key = reader.varint32(end);
            if (key !== SAMPLE) {
                reader.skipField(key, end);
                continue;
            }
            const stop = reader.lengthEnd(end);
            // A sample as Prometheus writes it: the value's key and 8 bytes, then the timestamp's key and varint.
            let p = reader.pos;
            let valueAt = -1;
            if (p + 9 <= stop && bytes[p] === SAMPLE_VALUE) {
                valueAt = p + 1;
                p += 9;
            }
            if (p < stop && bytes[p] === SAMPLE_TIMESTAMP) p = this.#timestamp(p + 1, stop);
            else this.#noTimestamp();
            if (p !== stop) valueAt = this.#generalSample(reader.pos, stop);
            reader.pos = stop;

            let value = 0;
            if (valueAt >= 0) {
                value = view.getFloat64(valueAt, true);
                if (value !== value && view.getUint32(valueAt, true) === STALE_LO && view.getUint32(valueAt + 4, true) === STALE_HI) {
                    this.#stale++;
                    continue;
                }
            }
            if (!this.#tsOk) {
                this.#reject(index, seriesStart, end, "a sample's timestamp is out of range (int64 nanoseconds hold the years 1677 to 2262)", 1);
                continue;
            }
            this.#batchBytes += cost;
            if (this.#batchBytes > this.#batchBytesLimit) throw this.#overBudget(this.#batchBytes);
            rows.push(metric, local, this.#tsLo, this.#tsHi, value);
        }
    }

    /**
     * A sample in any field order or with extra fields (proto3: the last of a repeated field
     * wins; an absent value or timestamp is 0): the value's offset (-1 when absent), the
     * timestamp into #tsLo/#tsHi.
     */
    #generalSample(start: number, stop: number): number {
        const reader = new WireReader(this.#bytes);
        reader.pos = start;
        let valueAt = -1;
        this.#noTimestamp();
        while (reader.pos < stop) {
            const key = reader.varint32(stop);
            if (key === SAMPLE_VALUE) {
                valueAt = reader.pos;
                reader.skip(WIRE_FIXED64, stop);
            } else if (key === SAMPLE_TIMESTAMP) reader.pos = this.#timestamp(reader.pos, stop);
            else reader.skipField(key, stop);
        }
        return valueAt;
    }

    /** A sample without a timestamp field has time 0 (proto3's default). */
    #noTimestamp(): void {
        this.#tsLo = 0;
        this.#tsHi = 0;
        this.#tsOk = true;
    }

    /** The int64 ms varint at `p` as ns words into #tsLo/#tsHi (#tsOk false when out of range); returns the index past it. */
    #timestamp(p: number, stop: number): number {
        const bytes = this.#bytes;
        let ms = 0;
        let scale = 1;
        for (let i = 0; i < EXACT_VARINT_BYTES; i++) {
            if (p >= stop) throw malformed("truncated timestamp", p);
            const byte = bytes[p++]!;
            ms += (byte & 0x7f) * scale;
            if (byte < 0x80) {
                this.#tsOk = ms <= MAX_MS;
                // ns = ms × 10^6 from 32-bit halves, each product exact in a double.
                const lo = ms % TWO_32;
                const low = lo * 1_000_000;
                const lowWord = low % TWO_32;
                this.#tsLo = lowWord;
                this.#tsHi = (((ms - lo) / TWO_32) * 1_000_000 + (low - lowWord) / TWO_32) % TWO_32;
                return p;
            }
            scale *= 128;
        }
        return this.#longTimestamp(p - EXACT_VARINT_BYTES, stop);
    }

    /** A timestamp varint of 8 to 10 bytes (negative ones take 10): through BigInt, as it is rare. */
    #longTimestamp(start: number, stop: number): number {
        const bytes = this.#bytes;
        let p = start;
        let raw = 0n;
        for (let shift = 0n; ; shift += 7n) {
            if (p >= stop) throw malformed("truncated timestamp", p);
            if (shift > 63n) throw malformed("timestamp varint longer than 10 bytes", p);
            const byte = bytes[p++]!;
            raw |= BigInt(byte & 0x7f) << shift;
            if (byte < 0x80) break;
        }
        const ms = BigInt.asIntN(64, raw);
        this.#tsOk = ms >= -MAX_MS && ms <= MAX_MS;
        const ns = BigInt.asUintN(64, ms * 1_000_000n);
        this.#tsLo = Number(ns & 0xffff_ffffn);
        this.#tsHi = Number(ns >> 32n);
        return p;
    }

    // Invariant kept: the batches of one request never take more than #batchBytesLimit bytes of columns.
    #overBudget(bytes: number): BadRequestError {
        return new BadRequestError(
            `the request's samples would take ${bytes} bytes of columns, more than ${this.#batchBytesLimit} for a ${this.#bytes.length}-byte body (each metric's tag columns span all its rows): send fewer series per request`,
        );
    }

    #reject(index: number, start: number, end: number, reason: string, samples: number): void {
        this.#rejections++;
        this.#rejectedSamples += samples;
        if (this.#rejected.length < MAX_LISTED_REJECTIONS) this.#rejected.push({ index, labels: this.#labelText(start, end), reason, samples });
    }

    /** The TimeSeries' labels as `{name="value", …}` for a message (lenient: any bytes, cut at about 1 KiB). */
    #labelText(start: number, end: number): string {
        const reader = new WireReader(this.#bytes);
        const parts: string[] = [];
        let length = 0;
        try {
            reader.pos = start;
            while (reader.pos < end && length < LABEL_TEXT_LIMIT) {
                const key = reader.varint32(end);
                if (key !== LABEL) {
                    reader.skipField(key, end);
                    continue;
                }
                const labelEnd = reader.lengthEnd(end);
                let name = "";
                let value = "";
                while (reader.pos < labelEnd) {
                    const field = reader.varint32(labelEnd);
                    if (field === LABEL_NAME || field === LABEL_VALUE) {
                        const stop = reader.lengthEnd(labelEnd);
                        const text = this.#bytes.toString("utf8", reader.pos, stop);
                        if (field === LABEL_NAME) name = text;
                        else value = text;
                        reader.pos = stop;
                    } else reader.skipField(field, labelEnd);
                }
                const part = `${name}=${JSON.stringify(value)}`;
                parts.push(part);
                length += part.length + 2;
            }
        } catch {
            parts.push("…");
        }
        const text = `{${parts.join(", ")}}`;
        return text.length > LABEL_TEXT_LIMIT ? `${text.slice(0, LABEL_TEXT_LIMIT)}…}` : text;
    }
}

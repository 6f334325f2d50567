/**
 * A remote-write request's WAL entries, written straight from its grouped rows (DESIGN.md §2:
 * one entry per measurement, the request's entries one unit). The constant parts of each map
 * (measurement, tag and type lists, column keys) come from a PayloadShape kept with the metric;
 * each tag value is copied as the msgpack bytes kept with it; a dictionary is built by stamping
 * the values it holds, so no string is encoded, hashed or compared. The bytes are those
 * encodePayload writes for the same batch. A metric whose series have different tag names in a
 * request (rare: a label some of its series lack) goes through the batch encoder instead.
 */
import { TIME_COLUMN } from "../../src/columnar/batch.js";
import { type EntryWriter, putArrayHeader, putBinHeader, putBytes } from "../../src/wal/entry-writer.js";
import { CODES_KEY, PayloadShape, encodeBatch, envelopeOf, writeMapEnd, writeMapStart } from "../../src/wal/payload.js";
import { type GroupedRows, HI, LO } from "./batches.js";
import { VALUE_FIELD } from "./schema.js";
import type { PromMetric } from "./series-cache.js";

/** The shape of each metric's entries, for the tag names it had last (interned lists: compared by reference). */
const shapes = new WeakMap<PromMetric, { readonly keys: readonly string[]; readonly shape: PayloadShape }>();

function shapeOf(metric: PromMetric, keys: readonly string[]): PayloadShape {
    const known = shapes.get(metric);
    if (known?.keys === keys) return known.shape;
    const shape = new PayloadShape(metric.name, keys, [[TIME_COLUMN, "t"], ...keys.map((key) => [key, "s"] as const), [VALUE_FIELD, "f"]]);
    shapes.set(metric, { keys, shape });
    return shape;
}

/** Numbers no dictionary had before: a value whose `stamps` entry is the current one is in the current dictionary, coded `codes[id]`. */
let lastStamp = 0;
let stamps = new Int32Array(1024);
let codes = new Int32Array(1024);
/** Per series of an entry, its code in the column being written. */
let seriesCodes = new Int32Array(1024);
/** The values of the dictionary being written, in order. */
let dictionary = new Int32Array(1024);
/** The `codes` key and the largest bin header after it. */
const CODES_KEY_BYTES = 6 + 5;
const MAX_STAMP = 2 ** 30;

// Invariant kept: entry k holds metric k's rows in order, and all but the last entry carry how
// many entries of the request follow them (`u`).
/** Writes one entry per metric of `rows` into `writer`. */
export function writeEntries(writer: EntryWriter, database: string, rows: GroupedRows, appendTimeUs: number): void {
    const envelope = envelopeOf(database);
    const count = rows.metrics.length;
    const values = rows.values.size;
    if (stamps.length < values) {
        stamps = new Int32Array(2 * values);
        codes = new Int32Array(2 * values);
        lastStamp = 0;
    }
    for (let k = 0; k < count; k++) {
        const following = count - 1 - k;
        writer.beginEntry(envelope);
        if (rows.layouts[k]!.columns === null) writeMap(writer, rows, k, following);
        else writer.raw(encodeBatch(rows.batch(k), following));
        writer.endEntry(appendTimeUs);
    }
}

/** Metric k's map, every one of its series having the same tag names. */
function writeMap(writer: EntryWriter, rows: GroupedRows, k: number, following: number): void {
    const start = rows.starts[k]!;
    const end = rows.starts[k + 1]!;
    const size = end - start;
    const keys = rows.layouts[k]!.keys;
    const width = keys.length;
    const seriesCount = rows.series[k]!.length;
    const ids = rows.tagIds;
    const idsStart = rows.tagStarts[k]!;
    const { bytes: valueBytes, offsets: valueOffsets } = rows.values;
    const shape = shapeOf(rows.metrics[k]!, keys);
    const { time, value, local } = rows;
    writeMapStart(writer, shape, size, false, following);

    writer.raw(shape.keys[0]!);
    writer.binHeader(8 * size);
    let at = writer.claim(8 * size);
    let view = writer.view;
    for (let row = start; row < end; row++, at += 8) {
        view.setUint32(at, time[2 * row + LO]!, true);
        view.setUint32(at + 4, time[2 * row + HI]!, true);
    }

    if (seriesCodes.length < seriesCount) {
        seriesCodes = new Int32Array(2 * seriesCount);
        dictionary = new Int32Array(2 * seriesCount);
    }
    for (let column = 0; column < width; column++) {
        // The column's dictionary: its values in order of first use, each coded by its place.
        if (lastStamp === MAX_STAMP) {
            stamps.fill(0);
            lastStamp = 0;
        }
        const stamp = ++lastStamp;
        let entries = 0;
        let dictionaryBytes = 0;
        for (let s = 0, i = idsStart + column; s < seriesCount; s++, i += width) {
            const id = ids[i]!;
            if (stamps[id] !== stamp) {
                stamps[id] = stamp;
                codes[id] = entries;
                dictionary[entries++] = id;
                dictionaryBytes += valueOffsets[id + 1]! - valueOffsets[id]!;
            }
            seriesCodes[s] = codes[id]!;
        }
        const key = shape.keys[1 + column]!;
        at = writer.claim(key.length + 5 + dictionaryBytes + CODES_KEY_BYTES + 4 * size);
        const out = writer.bytes;
        view = writer.view;
        at = putBytes(out, at, key);
        at = putArrayHeader(out, at, entries);
        for (let d = 0; d < entries; d++) {
            const id = dictionary[d]!;
            for (let b = valueOffsets[id]!, stop = valueOffsets[id + 1]!; b < stop; b++) out[at++] = valueBytes[b]!;
        }
        at = putBytes(out, at, CODES_KEY);
        at = putBinHeader(out, at, 4 * size);
        for (let row = start; row < end; row++, at += 4) view.setUint32(at, seriesCodes[local[row]!]!, true);
        writer.rewind(at);
    }

    writer.raw(shape.keys[1 + width]!);
    writer.binHeader(8 * size);
    at = writer.claim(8 * size);
    view = writer.view;
    for (let row = start; row < end; row++, at += 8) view.setFloat64(at, value[row]!, true);
    writeMapEnd(writer, [], following);
}

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
import type { EntryWriter } from "../../src/wal/entry-writer.js";
import { PayloadShape, encodeBatch, envelopeOf, writeCodesKey, writeMapEnd, writeMapStart } from "../../src/wal/payload.js";
import { type GroupedRows, HI, LO } from "./batches.js";
import { VALUE_FIELD } from "./schema.js";
import type { PromMetric, TagValue } from "./series-cache.js";

/** The shape of each metric's entries, for the tag names it had last (interned lists: compared by reference). */
const shapes = new WeakMap<PromMetric, { readonly keys: readonly string[]; readonly shape: PayloadShape }>();

function shapeOf(metric: PromMetric, keys: readonly string[]): PayloadShape {
    const known = shapes.get(metric);
    if (known?.keys === keys) return known.shape;
    const shape = new PayloadShape(metric.name, keys, [[TIME_COLUMN, "t"], ...keys.map((key) => [key, "s"] as const), [VALUE_FIELD, "f"]]);
    shapes.set(metric, { keys, shape });
    return shape;
}

/** Numbers no dictionary had before: a value whose `stamp` is the current one is in the current dictionary. */
let lastStamp = 0;
let seriesCodes = new Uint32Array(1024);
const dictionary: TagValue[] = [];

// Invariant kept: entry k holds metric k's rows in order, and all but the last entry carry how
// many entries of the request follow them (`u`).
/** Writes one entry per metric of `rows` into `writer`. */
export function writeEntries(writer: EntryWriter, database: string, rows: GroupedRows, appendTimeUs: number): void {
    const envelope = envelopeOf(database);
    const count = rows.metrics.length;
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
    const size = rows.starts[k + 1]! - start;
    const keys = rows.layouts[k]!.keys;
    const series = rows.series[k]!;
    const shape = shapeOf(rows.metrics[k]!, keys);
    const { time, value, local } = rows;
    writeMapStart(writer, shape, size, false, following);

    writer.raw(shape.keys[0]!);
    writer.binHeader(8 * size);
    let at = writer.claim(8 * size);
    let view = writer.view;
    for (let row = start; row < start + size; row++, at += 8) {
        view.setUint32(at, time[2 * row + LO]!, true);
        view.setUint32(at + 4, time[2 * row + HI]!, true);
    }

    if (seriesCodes.length < series.length) seriesCodes = new Uint32Array(2 * series.length);
    const codes = seriesCodes;
    for (let column = 0; column < keys.length; column++) {
        writer.raw(shape.keys[1 + column]!);
        const stamp = ++lastStamp;
        let entries = 0;
        for (let s = 0; s < series.length; s++) {
            const tag = series[s]!.tagValues[column]!;
            if (tag.stamp !== stamp) {
                tag.stamp = stamp;
                tag.code = entries;
                dictionary[entries++] = tag;
            }
            codes[s] = tag.code;
        }
        writer.arrayHeader(entries);
        for (let i = 0; i < entries; i++) writer.raw(dictionary[i]!.encoded);
        writeCodesKey(writer, size);
        at = writer.claim(4 * size);
        view = writer.view;
        for (let row = start; row < start + size; row++, at += 4) view.setUint32(at, codes[local[row]!]!, true);
    }
    dictionary.length = 0;

    writer.raw(shape.keys[1 + keys.length]!);
    writer.binHeader(8 * size);
    at = writer.claim(8 * size);
    view = writer.view;
    for (let row = start; row < start + size; row++, at += 8) view.setFloat64(at, value[row]!, true);
    writeMapEnd(writer, [], following);
}

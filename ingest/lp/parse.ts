/**
 * The line-protocol decoder: a request body in, one columnar batch per measurement out, plus a
 * reason and a physical line number for every rejected entry (line-protocol.md §A, policy A7).
 *
 * It works on the body's bytes by index and writes values straight into typed column arrays;
 * there is no per-line string and no per-point object. A line's values are written at the
 * pending row as it is read; if the line turns out bad they are taken back, so a rejected line
 * leaves nothing behind (no value, no column, no declaration). Repeated series keys and field
 * keys are recognised by their raw bytes (hash + byte compare) and never decoded twice. Parsing
 * never throws on bad input.
 *
 * Lines: a physical line ends at LF (CR LF accepted, a lone CR is an error); an entry starts on
 * the first line that is not blank or a comment and ends at the first LF outside a string.
 */
import { isUtf8 } from "node:buffer";
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import { TIME_COLUMN } from "../../src/columnar/batch.js";
import { FIELD_TYPE_NAMES, type FieldType, SchemaOverlay, type SchemaView, columnLimitReason, measurementLimitReason } from "../schema.js";
import { BACKSLASH, COMMA, CR, DEL, DOT, EQUALS, HASH, LF, MINUS, NINE, QUOTE, SPACE, TAB, ZERO, excerpt, hashBytes, hexByte, isLineEnd, isUtf8Range, viewOf } from "./bytes.js";
import { KeyArena } from "./byte-table.js";
import { COLUMN_WIDTH, ColumnBuilder, HI, LO } from "./columns.js";
import { FieldSlot, MeasurementBuilder, Series } from "./measurement.js";
import { FIELD_KEY, MEASUREMENT, TAG_KEY, TAG_VALUE, nameRead, readName } from "./names.js";
import {
    BAD_FLOAT,
    BAD_INTEGER,
    BAD_UNSIGNED,
    FLOAT_OUT_OF_RANGE,
    INTEGER_OUT_OF_RANGE,
    NUMBER_FLOAT,
    NUMBER_INTEGER,
    TIMESTAMP_OK,
    TIMESTAMP_OUT_OF_RANGE,
    bigIntToWords,
    scanNumber,
    scanTimestamp,
    scanned,
    valueTokenEnd,
    wordsToBigInt,
} from "./numbers.js";
import { NANOS_PER_UNIT, PRECISION_ZEROS, type Precision, defaultTimestamp } from "./precision.js";
import { sharedSeriesKeys } from "./series-cache.js";
import { entryEnd, entryText, skipped } from "./skip.js";

export { PRECISIONS, type Precision, isPrecision } from "./precision.js";

export interface LineError {
    /** The physical 1-based line on which the rejected entry starts (blank and comment lines count). */
    readonly line: number;
    /** The reason, e.g. `field type conflict: field "f" of measurement "m" is float, line has integer`. */
    readonly message: string;
    /** The rejected entry's text, at most 1 KiB. */
    readonly text: string;
}

export interface ParseOptions {
    readonly database: string;
    readonly precision: Precision;
    /** The server clock in ns since the epoch, for lines without a timestamp. */
    readonly nowNs: bigint;
    /** Read only: what the body declares is kept in an overlay; the write path reserves it. */
    readonly schema: SchemaView;
}

export interface ParseResult {
    /** One per measurement, rows in input order. */
    readonly batches: ColumnarBatch[];
    readonly errors: LineError[];
    /** Entries accepted. */
    readonly accepted: number;
}

/**
 * Limits. A string field value and a series key as written: line-protocol.md §A6. (Columns per
 * measurement and measurements per database are the schema's limits, from the configuration.) The batches'
 * size (columns × rows × bytes per value): lines stop being accepted past a budget that grows
 * with the body, because every column of a batch spans every row of it, so a body of sparse,
 * very wide rows would otherwise make batches far larger than itself.
 */
export const LP_LIMITS = {
    maxStringBytes: 1024 * 1024,
    maxSeriesKeyBytes: 65_535,
    batchBytesPerBodyByte: 8,
    batchBytesBase: 32 * 1024 * 1024,
} as const satisfies Record<string, number>;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** The column a field whose key is also a tag is stored in (DESIGN.md §4). */
export function fieldColumnName(key: string): string {
    return `${key}_field`;
}

// Invariant kept: every input is answered with batches and errors, never an exception; a
// rejected line contributes nothing to any batch, and nothing at all changes the registry.
export function parseLineProtocol(body: Buffer, options: ParseOptions): ParseResult {
    return new BodyParser(body, options).run();
}

/** Series keys up to this long are looked up without first finding the end of the line. */
const SHORT_KEY_BYTES = 256;

/** A line's value could not be staged: `BodyParser.#reason` says why. */
const REJECTED = -1;

/** The number of the latest parse (each parse runs start to end on one thread, never interleaved). */
let lastParse = 0;

/** One parse of one body: the per-request state (caches, builders, the pending line). */
class BodyParser {
    /** This parse's number: what binds a shared series key to this body's builders. */
    readonly #parse = ++lastParse;
    readonly #bytes: Buffer;
    readonly #view: DataView;
    readonly #end: number;
    readonly #database: string;
    readonly #schema: SchemaOverlay;
    readonly #precision: Precision;
    /** Decimal zeros that scale timestamps to ns (-1: auto; null: m/h, BigInt path). */
    readonly #zeros: number | null;
    readonly #defaultLo: number;
    readonly #defaultHi: number;
    /** The body is not all valid UTF-8, so names and strings are checked one by one. */
    readonly #checkUtf8: boolean;
    /** Raw bytes of the field keys its builders hold (compact, so comparing against them stays in cache). */
    readonly #arena = new KeyArena();
    readonly #measurements = new Map<string, MeasurementBuilder>();
    readonly #errors: LineError[] = [];
    #accepted = 0;
    /** The first unescaped space and the first LF at or after the current entry (cached searches). */
    #nextSpace = -1;
    #nextLineFeed = -1;
    /** The first `"` and the first backslash at or after the current string value (cached searches). */
    #nextQuote = -1;
    #nextBackslash = -1;
    /** Positions of a string value's collapsing escapes, and a buffer to unescape into. */
    #collapsing: number[] = [];
    #scratch = Buffer.allocUnsafe(256);

    // The pending line.
    /** Why the pending line is rejected. */
    #reason = "";
    /** Index just past what the last helper read. */
    #pos = 0;
    /** LFs inside the pending line's strings. */
    #newlines = 0;
    /** The pending line's series and its builder (once known), and whether it wrote to a column of no fixed type. */
    #pending: Series | null = null;
    #pendingBuilder: MeasurementBuilder | null = null;
    #unfixed = false;
    /** Field slots the pending line has resolved (the chain from its builder's firstSlot), and the field columns it created. */
    #lineFields = 0;
    #lineNewColumns = 0;
    /** Bytes of the batches' columns so far (rows × row bytes), their budget, and what the pending line adds to a row. */
    #batchBytes = 0;
    readonly #batchBytesLimit: number;
    #lineAddedWidth = 0;

    constructor(body: Buffer, options: ParseOptions) {
        this.#bytes = body;
        this.#view = viewOf(body);
        this.#end = body.length;
        this.#database = options.database;
        this.#schema = new SchemaOverlay(options.schema);
        this.#precision = options.precision;
        this.#zeros = PRECISION_ZEROS[options.precision];
        const now = defaultTimestamp(options.nowNs, options.precision);
        if (now < INT64_MIN || now > INT64_MAX) throw new RangeError(`nowNs ${options.nowNs} does not fit in int64`);
        bigIntToWords(now);
        this.#defaultLo = scanned.lo;
        this.#defaultHi = scanned.hi;
        this.#checkUtf8 = !isUtf8(body);
        this.#batchBytesLimit = LP_LIMITS.batchBytesBase + LP_LIMITS.batchBytesPerBodyByte * body.length;
    }

    run(): ParseResult {
        const bytes = this.#bytes;
        const end = this.#end;
        let pos = 0;
        let line = 1;
        while (pos < end) {
            let start = pos;
            while (start < end && bytes[start] === SPACE) start++;
            let stop: number;
            if (isLineEnd(bytes, start, end)) {
                stop = start; // blank line
                this.#newlines = 0;
            } else if (bytes[start] === HASH) {
                stop = this.#lineFeedAfter(start);
                this.#newlines = 0;
                const reason = commentProblem(bytes, start, stop);
                if (reason !== null) this.#errors.push({ line, message: reason, text: entryText(bytes, start, stop) });
            } else {
                stop = this.#entry(start);
                if (stop < 0) stop = this.#reject(start, line);
                else this.#accept();
            }
            line += 1 + this.#newlines;
            // `stop` is the LF (or CR LF, or the end) that ends the entry.
            pos = bytes[stop] === CR ? stop + 2 : stop + 1;
        }
        const batches: ColumnarBatch[] = [];
        for (const builder of this.#measurements.values()) {
            const batch = builder.finish();
            if (batch !== null) batches.push(batch);
        }
        return { batches, errors: this.#errors, accepted: this.#accepted };
    }

    /** Records the pending line's rejection; returns where the entry ends. */
    #reject(start: number, line: number): number {
        const stop = entryEnd(this.#bytes, start, this.#end);
        this.#newlines = skipped.newlines;
        this.#errors.push({ line, message: this.#reason, text: entryText(this.#bytes, start, stop) });
        const builder = this.#pendingBuilder;
        if (builder !== null) {
            // Take back what the line committed; forget columns it created (no accepted line has them).
            const row = builder.rows;
            let slot = builder.firstSlot;
            for (let k = 0; k < this.#lineFields && slot !== null; k++, slot = slot.next) {
                const column = slot.column;
                if (column === null) continue;
                column.rollback(row);
                if (!column.fixed && column.present === 0 && builder.fieldColumns.get(column.name) === column) builder.fieldColumns.delete(column.name);
            }
        }
        return stop;
    }

    #fail(reason: string): number {
        this.#reason = reason;
        return REJECTED;
    }

    /**
     * Reads one entry that starts (after its leading spaces) at `start` and stages its values.
     * Returns the index of the LF / CR LF / end that ends it, or REJECTED.
     */
    #entry(start: number): number {
        const bytes = this.#bytes;
        const view = this.#view;
        const end = this.#end;
        let unfixed = false;
        let fields = 0;
        let addedWidth = 0; // bytes per row of the columns that get their first value in this line
        this.#newlines = 0;
        this.#pending = null;
        this.#pendingBuilder = null;
        this.#lineFields = 0;
        this.#lineNewColumns = 0;

        // Series key: up to the first unescaped space (a space after a backslash is escaped in
        // every element of the key). A key seen before (by any body) is found in the shared cache
        // by its bytes, which were validated then; a new one, or one that would run into the next
        // line, is read by #decodeSeriesKey, which validates it or says what is wrong.
        let i = this.#seriesKeyEnd(start);
        let series: Series | null | undefined;
        let hash = 0;
        // A short candidate is looked up straight away: a known key has no LF, so a hit proves the
        // key ends on this line. A long one is first checked to end before the line does, so a
        // body of lines without spaces cannot make every line hash up to a far-away space.
        const plausible = i - start <= SHORT_KEY_BYTES || i < this.#lineFeedAfter(start);
        if (plausible) {
            hash = hashBytes(view, bytes, start, i);
            series = sharedSeriesKeys.get(view, bytes, hash, start, i - start);
        }
        series ??= this.#decodeSeriesKey(start, i, hash);
        if (series === null) return REJECTED;
        const builder = series.builderIn(this.#parse) ?? this.#bind(series);
        this.#pending = series;
        this.#pendingBuilder = builder;
        // A measurement's first accepted line in this body makes it known to the overlay.
        if (builder.rows === 0 && !this.#measurementAllowed(builder.name)) return REJECTED;
        if (series.id < 0 && !this.#tagsFree(series, builder)) return REJECTED;

        // Fields.
        while (i < end && bytes[i] === SPACE) i++;
        if (isLineEnd(bytes, i, end)) return this.#fail("missing fields: a line needs at least one field=value after the measurement and tags");
        const row = builder.rows;
        let previous: FieldSlot | null = null;
        let c = 0;
        for (;;) {
            // Key: try the key that followed the previous one last time, then the table.
            let slot: FieldSlot | null = previous === null ? builder.firstSlot : previous.next;
            if (slot !== null && i + slot.length <= end && slot.matches(view, i)) {
                i += slot.length;
            } else {
                slot = this.#fieldSlot(builder, i);
                if (slot === null) return REJECTED;
                if (previous === null) builder.firstSlot = slot;
                else previous.next = slot;
                i = this.#pos;
            }
            previous = slot;
            this.#lineFields = ++fields;
            const column = slot.stable ? slot.column! : this.#fieldColumn(builder, slot, series);
            if (column === null) return REJECTED;
            if (column.filled > row && column.lastKey !== slot.key) return this.#fail(collisionReason(builder.name, column.lastKey, slot.key, column.name));

            // Value: the first byte decides the type.
            c = i < end ? bytes[i]! : LF;
            if ((c >= ZERO && c <= NINE) || c === MINUS || c === DOT) {
                const kind = scanNumber(bytes, i, end);
                if (kind < 0) return this.#fail(numberReason(kind, slot.key, excerpt(bytes, i, valueTokenEnd(bytes, i, end))));
                if (kind === NUMBER_FLOAT) {
                    if (column.type !== "f" && !this.#retype(builder, column, slot, "f")) return REJECTED;
                    if (row >= column.capacity && !this.#grow(column, row, addedWidth)) return REJECTED;
                    column.f64[row] = scanned.float;
                } else {
                    const type = kind === NUMBER_INTEGER ? "i" : "u";
                    if (column.type !== type && !this.#retype(builder, column, slot, type)) return REJECTED;
                    if (row >= column.capacity && !this.#grow(column, row, addedWidth)) return REJECTED;
                    column.words[row * 2 + LO] = scanned.lo;
                    column.words[row * 2 + HI] = scanned.hi;
                }
                i = scanned.end;
            } else if (c === QUOTE) {
                if (column.type !== "s" && !this.#retype(builder, column, slot, "s")) return REJECTED;
                const code = this.#stringValue(column, slot, i);
                if (code < 0) return REJECTED;
                if (row >= column.capacity && !this.#grow(column, row, addedWidth)) return REJECTED;
                column.codes[row] = code;
                i = this.#pos;
            } else if (c === 0x74 || c === 0x54 || c === 0x66 || c === 0x46) {
                // t T f F
                const value = booleanValue(view, bytes, i, end);
                if (value < 0)
                    return this.#fail(
                        `invalid boolean ${excerpt(bytes, i, valueTokenEnd(bytes, i, end))} for field "${slot.key}" (use t, T, true, True, TRUE, f, F, false, False or FALSE)`,
                    );
                if (column.type !== "b" && !this.#retype(builder, column, slot, "b")) return REJECTED;
                if (row >= column.capacity && !this.#grow(column, row, addedWidth)) return REJECTED;
                column.stageBool(row, value === 1);
                i = scanned.end;
            } else if (c === COMMA || c === SPACE || c === LF || c === CR) {
                return this.#fail(`field "${slot.key}" has no value`);
            } else {
                return this.#fail(`invalid value ${excerpt(bytes, i, valueTokenEnd(bytes, i, end))} for field "${slot.key}": not a number, boolean or double-quoted string`);
            }
            if (column.present === 0) addedWidth += COLUMN_WIDTH[column.type];
            column.commit(row);
            column.lastKey = slot.key;
            if (!column.fixed) unfixed = true;

            if (i >= end) break;
            c = bytes[i]!;
            if (c !== COMMA) break; // a space, or the end of the line (the value readers stop only there)
            i++;
        }
        this.#unfixed = unfixed;

        // Timestamp (optional), trailing spaces, end of line.
        let timed = false;
        if (i < end && bytes[i] === SPACE) {
            while (i < end && bytes[i] === SPACE) i++;
            if (!isLineEnd(bytes, i, end) && bytes[i] !== CR) {
                if (!this.#timestamp(i)) return REJECTED;
                timed = true;
                i = scanned.end;
                while (i < end && bytes[i] === SPACE) i++;
            }
        }
        if (i < end) {
            c = bytes[i]!;
            if (c === CR) {
                if (i + 1 < end && bytes[i + 1] !== LF) return this.#fail("carriage return not followed by a line feed");
            } else if (c !== LF) {
                return this.#fail(
                    timed
                        ? `unexpected text after the timestamp: ${excerpt(bytes, i, valueTokenEnd(bytes, i, end))}`
                        : `unexpected text after the fields: ${excerpt(bytes, i, valueTokenEnd(bytes, i, end))}`,
                );
            }
        }
        let newTags = 0; // tag columns this line adds to the batch
        if (series.id < 0) for (const key of series.tagKeys) if (!builder.tagColumns.has(key)) newTags++;
        if ((unfixed || newTags > 0) && !this.#withinColumnLimit(series, builder)) return REJECTED;
        addedWidth += newTags * COLUMN_WIDTH.s;
        // A column that joins a batch spans all its earlier rows too (as nulls).
        if (this.#batchBytes + row * addedWidth + builder.rowBytes + addedWidth > this.#batchBytesLimit) {
            return this.#fail(this.#budgetReason());
        }
        this.#lineAddedWidth = addedWidth;
        const lo = timed ? scanned.lo : this.#defaultLo;
        const hi = timed ? scanned.hi : this.#defaultHi;
        builder.stageTime(lo, hi);
        return i;
    }

    /**
     * Makes room for `row` in a column. A column that has no value yet would span every earlier
     * row: checked against the batch budget first, so a rejected wide line allocates nothing.
     */
    #grow(column: ColumnBuilder, row: number, addedWidth: number): boolean {
        if (column.present === 0 && row > 0) {
            const builder = this.#pendingBuilder!;
            const width = addedWidth + COLUMN_WIDTH[column.type];
            if (this.#batchBytes + (row + 1) * width + builder.rowBytes > this.#batchBytesLimit) {
                this.#reason = this.#budgetReason();
                return false;
            }
        }
        column.grow(row);
        return true;
    }

    #budgetReason(): string {
        return `the batches would take more than ${this.#batchBytesLimit} bytes for a ${this.#end}-byte body (every column spans every row): send sparse, wide data in smaller requests`;
    }

    /** Whether a line of `measurement` may be accepted: a new measurement must stay within the database's limit. */
    #measurementAllowed(measurement: string): boolean {
        const schema = this.#schema;
        if (schema.hasMeasurement(this.#database, measurement) || schema.measurementCount(this.#database) < schema.limits.maxMeasurementsPerDatabase) return true;
        this.#reason = measurementLimitReason(this.#database, measurement, schema.limits);
        return false;
    }

    /** Whether the columns the pending line would declare keep its measurement within the column limit. */
    #withinColumnLimit(series: Series, builder: MeasurementBuilder): boolean {
        const schema = this.#schema;
        let added = 0;
        if (series.id < 0) for (const key of series.tagKeys) if (!schema.isTag(this.#database, builder.name, key)) added++;
        const seen = new Set<ColumnBuilder>();
        let slot = builder.firstSlot;
        for (let k = 0; k < this.#lineFields && slot !== null; k++, slot = slot.next) {
            const column = slot.column;
            if (column !== null && !column.fixed) seen.add(column);
        }
        added += seen.size;
        const total = schema.columnCount(this.#database, builder.name) + added;
        if (added === 0 || total <= schema.limits.maxColumnsPerMeasurement) return true;
        this.#reason = columnLimitReason(builder.name, total, schema.limits);
        return false;
    }

    /** Commits the staged line: series (bound at its first line), fields; declares what is new. */
    #accept(): void {
        const series = this.#pending!;
        const builder = this.#pendingBuilder!;
        const row = builder.rows;
        if (series.id < 0) {
            for (const column of builder.bind(series)) this.#schema.declare(this.#database, builder.name, column.name, "tag");
        }
        builder.seriesIds[row] = series.id;
        if (this.#unfixed) {
            let slot = builder.firstSlot;
            for (let k = 0; k < this.#lineFields && slot !== null; k++, slot = slot.next) {
                const column = slot.column!;
                if (column.fixed) continue;
                this.#schema.declare(this.#database, builder.name, column.name, column.type);
                column.fixed = true;
            }
        }
        builder.rowBytes += this.#lineAddedWidth;
        this.#batchBytes += row * this.#lineAddedWidth + builder.rowBytes;
        builder.rows = row + 1;
        this.#accepted++;
    }

    /** The first unescaped space at or after `from` (the end of the body when there is none). */
    #seriesKeyEnd(from: number): number {
        let space = this.#nextSpace;
        if (space < from) {
            const bytes = this.#bytes;
            space = from;
            for (;;) {
                space = bytes.indexOf(SPACE, space);
                if (space < 0) {
                    space = this.#end;
                    break;
                }
                if (bytes[space - 1] !== BACKSLASH) break;
                space++;
            }
            this.#nextSpace = space;
        }
        return space;
    }

    /** The first LF at or after `from` (the end of the body when there is none). */
    #lineFeedAfter(from: number): number {
        let lineFeed = this.#nextLineFeed;
        if (lineFeed < from) {
            lineFeed = this.#bytes.indexOf(LF, from);
            if (lineFeed < 0) lineFeed = this.#end;
            this.#nextLineFeed = lineFeed;
        }
        return lineFeed;
    }

    /** Binds a shared series key to this parse: to this body's builder of its measurement. */
    #bind(series: Series): MeasurementBuilder {
        let builder = this.#measurements.get(series.measurement);
        if (builder === undefined) {
            builder = new MeasurementBuilder(series.measurement, this.#arena);
            this.#measurements.set(series.measurement, builder);
        }
        return series.bindTo(this.#parse, builder);
    }

    /**
     * Reads and validates a series key; a good one goes into the shared cache. (A key that
     * decodes ends before the line does, so #entry found it plausible and `hash` is its hash.)
     */
    #decodeSeriesKey(start: number, keyEnd: number, hash: number): Series | null {
        const bytes = this.#bytes;
        const end = this.#end;
        const checkUtf8 = this.#checkUtf8;
        let reason = readName(bytes, start, end, MEASUREMENT, checkUtf8);
        if (reason !== null) return this.#failSeries(reason);
        const measurement = nameRead.value;
        let i = nameRead.end;
        if (i === start) return this.#failSeries("missing measurement");
        const keys: string[] = [];
        const values: string[] = [];
        let keySet: Set<string> | null = null; // for the duplicate check once there are many tags
        while (i < end && bytes[i] === COMMA) {
            reason = readName(bytes, i + 1, end, TAG_KEY, checkUtf8);
            if (reason !== null) return this.#failSeries(reason);
            const key = nameRead.value;
            i = nameRead.end;
            if (key === "") return this.#failSeries("empty tag key");
            if (i >= end || bytes[i] !== EQUALS) return this.#failSeries(`tag key "${key}" has no "=" and value`);
            if (key === TIME_COLUMN) return this.#failSeries(`tag key "${TIME_COLUMN}" is not allowed: it is the time column`);
            reason = readName(bytes, i + 1, end, TAG_VALUE, checkUtf8);
            if (reason !== null) return this.#failSeries(`tag "${key}": ${reason}`);
            const value = nameRead.value;
            i = nameRead.end;
            if (value === "") return this.#failSeries(`tag "${key}" has an empty value`);
            if (keys.length >= 8) {
                keySet ??= new Set(keys);
                if (keySet.has(key)) return this.#failSeries(`duplicate tag key "${key}"`);
                keySet.add(key);
            } else if (keys.includes(key)) {
                return this.#failSeries(`duplicate tag key "${key}"`);
            }
            keys.push(key);
            values.push(value);
        }
        if (i >= end || bytes[i] !== SPACE) {
            return this.#failSeries("missing fields: a line needs at least one field=value after the measurement and tags");
        }
        if (i !== keyEnd) throw new Error(`line-protocol scanner disagreement: series key ends at ${i}, fast scan said ${keyEnd}`);
        if (i - start > LP_LIMITS.maxSeriesKeyBytes) {
            return this.#failSeries(`series key (measurement and tags) is ${i - start} bytes, the limit is ${LP_LIMITS.maxSeriesKeyBytes}`);
        }
        const decoded = new Series(measurement, keys, values);
        sharedSeriesKeys.set(bytes, hash, start, i - start, decoded);
        return decoded;
    }

    #failSeries(reason: string): null {
        this.#reason = reason;
        return null;
    }

    /** Before a series' first accepted line: none of its tag keys may be a field of the measurement. */
    #tagsFree(series: Series, builder: MeasurementBuilder): boolean {
        const measurement = builder.name;
        for (const key of series.tagKeys) {
            if (builder.tagColumns.has(key)) continue; // a tag of this batch: declared, so never a field
            const type = this.#schema.fieldType(this.#database, measurement, key);
            if (type !== undefined) {
                this.#reason = `tag key "${key}" is already a ${FIELD_TYPE_NAMES[type]} field of measurement "${measurement}"`;
                return false;
            }
        }
        return true;
    }

    /** The slot for the field key at `start` (a key not predicted); `#pos` is set past its `=`. */
    #fieldSlot(builder: MeasurementBuilder, start: number): FieldSlot | null {
        const bytes = this.#bytes;
        const end = this.#end;
        // A plain key (no escapes, no specials) is looked up by its bytes; anything else takes readName.
        let i = start;
        for (; i < end; i++) {
            const c = bytes[i]!;
            if (c === EQUALS || c === BACKSLASH || c === COMMA || c === SPACE || c < 0x20 || c === DEL) break;
        }
        let slot: FieldSlot | undefined;
        if (i < end && bytes[i] === EQUALS && i > start) slot = builder.fieldSlots.get(this.#view, bytes, hashBytes(this.#view, bytes, start, i), start, i - start);
        if (slot === undefined) {
            const reason = readName(bytes, start, end, FIELD_KEY, this.#checkUtf8);
            if (reason !== null) {
                this.#reason = reason;
                return null;
            }
            const key = nameRead.value;
            i = nameRead.end;
            if (key === "") return this.#failSlot(i < end && bytes[i] === EQUALS ? "empty field key" : "missing field key");
            if (i >= end || bytes[i] !== EQUALS) return this.#failSlot(`field key "${key}" has no "=" and value`);
            if (key === TIME_COLUMN) return this.#failSlot(`field key "${TIME_COLUMN}" is not allowed: it is the time column`);
            const hash = hashBytes(this.#view, bytes, start, i);
            slot = builder.fieldSlots.get(this.#view, bytes, hash, start, i - start);
            if (slot === undefined) {
                slot = new FieldSlot(key, this.#view, start, i - start + 1);
                builder.fieldSlots.set(bytes, hash, start, i - start, slot);
            }
        }
        this.#pos = start + slot.length;
        return slot;
    }

    #failSlot(reason: string): null {
        this.#reason = reason;
        return null;
    }

    /**
     * The column a field key's values go to in the pending line: `<key>_field` when the key is
     * also a tag (of the registry or of this line), else `<key>`. Creates the column (typed from
     * the registry when declared) and marks the slot stable once the answer cannot change.
     */
    #fieldColumn(builder: MeasurementBuilder, slot: FieldSlot, series: Series): ColumnBuilder | null {
        const schema = this.#schema;
        const database = this.#database;
        const key = slot.key;
        let name = key;
        const tagInSchema = schema.isTag(database, builder.name, key);
        if (tagInSchema || series.hasTag(key)) {
            name = fieldColumnName(key);
            if (schema.isTag(database, builder.name, name) || series.hasTag(name)) {
                this.#reason = `field "${key}" cannot be stored: "${key}" is a tag, and so is "${name}", where such a field goes`;
                return null;
            }
        }
        let column = builder.fieldColumns.get(name);
        if (column === undefined) {
            // Stop early on a line with thousands of new fields (#withinColumnLimit has the final say).
            const total = ++this.#lineNewColumns + schema.columnCount(database, builder.name);
            if (total > schema.limits.maxColumnsPerMeasurement) {
                this.#reason = columnLimitReason(builder.name, total, schema.limits);
                return null;
            }
            const type = schema.fieldType(database, builder.name, name);
            column = new ColumnBuilder(name, type ?? "f", type !== undefined);
            builder.fieldColumns.set(name, column);
        }
        slot.column = column;
        slot.stable = column.fixed && (name === key || tagInSchema);
        return column;
    }

    /** A value of `type` for a column of another type: a conflict if the type is fixed, else the column takes it. */
    #retype(builder: MeasurementBuilder, column: ColumnBuilder, slot: FieldSlot, type: FieldType): boolean {
        if (column.fixed) {
            const stored = column.name === slot.key ? "" : ` (stored as "${column.name}")`;
            this.#reason = `field type conflict: field "${slot.key}"${stored} of measurement "${builder.name}" is ${FIELD_TYPE_NAMES[column.type]}, line has ${FIELD_TYPE_NAMES[type]}`;
            return false;
        }
        column.retype(type);
        return true;
    }

    /**
     * A string value at `start` (its opening quote): its dictionary code; `#pos` is set past it.
     * The closing quote, escapes and newlines are found with native searches whose results are
     * cached across values (measured on the string-heavy bench: a byte loop here was 40% of it).
     */
    #stringValue(column: ColumnBuilder, slot: FieldSlot, start: number): number {
        const bytes = this.#bytes;
        const end = this.#end;
        const valueStart = start + 1;
        // \" and \\ pairs become one byte: their backslashes' positions, for decoding.
        const collapsing = this.#collapsing;
        let collapsed = 0;
        let pos = valueStart;
        let close: number;
        for (;;) {
            const quote = this.#quoteAfter(pos);
            const backslash = this.#backslashAfter(pos);
            if (backslash >= quote) {
                close = quote;
                break;
            }
            // A backslash before the next quote: it and the byte after it are one pair.
            const next = bytes[backslash + 1];
            if (next === QUOTE || next === BACKSLASH) collapsing[collapsed++] = backslash;
            pos = backslash + 2;
        }
        if (close >= end) return this.#fail(`unterminated string value for field "${slot.key}" (it runs to the end of the body)`);
        const length = close - valueStart - collapsed;
        if (length > LP_LIMITS.maxStringBytes) {
            return this.#fail(`string value of field "${slot.key}" is ${length} bytes, the limit is ${LP_LIMITS.maxStringBytes}`);
        }
        if (this.#checkUtf8 && !isUtf8Range(bytes, valueStart, close)) return this.#fail(`string value of field "${slot.key}" is not valid UTF-8`);
        const after = close + 1;
        if (after < end) {
            const c = bytes[after]!;
            if (c !== COMMA && c !== SPACE && c !== LF && c !== CR) {
                return this.#fail(`unexpected text after the string value of field "${slot.key}": ${excerpt(bytes, after, valueTokenEnd(bytes, after, end))}`);
            }
        }
        for (let lineFeed = this.#lineFeedAfter(valueStart); lineFeed < close; lineFeed = this.#lineFeedAfter(lineFeed + 1)) this.#newlines++;
        this.#pos = after;
        return column.code(collapsed === 0 ? bytes.toString("utf8", valueStart, close) : this.#unescape(valueStart, close, collapsed));
    }

    /** The string `[start, end)` with its `collapsed` collapsing pairs (positions in #collapsing) unescaped. */
    #unescape(start: number, end: number, collapsed: number): string {
        const bytes = this.#bytes;
        let out = this.#scratch;
        if (out.length < end - start) out = this.#scratch = Buffer.allocUnsafe(Math.max(end - start, out.length * 2));
        let length = 0;
        let from = start;
        for (let k = 0; k < collapsed; k++) {
            const backslash = this.#collapsing[k]!;
            length += bytes.copy(out, length, from, backslash);
            from = backslash + 1; // keep the escaped byte, drop the backslash
        }
        length += bytes.copy(out, length, from, end);
        return out.toString("utf8", 0, length);
    }

    /** The first `"` at or after `from` (the end of the body when there is none). */
    #quoteAfter(from: number): number {
        let quote = this.#nextQuote;
        if (quote < from) {
            quote = this.#bytes.indexOf(QUOTE, from);
            if (quote < 0) quote = this.#end;
            this.#nextQuote = quote;
        }
        return quote;
    }

    /** The first backslash at or after `from` (the end of the body when there is none). */
    #backslashAfter(from: number): number {
        let backslash = this.#nextBackslash;
        if (backslash < from) {
            backslash = this.#bytes.indexOf(BACKSLASH, from);
            if (backslash < 0) backslash = this.#end;
            this.#nextBackslash = backslash;
        }
        return backslash;
    }

    /** The timestamp at `start`, scaled to ns, into `scanned.lo/hi`. */
    #timestamp(start: number): boolean {
        const bytes = this.#bytes;
        const end = this.#end;
        const zeros = this.#zeros;
        const status = scanTimestamp(this.#view, bytes, start, end, zeros ?? 0);
        if (status === TIMESTAMP_OK && zeros === null) {
            // m and h: not a power of ten.
            const ns = wordsToBigInt(scanned.lo, scanned.hi) * NANOS_PER_UNIT[this.#precision];
            if (ns >= INT64_MIN && ns <= INT64_MAX) {
                bigIntToWords(ns);
                return true;
            }
        } else if (status === TIMESTAMP_OK) {
            return true;
        }
        const token = excerpt(bytes, start, valueTokenEnd(bytes, start, end));
        this.#reason =
            status === TIMESTAMP_OUT_OF_RANGE || status === TIMESTAMP_OK
                ? `timestamp ${token} (precision ${this.#precision}) is out of range: in nanoseconds it must fit in a signed 64-bit integer`
                : `invalid timestamp ${token}: expected an optional "-" and decimal digits`;
        return false;
    }
}

// The boolean spellings as little-endian words: "true", "True", "TRUE"; "fals", "Fals", "FALS" (+ "e"/"E").
const TRUE_WORDS = [0x65757274, 0x65757254, 0x45555254];
const FALS_WORDS = [0x736c6166, 0x736c6146, 0x534c4146];

/**
 * What is wrong with the comment line `[start, stop)` (stop: its LF or the end), or null. A
 * comment holds printable characters and tabs only (EBNF `comment`); a CR may only end it.
 */
function commentProblem(bytes: Uint8Array, start: number, stop: number): string | null {
    for (let j = start + 1; j < stop; j++) {
        const c = bytes[j]!;
        if ((c < 0x20 && c !== TAB) || c === DEL) {
            if (c === CR && j + 1 === stop) return null;
            return c === CR ? "carriage return not followed by a line feed" : `invalid character ${hexByte(c)} in comment`;
        }
    }
    return null;
}

/** 1 (true), 0 (false) or -1: the ten spellings of the grammar's `boolfield`; `scanned.end` set past it. */
function booleanValue(view: DataView, bytes: Uint8Array, start: number, end: number): number {
    const stop = valueTokenEnd(bytes, start, end);
    scanned.end = stop;
    const length = stop - start;
    if (length === 1) {
        const first = bytes[start]!;
        return first === 0x74 || first === 0x54 ? 1 : 0; // t T / f F
    }
    if (length === 4) {
        const word = view.getInt32(start, true);
        return word === TRUE_WORDS[0] || word === TRUE_WORDS[1] || word === TRUE_WORDS[2] ? 1 : -1;
    }
    if (length === 5) {
        const word = view.getInt32(start, true);
        const last = bytes[start + 4];
        if ((word === FALS_WORDS[0] || word === FALS_WORDS[1]) && last === 0x65) return 0; // false False
        if (word === FALS_WORDS[2] && last === 0x45) return 0; // FALSE
    }
    return -1;
}

function numberReason(kind: number, key: string, token: string): string {
    switch (kind) {
        case BAD_FLOAT:
            return `invalid number ${token} for field "${key}"`;
        case BAD_INTEGER:
            return `invalid integer ${token} for field "${key}": expected an optional "-", digits and "i"`;
        case BAD_UNSIGNED:
            return `invalid unsigned integer ${token} for field "${key}": expected digits and "u"`;
        case FLOAT_OUT_OF_RANGE:
            return `float ${token} for field "${key}" is out of range (NaN and ±Inf are not allowed)`;
        case INTEGER_OUT_OF_RANGE:
            return `integer ${token} for field "${key}" is out of range: -9223372036854775808i … 9223372036854775807i`;
        default:
            return `unsigned integer ${token} for field "${key}" is out of range: 0u … 18446744073709551615u`;
    }
}

/**
 * Two field keys of one line that go to one column: a field named like a tag is stored as
 * `<name>_field`, the same column as a field actually named so (DESIGN.md §4). Rejected rather
 * than letting one value silently replace the other.
 */
function collisionReason(measurement: string, first: string, second: string, column: string): string {
    const why = (key: string) => (key === column ? `"${key}"` : `"${key}" (stored as "${column}", as "${key}" is a tag of measurement "${measurement}")`);
    return `fields ${why(first)} and ${why(second)} would be stored in the same column "${column}": rename one of them`;
}

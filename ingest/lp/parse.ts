/**
 * The line-protocol decoder: a request body in, one columnar batch per measurement out, plus a
 * reason and a physical line number for every rejected entry (line-protocol.md §A, policy A7).
 * This module is its body loop: physical lines, comments, and each entry's series key, field
 * set and timestamp, read by the readers of the other modules and staged at the pending row.
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
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import type { FieldType, SchemaView } from "../schema.js";
import { BatchBudget } from "./batch-budget.js";
import { booleanProblem, booleanValue } from "./booleans.js";
import { COMMA, CR, DEL, DOT, HASH, LF, MINUS, NINE, QUOTE, SPACE, TAB, ZERO, bodyOf, excerpt, hexByte, isLineEnd } from "./bytes.js";
import { ColumnResolver, collisionReason } from "./column-resolver.js";
import { COLUMN_WIDTH, type ColumnBuilder, HI, LO } from "./columns.js";
import { type FieldSlot, type MeasurementBuilder, MeasurementBuilders, type Series } from "./measurement.js";
import { NUMBER_FLOAT, NUMBER_INTEGER, Scanned, numberProblem, scanNumber, valueTokenEnd } from "./numbers.js";
import type { Precision } from "./precision.js";
import { type LineError, LineErrors, REJECTED, Rejection, entryEnd, lineFeedsIn } from "./rejection.js";
import { BodySearches } from "./searches.js";
import { SeriesKeyReader } from "./series-key.js";
import { StringValueReader } from "./strings.js";
import { TimestampReader } from "./timestamps.js";

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
    /** The first MAX_LISTED_LINE_ERRORS rejected entries, in body order. */
    readonly errors: LineError[];
    /** Entries rejected, listed or not. */
    readonly rejected: number;
    /** Entries accepted. */
    readonly accepted: number;
}

// Invariant kept: every input is answered with batches and errors, never an exception; a
// rejected line contributes nothing to any batch, and nothing at all changes the registry.
export function parseLineProtocol(body: Buffer, options: ParseOptions): ParseResult {
    return new BodyParser(body, options).run();
}

/** One parse of one body: its readers, its builders, and the pending line. */
class BodyParser {
    readonly #bytes: Buffer;
    readonly #view: DataView;
    readonly #end: number;
    readonly #rejection = new Rejection();
    readonly #scanned = new Scanned();
    readonly #searches: BodySearches;
    readonly #seriesKeys: SeriesKeyReader;
    readonly #columns: ColumnResolver;
    readonly #strings: StringValueReader;
    readonly #timestamps: TimestampReader;
    readonly #budget: BatchBudget;
    readonly #builders = new MeasurementBuilders();
    readonly #errors = new LineErrors();
    #accepted = 0;

    // The pending line.
    /** LFs inside its strings. */
    #newlines = 0;
    /** Its series and that series' builder, once known. */
    #series: Series | null = null;
    #builder: MeasurementBuilder | null = null;
    /** Fields it has resolved (the slot chain from its builder's firstSlot). */
    #fields = 0;
    /** Whether it wrote to a column of no fixed type. */
    #unfixed = false;
    /** Bytes per row of the columns it adds to its batch. */
    #addedWidth = 0;

    constructor(bytes: Buffer, options: ParseOptions) {
        const body = bodyOf(bytes);
        this.#bytes = bytes;
        this.#view = body.view;
        this.#end = bytes.length;
        this.#searches = new BodySearches(bytes);
        this.#columns = new ColumnResolver(body, options.database, options.schema, this.#rejection);
        this.#seriesKeys = new SeriesKeyReader(body, this.#searches, this.#rejection, this.#columns);
        this.#strings = new StringValueReader(body, this.#searches, this.#rejection);
        this.#timestamps = new TimestampReader(body, options.precision, options.nowNs, this.#rejection, this.#scanned);
        this.#budget = new BatchBudget(bytes.length);
    }

    run(): ParseResult {
        try {
            return this.#run();
        } finally {
            this.#builders.release();
        }
    }

    #run(): ParseResult {
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
                stop = this.#searches.lineFeed.after(start);
                this.#newlines = 0;
                const reason = commentProblem(bytes, start, stop);
                if (reason !== null) this.#errors.add(line, reason, bytes, start, stop);
            } else {
                stop = this.#entry(start);
                if (stop < 0) stop = this.#reject(start, line);
                else this.#accept();
            }
            line += 1 + this.#newlines;
            // `stop` is the LF (or CR LF, or the end) that ends the entry.
            pos = bytes[stop] === CR ? stop + 2 : stop + 1;
        }
        return { batches: this.#builders.finish(), errors: this.#errors.listed, rejected: this.#errors.count, accepted: this.#accepted };
    }

    /**
     * Reads one entry that starts (after its leading spaces) at `start` and stages its values.
     * Returns the index of the LF / CR LF / end that ends it, or REJECTED.
     */
    #entry(start: number): number {
        const bytes = this.#bytes;
        const end = this.#end;
        this.#newlines = 0;
        this.#series = null;
        this.#builder = null;
        this.#fields = 0;
        this.#columns.beginLine();

        // Series key: up to the first unescaped space (a space after a backslash is escaped in
        // every element of the key).
        const keyEnd = this.#searches.unescapedSpaceAfter(start);
        const series = this.#seriesKeys.read(start, keyEnd);
        if (series === null) return REJECTED;
        this.#series = series;
        // A measurement's first accepted line in this body makes it known to the overlay. A
        // measurement past the limit is refused before it gets a builder: a body of 100,000 new
        // measurements would otherwise build (and throw away) one for each refused one.
        const bound = this.#builders.boundOf(series);
        if ((bound === undefined || bound.rows === 0) && !this.#columns.measurementAllowed(series.measurement)) return REJECTED;
        const builder = bound ?? this.#builders.bind(series);
        this.#builder = builder;
        if (series.id < 0 && !this.#columns.tagsFree(series, builder)) return REJECTED;

        let i = this.#fieldSet(keyEnd, series, builder);
        if (i < 0) return REJECTED;

        // Timestamp (optional), trailing spaces, end of line.
        const scanned = this.#scanned;
        let timed = false;
        if (i < end && bytes[i] === SPACE) {
            while (i < end && bytes[i] === SPACE) i++;
            if (!isLineEnd(bytes, i, end) && bytes[i] !== CR) {
                if (!this.#timestamps.read(i)) return REJECTED;
                timed = true;
                i = scanned.end;
                while (i < end && bytes[i] === SPACE) i++;
            }
        }
        if (i < end) {
            const c = bytes[i]!;
            if (c === CR) {
                if (i + 1 < end && bytes[i + 1] !== LF) return this.#fail("carriage return not followed by a line feed");
            } else if (c !== LF) {
                return this.#fail(timed ? `unexpected text after the timestamp: ${this.#token(i)}` : `unexpected text after the fields: ${this.#token(i)}`);
            }
        }

        // The line as a whole: the columns it declares, the bytes it adds to its batch.
        let newTags = 0; // tag columns this line adds to the batch
        if (series.id < 0) for (const key of series.tagKeys) if (!builder.tagColumns.has(key)) newTags++;
        if ((this.#unfixed || newTags > 0) && !this.#columns.withinColumnLimit(series, builder, this.#fields)) return REJECTED;
        const addedWidth = this.#addedWidth + newTags * COLUMN_WIDTH.s;
        if (!this.#budget.fits(builder, addedWidth)) return this.#fail(this.#budget.reason());
        this.#addedWidth = addedWidth;
        const timestamps = this.#timestamps;
        builder.stageTime(timed ? scanned.lo : timestamps.defaultLo, timed ? scanned.hi : timestamps.defaultHi);
        return i;
    }

    /**
     * Reads the field set after the series key's end `keyEnd` and writes each value at the
     * pending row of its column; returns the index past the last value, or REJECTED.
     */
    #fieldSet(keyEnd: number, series: Series, builder: MeasurementBuilder): number {
        const bytes = this.#bytes;
        const view = this.#view;
        const end = this.#end;
        let i = keyEnd;
        while (i < end && bytes[i] === SPACE) i++;
        if (isLineEnd(bytes, i, end)) return this.#fail("missing fields: a line needs at least one field=value after the measurement and tags");
        const row = builder.rows;
        const scanned = this.#scanned;
        let fields = 0;
        let unfixed = false;
        let addedWidth = 0; // bytes per row of the columns that get their first value in this line
        let previous: FieldSlot | null = null;
        for (;;) {
            // Key: try the key that followed the previous one last time, then the table.
            let slot: FieldSlot | null = previous === null ? builder.firstSlot : previous.next;
            if (slot === null || i + slot.length > end || !slot.matches(view, i)) {
                slot = this.#columns.slotAt(builder, i);
                if (slot === null) return REJECTED;
                if (previous === null) builder.firstSlot = slot;
                else previous.next = slot;
            }
            i += slot.length;
            previous = slot;
            this.#fields = ++fields;
            const column = slot.stable ? slot.column! : this.#columns.columnFor(builder, slot, series);
            if (column === null) return REJECTED;
            if (column.filled > row && column.lastKey !== slot.key) return this.#fail(collisionReason(builder.name, column.lastKey, slot.key, column.name));

            // Value: its first byte decides the type. (Inline: as a method called per field it took
            // 4-10% more instructions per byte on the parse bench, measured under valgrind.)
            const c = i < end ? bytes[i]! : LF;
            if ((c >= ZERO && c <= NINE) || c === MINUS || c === DOT) {
                const kind = scanNumber(bytes, i, end, scanned);
                if (kind < 0) return this.#fail(numberProblem(kind, slot.key, this.#token(i)));
                const type = kind === NUMBER_FLOAT ? "f" : kind === NUMBER_INTEGER ? "i" : "u";
                if (!this.#typed(builder, column, slot, type) || !this.#room(builder, column, addedWidth)) return REJECTED;
                if (type === "f") {
                    column.f64[row] = scanned.float;
                } else {
                    column.words[row * 2 + LO] = scanned.lo;
                    column.words[row * 2 + HI] = scanned.hi;
                }
                i = scanned.end;
            } else if (c === QUOTE) {
                if (!this.#typed(builder, column, slot, "s")) return REJECTED;
                const strings = this.#strings;
                const value = strings.read(slot.key, i);
                if (value === null) return REJECTED;
                this.#newlines += strings.newlines;
                const code = column.code(value);
                if (!this.#room(builder, column, addedWidth)) return REJECTED;
                column.codes[row] = code;
                i = strings.end;
            } else if (c === 0x74 || c === 0x54 || c === 0x66 || c === 0x46) {
                // t T f F
                const value = booleanValue(view, bytes, i, end, scanned);
                if (value < 0) return this.#fail(booleanProblem(slot.key, this.#token(i)));
                if (!this.#typed(builder, column, slot, "b") || !this.#room(builder, column, addedWidth)) return REJECTED;
                column.stageBool(row, value === 1);
                i = scanned.end;
            } else if (c === COMMA || c === SPACE || c === LF || c === CR) {
                return this.#fail(`field "${slot.key}" has no value`);
            } else {
                return this.#fail(`invalid value ${this.#token(i)} for field "${slot.key}": not a number, boolean or double-quoted string`);
            }
            if (column.present === 0) addedWidth += COLUMN_WIDTH[column.type];
            column.commit(row);
            column.lastKey = slot.key;
            if (!column.fixed) unfixed = true;

            if (i >= end || bytes[i] !== COMMA) break; // a space, or the end of the line (the value readers stop only there)
            i++;
        }
        this.#unfixed = unfixed;
        this.#addedWidth = addedWidth;
        return i;
    }

    /** Whether `column` holds values of `type` (a column of no fixed type takes it). */
    #typed(builder: MeasurementBuilder, column: ColumnBuilder, slot: FieldSlot, type: FieldType): boolean {
        return column.type === type || this.#columns.retype(builder, column, slot, type);
    }

    /**
     * Makes room for the pending row in a column. A column that has no value yet would span every
     * earlier row: checked against the batch budget first, so a rejected wide line allocates nothing.
     */
    #room(builder: MeasurementBuilder, column: ColumnBuilder, addedWidth: number): boolean {
        const row = builder.rows;
        if (row < column.capacity) return true;
        if (column.present === 0 && row > 0 && !this.#budget.fits(builder, addedWidth + COLUMN_WIDTH[column.type])) {
            this.#rejection.reason = this.#budget.reason();
            return false;
        }
        column.grow(row);
        return true;
    }

    /** Commits the staged line: series (bound at its first line), fields; declares what is new. */
    #accept(): void {
        const series = this.#series!;
        const builder = this.#builder!;
        const row = builder.rows;
        if (series.id < 0) {
            this.#seriesKeys.keep(series);
            this.#columns.declareTags(builder, builder.bind(series));
        }
        builder.seriesIds[row] = series.id;
        if (this.#unfixed) this.#columns.fixColumns(builder, this.#fields);
        this.#budget.add(builder, this.#addedWidth);
        builder.rows = row + 1;
        this.#accepted++;
    }

    /** Records the pending line's rejection and takes back what it staged; returns where the entry ends. */
    #reject(start: number, line: number): number {
        const bytes = this.#bytes;
        const stop = entryEnd(bytes, start, this.#end);
        this.#newlines = lineFeedsIn(bytes, start, stop);
        this.#errors.add(line, this.#rejection.reason, bytes, start, stop);
        this.#builder?.rollbackLine(this.#fields);
        return stop;
    }

    #fail(reason: string): number {
        this.#rejection.reason = reason;
        return REJECTED;
    }

    /** The value token at `i`, quoted for a message. */
    #token(i: number): string {
        return excerpt(this.#bytes, i, valueTokenEnd(this.#bytes, i, this.#end));
    }
}

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

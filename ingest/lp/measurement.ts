/**
 * The per-measurement batch builder: the time column, the field columns, one series id per row
 * (the tag columns are built from those at the end: a row's tags are its series'), and what the
 * decoder remembers about the raw bytes it saw for this measurement (field keys), so a repeated
 * key costs a byte comparison instead of a decode.
 */
import { type Column, type ColumnarBatch, type StringColumn, TIME_COLUMN, bitmapBytes } from "../../src/columnar/batch.js";
import { ByteKeyTable, KeyArena } from "./byte-table.js";
import { type ColumnBuilder, HI, LO, grownCapacity } from "./columns.js";

/**
 * What a field key's raw bytes resolved to. `next` predicts the key that follows this one in a
 * line (lines of one measurement usually list their fields in the same order); a prediction is
 * checked against `words`, the raw key and its `=` as little-endian 32-bit words (the last one
 * ending at the `=`, overlapping the one before), a few integer compares per key.
 */
export class FieldSlot {
    /** The unescaped key. */
    readonly key: string;
    /** Bytes of the raw key plus its `=`. */
    readonly length: number;
    /** The last word (ending at the `=`), the first three, and all of them for longer keys. */
    readonly #last: number;
    readonly #w0: number;
    readonly #w1: number;
    readonly #w2: number;
    readonly #words: Int32Array;
    /** The column values go to; valid without a re-check only while `stable`. */
    column: ColumnBuilder | null = null;
    /** The key → column mapping can no longer change (the column's type is fixed, and whether the key is a tag is settled). */
    stable = false;
    next: FieldSlot | null = null;

    /** `start`: the raw key in `view`; `length`: its bytes with the `=`. */
    constructor(key: string, view: DataView, start: number, length: number) {
        this.key = key;
        this.length = length;
        const count = Math.ceil(length / 4);
        const words = new Int32Array(count);
        for (let k = 0; k + 1 < count; k++) words[k] = view.getInt32(start + 4 * k, true);
        // A key of 1–2 bytes (2–3 with the `=`): its bytes as a little-endian number.
        if (length < 4) words[0] = length === 2 ? view.getUint16(start, true) : view.getUint16(start, true) | (view.getUint8(start + 2) << 16);
        else words[count - 1] = view.getInt32(start + length - 4, true);
        this.#words = words;
        this.#last = words[count - 1]!;
        this.#w0 = words[0] ?? 0;
        this.#w1 = words[1] ?? 0;
        this.#w2 = words[2] ?? 0;
    }

    /**
     * Whether `view`'s bytes at `at` start with this raw key and its `=` (callers check
     * `at + length <= end`). The last word, which holds the `=`, is compared first.
     */
    matches(view: DataView, at: number): boolean {
        const count = this.#words.length;
        if (this.length < 4) {
            const head = view.getUint16(at, true);
            return (this.length === 2 ? head : head | (view.getUint8(at + 2) << 16)) === this.#last;
        }
        if (view.getInt32(at + this.length - 4, true) !== this.#last) return false;
        if (count === 1) return true;
        if (view.getInt32(at, true) !== this.#w0) return false;
        if (count === 2) return true;
        if (view.getInt32(at + 4, true) !== this.#w1) return false;
        if (count === 3) return true;
        if (view.getInt32(at + 8, true) !== this.#w2) return false;
        for (let k = 3; k + 1 < count; k++) if (view.getInt32(at + 4 * k, true) !== this.#words[k]) return false;
        return true;
    }
}

/** A tag column: its name and dictionary (codes per row are derived from series ids at the end). */
export class TagColumn {
    readonly name: string;
    readonly index: number;
    readonly dict: string[] = [];
    readonly #codeOf = new Map<string, number>();

    constructor(name: string, index: number) {
        this.name = name;
        this.index = index;
    }

    code(value: string): number {
        let code = this.#codeOf.get(value);
        if (code === undefined) {
            code = this.dict.length;
            this.dict.push(value);
            this.#codeOf.set(value, code);
        }
        return code;
    }
}

/**
 * One raw series key (`measurement,tagset` as written), decoded once and shared by every parse
 * (the shared cache holds it), so a body does not set up again the series the previous bodies
 * had. Within one parse it belongs to that body's builder of its measurement, and gets an id, tag
 * columns and dictionary codes there when its first line is accepted; until then nothing of it
 * is in the batch. `builder` and `id` are only meaningful for the parse `parse` names: every
 * other parse binds the key anew (`bindTo`) before it reads them.
 */
export class Series {
    readonly measurement: string;
    readonly tagKeys: readonly string[];
    readonly tagValues: readonly string[];
    /** The parse (its number) that `builder` and `id` belong to; 0: none. */
    parse = 0;
    #builder: MeasurementBuilder | null = null;
    /** Index in the builder's bound series (-1: no accepted line yet in this parse). */
    id = -1;
    #tagSet: Set<string> | null = null;

    constructor(measurement: string, tagKeys: readonly string[], tagValues: readonly string[]) {
        this.measurement = measurement;
        this.tagKeys = tagKeys;
        this.tagValues = tagValues;
    }

    /** The builder this key belongs to in parse `parse`, if it was bound to that parse. */
    builderIn(parse: number): MeasurementBuilder | undefined {
        return this.parse === parse ? (this.#builder ?? undefined) : undefined;
    }

    // Invariant kept: after this, `builder` and `id` describe the key in `parse` only (no line bound yet).
    bindTo(parse: number, builder: MeasurementBuilder): MeasurementBuilder {
        this.parse = parse;
        this.#builder = builder;
        this.id = -1;
        return builder;
    }

    /** Ends the binding to parse `parse`, if it still holds: the shared cache then keeps no finished body's builder (and its arrays) alive. */
    unbindFrom(parse: number): void {
        if (this.parse !== parse) return;
        this.parse = 0;
        this.#builder = null;
        this.id = -1;
    }

    hasTag(key: string): boolean {
        // A scan for the usual handful of tags; a set for series with very many.
        if (this.tagKeys.length <= 8) return this.tagKeys.includes(key);
        this.#tagSet ??= new Set(this.tagKeys);
        return this.#tagSet.has(key);
    }
}

export class MeasurementBuilder {
    readonly name: string;
    /** Accepted rows. */
    rows = 0;
    #capacity = 0;
    /** Time: two 32-bit words per row (the memory of a BigInt64Array). */
    time = new Uint32Array(0);
    /** The series id of each row. */
    seriesIds = new Uint32Array(0);
    /** Series with an accepted line, by id. */
    readonly series: Series[] = [];
    /**
     * The bound series' tags, flat: series id s has its tags at [tagStart[s], tagStart[s + 1]),
     * each as its tag column's index and its value's code in that column.
     */
    readonly #tagStart: number[] = [0];
    readonly #tagColumnOf: number[] = [];
    readonly #tagCodeOf: number[] = [];
    /** Tag columns by name, in order of first use. */
    readonly tagColumns = new Map<string, TagColumn>();
    /** Field columns by name, in order of creation (some may end with no value: left out). */
    readonly fieldColumns = new Map<string, ColumnBuilder>();
    /** Raw field-key bytes → slot. */
    readonly fieldSlots: ByteKeyTable<FieldSlot>;
    /** The slot the first field of a line predicts. */
    firstSlot: FieldSlot | null = null;
    /** Bytes one row of the finished batch takes: time and series id, plus each column with a value so far. */
    rowBytes = 12;

    constructor(name: string, arena: KeyArena) {
        this.name = name;
        this.fieldSlots = new ByteKeyTable(arena);
    }

    /** Writes the pending row's time (and makes room for its series id). */
    stageTime(lo: number, hi: number): void {
        const row = this.rows;
        if (row >= this.#capacity) this.#grow(row);
        this.time[row * 2 + LO] = lo;
        this.time[row * 2 + HI] = hi;
    }

    #grow(row: number): void {
        const capacity = grownCapacity(this.#capacity, row + 1);
        const time = new Uint32Array(capacity * 2);
        time.set(this.time);
        this.time = time;
        const seriesIds = new Uint32Array(capacity);
        seriesIds.set(this.seriesIds);
        this.seriesIds = seriesIds;
        this.#capacity = capacity;
    }

    /**
     * The columns the pending line's first `fields` fields went to, in order: the slot chain from
     * `firstSlot`, which the body loop links as it reads the line (a field not resolved is left out).
     */
    lineColumns(fields: number): ColumnBuilder[] {
        const columns: ColumnBuilder[] = [];
        let slot = this.firstSlot;
        for (let k = 0; k < fields && slot !== null; k++, slot = slot.next) if (slot.column !== null) columns.push(slot.column);
        return columns;
    }

    /** Takes back what the pending line wrote to the columns of its first `fields` fields. */
    // Invariant kept: a rejected line leaves no value in any column, and no column of no fixed type.
    rollbackLine(fields: number): void {
        const row = this.rows;
        for (const column of this.lineColumns(fields)) {
            column.rollback(row);
            if (!column.fixed && column.present === 0 && this.fieldColumns.get(column.name) === column) this.fieldColumns.delete(column.name);
        }
    }

    /** The series' id, tag columns and codes (at its first accepted line); returns tag columns it created. */
    bind(series: Series): TagColumn[] {
        const created: TagColumn[] = [];
        for (let t = 0; t < series.tagKeys.length; t++) {
            const key = series.tagKeys[t]!;
            let column = this.tagColumns.get(key);
            if (column === undefined) {
                column = new TagColumn(key, this.tagColumns.size);
                this.tagColumns.set(key, column);
                created.push(column);
            }
            this.#tagColumnOf.push(column.index);
            this.#tagCodeOf.push(column.code(series.tagValues[t]!));
        }
        this.#tagStart.push(this.#tagColumnOf.length);
        series.id = this.series.length;
        this.series.push(series);
        return created;
    }

    /**
     * The batch: time, then tags, then fields, each in order of first use. Field columns no
     * accepted line wrote to (left by rejected lines) are left out. Null when no row was accepted.
     */
    finish(): ColumnarBatch | null {
        const rows = this.rows;
        if (rows === 0) return null;
        const columns = new Map<string, Column>([[TIME_COLUMN, { type: "t", values: new BigInt64Array(this.time.buffer, 0, rows) }]]);
        const tags: string[] = [];
        const tagCount = this.tagColumns.size;
        if (tagCount > 0) {
            // codeTable[series * tagCount + tag]: the series' code in that tag column, -1 when it has no such tag.
            const codeTable = new Int32Array(this.series.length * tagCount).fill(-1);
            for (let id = 0; id < this.series.length; id++) {
                for (let k = this.#tagStart[id]!; k < this.#tagStart[id + 1]!; k++) codeTable[id * tagCount + this.#tagColumnOf[k]!] = this.#tagCodeOf[k]!;
            }
            for (const column of this.tagColumns.values()) {
                tags.push(column.name);
                columns.set(column.name, this.#tagColumn(column, codeTable, tagCount));
            }
        }
        for (const [name, column] of this.fieldColumns) {
            if (column.present === 0) continue;
            columns.set(name, column.finish(rows));
        }
        return { measurement: this.name, rows, tags, columns };
    }

    #tagColumn(column: TagColumn, codeTable: Int32Array, tagCount: number): StringColumn {
        const rows = this.rows;
        const seriesIds = this.seriesIds;
        const codes = new Uint32Array(rows);
        let nulls = 0;
        for (let row = 0; row < rows; row++) {
            const code = codeTable[seriesIds[row]! * tagCount + column.index]!;
            if (code >= 0) codes[row] = code;
            else nulls++;
        }
        if (nulls === 0) return { type: "s", dict: column.dict, codes };
        const valid = new Uint8Array(bitmapBytes(rows));
        for (let row = 0; row < rows; row++) {
            if (codeTable[seriesIds[row]! * tagCount + column.index]! >= 0) valid[row >>> 3]! |= 1 << (row & 7);
        }
        return { type: "s", dict: column.dict, codes, valid };
    }
}

/** The number of the latest parse (each parse runs start to end on one thread, never interleaved). */
let lastParse = 0;

/** One parse's builders, one per measurement, and its binding of the shared series keys to them. */
export class MeasurementBuilders {
    /** This parse's number: what binds a shared series key to this body's builders. */
    readonly #parse = ++lastParse;
    /** Raw bytes of the field keys its builders hold (compact, so comparing against them stays in cache). */
    readonly #arena = new KeyArena();
    readonly #byName = new Map<string, MeasurementBuilder>();
    /** Every shared series key bound to this parse (accepted or not), for `release`. */
    readonly #bound: Series[] = [];

    /** The builder `series` is bound to in this parse, if it was bound yet. */
    boundOf(series: Series): MeasurementBuilder | undefined {
        return series.builderIn(this.#parse);
    }

    /** Binds `series`, not bound in this parse yet (`boundOf` says), to the builder of its measurement. */
    bind(series: Series): MeasurementBuilder {
        let builder = this.#byName.get(series.measurement);
        if (builder === undefined) {
            builder = new MeasurementBuilder(series.measurement, this.#arena);
            this.#byName.set(series.measurement, builder);
        }
        this.#bound.push(series);
        return series.bindTo(this.#parse, builder);
    }

    /**
     * Unbinds every series key this parse bound; call once the parse is over, whatever its outcome
     * (through the series-key cache, a body of 100,000 measurements kept ~190 MB of builders alive).
     */
    // Invariant kept: once the parse ended, no shared series key refers to one of its builders.
    release(): void {
        for (const series of this.#bound) series.unbindFrom(this.#parse);
        this.#bound.length = 0;
    }

    /** One batch per measurement with an accepted row, in order of first appearance. */
    finish(): ColumnarBatch[] {
        const batches: ColumnarBatch[] = [];
        for (const builder of this.#byName.values()) {
            const batch = builder.finish();
            if (batch !== null) batches.push(batch);
        }
        return batches;
    }
}

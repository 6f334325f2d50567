/**
 * Column resolution: which column of its measurement's batch a field key's values go to, and
 * whether the schema lets the line have it. A field named like a tag is stored as
 * `<key>_field` (DESIGN.md §4); a column's type comes from the schema when it is declared, else
 * from the line; new measurements and columns must stay within the schema's limits. What an
 * accepted line adds is declared into the request's overlay, never into the registry.
 */
import { TIME_COLUMN } from "../../src/columnar/batch.js";
import { FIELD_TYPE_NAMES, type FieldType, SchemaOverlay, type SchemaView, columnLimitReason, measurementLimitHit, measurementLimitReason } from "../schema.js";
import { BACKSLASH, type Body, COMMA, DEL, EQUALS, SPACE, hashBytes } from "./bytes.js";
import { ColumnBuilder } from "./columns.js";
import { FieldSlot, type MeasurementBuilder, type Series, type TagColumn } from "./measurement.js";
import { FIELD_KEY, readName } from "./names.js";
import type { Rejection } from "./rejection.js";

/** The column a field whose key is also a tag is stored in (DESIGN.md §4). */
export function fieldColumnName(key: string): string {
    return `${key}_field`;
}

/**
 * Two field keys of one line that go to one column: a field named like a tag is stored as
 * `<name>_field`, the same column as a field actually named so (DESIGN.md §4). Rejected rather
 * than letting one value silently replace the other.
 */
export function collisionReason(measurement: string, first: string, second: string, column: string): string {
    const why = (key: string) => (key === column ? `"${key}"` : `"${key}" (stored as "${column}", as "${key}" is a tag of measurement "${measurement}")`);
    return `fields ${why(first)} and ${why(second)} would be stored in the same column "${column}": rename one of them`;
}

/** The column resolution of one body, against one database's schema as the request sees it. */
export class ColumnResolver {
    readonly #bytes: Buffer;
    readonly #view: DataView;
    readonly #end: number;
    readonly #checkUtf8: boolean;
    readonly #database: string;
    readonly #schema: SchemaOverlay;
    readonly #rejection: Rejection;
    /** Field columns the pending line created. */
    #newColumns = 0;

    constructor(body: Body, database: string, schema: SchemaView, rejection: Rejection) {
        this.#bytes = body.bytes;
        this.#view = body.view;
        this.#end = body.bytes.length;
        this.#checkUtf8 = body.checkUtf8;
        this.#database = database;
        this.#schema = new SchemaOverlay(schema);
        this.#rejection = rejection;
    }

    /** Starts a line: it has created no column yet. */
    beginLine(): void {
        this.#newColumns = 0;
    }

    /** Whether a line of `measurement` may be accepted: a new measurement must stay within the database's and the total limit. */
    measurementAllowed(measurement: string): boolean {
        const schema = this.#schema;
        if (schema.hasMeasurement(this.#database, measurement)) return true;
        const hit = measurementLimitHit(schema, this.#database);
        if (hit === undefined) return true;
        const database = this.#database;
        this.#rejection.reason = () => measurementLimitReason(database, measurement, schema.limits, hit);
        return false;
    }

    /** Before a series' first accepted line: none of its tag keys may be a field of the measurement. */
    tagsFree(series: Series, builder: MeasurementBuilder): boolean {
        const measurement = builder.name;
        for (const key of series.tagKeys) {
            if (builder.tagColumns.has(key)) continue; // a tag of this batch: declared, so never a field
            const type = this.#schema.fieldType(this.#database, measurement, key);
            if (type !== undefined) {
                this.#rejection.reason = `tag key "${key}" is already a ${FIELD_TYPE_NAMES[type]} field of measurement "${measurement}"`;
                return false;
            }
        }
        return true;
    }

    /** The slot of the field key at `start` (one the slot chain did not predict), or null with the reason recorded. Its `=` ends at `start + slot.length`. */
    slotAt(builder: MeasurementBuilder, start: number): FieldSlot | null {
        const bytes = this.#bytes;
        const view = this.#view;
        const end = this.#end;
        // A plain key (no escapes, no specials) is looked up by its bytes; anything else takes readName.
        let i = start;
        for (; i < end; i++) {
            const c = bytes[i]!;
            if (c === EQUALS || c === BACKSLASH || c === COMMA || c === SPACE || c < 0x20 || c === DEL) break;
        }
        if (i < end && bytes[i] === EQUALS && i > start) {
            const slot = builder.fieldSlots.get(view, bytes, hashBytes(view, bytes, start, i), start, i - start);
            if (slot !== undefined) return slot;
        }
        const name = readName(bytes, start, end, FIELD_KEY, this.#checkUtf8);
        if (typeof name === "string") return this.#fail(name);
        const key = name.value;
        i = name.end;
        if (key === "") return this.#fail(i < end && bytes[i] === EQUALS ? "empty field key" : "missing field key");
        if (i >= end || bytes[i] !== EQUALS) return this.#fail(`field key "${key}" has no "=" and value`);
        if (key === TIME_COLUMN) return this.#fail(`field key "${TIME_COLUMN}" is not allowed: it is the time column`);
        const hash = hashBytes(view, bytes, start, i);
        let slot = builder.fieldSlots.get(view, bytes, hash, start, i - start);
        if (slot === undefined) {
            slot = new FieldSlot(key, view, start, i - start + 1);
            builder.fieldSlots.set(bytes, hash, start, i - start, slot);
        }
        return slot;
    }

    /**
     * The column a field key's values go to in the pending line: `<key>_field` when the key is
     * also a tag (of the schema or of this line), else `<key>`. Creates the column (typed from the
     * schema when declared) and marks the slot stable once the answer cannot change.
     */
    // Invariant kept: a slot is stable only while its column's type is fixed and whether its key is a tag is settled.
    columnFor(builder: MeasurementBuilder, slot: FieldSlot, series: Series): ColumnBuilder | null {
        const schema = this.#schema;
        const database = this.#database;
        const key = slot.key;
        let name = key;
        const tagInSchema = schema.isTag(database, builder.name, key);
        if (tagInSchema || series.hasTag(key)) {
            name = fieldColumnName(key);
            if (schema.isTag(database, builder.name, name) || series.hasTag(name)) {
                return this.#fail(`field "${key}" cannot be stored: "${key}" is a tag, and so is "${name}", where such a field goes`);
            }
        }
        let column = builder.fieldColumns.get(name);
        if (column === undefined) {
            // Stop early on a line with thousands of new fields (withinColumnLimit has the final say).
            const total = ++this.#newColumns + schema.columnCount(database, builder.name);
            if (total > schema.limits.maxColumnsPerMeasurement) return this.#fail(columnLimitReason(builder.name, total, schema.limits));
            const type = schema.fieldType(database, builder.name, name);
            column = new ColumnBuilder(name, type ?? "f", type !== undefined);
            builder.fieldColumns.set(name, column);
        }
        slot.column = column;
        slot.stable = column.fixed && (name === key || tagInSchema);
        return column;
    }

    /** A value of `type` for a column of another type: a conflict if the type is fixed, else the column takes it. */
    retype(builder: MeasurementBuilder, column: ColumnBuilder, slot: FieldSlot, type: FieldType): boolean {
        if (column.fixed) {
            const stored = column.name === slot.key ? "" : ` (stored as "${column.name}")`;
            this.#rejection.reason = `field type conflict: field "${slot.key}"${stored} of measurement "${builder.name}" is ${FIELD_TYPE_NAMES[column.type]}, line has ${FIELD_TYPE_NAMES[type]}`;
            return false;
        }
        column.retype(type);
        return true;
    }

    /** Whether the columns the pending line (its first `fields` fields) would declare keep its measurement within the column limit. */
    withinColumnLimit(series: Series, builder: MeasurementBuilder, fields: number): boolean {
        const schema = this.#schema;
        let added = 0;
        if (series.id < 0) for (const key of series.tagKeys) if (!schema.isTag(this.#database, builder.name, key)) added++;
        const unfixed = new Set<ColumnBuilder>();
        for (const column of builder.lineColumns(fields)) if (!column.fixed) unfixed.add(column);
        added += unfixed.size;
        const total = schema.columnCount(this.#database, builder.name) + added;
        if (added === 0 || total <= schema.limits.maxColumnsPerMeasurement) return true;
        this.#rejection.reason = columnLimitReason(builder.name, total, schema.limits);
        return false;
    }

    /** Declares the tag columns an accepted line's series created in its batch. */
    declareTags(builder: MeasurementBuilder, created: readonly TagColumn[]): void {
        for (const column of created) this.#schema.declare(this.#database, builder.name, column.name, "tag");
    }

    /** Declares, and fixes the type of, the columns of an accepted line's first `fields` fields whose type was not fixed. */
    // Invariant kept: a column's type is fixed only once the request's view of the schema declares it.
    fixColumns(builder: MeasurementBuilder, fields: number): void {
        for (const column of builder.lineColumns(fields)) {
            if (column.fixed) continue;
            this.#schema.declare(this.#database, builder.name, column.name, column.type);
            column.fixed = true;
        }
    }

    #fail(reason: string): null {
        this.#rejection.reason = reason;
        return null;
    }
}

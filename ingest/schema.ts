/**
 * The per-database schema registry: for each (database, measurement), which columns are tags and
 * the type of each field column. A field's type is fixed the first time it is accepted and never
 * changes afterwards (DESIGN.md §3.4: a conflicting value is rejected, never coerced). A name is
 * either a tag or a field of a measurement, never both.
 *
 * Decoders only read it (a `SchemaView`, through a per-request `SchemaOverlay` that holds what
 * the request itself declares). The write path reserves a request's columns before its WAL
 * append and commits them once the request is durable, or releases them when it is refused
 * (issue 10 item 7): a refused request fixes nothing. A reservation counts as declared for
 * every other request until it is released, so two racing requests that declare a field with
 * different types cannot both be accepted: the second gets a 400.
 */
import { messageOf, SluiceError } from "../src/errors.js";
import { type ColumnarBatch, TIME_COLUMN } from "../src/columnar/batch.js";

/** Field column types, as in the WAL's `types` map (DESIGN.md §2). */
export const FIELD_TYPES = ["f", "i", "u", "b", "s"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export function isFieldType(value: unknown): value is FieldType {
    return typeof value === "string" && (FIELD_TYPES as readonly string[]).includes(value);
}

/** The word each type code stands for, in error messages. */
export const FIELD_TYPE_NAMES = {
    f: "float",
    i: "integer",
    u: "unsigned",
    b: "boolean",
    s: "string",
} as const satisfies { [K in FieldType]: string };

/** One measurement's declarations, as persisted. */
export interface MeasurementSchema {
    readonly database: string;
    readonly measurement: string;
    /** Tag column names, in declaration order. */
    readonly tags: readonly string[];
    /** Field column name → type, in declaration order. */
    readonly fields: Readonly<Record<string, FieldType>>;
}

/** Everything a registry holds, in declaration order. */
export type SchemaSnapshot = readonly MeasurementSchema[];

/** What a declaration declares: a tag, or a field of a type. */
export type DeclarationKind = "tag" | FieldType;

export interface SchemaLimits {
    /** Measurements one database may have (InfluxDB 3 Enterprise's default table limit is of this order). */
    readonly maxMeasurementsPerDatabase: number;
    /** Measurements all databases together may have (InfluxDB 3 Core: 2,000 tables across its databases). */
    readonly maxMeasurements: number;
    /** Tag and field columns one measurement may have (InfluxDB 3: 500 with time; Clustered up to 1,000). */
    readonly maxColumnsPerMeasurement: number;
}

export const UNLIMITED: SchemaLimits = {
    maxMeasurementsPerDatabase: Number.MAX_SAFE_INTEGER,
    maxMeasurements: Number.MAX_SAFE_INTEGER,
    maxColumnsPerMeasurement: Number.MAX_SAFE_INTEGER,
};

/** What a decoder may ask of the schema. */
export interface SchemaView {
    readonly limits: SchemaLimits;
    fieldType(database: string, measurement: string, column: string): FieldType | undefined;
    isTag(database: string, measurement: string, column: string): boolean;
    /** Tag and field columns declared for the measurement (the time column not counted). */
    columnCount(database: string, measurement: string): number;
    hasMeasurement(database: string, measurement: string): boolean;
    measurementCount(database: string): number;
    /** Measurements of every database. */
    totalMeasurementCount(): number;
}

export abstract class SchemaError extends SluiceError {}

/** A declaration that contradicts an earlier one (another type, or tag vs field, or `time`). */
export class SchemaConflictError extends SchemaError {
    readonly code = "schema-conflict";
    constructor(
        readonly database: string,
        readonly measurement: string,
        readonly column: string,
        reason: string,
    ) {
        super(`schema conflict in database "${database}", measurement "${measurement}", column "${column}": ${reason}`);
    }
}

/** A declaration beyond ingest.max_measurements_per_database, ingest.max_measurements or ingest.max_columns_per_measurement. */
export class SchemaLimitError extends SchemaError {
    readonly code = "schema-limit";
}

/** A snapshot that is not the shape `snapshot()` returns. */
export class SchemaSnapshotError extends SchemaError {
    readonly code = "schema-snapshot";
}

/** The measurement limit a new measurement would pass. */
export type MeasurementLimit = "database" | "total";

/** Which limit one more new measurement in `database` would pass, beyond the view's and `pending` others the caller is adding. */
export function measurementLimitHit(view: SchemaView, database: string, pending = 0): MeasurementLimit | undefined {
    if (view.measurementCount(database) + pending >= view.limits.maxMeasurementsPerDatabase) return "database";
    if (view.totalMeasurementCount() + pending >= view.limits.maxMeasurements) return "total";
    return undefined;
}

export function measurementLimitReason(database: string, measurement: string, limits: SchemaLimits, hit: MeasurementLimit): string {
    return hit === "database"
        ? `measurement "${measurement}" would be one more than the ${limits.maxMeasurementsPerDatabase} measurements database "${database}" may have (ingest.max_measurements_per_database)`
        : `measurement "${measurement}" of database "${database}" would be one more than the ${limits.maxMeasurements} measurements all databases together may have (ingest.max_measurements)`;
}

export function columnLimitReason(measurement: string, columns: number, limits: SchemaLimits): string {
    return `measurement "${measurement}" would have ${columns} tag and field columns, more than the ${limits.maxColumnsPerMeasurement} allowed (ingest.max_columns_per_measurement)`;
}

interface MeasurementEntry {
    readonly tags: Set<string>;
    readonly fields: Map<string, FieldType>;
}

/** Declarations by database and measurement, with the checks every declaration passes. */
class Declarations {
    readonly databases = new Map<string, Map<string, MeasurementEntry>>();
    /** Measurements of every database. */
    measurements = 0;

    get(database: string, measurement: string): MeasurementEntry | undefined {
        return this.databases.get(database)?.get(measurement);
    }

    entry(database: string, measurement: string): MeasurementEntry {
        let measurements = this.databases.get(database);
        if (measurements === undefined) {
            measurements = new Map();
            this.databases.set(database, measurements);
        }
        let entry = measurements.get(measurement);
        if (entry === undefined) {
            entry = { tags: new Set(), fields: new Map() };
            measurements.set(measurement, entry);
            this.measurements++;
        }
        return entry;
    }
}

/** Why declaring `column` as `kind` contradicts `view`, or undefined when it does not. */
function conflict(view: SchemaView, database: string, measurement: string, column: string, kind: DeclarationKind): string | undefined {
    if (column === TIME_COLUMN) return `"${TIME_COLUMN}" is the time column`;
    const field = view.fieldType(database, measurement, column);
    if (kind === "tag") return field === undefined ? undefined : `it is a ${FIELD_TYPE_NAMES[field]} field`;
    if (field !== undefined && field !== kind) return `field is ${FIELD_TYPE_NAMES[field]}, not ${FIELD_TYPE_NAMES[kind]}`;
    if (field === undefined && view.isTag(database, measurement, column)) return "it is a tag";
    return undefined;
}

/** A declaration of a request, held until the request is durable (commit) or refused (release). */
export interface SchemaReservation {
    commit(): void;
    release(): void;
}

interface Reserved {
    readonly kind: DeclarationKind;
    refs: number;
}

export class SchemaRegistry implements SchemaView {
    readonly #committed = new Declarations();
    /** database → measurement → column → reserved declaration (not committed yet). */
    readonly #reserved = new Map<string, Map<string, Map<string, Reserved>>>();
    /** Called for each new committed declaration (the server persists them). */
    onDeclare?: (database: string, measurement: string, column: string, kind: DeclarationKind) => void;

    constructor(readonly limits: SchemaLimits = UNLIMITED) {}

    #reservedOf(database: string, measurement: string): Map<string, Reserved> | undefined {
        return this.#reserved.get(database)?.get(measurement);
    }

    fieldType(database: string, measurement: string, column: string): FieldType | undefined {
        const committed = this.#committed.get(database, measurement)?.fields.get(column);
        if (committed !== undefined) return committed;
        const reserved = this.#reservedOf(database, measurement)?.get(column)?.kind;
        return reserved === undefined || reserved === "tag" ? undefined : reserved;
    }

    isTag(database: string, measurement: string, column: string): boolean {
        return this.#committed.get(database, measurement)?.tags.has(column) === true || this.#reservedOf(database, measurement)?.get(column)?.kind === "tag";
    }

    columnCount(database: string, measurement: string): number {
        const entry = this.#committed.get(database, measurement);
        let count = entry === undefined ? 0 : entry.tags.size + entry.fields.size;
        for (const [column, reserved] of this.#reservedOf(database, measurement) ?? []) {
            if (reserved.kind === "tag" ? entry?.tags.has(column) !== true : entry?.fields.has(column) !== true) count++;
        }
        return count;
    }

    hasMeasurement(database: string, measurement: string): boolean {
        return this.#committed.get(database, measurement) !== undefined || this.#reservedOf(database, measurement) !== undefined;
    }

    measurementCount(database: string): number {
        return (this.#committed.databases.get(database)?.size ?? 0) + this.#reservedOnly(database);
    }

    totalMeasurementCount(): number {
        let count = this.#committed.measurements;
        for (const database of this.#reserved.keys()) count += this.#reservedOnly(database);
        return count;
    }

    /** Measurements of `database` that are reserved and not committed. */
    #reservedOnly(database: string): number {
        const committed = this.#committed.databases.get(database);
        let count = 0;
        for (const measurement of this.#reserved.get(database)?.keys() ?? []) if (committed?.has(measurement) !== true) count++;
        return count;
    }

    // Invariant kept: a field column's type never changes, and no column is both a tag and a field.
    declareField(database: string, measurement: string, column: string, type: FieldType): void {
        if (!isFieldType(type)) throw new TypeError(`unknown field type ${String(type)}`);
        this.#declare(database, measurement, column, type);
    }

    // Invariant kept: no column is both a tag and a field.
    declareTag(database: string, measurement: string, column: string): void {
        this.#declare(database, measurement, column, "tag");
    }

    #declare(database: string, measurement: string, column: string, kind: DeclarationKind): void {
        const committed = this.#committed.get(database, measurement);
        if (kind === "tag" ? committed?.tags.has(column) : committed?.fields.get(column) === kind) return;
        const reason = conflict(this, database, measurement, column, kind);
        if (reason !== undefined) throw new SchemaConflictError(database, measurement, column, reason);
        const entry = this.#committed.entry(database, measurement);
        if (kind === "tag") entry.tags.add(column);
        else entry.fields.set(column, kind);
        this.onDeclare?.(database, measurement, column, kind);
    }

    /**
     * Reserves every column the batches use (their tags and field types), checked against what
     * is declared and reserved and against the limits. Throws SchemaConflictError or
     * SchemaLimitError (nothing reserved then).
     */
    reserve(database: string, batches: readonly ColumnarBatch[]): SchemaReservation {
        const wanted: { measurement: string; column: string; kind: DeclarationKind }[] = [];
        for (const batch of batches) {
            const tags = new Set(batch.tags);
            for (const tag of batch.tags) wanted.push({ measurement: batch.measurement, column: tag, kind: "tag" });
            for (const [column, data] of batch.columns) if (data.type !== "t" && !tags.has(column)) wanted.push({ measurement: batch.measurement, column, kind: data.type });
        }
        this.#check(database, wanted);
        const held: Reserved[] = [];
        for (const { measurement, column, kind } of wanted) {
            const committed = this.#committed.get(database, measurement);
            if (kind === "tag" ? committed?.tags.has(column) : committed?.fields.get(column) === kind) continue;
            let measurements = this.#reserved.get(database);
            if (measurements === undefined) this.#reserved.set(database, (measurements = new Map<string, Map<string, Reserved>>()));
            let columns = measurements.get(measurement);
            if (columns === undefined) measurements.set(measurement, (columns = new Map<string, Reserved>()));
            let reserved = columns.get(column);
            if (reserved === undefined) columns.set(column, (reserved = { kind, refs: 0 }));
            reserved.refs++;
            held.push(reserved);
        }
        let done = false;
        const release = () => {
            for (const reserved of held) reserved.refs--;
            this.#dropUnreferenced(database);
        };
        return {
            commit: () => {
                if (done) return;
                done = true;
                for (const { measurement, column, kind } of wanted) this.#declare(database, measurement, column, kind);
                release();
            },
            release: () => {
                if (done) return;
                done = true;
                release();
            },
        };
    }

    #check(database: string, wanted: readonly { measurement: string; column: string; kind: DeclarationKind }[]): void {
        const newMeasurements = new Set<string>();
        const newColumns = new Map<string, Set<string>>();
        for (const { measurement, column, kind } of wanted) {
            const reason = conflict(this, database, measurement, column, kind);
            if (reason !== undefined) throw new SchemaConflictError(database, measurement, column, reason);
            if (!this.hasMeasurement(database, measurement)) newMeasurements.add(measurement);
            if (kind === "tag" ? !this.isTag(database, measurement, column) : this.fieldType(database, measurement, column) === undefined) {
                let columns = newColumns.get(measurement);
                if (columns === undefined) newColumns.set(measurement, (columns = new Set()));
                columns.add(column);
            }
        }
        const hit = newMeasurements.size > 0 ? measurementLimitHit(this, database, newMeasurements.size - 1) : undefined;
        if (hit !== undefined) throw new SchemaLimitError(measurementLimitReason(database, [...newMeasurements][0]!, this.limits, hit));
        for (const [measurement, columns] of newColumns) {
            const total = this.columnCount(database, measurement) + columns.size;
            if (total > this.limits.maxColumnsPerMeasurement) throw new SchemaLimitError(columnLimitReason(measurement, total, this.limits));
        }
    }

    #dropUnreferenced(database: string): void {
        const measurements = this.#reserved.get(database);
        if (measurements === undefined) return;
        for (const [measurement, columns] of measurements) {
            for (const [column, reserved] of columns) if (reserved.refs === 0) columns.delete(column);
            if (columns.size === 0) measurements.delete(measurement);
        }
        if (measurements.size === 0) this.#reserved.delete(database);
    }

    /** Everything committed, for persistence. */
    snapshot(): SchemaSnapshot {
        const out: MeasurementSchema[] = [];
        for (const [database, measurements] of this.#committed.databases) {
            for (const [measurement, entry] of measurements) {
                out.push({ database, measurement, tags: [...entry.tags], fields: Object.fromEntries(entry.fields) });
            }
        }
        return out;
    }

    /** A registry holding exactly the snapshot's declarations (without calling `onDeclare`). */
    static fromSnapshot(snapshot: SchemaSnapshot, limits: SchemaLimits = UNLIMITED): SchemaRegistry {
        if (!Array.isArray(snapshot)) throw new SchemaSnapshotError("schema snapshot is not an array");
        const registry = new SchemaRegistry(limits);
        snapshot.forEach((item: unknown, index) => {
            const what = `schema snapshot entry ${index}`;
            if (typeof item !== "object" || item === null) throw new SchemaSnapshotError(`${what} is not an object`);
            const { database, measurement, tags, fields } = item as Record<string, unknown>;
            if (typeof database !== "string" || typeof measurement !== "string") {
                throw new SchemaSnapshotError(`${what} has no string "database" and "measurement"`);
            }
            if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === "string")) {
                throw new SchemaSnapshotError(`${what} has no string array "tags"`);
            }
            if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
                throw new SchemaSnapshotError(`${what} has no object "fields"`);
            }
            try {
                for (const tag of tags) registry.declareTag(database, measurement, tag);
                for (const [column, type] of Object.entries(fields)) {
                    if (!isFieldType(type)) throw new SchemaSnapshotError(`${what}: field "${column}" has unknown type ${String(type)}`);
                    registry.declareField(database, measurement, column, type);
                }
            } catch (error) {
                if (error instanceof SchemaSnapshotError) throw error;
                throw new SchemaSnapshotError(`${what}: ${messageOf(error)}`, { cause: error });
            }
        });
        return registry;
    }
}

/**
 * One request's view of the schema: the registry's, plus what the request declares as it is
 * decoded (so that its later lines see its earlier ones), without changing the registry.
 */
export class SchemaOverlay implements SchemaView {
    readonly #own = new Declarations();
    /** Per database: measurements the request declared that the registry did not hold then (kept, not recounted per line). */
    readonly #added = new Map<string, number>();

    constructor(readonly base: SchemaView) {}

    get limits(): SchemaLimits {
        return this.base.limits;
    }

    fieldType(database: string, measurement: string, column: string): FieldType | undefined {
        return this.base.fieldType(database, measurement, column) ?? this.#own.get(database, measurement)?.fields.get(column);
    }

    isTag(database: string, measurement: string, column: string): boolean {
        return this.base.isTag(database, measurement, column) || this.#own.get(database, measurement)?.tags.has(column) === true;
    }

    columnCount(database: string, measurement: string): number {
        const own = this.#own.get(database, measurement);
        return this.base.columnCount(database, measurement) + (own === undefined ? 0 : own.tags.size + own.fields.size);
    }

    hasMeasurement(database: string, measurement: string): boolean {
        return this.base.hasMeasurement(database, measurement) || this.#own.get(database, measurement) !== undefined;
    }

    measurementCount(database: string): number {
        return this.base.measurementCount(database) + (this.#added.get(database) ?? 0);
    }

    totalMeasurementCount(): number {
        let added = 0;
        for (const count of this.#added.values()) added += count;
        return this.base.totalMeasurementCount() + added;
    }

    // Invariant kept: what the request declares agrees with the registry and with itself.
    declare(database: string, measurement: string, column: string, kind: DeclarationKind): void {
        if (kind === "tag" ? this.isTag(database, measurement, column) : this.fieldType(database, measurement, column) === kind) return;
        const reason = conflict(this, database, measurement, column, kind);
        if (reason !== undefined) throw new SchemaConflictError(database, measurement, column, reason);
        if (!this.hasMeasurement(database, measurement)) {
            this.#added.set(database, (this.#added.get(database) ?? 0) + 1);
        }
        const entry = this.#own.entry(database, measurement);
        if (kind === "tag") entry.tags.add(column);
        else entry.fields.set(column, kind);
    }
}

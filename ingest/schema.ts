/**
 * The per-database schema registry: for each (database, measurement), which columns are tags and
 * the type of each field column. A field's type is fixed the first time it is accepted and never
 * changes afterwards (DESIGN.md §3.4: a conflicting value is rejected, never coerced). A name is
 * either a tag or a field of a measurement, never both.
 */
import { SluiceError } from "../src/errors.js";
import { TIME_COLUMN } from "../src/columnar/batch.js";

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

/** A snapshot that is not the shape `snapshot()` returns. */
export class SchemaSnapshotError extends SchemaError {
    readonly code = "schema-snapshot";
}

interface MeasurementEntry {
    readonly tags: Set<string>;
    readonly fields: Map<string, FieldType>;
}

export class SchemaRegistry {
    /** database → measurement → declarations. */
    readonly #databases = new Map<string, Map<string, MeasurementEntry>>();
    /** Called for each new declaration after construction (the server persists them). */
    onDeclare?: (database: string, measurement: string, column: string, kind: DeclarationKind) => void;

    fieldType(database: string, measurement: string, column: string): FieldType | undefined {
        return this.#databases.get(database)?.get(measurement)?.fields.get(column);
    }

    isTag(database: string, measurement: string, column: string): boolean {
        return this.#databases.get(database)?.get(measurement)?.tags.has(column) ?? false;
    }

    /** Tag and field columns declared for the measurement (the time column not counted). */
    columnCount(database: string, measurement: string): number {
        const entry = this.#databases.get(database)?.get(measurement);
        return entry === undefined ? 0 : entry.tags.size + entry.fields.size;
    }

    // Invariant kept: a field column's type never changes, and no column is both a tag and a field.
    declareField(database: string, measurement: string, column: string, type: FieldType): void {
        if (!isFieldType(type)) throw new TypeError(`unknown field type ${String(type)}`);
        if (column === TIME_COLUMN) throw new SchemaConflictError(database, measurement, column, `"${TIME_COLUMN}" is the time column`);
        const entry = this.#entry(database, measurement);
        const existing = entry.fields.get(column);
        if (existing === type) return;
        if (existing !== undefined) {
            throw new SchemaConflictError(database, measurement, column, `field is ${FIELD_TYPE_NAMES[existing]}, not ${FIELD_TYPE_NAMES[type]}`);
        }
        if (entry.tags.has(column)) throw new SchemaConflictError(database, measurement, column, "it is a tag");
        entry.fields.set(column, type);
        this.onDeclare?.(database, measurement, column, type);
    }

    // Invariant kept: no column is both a tag and a field.
    declareTag(database: string, measurement: string, column: string): void {
        if (column === TIME_COLUMN) throw new SchemaConflictError(database, measurement, column, `"${TIME_COLUMN}" is the time column`);
        const entry = this.#entry(database, measurement);
        if (entry.tags.has(column)) return;
        const field = entry.fields.get(column);
        if (field !== undefined) throw new SchemaConflictError(database, measurement, column, `it is a ${FIELD_TYPE_NAMES[field]} field`);
        entry.tags.add(column);
        this.onDeclare?.(database, measurement, column, "tag");
    }

    /** Everything declared, for persistence. */
    snapshot(): SchemaSnapshot {
        const out: MeasurementSchema[] = [];
        for (const [database, measurements] of this.#databases) {
            for (const [measurement, entry] of measurements) {
                out.push({ database, measurement, tags: [...entry.tags], fields: Object.fromEntries(entry.fields) });
            }
        }
        return out;
    }

    /** A registry holding exactly the snapshot's declarations (without calling `onDeclare`). */
    static fromSnapshot(snapshot: SchemaSnapshot): SchemaRegistry {
        if (!Array.isArray(snapshot)) throw new SchemaSnapshotError("schema snapshot is not an array");
        const registry = new SchemaRegistry();
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
                throw new SchemaSnapshotError(`${what}: ${(error as Error).message}`, { cause: error });
            }
        });
        return registry;
    }

    #entry(database: string, measurement: string): MeasurementEntry {
        let measurements = this.#databases.get(database);
        if (measurements === undefined) {
            measurements = new Map();
            this.#databases.set(database, measurements);
        }
        let entry = measurements.get(measurement);
        if (entry === undefined) {
            entry = { tags: new Set(), fields: new Map() };
            measurements.set(measurement, entry);
        }
        return entry;
    }
}

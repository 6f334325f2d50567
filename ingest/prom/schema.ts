/**
 * Where remote write meets the schema, and nowhere else: `admitSeries` checks a series against
 * the schema (plus what its request already needs) and records what it would add. It only reads:
 * the write path reserves the request's columns and declares them once the request is durable.
 * Every remote-write measurement has the same shape: each label but `__name__` a tag (string),
 * one float field `value`.
 */
import { FIELD_TYPE_NAMES, type SchemaView, columnLimitReason, measurementLimitHit, measurementLimitReason } from "../schema.js";
import type { PromSeries } from "./series-cache.js";

/** The field every sample's value is stored in. */
export const VALUE_FIELD = "value";

/** What one request needs declared that the registry does not hold yet. */
export class PromDeclarations {
    /** Measurement → tags to declare. */
    readonly tags = new Map<string, Set<string>>();
    /** Measurements whose `value` field is to be declared a float. */
    readonly values = new Set<string>();

    get empty(): boolean {
        return this.tags.size === 0 && this.values.size === 0;
    }
}

/**
 * Whether `series` can be stored in `database`: undefined when it can (its new declarations are
 * added to `needed`), else why not. A label that is a field of the measurement, a `value` that
 * is not a float field, or more columns than a measurement may have can never be stored there,
 * however often the request is retried.
 */
export function admitSeries(registry: SchemaView, database: string, series: PromSeries, needed: PromDeclarations): string | undefined {
    if (series.settledIn === database && series.settledBy === registry) return undefined;
    const measurement = series.metric.name;
    if (registry.isTag(database, measurement, VALUE_FIELD))
        return `measurement "${measurement}" has a tag "${VALUE_FIELD}": remote write stores each sample in a field of that name`;
    const valueType = registry.fieldType(database, measurement, VALUE_FIELD);
    if (valueType !== undefined && valueType !== "f") {
        return `field "${VALUE_FIELD}" of measurement "${measurement}" is ${FIELD_TYPE_NAMES[valueType]}: remote write stores floats`;
    }
    const staged = needed.tags.get(measurement);
    const added: string[] = [];
    for (const key of series.tagKeys) {
        if (registry.isTag(database, measurement, key) || staged?.has(key) === true) continue;
        const type = registry.fieldType(database, measurement, key);
        if (type !== undefined) return `label "${key}" is a ${FIELD_TYPE_NAMES[type]} field of measurement "${measurement}"`;
        added.push(key);
    }
    const newValue = valueType === undefined && !needed.values.has(measurement);
    if (added.length === 0 && !newValue) return undefined;
    const columns = registry.columnCount(database, measurement) + (staged?.size ?? 0) + (needed.values.has(measurement) ? 1 : 0) + added.length + (newValue ? 1 : 0);
    if (columns > registry.limits.maxColumnsPerMeasurement) return columnLimitReason(measurement, columns, registry.limits);
    const newMeasurements = [...new Set([...needed.tags.keys(), ...needed.values])].filter((name) => !registry.hasMeasurement(database, name)).length;
    if (!registry.hasMeasurement(database, measurement) && !needed.values.has(measurement) && !needed.tags.has(measurement)) {
        const hit = measurementLimitHit(registry, database, newMeasurements);
        if (hit !== undefined) return measurementLimitReason(database, measurement, registry.limits, hit);
    }
    if (newValue) needed.values.add(measurement);
    if (added.length > 0) {
        if (staged === undefined) needed.tags.set(measurement, new Set(added));
        else for (const key of added) staged.add(key);
    }
    return undefined;
}

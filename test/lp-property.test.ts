/**
 * Property tests for the line-protocol decoder (fast-check):
 * - random valid points (names with characters that need escaping, unicode, every field type,
 *   optional timestamps, CRLF, extra spaces, comments and blank lines between them), serialised
 *   to line protocol, parse back to exactly those rows;
 * - random bytes, and random mutations of valid bodies, never make it throw, and every error
 *   names a line inside the body, each rejected entry once.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ColumnarBatch, TIME_COLUMN, assertBatchShape, isPresent, valueAt } from "../src/columnar/batch.js";
import { type ParseResult, type Precision, parseLineProtocol } from "../ingest/lp/index.js";
import { type FieldType, SchemaRegistry } from "../ingest/schema.js";

const NOW_NS = 1_700_000_000_123_456_789n;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const UNIT: Record<"ns" | "us" | "ms" | "s", bigint> = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n };

// ---------------------------------------------------------------------------------------------
// Generating points

/** Characters names are drawn from: plain, every special, a literal backslash, quotes, unicode. */
const NAME_CHARS = ["a", "b", "z", "K", "0", "9", "_", "-", ".", ",", "=", " ", "\\", '"', "'", "#", "é", "日", "🚀", "ß"];

/**
 * A name line protocol can express: non-empty, no control characters, not ending in a backslash
 * (it would escape the separator after it), not `time`, and for a measurement not starting with
 * `#` (a comment).
 */
const name = (kind: "measurement" | "key" | "value") =>
    fc
        .array(fc.constantFrom(...NAME_CHARS), { minLength: 1, maxLength: 8 })
        .map((chars) => chars.join(""))
        .filter((s) => !s.endsWith("\\") && s !== TIME_COLUMN && !(kind === "measurement" && s.startsWith("#")));

/** A name escaped for its element: a backslash before each escapable character (line-protocol.md §A2). */
function escapeName(value: string, kind: "measurement" | "key"): string {
    const special = kind === "measurement" ? /[, ]/g : /[,= ]/g;
    return value.replace(special, (c) => `\\${c}`);
}

const STRING_CHARS = ["a", "Z", " ", ",", "=", '"', "\\", "\n", "\r\n", "\t", "#", "é", "🚀", "n", "t"];
const stringValue = fc.array(fc.constantFrom(...STRING_CHARS), { maxLength: 12 }).map((chars) => chars.join(""));

type Value =
    { type: "f"; value: number } | { type: "i"; value: bigint } | { type: "u"; value: bigint } | { type: "b"; value: boolean; spelling: string } | { type: "s"; value: string };

const TRUE_SPELLINGS = ["t", "T", "true", "True", "TRUE"];
const FALSE_SPELLINGS = ["f", "F", "false", "False", "FALSE"];

function valueOf(type: FieldType): fc.Arbitrary<Value> {
    switch (type) {
        case "f":
            return fc
                .oneof(
                    fc.double({ noNaN: true, noDefaultInfinity: true }),
                    fc.integer({ min: -1000, max: 1000 }).map((n) => n / 100),
                )
                .map((value) => ({ type: "f" as const, value }));
        case "i":
            return fc.oneof(fc.bigInt({ min: I64_MIN, max: I64_MAX }), fc.constantFrom(I64_MIN, I64_MAX, 0n, -1n)).map((value) => ({ type: "i" as const, value }));
        case "u":
            return fc.oneof(fc.bigInt({ min: 0n, max: U64_MAX }), fc.constantFrom(0n, U64_MAX)).map((value) => ({ type: "u" as const, value }));
        case "b":
            return fc.boolean().chain((value) => fc.constantFrom(...(value ? TRUE_SPELLINGS : FALSE_SPELLINGS)).map((spelling) => ({ type: "b" as const, value, spelling })));
        case "s":
            return stringValue.map((value) => ({ type: "s" as const, value }));
    }
}

function formatValue(v: Value): string {
    switch (v.type) {
        case "f":
            return Object.is(v.value, -0) ? "-0" : String(v.value);
        case "i":
            return `${v.value}i`;
        case "u":
            return `${v.value}u`;
        case "b":
            return v.spelling;
        case "s":
            return `"${v.value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    }
}

interface Point {
    readonly measurement: string;
    readonly tags: readonly (readonly [string, string])[];
    readonly fields: readonly (readonly [string, Value])[];
    readonly time: bigint | null;
}

/** A measurement's schema: tag keys, and field keys with their types (disjoint from tags and their `_field` names). */
const schemaArb = fc
    .record({
        measurement: name("measurement"),
        tagKeys: fc.uniqueArray(name("key"), { maxLength: 3 }),
        fields: fc.uniqueArray(fc.tuple(name("key"), fc.constantFrom<FieldType>("f", "i", "u", "b", "s")), { minLength: 1, maxLength: 4, selector: ([key]) => key }),
    })
    .filter(({ tagKeys, fields }) => fields.every(([key]) => !tagKeys.some((tag) => key === tag || key === `${tag}_field`)));

/** One to three measurements, each with one schema (a name is a tag or a field of a measurement, never both). */
const schemasArb = fc.array(schemaArb, { minLength: 1, maxLength: 3 }).filter((s) => new Set(s.map((m) => m.measurement)).size === s.length);

function pointArb(schema: fc.Arbitrary<{ measurement: string; tagKeys: string[]; fields: [string, FieldType][] }>, precision: keyof typeof UNIT): fc.Arbitrary<Point> {
    const unit = UNIT[precision];
    return schema.chain(({ measurement, tagKeys, fields }) =>
        fc.record({
            measurement: fc.constant(measurement),
            tags: fc.subarray(tagKeys).chain((keys) => fc.tuple(...keys.map((key) => name("value").map((value) => [key, value] as const)))),
            fields: fc.subarray(fields, { minLength: 1 }).chain((chosen) => fc.tuple(...chosen.map(([key, type]) => valueOf(type).map((value) => [key, value] as const)))),
            time: fc.option(fc.oneof(fc.bigInt({ min: I64_MIN / unit, max: I64_MAX / unit }), fc.constantFrom(0n, -1n, I64_MAX / unit)), { nil: null }),
        }),
    );
}

/** How lines are laid out: line ends, spaces, comments and blank lines between entries. */
const layoutArb = fc.record({
    crlf: fc.boolean(),
    leading: fc.constantFrom("", " ", "   "),
    gap: fc.constantFrom(" ", "  "),
    trailing: fc.constantFrom("", " ", "  "),
    extras: fc.constantFrom("", "\n", "# a comment\n", "   \n"),
});

type Layout = typeof layoutArb extends fc.Arbitrary<infer T> ? T : never;

/** Each point as [what precedes its entry (comments, blank lines, spaces), the entry, its line end]. */
function serialisedParts(points: readonly Point[], layout: Layout): [string, string, string][] {
    const eol = layout.crlf ? "\r\n" : "\n";
    return points.map((p) => {
        const series = [escapeName(p.measurement, "measurement"), ...p.tags.map(([k, v]) => `${escapeName(k, "key")}=${escapeName(v, "key")}`)].join(",");
        const fields = p.fields.map(([k, v]) => `${escapeName(k, "key")}=${formatValue(v)}`).join(",");
        const time = p.time === null ? "" : `${layout.gap}${p.time}`;
        return [`${layout.extras.replace(/\n/g, eol)}${layout.leading}`, `${series}${layout.gap}${fields}${time}${layout.trailing}`, eol];
    });
}

function serialise(points: readonly Point[], layout: Layout): string {
    return serialisedParts(points, layout)
        .map((parts) => parts.join(""))
        .join("");
}

// ---------------------------------------------------------------------------------------------
// Comparing

type Cell = number | boolean | string | { i: string } | { u: string };
interface Row {
    m: string;
    time: string;
    tags: Record<string, string>;
    fields: Record<string, Cell>;
}

function cell(v: Value): Cell {
    if (v.type === "i") return { i: String(v.value) };
    if (v.type === "u") return { u: String(v.value) };
    return v.value;
}

/** The rows the decoder must produce: one batch per measurement (first appearance), rows in input order. */
function expectedRows(points: readonly Point[], precision: keyof typeof UNIT): Row[] {
    const unit = UNIT[precision];
    const byMeasurement = new Map<string, Row[]>();
    for (const p of points) {
        const fields: Record<string, Cell> = {};
        for (const [k, v] of p.fields) fields[k] = cell(v); // duplicates cannot occur (unique keys)
        const row: Row = { m: p.measurement, time: String(p.time === null ? NOW_NS - (NOW_NS % unit) : p.time * unit), tags: Object.fromEntries(p.tags), fields };
        if (!byMeasurement.has(p.measurement)) byMeasurement.set(p.measurement, []);
        byMeasurement.get(p.measurement)!.push(row);
    }
    return [...byMeasurement.values()].flat();
}

function actualRows(batches: readonly ColumnarBatch[]): Row[] {
    const rows: Row[] = [];
    for (const batch of batches) {
        for (let r = 0; r < batch.rows; r++) {
            const row: Row = { m: batch.measurement, time: String(valueAt(batch.columns.get(TIME_COLUMN)!, r)), tags: {}, fields: {} };
            for (const [col, column] of batch.columns) {
                if (col === TIME_COLUMN || !isPresent(column, r)) continue;
                const value = valueAt(column, r)!;
                if (batch.tags.includes(col)) row.tags[col] = value as string;
                else row.fields[col] = column.type === "i" ? { i: String(value) } : column.type === "u" ? { u: String(value) } : (value as number | boolean | string);
            }
            rows.push(row);
        }
    }
    return rows;
}

function parse(body: Buffer, precision: Precision = "ns", schema = new SchemaRegistry()): ParseResult {
    return parseLineProtocol(body, { database: "db", precision, nowNs: NOW_NS, schema });
}

/** What must hold for any input: no throw (checked by calling), sound batches, errors on distinct lines inside the body. */
function checkInvariants(body: Buffer, result: ParseResult): void {
    const lines = body.filter((b) => b === 0x0a).length + 1;
    let previous = 0;
    for (const error of result.errors) {
        expect(error.line).toBeGreaterThan(previous);
        expect(error.line).toBeLessThanOrEqual(lines);
        expect(error.message.length).toBeGreaterThan(0);
        expect(Buffer.byteLength(error.text)).toBeLessThanOrEqual(1024 * 3); // ≤ 1 KiB of input, maybe with U+FFFD for bad bytes
        previous = error.line;
    }
    let rows = 0;
    for (const batch of result.batches) {
        assertBatchShape(batch);
        expect(batch.rows).toBeGreaterThan(0);
        rows += batch.rows;
    }
    expect(rows).toBe(result.accepted);
}

// ---------------------------------------------------------------------------------------------

/** Runs per property (LP_PROPERTY_RUNS=N for a longer search). */
const RUNS = Number(process.env["LP_PROPERTY_RUNS"] ?? 300);
const TIMEOUT_MS = 30_000 + RUNS * 20;

describe("line-protocol properties", () => {
    it(
        "random valid points round-trip exactly (ns)",
        () => {
            fc.assert(
                fc.property(
                    schemasArb.chain((list) => fc.array(pointArb(fc.constantFrom(...list), "ns"), { minLength: 1, maxLength: 12 })),
                    layoutArb,
                    (points, layout) => {
                        const body = Buffer.from(serialise(points, layout), "utf8");
                        const result = parse(body);
                        expect(result.errors).toEqual([]);
                        expect(actualRows(result.batches)).toEqual(expectedRows(points, "ns"));
                        checkInvariants(body, result);
                    },
                ),
                { numRuns: RUNS },
            );
        },
        TIMEOUT_MS,
    );

    it(
        "random valid points round-trip exactly at us, ms and s",
        () => {
            fc.assert(
                fc.property(
                    fc
                        .constantFrom("us" as const, "ms" as const, "s" as const)
                        .chain((precision) => fc.tuple(fc.constant(precision), fc.array(pointArb(schemaArb, precision), { minLength: 1, maxLength: 1 }), layoutArb)),
                    ([precision, points, layout]) => {
                        const body = Buffer.from(serialise(points, layout), "utf8");
                        const result = parse(body, precision);
                        expect(result.errors).toEqual([]);
                        expect(actualRows(result.batches)).toEqual(expectedRows(points, precision));
                    },
                ),
                { numRuns: RUNS },
            );
        },
        TIMEOUT_MS,
    );

    it(
        "a bad entry among good ones is reported at its physical line, and only it is lost",
        () => {
            const broken = fc.constantFrom("m,t=a=b f=1", "m f=1 1 2", "m f=NaN", "m,t f=1", "m f=1ii", "m f=1\r9", "m time=1", "m,x=1,x=2 f=1");
            fc.assert(
                fc.property(
                    // One schema per measurement: points drawn from independent schemas could use one name as a tag and as a field.
                    schemasArb
                        .chain((list) => fc.array(pointArb(fc.constantFrom(...list), "ns"), { minLength: 1, maxLength: 8 }))
                        .chain((points) => fc.tuple(fc.constant(points), fc.nat(points.length - 1))),
                    layoutArb,
                    broken,
                    ([points, bad], layout, badEntry) => {
                        const parts = serialisedParts(points, layout);
                        parts[bad]![1] = badEntry;
                        const before =
                            parts
                                .slice(0, bad)
                                .map((p) => p.join(""))
                                .join("") + parts[bad]![0];
                        const line = 1 + (before.match(/\n/g)?.length ?? 0);
                        const body = Buffer.from(parts.map((p) => p.join("")).join(""), "utf8");
                        const result = parse(body);
                        expect(result.errors.map((e) => [e.line, e.text])).toEqual([[line, badEntry]]);
                        expect(actualRows(result.batches)).toEqual(
                            expectedRows(
                                points.filter((_, i) => i !== bad),
                                "ns",
                            ),
                        );
                    },
                ),
                { numRuns: RUNS },
            );
        },
        TIMEOUT_MS,
    );

    it(
        "random bytes never throw, and every error is on a line of the body",
        () => {
            const interesting = fc.constantFrom(
                0x0a,
                0x0d,
                0x20,
                0x2c,
                0x3d,
                0x22,
                0x5c,
                0x23,
                0x2d,
                0x2e,
                0x30,
                0x31,
                0x39,
                0x69,
                0x75,
                0x74,
                0x66,
                0x65,
                0x09,
                0x00,
                0x7f,
                0xff,
                0xc3,
                0xa9,
                0x6d,
            );
            const byte = fc.oneof({ weight: 3, arbitrary: interesting }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) });
            fc.assert(
                fc.property(fc.array(byte, { maxLength: 200 }), fc.constantFrom<Precision>("ns", "s", "m", "auto"), (bytes, precision) => {
                    const body = Buffer.from(bytes);
                    checkInvariants(body, parse(body, precision));
                }),
                { numRuns: RUNS * 7 },
            );
        },
        TIMEOUT_MS,
    );

    it(
        "mutated valid bodies never throw, and every error is on a line of the body",
        () => {
            const mutation = fc.record({
                at: fc.nat(),
                kind: fc.constantFrom("replace", "insert", "delete"),
                byte: fc.constantFrom(0x0a, 0x0d, 0x20, 0x2c, 0x3d, 0x22, 0x5c, 0x23, 0x09, 0x00, 0xff, 0x2e, 0x65, 0x69),
            });
            fc.assert(
                fc.property(
                    fc.array(pointArb(schemaArb, "ns"), { minLength: 1, maxLength: 6 }),
                    layoutArb,
                    fc.array(mutation, { minLength: 1, maxLength: 4 }),
                    (points, layout, mutations) => {
                        const bytes = [...Buffer.from(serialise(points, layout), "utf8")];
                        for (const { at, kind, byte } of mutations) {
                            const i = at % (bytes.length + 1);
                            if (kind === "insert") bytes.splice(i, 0, byte);
                            else if (kind === "delete") bytes.splice(i, 1);
                            else bytes[Math.min(i, bytes.length - 1)] = byte;
                        }
                        const body = Buffer.from(bytes);
                        const schema = new SchemaRegistry();
                        checkInvariants(body, parse(body, "ns", schema));
                        // The schema holds what was accepted: a second parse of the same body against it accepts the same lines.
                        const again = parse(body, "ns", schema);
                        checkInvariants(body, again);
                    },
                ),
                { numRuns: RUNS * 3 },
            );
        },
        TIMEOUT_MS,
    );
});

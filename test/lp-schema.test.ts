/** The per-database schema registry the line-protocol decoder declares into. */
import { describe, expect, it } from "vitest";
import { SchemaConflictError, SchemaRegistry, SchemaSnapshotError } from "../ingest/schema.js";

describe("SchemaRegistry", () => {
    it("fixes a field's type at its first declaration", () => {
        const schema = new SchemaRegistry();
        schema.declareField("db", "m", "f", "f");
        schema.declareField("db", "m", "f", "f"); // same type: a no-op
        expect(schema.fieldType("db", "m", "f")).toBe("f");
        const error = (() => {
            try {
                schema.declareField("db", "m", "f", "i");
            } catch (e) {
                return e;
            }
            return undefined;
        })();
        expect(error).toBeInstanceOf(SchemaConflictError);
        expect(error).toMatchObject({ code: "schema-conflict", database: "db", measurement: "m", column: "f", retryable: false });
        expect((error as Error).message).toBe('schema conflict in database "db", measurement "m", column "f": field is float, not integer');
        expect(schema.fieldType("db", "m", "f")).toBe("f");
    });

    it("keeps tags and fields apart, and reserves time", () => {
        const schema = new SchemaRegistry();
        schema.declareTag("db", "m", "host");
        schema.declareTag("db", "m", "host");
        schema.declareField("db", "m", "value", "s");
        expect(schema.isTag("db", "m", "host")).toBe(true);
        expect(schema.isTag("db", "m", "value")).toBe(false);
        expect(() => {
            schema.declareField("db", "m", "host", "f");
        }).toThrow(/it is a tag/);
        expect(() => {
            schema.declareTag("db", "m", "value");
        }).toThrow(/it is a string field/);
        expect(() => {
            schema.declareTag("db", "m", "time");
        }).toThrow(SchemaConflictError);
        expect(() => {
            schema.declareField("db", "m", "time", "i");
        }).toThrow(SchemaConflictError);
    });

    it("scopes declarations by database and measurement", () => {
        const schema = new SchemaRegistry();
        schema.declareField("a", "m", "f", "f");
        schema.declareField("b", "m", "f", "u");
        schema.declareField("a", "n", "f", "b");
        expect([schema.fieldType("a", "m", "f"), schema.fieldType("b", "m", "f"), schema.fieldType("a", "n", "f")]).toEqual(["f", "u", "b"]);
        expect(schema.fieldType("c", "m", "f")).toBeUndefined();
        expect(schema.isTag("c", "m", "f")).toBe(false);
    });

    it("counts a measurement's tag and field columns", () => {
        const schema = new SchemaRegistry();
        expect(schema.columnCount("db", "m")).toBe(0);
        schema.declareTag("db", "m", "host");
        schema.declareField("db", "m", "f", "f");
        schema.declareField("db", "m", "f", "f");
        schema.declareField("db", "n", "g", "b");
        expect(schema.columnCount("db", "m")).toBe(2);
        expect(() => {
            schema.declareField("db", "m", "host", "f");
        }).toThrow();
        expect(schema.columnCount("db", "m")).toBe(2);
    });

    it("calls onDeclare once per new declaration, never for repeats or conflicts", () => {
        const schema = new SchemaRegistry();
        const calls: unknown[] = [];
        schema.onDeclare = (...args) => calls.push(args);
        schema.declareTag("db", "m", "t");
        schema.declareTag("db", "m", "t");
        schema.declareField("db", "m", "f", "i");
        schema.declareField("db", "m", "f", "i");
        expect(() => {
            schema.declareField("db", "m", "f", "u");
        }).toThrow();
        expect(calls).toEqual([
            ["db", "m", "t", "tag"],
            ["db", "m", "f", "i"],
        ]);
    });

    it("round-trips through a snapshot, without calling onDeclare", () => {
        const schema = new SchemaRegistry();
        schema.declareTag("db", "cpu", "host");
        schema.declareField("db", "cpu", "usage", "f");
        schema.declareField("db", "cpu", "count", "i");
        schema.declareField("other", "mem", "free", "u");
        const snapshot = schema.snapshot();
        expect(snapshot).toEqual([
            { database: "db", measurement: "cpu", tags: ["host"], fields: { usage: "f", count: "i" } },
            { database: "other", measurement: "mem", tags: [], fields: { free: "u" } },
        ]);
        const copy = SchemaRegistry.fromSnapshot(JSON.parse(JSON.stringify(snapshot)));
        expect(copy.snapshot()).toEqual(snapshot);
        expect(copy.fieldType("db", "cpu", "usage")).toBe("f");
        expect(copy.isTag("db", "cpu", "host")).toBe(true);
    });

    it("rejects a malformed snapshot with a typed error", () => {
        const bad: unknown[] = [
            {},
            [{ database: "db" }],
            [{ database: "db", measurement: "m", tags: [1], fields: {} }],
            [{ database: "db", measurement: "m", tags: [], fields: { f: "x" } }],
            [{ database: "db", measurement: "m", tags: ["a"], fields: { a: "f" } }],
        ];
        for (const snapshot of bad) {
            expect(() => SchemaRegistry.fromSnapshot(snapshot as never)).toThrow(SchemaSnapshotError);
        }
    });
});

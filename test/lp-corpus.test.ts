/**
 * Runs the line-protocol corpus (test/fixtures/lp-corpus.json, one case per row): every rule of
 * line-protocol.md §A as an input and the rows or the error it must give.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type Column, type ColumnarBatch, TIME_COLUMN, assertBatchShape, isPresent, valueAt } from "../src/columnar/batch.js";
import { type Precision, isPrecision, parseLineProtocol } from "../ingest/lp/index.js";
import { SchemaRegistry } from "../ingest/schema.js";

type JsonValue = number | boolean | string | { i: string } | { u: string };

interface CorpusRow {
    readonly m: string;
    readonly time: string;
    readonly tags: Record<string, string>;
    readonly fields: Record<string, JsonValue>;
}

interface CorpusCase {
    readonly name: string;
    readonly input?: string;
    readonly inputHex?: string;
    readonly precision?: string;
    readonly before?: readonly string[];
    readonly note?: string;
    readonly expect: { readonly rows: readonly CorpusRow[]; readonly errors?: readonly { line: number; match: string }[] } | { readonly error: { line: number; match: string } };
}

const corpus = JSON.parse(readFileSync(new URL("./fixtures/lp-corpus.json", import.meta.url), "utf8")) as {
    nowNs: string;
    cases: CorpusCase[];
};
const NOW_NS = BigInt(corpus.nowNs);

/** A column value as the corpus writes it. */
function jsonValue(column: Column, row: number): JsonValue {
    const value = valueAt(column, row);
    switch (column.type) {
        case "i":
            return { i: String(value) };
        case "u":
            return { u: String(value) };
        default:
            return value as number | boolean | string;
    }
}

/** Every row of every batch, batches in order, as the corpus writes rows (nulls left out). */
function corpusRows(batches: readonly ColumnarBatch[]): CorpusRow[] {
    const rows: CorpusRow[] = [];
    for (const batch of batches) {
        for (let row = 0; row < batch.rows; row++) {
            const tags: Record<string, string> = {};
            const fields: Record<string, JsonValue> = {};
            for (const [name, column] of batch.columns) {
                if (name === TIME_COLUMN || !isPresent(column, row)) continue;
                if (batch.tags.includes(name)) tags[name] = valueAt(column, row) as string;
                else fields[name] = jsonValue(column, row);
            }
            rows.push({ m: batch.measurement, time: String(valueAt(batch.columns.get(TIME_COLUMN)!, row)), tags, fields });
        }
    }
    return rows;
}

describe("line-protocol corpus", () => {
    it("has a case for every rule (sanity)", () => {
        expect(corpus.cases.length).toBeGreaterThanOrEqual(250);
        expect(new Set(corpus.cases.map((c) => c.name)).size).toBe(corpus.cases.length);
    });

    it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", (_name, testCase) => {
        const precision = (testCase.precision ?? "ns") as Precision;
        expect(isPrecision(precision)).toBe(true);
        const schema = new SchemaRegistry();
        const options = { database: "db", precision, nowNs: NOW_NS, schema };
        for (const body of testCase.before ?? []) {
            const earlier = parseLineProtocol(Buffer.from(body, "utf8"), options);
            expect(earlier.errors).toEqual([]);
            // Accepted and durable: the write path declares its columns.
            schema.reserve("db", earlier.batches).commit();
        }
        const body = testCase.inputHex !== undefined ? Buffer.from(testCase.inputHex, "hex") : Buffer.from(testCase.input!, "utf8");
        const result = parseLineProtocol(body, options);
        for (const batch of result.batches) assertBatchShape(batch);
        const rows = corpusRows(result.batches);
        const expected = testCase.expect;
        const errors = result.errors.map((e) => ({ line: e.line, message: e.message }));
        if ("error" in expected) {
            expect(rows).toEqual([]);
            expect(errors).toEqual([{ line: expected.error.line, message: expect.stringContaining(expected.error.match) }]);
        } else {
            expect(rows).toEqual(expected.rows);
            expect(errors).toEqual((expected.errors ?? []).map((e) => ({ line: e.line, message: expect.stringContaining(e.match) })));
        }
        expect(result.accepted).toBe(rows.length);
    });
});

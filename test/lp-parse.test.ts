/**
 * Unit tests for what the corpus cannot express: the batches' shape (one per measurement, column
 * order, typed arrays, validity bitmaps, dictionaries), physical line numbers around multi-line
 * strings, limits, error texts, and what a rejected line leaves behind (nothing).
 */
import { describe, expect, it } from "vitest";
import { type Column, type ColumnarBatch, type StringColumn, assertBatchShape, bitIsSet, valueAt } from "../src/columnar/batch.js";
import { LP_LIMITS, type ParseResult, type Precision, parseLineProtocol } from "../ingest/lp/index.js";
import { SchemaRegistry } from "../ingest/schema.js";

const NOW_NS = 1_700_000_000_123_456_789n;

function parse(text: string | Buffer, schema = new SchemaRegistry(), precision: Precision = "ns"): ParseResult {
    const body = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    const result = parseLineProtocol(body, { database: "db", precision, nowNs: NOW_NS, schema });
    for (const batch of result.batches) assertBatchShape(batch);
    return result;
}

function batch(result: ParseResult, measurement: string): ColumnarBatch {
    const found = result.batches.find((b) => b.measurement === measurement);
    if (found === undefined) throw new Error(`no batch for ${measurement}`);
    return found;
}

function column(b: ColumnarBatch, name: string): Column {
    const found = b.columns.get(name);
    if (found === undefined) throw new Error(`no column ${name}`);
    return found;
}

function values(b: ColumnarBatch, name: string): unknown[] {
    const c = column(b, name);
    return Array.from({ length: b.rows }, (_, i) => valueAt(c, i));
}

describe("parseLineProtocol: batches", () => {
    it("builds one batch per measurement, in order of first appearance, rows in input order", () => {
        const result = parse("b f=1 1\na f=2 2\nb f=3 3\nc f=4 4\na f=5 5\n");
        expect(result.batches.map((b) => [b.measurement, b.rows])).toEqual([
            ["b", 2],
            ["a", 2],
            ["c", 1],
        ]);
        expect(values(batch(result, "a"), "time")).toEqual([2n, 5n]);
        expect(values(batch(result, "b"), "f")).toEqual([1, 3]);
        expect(result.accepted).toBe(5);
    });

    it("orders columns time, tags, fields, each by first use; lists the tags", () => {
        const result = parse("m,host=a f=1,g=2i 1\nm,region=x,host=b h=true,f=3 2\n");
        const b = batch(result, "m");
        expect([...b.columns.keys()]).toEqual(["time", "host", "region", "f", "g", "h"]);
        expect(b.tags).toEqual(["host", "region"]);
    });

    it("uses the right typed array for each type", () => {
        const b = batch(parse('m,t=x f=1.5,i=-2i,u=3u,b=true,s="x" 1'), "m");
        const time = column(b, "time");
        expect(time.type === "t" && time.values).toBeInstanceOf(BigInt64Array);
        const f = column(b, "f");
        expect(f.type === "f" && f.values).toBeInstanceOf(Float64Array);
        const i = column(b, "i");
        expect(i.type === "i" && i.values).toBeInstanceOf(BigInt64Array);
        const u = column(b, "u");
        expect(u.type === "u" && u.values).toBeInstanceOf(BigUint64Array);
        const bool = column(b, "b");
        expect(bool.type === "b" && bool.values).toBeInstanceOf(Uint8Array);
        for (const name of ["t", "s"]) {
            const s = column(b, name) as StringColumn;
            expect(s.type).toBe("s");
            expect(s.codes).toBeInstanceOf(Uint32Array);
        }
    });

    it("omits validity where a column has no nulls, and writes nulls as 0 with a 0 validity bit", () => {
        // f present in every row; g only in rows 1 and 3; tag t only in rows 0 and 3; b only in row 2; s in rows 0 and 2.
        const text = ['m,t=a f=1,s="x" 1', "m f=2,g=20i 2", 'm f=3,b=true,s="y" 3', "m,t=b f=4,g=40i 4"].join("\n");
        const b = batch(parse(text), "m");
        const f = column(b, "f");
        expect(f.type !== "t" && f.valid).toBeUndefined();
        const g = column(b, "g");
        if (g.type !== "i") throw new Error("g is not an integer column");
        expect([...g.values]).toEqual([0n, 20n, 0n, 40n]);
        expect(g.valid !== undefined && [0, 1, 2, 3].map((i) => bitIsSet(g.valid!, i))).toEqual([false, true, false, true]);
        expect(values(b, "t")).toEqual(["a", null, null, "b"]);
        const t = column(b, "t") as StringColumn;
        expect([...t.codes]).toEqual([0, 0, 0, 1]);
        const bool = column(b, "b");
        if (bool.type !== "b") throw new Error("b is not a boolean column");
        expect(bool.values[0]).toBe(0b0100);
        expect(bool.valid?.[0]).toBe(0b0100);
        expect(values(b, "s")).toEqual(["x", null, "y", null]);
    });

    it("keeps validity right across array growth and many rows", () => {
        const lines: string[] = [];
        for (let i = 0; i < 5000; i++) lines.push(i % 7 === 3 ? `m f=${i} ${i}` : `m f=${i},g=${i}i ${i}`);
        const b = batch(parse(lines.join("\n")), "m");
        expect(b.rows).toBe(5000);
        const g = values(b, "g");
        for (let i = 0; i < 5000; i++) expect(g[i]).toBe(i % 7 === 3 ? null : BigInt(i));
        expect(values(b, "f")).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    });

    it("reuses dictionary entries for repeated tag values and string values", () => {
        const text = ['m,host=a s="x" 1', 'm,host=b s="y" 2', 'm,host=a s="x" 3', 'm,host=a s="y" 4'].join("\n");
        const b = batch(parse(text), "m");
        const host = column(b, "host") as StringColumn;
        expect(host.dict).toEqual(["a", "b"]);
        expect([...host.codes]).toEqual([0, 1, 0, 0]);
        const s = column(b, "s") as StringColumn;
        expect(s.dict).toEqual(["x", "y"]);
        expect([...s.codes]).toEqual([0, 1, 0, 1]);
    });

    it("gives a series written with different tag orders the same tag columns", () => {
        const b = batch(parse("m,a=1,b=2 f=1 1\nm,b=2,a=1 f=2 2"), "m");
        expect(values(b, "a")).toEqual(["1", "1"]);
        expect(values(b, "b")).toEqual(["2", "2"]);
        expect((column(b, "a") as StringColumn).dict).toEqual(["1"]);
    });
});

describe("parseLineProtocol: rejected lines leave nothing behind", () => {
    it("drops columns only rejected lines wrote to, and tag columns of rejected lines", () => {
        const result = parse("m,bad=x f=1,g=oops 1\nm f=2 2");
        const b = batch(result, "m");
        expect([...b.columns.keys()]).toEqual(["time", "f"]);
        expect(b.tags).toEqual([]);
        expect(result.errors).toHaveLength(1);
    });

    it("takes back a rejected line's values and bits", () => {
        const result = parse("m f=1,b=true 1\nm f=2,b=true,x=bad 2\nm f=3 3");
        const b = batch(result, "m");
        expect(values(b, "f")).toEqual([1, 3]);
        expect(values(b, "b")).toEqual([true, null]);
        const bool = column(b, "b");
        if (bool.type !== "b") throw new Error("b is not a boolean column");
        expect(bool.values[0]).toBe(0b01); // the rejected line's bit at row 1 is cleared
    });

    it("does not declare anything for a rejected line", () => {
        const schema = new SchemaRegistry();
        const declared: string[] = [];
        schema.onDeclare = (_db, m, c, kind) => declared.push(`${m}.${c}:${kind}`);
        parse("m,t=a f=1i,g=bad 1\nn,u=b h=1 2", schema);
        expect(declared).toEqual(["n.u:tag", "n.h:f"]);
        expect(schema.fieldType("db", "m", "f")).toBeUndefined();
        expect(schema.isTag("db", "m", "t")).toBe(false);
    });

    it("lets a type first seen in a rejected line be taken by a later accepted line", () => {
        const result = parse("m f=1i,x=bad 1\nm f=true 2");
        expect(values(batch(result, "m"), "f")).toEqual([true]);
    });

    it("clears the staged bit of a boolean column when the last line is rejected", () => {
        const result = parse("m b=false 1\nm b=true,x=bad 2");
        const bool = column(batch(result, "m"), "b");
        if (bool.type !== "b") throw new Error("b is not a boolean column");
        expect(bool.values[0]).toBe(0);
    });
});

describe("parseLineProtocol: line numbers", () => {
    it("counts the physical lines of multi-line strings, LF and CRLF", () => {
        const text = ['m s="a', "b", 'c" 1', "m f=x 2", 'm s="d\r\ne" 3\r\nm f=y 4\r\n', "m f=z 5"].join("\n");
        const result = parse(text);
        expect(result.errors.map((e) => e.line)).toEqual([4, 7, 9]); // line 8 is blank
        expect(values(batch(result, "m"), "s")).toEqual(["a\nb\nc", "d\r\ne"]);
    });

    it("reports a rejected multi-line entry at its first line and goes on after its last", () => {
        const result = parse('m,t=a=b s="1\n2\n3" 1\nm f=oops 2\nm f=1 3');
        expect(result.errors.map((e) => [e.line, e.text])).toEqual([
            [1, 'm,t=a=b s="1\n2\n3" 1'],
            [4, "m f=oops 2"],
        ]);
        expect(result.accepted).toBe(1);
    });

    it("reports an escaped newline inside a string as part of the string", () => {
        const result = parse('m s="a\\\nb" 1\nm f=bad 2');
        expect(values(batch(result, "m"), "s")).toEqual(["a\\\nb"]);
        expect(result.errors.map((e) => e.line)).toEqual([3]);
    });
});

describe("parseLineProtocol: limits and error texts", () => {
    it("accepts a string of exactly 1 MiB and rejects one byte more", () => {
        const max = LP_LIMITS.maxStringBytes;
        const ok = parse(`m s="${"x".repeat(max)}" 1`);
        expect(ok.errors).toEqual([]);
        const tooLong = parse(`m s="${"x".repeat(max + 1)}" 1\nm f=1 2`);
        expect(tooLong.errors).toEqual([{ line: 1, message: `string value of field "s" is ${max + 1} bytes, the limit is ${max}`, text: expect.any(String) }]);
        expect(tooLong.accepted).toBe(1);
    });

    it("measures the string limit on unescaped bytes", () => {
        const max = LP_LIMITS.maxStringBytes;
        const result = parse(`m s="${'\\"'.repeat(max / 2)}${"x".repeat(max / 2)}" 1`);
        expect(result.errors).toEqual([]);
    });

    it("accepts a series key of 65,535 bytes and rejects 65,536", () => {
        const key = (bytes: number) => `m,t=${"v".repeat(bytes - 4)}`;
        expect(parse(`${key(65_535)} f=1 1`).errors).toEqual([]);
        const result = parse(`${key(65_536)} f=1 1`);
        expect(result.errors[0]?.message).toBe("series key (measurement and tags) is 65536 bytes, the limit is 65535");
    });

    it("gives the rejected entry's text without its line ending, cut at 1 KiB on a character boundary", () => {
        expect(parse("m f=bad 1\r\n").errors[0]?.text).toBe("m f=bad 1");
        const long = `m f=bad,s="${"é".repeat(2000)}" 1`;
        const text = parse(long).errors[0]!.text;
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024);
        expect(long.startsWith(text)).toBe(true);
        expect(text).not.toContain("\uFFFD");
    });

    it("quotes bad values in messages, escaped and cut", () => {
        const result = parse(`m f=1x${"y".repeat(100)} 1`);
        expect(result.errors[0]?.message).toMatch(/^invalid number "1xy+…" for field "f"$/);
        expect(parse("m,t=a\u0001 f=1").errors[0]?.message).toBe("tag \"t\": invalid character 0x01 in tag value");
    });
});

describe("parseLineProtocol: schema interplay", () => {
    it("declares new tags and fields as their line is accepted, tags first", () => {
        const schema = new SchemaRegistry();
        const declared: string[] = [];
        schema.onDeclare = (db, m, c, kind) => declared.push(`${db}/${m}.${c}:${kind}`);
        parse("m,t=a f=1,i=2i 1\nm,t=b,u=c f=2,s=\"x\" 2\nm f=3 3", schema);
        expect(declared).toEqual(["db/m.t:tag", "db/m.f:f", "db/m.i:i", "db/m.u:tag", "db/m.s:s"]);
    });

    it("takes field types from the registry for a new body", () => {
        const schema = new SchemaRegistry();
        schema.declareField("db", "m", "f", "i");
        const result = parse("m f=1 1\nm f=2i 2", schema);
        expect(result.errors.map((e) => e.message)).toEqual(['field type conflict: field "f" of measurement "m" is integer, line has float']);
        expect(values(batch(result, "m"), "f")).toEqual([2n]);
    });

    it("keeps databases apart", () => {
        const schema = new SchemaRegistry();
        parseLineProtocol(Buffer.from("m f=1 1"), { database: "a", precision: "ns", nowNs: NOW_NS, schema });
        const other = parseLineProtocol(Buffer.from("m f=1i 1"), { database: "b", precision: "ns", nowNs: NOW_NS, schema });
        expect(other.errors).toEqual([]);
        expect(schema.fieldType("a", "m", "f")).toBe("f");
        expect(schema.fieldType("b", "m", "f")).toBe("i");
    });

    it("names the stored column in a conflict on a renamed field", () => {
        const schema = new SchemaRegistry();
        parse("m,t=a t=1 1", schema);
        expect(schema.fieldType("db", "m", "t_field")).toBe("f");
        const result = parse("m t=1i 2", schema);
        expect(result.errors[0]?.message).toBe('field type conflict: field "t" (stored as "t_field") of measurement "m" is float, line has integer');
    });

    it("checks every occurrence of a duplicate field against a fixed type (last wins otherwise)", () => {
        const schema = new SchemaRegistry();
        parse("m f=1 1", schema);
        expect(parse('m f="x",f=2 2', schema).errors[0]?.message).toContain("field type conflict");
        expect(values(batch(parse("m f=3,f=4 3", schema), "m"), "f")).toEqual([4]);
    });
});

describe("parseLineProtocol: options", () => {
    it("throws a RangeError for a server clock outside int64 (a caller bug, not bad input)", () => {
        expect(() => parseLineProtocol(Buffer.from("m f=1"), { database: "db", precision: "ns", nowNs: 2n ** 63n, schema: new SchemaRegistry() })).toThrow(RangeError);
    });

    it("works on a Buffer that is a slice of a larger allocation", () => {
        const whole = Buffer.from("xxxxm,t=a f=1 1\nm,t=a f=2 2yyyy");
        const result = parse(whole.subarray(4, whole.length - 4));
        expect(values(batch(result, "m"), "f")).toEqual([1, 2]);
    });
});

/**
 * Unit tests for what the corpus cannot express: the batches' shape (one per measurement, column
 * order, typed arrays, validity bitmaps, dictionaries), physical line numbers around multi-line
 * strings, limits, error texts, and what a rejected line leaves behind (nothing).
 */
import { describe, expect, it } from "vitest";
import { type Column, type ColumnarBatch, type StringColumn, assertBatchShape, bitIsSet, valueAt } from "../src/columnar/batch.js";
import { LP_LIMITS, MAX_LISTED_LINE_ERRORS, type ParseResult, type Precision, parseLineProtocol } from "../ingest/lp/index.js";
import { SchemaRegistry } from "../ingest/schema.js";
import { hashBytes } from "../ingest/lp/bytes.js";
import { Series } from "../ingest/lp/measurement.js";
import { SERIES_KEY_CACHE_DEFAULTS, SeriesKeyCache, sharedSeriesKeys } from "../ingest/lp/series-cache.js";

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

    it("stops deduplicating a string column whose values are mostly distinct, values unchanged", () => {
        const lines: string[] = [];
        for (let i = 0; i < 3000; i++) lines.push(`m id="id-${i}",status="${i % 3 === 0 ? "ok" : "fail"}" ${i}`);
        for (let i = 0; i < 10; i++) lines.push(`m id="same",status="ok" ${3000 + i}`);
        const b = batch(parse(lines.join("\n")), "m");
        const id = column(b, "id") as StringColumn;
        const status = column(b, "status") as StringColumn;
        expect(status.dict).toEqual(["ok", "fail"]);
        expect(id.dict.length).toBeGreaterThan(3000); // "same" appended each time once deduplication stopped
        expect(values(b, "id").slice(2998)).toEqual(["id-2998", "id-2999", ...Array.from({ length: 10 }, () => "same")]);
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

    it("declares nothing while parsing; what the write path reserves from its batches is only the accepted lines' columns", () => {
        const schema = new SchemaRegistry();
        const declared: string[] = [];
        schema.onDeclare = (_db, m, c, kind) => declared.push(`${m}.${c}:${kind}`);
        const result = parse("m,t=a f=1i,g=bad 1\nn,u=b h=1 2", schema);
        expect(declared).toEqual([]);
        expect(schema.isTag("db", "n", "u")).toBe(false);
        schema.reserve("db", result.batches).commit();
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

    it("lists the first MAX_LISTED_LINE_ERRORS rejected entries and counts every one", () => {
        const bad = MAX_LISTED_LINE_ERRORS + 500;
        const lines = Array.from({ length: bad }, (_, i) => `m f=bad${i} ${i}`);
        const result = parse([...lines, "m f=1 1"].join("\n"));
        expect(result.rejected).toBe(bad);
        expect(result.errors).toHaveLength(MAX_LISTED_LINE_ERRORS);
        expect(result.errors.at(-1)).toMatchObject({ line: MAX_LISTED_LINE_ERRORS, text: `m f=bad${MAX_LISTED_LINE_ERRORS - 1} ${MAX_LISTED_LINE_ERRORS - 1}` });
        expect(result.accepted).toBe(1);
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
        expect(parse("m,t=a\u0001 f=1").errors[0]?.message).toBe('tag "t": invalid character 0x01 in tag value');
    });
});

/** What the write path does once a request is durable: its batches' columns become declarations. */
function accepted(result: ParseResult, schema: SchemaRegistry, database = "db"): ParseResult {
    schema.reserve(database, result.batches).commit();
    return result;
}

describe("parseLineProtocol: schema interplay", () => {
    it("sees what earlier lines of the same body declared, and the write path declares it all, tags first", () => {
        const schema = new SchemaRegistry();
        const declared: string[] = [];
        schema.onDeclare = (db, m, c, kind) => declared.push(`${db}/${m}.${c}:${kind}`);
        const result = parse('m,t=a f=1,i=2i 1\nm,t=b,u=c f=2,s="x" 2\nm f=3 3\nm t=4 4\nm i=5.5 5', schema);
        expect(result.errors.map((error) => error.message)).toEqual(['field type conflict: field "i" of measurement "m" is integer, line has float']);
        expect([...batch(result, "m").columns.keys()]).toContain("t_field");
        accepted(result, schema);
        expect(declared).toEqual(["db/m.t:tag", "db/m.u:tag", "db/m.f:f", "db/m.i:i", "db/m.s:s", "db/m.t_field:f"]);
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
        accepted(parseLineProtocol(Buffer.from("m f=1 1"), { database: "a", precision: "ns", nowNs: NOW_NS, schema }), schema, "a");
        const other = accepted(parseLineProtocol(Buffer.from("m f=1i 1"), { database: "b", precision: "ns", nowNs: NOW_NS, schema }), schema, "b");
        expect(other.errors).toEqual([]);
        expect(schema.fieldType("a", "m", "f")).toBe("f");
        expect(schema.fieldType("b", "m", "f")).toBe("i");
    });

    it("names the stored column in a conflict on a renamed field", () => {
        const schema = new SchemaRegistry();
        accepted(parse("m,t=a t=1 1", schema), schema);
        expect(schema.fieldType("db", "m", "t_field")).toBe("f");
        const result = parse("m t=1i 2", schema);
        expect(result.errors[0]?.message).toBe('field type conflict: field "t" (stored as "t_field") of measurement "m" is float, line has integer');
    });

    it("checks every occurrence of a duplicate field against a fixed type (last wins otherwise)", () => {
        const schema = new SchemaRegistry();
        accepted(parse("m f=1 1", schema), schema);
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

describe("SeriesKeyCache (decoded series keys shared across bodies)", () => {
    it("decodes a key once for many bodies, and never changes what a body parses to", () => {
        sharedSeriesKeys.clear();
        const first = parse("m\\ x,k\\,1=v\\=1 f=1 1");
        expect(sharedSeriesKeys.size).toBe(1);
        const second = parse("m\\ x,k\\,1=v\\=1 f=2 2\nm\\ x,k\\,1=v\\=2 f=3 3");
        expect(sharedSeriesKeys.size).toBe(2);
        expect(values(batch(first, "m x"), "k,1")).toEqual(["v=1"]);
        expect(values(batch(second, "m x"), "k,1")).toEqual(["v=1", "v=2"]);
    });

    it("binds a shared key to each body anew, also when the cache empties itself in the middle of a body", () => {
        sharedSeriesKeys.clear();
        // Body 1 binds s=0 to its builder; body 2 meets the same key object first in a rejected
        // line, then in accepted ones; past 100,000 keys the cache empties and s=0 is decoded again.
        parse("m,s=0 f=1i 1");
        const n = SERIES_KEY_CACHE_DEFAULTS.maxEntries + 50;
        const lines = ["m,s=0 f=oops 1", "m,s=0 f=2i 2"];
        for (let i = 1; i <= n; i++) lines.push(`m,s=${i} f=${i}i ${i + 2}`);
        lines.push("m,s=0 f=3i 3", "other,s=0 f=4i 4");
        const result = parse(lines.join("\n"));
        expect(result.errors.map((e) => e.line)).toEqual([1]);
        const m = batch(result, "m");
        const tags = values(m, "s");
        expect(tags).toHaveLength(n + 2);
        expect(tags[0]).toBe("0");
        expect(tags.slice(1, -1)).toEqual(Array.from({ length: n }, (_, i) => String(i + 1)));
        expect(tags.at(-1)).toBe("0");
        expect(values(m, "f")).toEqual([2n, ...Array.from({ length: n }, (_, i) => BigInt(i + 1)), 3n]);
        expect(values(batch(result, "other"), "s")).toEqual(["0"]);
        expect(sharedSeriesKeys.size).toBeLessThan(n);
    });

    it("serves a cached key to a body that is not valid UTF-8 elsewhere", () => {
        sharedSeriesKeys.clear();
        parse("mé,t=ü f=1 1");
        const result = parse(Buffer.concat([Buffer.from("mé,t=ü f=2 2\n"), Buffer.from([0x6d, 0xff, 0x20, 0x66, 0x3d, 0x33])]));
        expect(values(batch(result, "mé"), "t")).toEqual(["ü"]);
        expect(result.errors.map((e) => e.message)).toEqual(["measurement is not valid UTF-8"]);
    });

    it("keeps no finished body's builder alive through the shared keys (accepted or rejected lines)", () => {
        sharedSeriesKeys.clear();
        const schema = new SchemaRegistry();
        parse("b,h=1 f=0 0", schema); // b,h=1 cached by an earlier body
        parse("a,h=1 f=1i 1\nb,h=1 f=oops 2", schema);
        for (const key of ["a,h=1", "b,h=1"]) {
            const bytes = Buffer.from(key);
            const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
            const series = sharedSeriesKeys.get(view, bytes, hashBytes(view, bytes, 0, bytes.length), 0, bytes.length);
            expect(series).toBeInstanceOf(Series);
            // Bound to no parse: the body's builders (and their arrays) are garbage once it returned.
            expect(series?.parse).toBe(0);
            expect(series?.builderIn(series.parse)).toBeUndefined();
            expect(series?.id).toBe(-1);
        }
        // A later body binds the same keys anew and parses them as before.
        expect(values(batch(parse("a,h=1 f=2i 3", schema), "a"), "f")).toEqual([2n]);
    });

    it("caches the key of an accepted line only: a key whose lines were all rejected decodes again next time", () => {
        sharedSeriesKeys.clear();
        parse("a,h=1 f=oops 1\nb,h=1 f=1 2\na,h=1 f=oops2 3");
        expect(sharedSeriesKeys.size).toBe(1);
        const bytes = Buffer.from("a,h=1");
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        expect(sharedSeriesKeys.get(view, bytes, hashBytes(view, bytes, 0, bytes.length), 0, bytes.length)).toBeUndefined();
        expect(values(batch(parse("a,h=1 f=2 3"), "a"), "f")).toEqual([2]);
    });

    it("does not cache keys that failed to decode", () => {
        sharedSeriesKeys.clear();
        parse(Buffer.concat([Buffer.from("m,t=a,t=b f=1 1\nm,time=x f=1 1\nm,t="), Buffer.from([0xff]), Buffer.from(" f=1")]));
        expect(sharedSeriesKeys.size).toBe(0);
    });

    it("empties itself when full, by entries or by bytes", () => {
        const view = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.length);
        const cache = new SeriesKeyCache({ maxEntries: 2, maxBytes: 10 });
        const key = (text: string) => Buffer.from(text);
        const decoded = new Series("m", [], []);
        for (const text of ["aaaa", "bbbb"]) {
            const b = key(text);
            cache.set(b, hashBytes(view(b), b, 0, b.length), 0, b.length, decoded);
        }
        expect(cache.size).toBe(2);
        const c = key("cccc");
        cache.set(c, hashBytes(view(c), c, 0, c.length), 0, c.length, decoded);
        expect(cache.size).toBe(1);
        expect(cache.get(view(c), c, hashBytes(view(c), c, 0, 4), 0, 4)).toBe(decoded);
        const a = key("aaaa");
        expect(cache.get(view(a), a, hashBytes(view(a), a, 0, 4), 0, 4)).toBeUndefined();
        const long = key("0123456789");
        cache.set(long, hashBytes(view(long), long, 0, 10), 0, 10, decoded);
        expect(cache.size).toBe(1);
    });
});

describe("parseLineProtocol: no quadratic blow-up on hostile bodies", () => {
    const cases: [string, () => Buffer][] = [
        ["lines without spaces, one space at the end", () => Buffer.from(`${"abcdefgh\n".repeat(200_000)} `)],
        ["long lines without spaces", () => Buffer.from(`${"x".repeat(60_000)}\n`.repeat(30) + " f=1")],
        ["an unterminated string", () => Buffer.from(`m s="${"a\\\\".repeat(500_000)}`)],
        ["many strings with escapes", () => Buffer.from('m s="a\\"b\\\\c"\n'.repeat(100_000))],
        ["lines of backslashes", () => Buffer.from("\\\\\\\\\\\\\\\\\n".repeat(200_000))],
        ["lines of quotes", () => Buffer.from('m f="\n'.repeat(200_000))],
        ["comment lines", () => Buffer.from('# comment with a quote " and a \\\n'.repeat(100_000))],
        ["many distinct series", () => Buffer.from(Array.from({ length: 100_000 }, (_, i) => `m,t=${i} f=1 ${i}\n`).join(""))],
        ["many distinct field keys", () => Buffer.from(Array.from({ length: 20_000 }, (_, i) => `m f${i}=1 ${i}\n`).join(""))],
        [
            "lines with thousands of tags",
            () => Buffer.from(Array.from({ length: 40 }, (_, l) => `m${Array.from({ length: 12_000 }, (_, i) => `,t${i}=${l}`).join("")} f=1\n`).join("")),
        ],
        [
            "lines with thousands of fields",
            () => Buffer.from(Array.from({ length: 40 }, (_, l) => `m ${Array.from({ length: 8_000 }, (_, i) => `f${l}_${i}=1`).join(",")}\n`).join("")),
        ],
        ["lines with thousands of duplicate fields", () => Buffer.from(Array.from({ length: 40 }, () => `m ${"f=1,".repeat(15_000)}f=2\n`).join(""))],
    ];
    it.each(cases)(
        "%s",
        (_name, make) => {
            const body = make();
            const started = performance.now();
            const result = parse(body);
            const elapsed = performance.now() - started;
            expect(result.accepted + result.rejected).toBeLessThanOrEqual(body.length);
            // Linear work takes well under a second here; a quadratic path would take minutes.
            expect(elapsed).toBeLessThan(10_000 + body.length / 100);
        },
        120_000,
    );
});

describe("parseLineProtocol: column and memory limits", () => {
    const max = 50;
    const limited = (maxMeasurements = 100) => new SchemaRegistry({ maxMeasurementsPerDatabase: 3, maxMeasurements, maxColumnsPerMeasurement: max });

    it("rejects a line that would take a measurement past the column limit, and keeps the rest", () => {
        const schema = limited();
        const lines = Array.from({ length: max + 5 }, (_, i) => `m f${i}=1 ${i}`);
        lines.push("m f0=2 9999");
        const result = parse(lines.join("\n"), schema);
        expect(result.accepted).toBe(max + 1);
        expect(result.errors).toHaveLength(5);
        expect(result.errors[0]).toMatchObject({
            line: max + 1,
            message: `measurement "m" would have ${max + 1} tag and field columns, more than the ${max} allowed (ingest.max_columns_per_measurement)`,
        });
        accepted(result, schema);
        expect(schema.columnCount("db", "m")).toBe(max);
        expect(batch(result, "m").columns.size).toBe(max + 1);
    });

    it("counts new tags against the column limit too", () => {
        const schema = limited();
        for (let i = 0; i < max - 1; i++) schema.declareField("db", "m", `f${i}`, "f");
        expect(accepted(parse("m,a=1 f0=1 1", schema), schema).errors).toEqual([]);
        expect(parse("m,b=1,c=2 f0=1 2", schema).errors[0]?.message).toContain("(ingest.max_columns_per_measurement)");
    });

    it("checks the measurement limit again for a measurement whose earlier lines in the body were all rejected", () => {
        // Limit 3, a and z known: b's first line fails on its value while there is room; c then
        // takes the last place, so b's later lines are past the limit though b met the body first.
        const schema = limited();
        accepted(parse("a f=1 1\nz f=1 1", schema), schema);
        const result = parse("b f=oops 1\nc f=1 2\nb f=2 3\nc,h=x f=3 4\nd f=1 5\na,h=y f=4 6", schema);
        expect(result.errors.map((error) => [error.line, error.message.replace(/ \(.*/, "")])).toEqual([
            [1, expect.stringContaining("oops")],
            [3, 'measurement "b" would be one more than the 3 measurements database "db" may have'],
            [5, 'measurement "d" would be one more than the 3 measurements database "db" may have'],
        ]);
        expect(result.batches.map((b) => [b.measurement, b.rows])).toEqual([
            ["c", 2],
            ["a", 1],
        ]);
        accepted(result, schema);
        expect(schema.measurementCount("db")).toBe(3);
    });

    it("rejects the lines of a measurement beyond the database's measurement limit, naming it, and keeps the rest", () => {
        const schema = limited();
        accepted(parse("a f=1 1\nb f=1 1", schema), schema);
        const result = parse("c f=1 1\nd f=1 2\na f=2 3\nd f=3 4\nc f=4 5", schema);
        expect(result.errors.map((error) => [error.line, error.message])).toEqual([
            [2, 'measurement "d" would be one more than the 3 measurements database "db" may have (ingest.max_measurements_per_database)'],
            [4, 'measurement "d" would be one more than the 3 measurements database "db" may have (ingest.max_measurements_per_database)'],
        ]);
        expect(result.batches.map((b) => [b.measurement, b.rows])).toEqual([
            ["c", 2],
            ["a", 1],
        ]);
        accepted(result, schema);
        expect(parse("d f=1 1", schema).errors).toHaveLength(1);
        // Another database has its own count.
        expect(parseLineProtocol(Buffer.from("d f=1 1"), { database: "other", precision: "ns", nowNs: NOW_NS, schema }).errors).toEqual([]);
    });

    it("rejects the lines of a measurement beyond the measurements of all databases together (ingest.max_measurements), naming it", () => {
        const schema = limited(4);
        const at = (database: string, body: string) => parseLineProtocol(Buffer.from(body), { database, precision: "ns", nowNs: NOW_NS, schema });
        accepted(at("one", "a f=1 1\nb f=1 1\nc f=1 1"), schema, "one");
        const result = at("two", "a f=1 1\nb f=1 2\na f=2 3");
        expect(result.errors.map((error) => [error.line, error.message])).toEqual([
            [2, 'measurement "b" of database "two" would be one more than the 4 measurements all databases together may have (ingest.max_measurements)'],
        ]);
        accepted(result, schema, "two");
        expect(schema.totalMeasurementCount()).toBe(4);
        // Known measurements still take lines; the per-database limit is named first when both are reached.
        expect(at("one", "a f=2 2\nc f=2 2").errors).toEqual([]);
        expect(at("one", "z f=1 1").errors[0]?.message).toContain("(ingest.max_measurements_per_database)");
        expect(() => schema.reserve("three", parse("x f=1 1").batches)).toThrow(/the 4 measurements all databases together may have \(ingest\.max_measurements\)/);
    });

    it("refuses a measurement past the limit before reading its tags: the limit is the reason, nothing of the key is kept", () => {
        const schema = limited();
        accepted(parse("a f=1 1\nb f=1 1\nc f=1 1", schema), schema);
        sharedSeriesKeys.clear();
        const result = parse("d,t=x,t=y f=1 1\nd,h=1 f=1 2", schema);
        expect(result.errors.map((error) => [error.line, error.message.replace(/ \(.*/, "")])).toEqual([
            [1, 'measurement "d" would be one more than the 3 measurements database "db" may have'],
            [2, 'measurement "d" would be one more than the 3 measurements database "db" may have'],
        ]);
        expect(sharedSeriesKeys.size).toBe(0);
    });

    it("counts a body's new measurements once each, beside the registry's, however many lines exceed the limit", () => {
        const schema = limited();
        accepted(parse("a f=1 1", schema), schema);
        const lines = ["b f=1 1", "a f=1 2", ...Array.from({ length: 20_000 }, (_, i) => `n${i} f=1 ${i}`), "b f=2 3", "c f=1 4"];
        const result = parse(lines.join("\n"), schema);
        expect(result.batches.map((b) => [b.measurement, b.rows])).toEqual([
            ["b", 2],
            ["a", 1],
            ["n0", 1],
        ]);
        expect(result.rejected).toBe(20_000);
        expect(result.errors).toHaveLength(MAX_LISTED_LINE_ERRORS);
        expect(result.errors[0]).toMatchObject({ line: 4, message: expect.stringContaining('measurement "n1" would be one more than the 3') });
    });

    it("stops accepting lines once sparse wide rows would make the batches too large", () => {
        // Every column spans every row: a new column late in a long batch costs rows × width.
        const dense = Array.from({ length: 200_000 }, (_, i) => `m a=1 ${i}`).join("\n");
        const wide = Array.from({ length: 900 }, (_, i) => `m c${i}=1 ${i}`).join("\n");
        const body = `${dense}\n${wide}`;
        const result = parse(body);
        const budgetErrors = result.errors.filter((e) => e.message.includes("every column spans every row"));
        expect(budgetErrors.length).toBeGreaterThan(0);
        expect(result.accepted + result.rejected).toBe(200_900);
    });
});

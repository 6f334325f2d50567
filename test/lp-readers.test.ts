/**
 * Unit tests for the decoder's readers on their own (the whole decoder is tested through
 * parseLineProtocol in lp-parse, lp-corpus and lp-property): the body's cached searches, string
 * values, timestamps, the batch budget's arithmetic and error recovery's line count.
 */
import { describe, expect, it } from "vitest";
import { BatchBudget } from "../ingest/lp/batch-budget.js";
import { bodyOf } from "../ingest/lp/bytes.js";
import { KeyArena } from "../ingest/lp/byte-table.js";
import { LP_LIMITS } from "../ingest/lp/limits.js";
import { MeasurementBuilder } from "../ingest/lp/measurement.js";
import { Scanned, wordsToBigInt } from "../ingest/lp/numbers.js";
import { Rejection, entryEnd, lineFeedsIn } from "../ingest/lp/rejection.js";
import { BodySearches } from "../ingest/lp/searches.js";
import { StringValueReader } from "../ingest/lp/strings.js";
import { TimestampReader } from "../ingest/lp/timestamps.js";

function strings(text: string): { reader: StringValueReader; rejection: Rejection; bytes: Buffer } {
    const bytes = Buffer.from(text, "utf8");
    const rejection = new Rejection();
    return { reader: new StringValueReader(bodyOf(bytes), new BodySearches(bytes), rejection), rejection, bytes };
}

describe("BodySearches", () => {
    it("finds the first space not after a backslash, from positions that only grow", () => {
        const bytes = Buffer.from("a\\ b c\\ \\ d e");
        const searches = new BodySearches(bytes);
        expect(searches.unescapedSpaceAfter(0)).toBe(4);
        expect(searches.unescapedSpaceAfter(4)).toBe(4);
        expect(searches.unescapedSpaceAfter(5)).toBe(11);
        expect(searches.unescapedSpaceAfter(12)).toBe(bytes.length);
    });

    it("answers each byte search from its kept result until asked past it", () => {
        const bytes = Buffer.from('x"y\nz"\n');
        const searches = new BodySearches(bytes);
        expect(searches.quote.after(0)).toBe(1);
        expect(searches.quote.after(1)).toBe(1);
        expect(searches.quote.after(2)).toBe(5);
        expect(searches.lineFeed.after(0)).toBe(3);
        expect(searches.lineFeed.after(4)).toBe(6);
        expect(searches.lineFeed.after(7)).toBe(bytes.length);
        expect(searches.backslash.after(0)).toBe(bytes.length);
    });
});

describe("StringValueReader", () => {
    it('collapses \\" and \\\\, keeps other backslashes, and counts the LFs inside', () => {
        const { reader, bytes } = strings('f="a\\"b\\\\c\\nd\ne\n",g=1');
        expect(reader.read("f", 2)).toBe('a"b\\c\\nd\ne\n');
        expect(reader.newlines).toBe(2);
        expect(reader.end).toBe(bytes.indexOf(",g"));
    });

    it("reads the values of one body one after another with the searches it shares", () => {
        const { reader } = strings('x="one" y="two\\\\"\n');
        expect(reader.read("x", 2)).toBe("one");
        expect(reader.end).toBe(7);
        expect(reader.read("y", 10)).toBe("two\\");
        expect(reader.newlines).toBe(0);
    });

    it("records why a value is refused", () => {
        let s = strings('f="open');
        expect(s.reader.read("f", 2)).toBeNull();
        expect(s.rejection.reason).toBe('unterminated string value for field "f" (it runs to the end of the body)');
        s = strings('f="v"x 1');
        expect(s.reader.read("f", 2)).toBeNull();
        expect(s.rejection.reason).toBe('unexpected text after the string value of field "f": "x"');
        s = strings(`f="${"x".repeat(LP_LIMITS.maxStringBytes + 1)}"`);
        expect(s.reader.read("f", 2)).toBeNull();
        expect(s.rejection.reason).toBe(`string value of field "f" is ${LP_LIMITS.maxStringBytes + 1} bytes, the limit is ${LP_LIMITS.maxStringBytes}`);
    });
});

describe("TimestampReader", () => {
    function reader(text: string, precision: "ns" | "m"): { read: TimestampReader; out: Scanned; rejection: Rejection } {
        const out = new Scanned();
        const rejection = new Rejection();
        return { read: new TimestampReader(bodyOf(Buffer.from(text)), precision, 1_700_000_000_123_456_789n, rejection, out), out, rejection };
    }

    it("scales minutes to ns and truncates the server clock to the precision", () => {
        const { read, out } = reader("-3 ", "m");
        expect(wordsToBigInt(read.defaultLo, read.defaultHi)).toBe(1_699_999_980_000_000_000n);
        expect(read.read(0)).toBe(true);
        expect(wordsToBigInt(out.lo, out.hi)).toBe(-180_000_000_000n);
        expect(out.end).toBe(2);
    });

    it("refuses a time past int64 in ns, and text that is no timestamp", () => {
        let r = reader("153722867280913", "m"); // × 6e10 > 2^63
        expect(r.read.read(0)).toBe(false);
        expect(r.rejection.reason).toBe('timestamp "153722867280913" (precision m) is out of range: in nanoseconds it must fit in a signed 64-bit integer');
        r = reader("12x", "ns");
        expect(r.read.read(0)).toBe(false);
        expect(r.rejection.reason).toBe('invalid timestamp "12x": expected an optional "-" and decimal digits');
    });

    it("throws a RangeError for a server clock outside int64", () => {
        expect(() => new TimestampReader(bodyOf(Buffer.from("")), "ns", 2n ** 63n, new Rejection(), new Scanned())).toThrow(RangeError);
    });
});

describe("BatchBudget", () => {
    it("counts rows × row bytes per builder and refuses what would pass the limit", () => {
        const budget = new BatchBudget(0);
        const limit = LP_LIMITS.batchBytesBase;
        const builder = new MeasurementBuilder("m", new KeyArena());
        // The first row adds an 8-byte column: 12 (time, series id) + 8 bytes.
        expect(budget.fits(builder, 8)).toBe(true);
        budget.add(builder, 8);
        builder.rows = 1;
        expect(builder.rowBytes).toBe(20);
        // A new column on row 2 spans both rows: 20 + 2 × width must fit in what is left.
        const left = limit - 20;
        expect(budget.fits(builder, (left - 20) / 2)).toBe(true);
        expect(budget.fits(builder, (left - 20) / 2 + 1)).toBe(false);
        expect(budget.reason()).toBe(
            `the batches would take more than ${limit} bytes for a 0-byte body (every column spans every row): send sparse, wide data in smaller requests`,
        );
    });
});

describe("error recovery", () => {
    it("counts as physical lines only the LFs inside a rejected entry's strings", () => {
        const bytes = Buffer.from('m,t=1 f="a\nb\n\\"c\n",g=x 1\nnext f=1\n');
        const stop = entryEnd(bytes, 0, bytes.length);
        expect(bytes.toString("utf8", stop + 1)).toBe("next f=1\n");
        expect(lineFeedsIn(bytes, 0, stop)).toBe(3);
    });
});

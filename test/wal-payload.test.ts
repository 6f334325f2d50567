import { Packr, Unpackr, unpack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { type Column, type ColumnarBatch, bitmapBytes, setBit, valueAt } from "../src/columnar/batch.js";
import { WalDecodeError } from "../src/wal/errors.js";
import { decodePayload, encodePayload } from "../src/wal/payload.js";
import { cpuBatch } from "./helpers/batches.js";

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

function rowsOf(batch: ColumnarBatch): Record<string, unknown>[] {
    const rows: Record<string, unknown>[] = [];
    for (let i = 0; i < batch.rows; i++) {
        const row: Record<string, unknown> = {};
        for (const [name, column] of batch.columns) row[name] = valueAt(column, i);
        rows.push(row);
    }
    return rows;
}

function roundTrip(database: string, batch: ColumnarBatch) {
    return decodePayload(Buffer.concat(encodePayload(database, batch)));
}

/** Every column type, nulls in each nullable one, 64-bit extremes and unicode names. */
function everyTypeBatch(): ColumnarBatch {
    const rows = 11; // not a multiple of 8, so bitmaps have a partial byte
    const valid = new Uint8Array(bitmapBytes(rows));
    for (const i of [0, 1, 2, 4, 5, 7, 8, 10]) setBit(valid, i);
    const bools = new Uint8Array(bitmapBytes(rows));
    for (const i of [0, 4, 8, 10]) setBit(bools, i);
    const ints = new BigInt64Array(rows);
    ints.set([I64_MIN, I64_MAX, -1n, 0n, 0n, 1n, 0n, 42n, -42n, 0n, 7n]);
    const uints = new BigUint64Array(rows);
    uints.set([0n, U64_MAX, 2n ** 63n, 0n, 0n, 1n, 0n, 2n ** 53n + 1n, 5n, 0n, 9n]);
    const floats = Float64Array.of(0, -0, Number.MAX_VALUE, 0, Number.MIN_VALUE, -1.5, 0, 1e-300, 3.141592653589793, 0, 2 ** 53 + 2);
    const time = BigInt64Array.of(I64_MIN, I64_MAX, -1n, 0n, 1n, 1_700_000_000_123_456_789n, 2n, 3n, 4n, 5n, 6n);
    const columns = new Map<string, Column>([
        ["time", { type: "t", values: time }],
        ["höst 🖥", { type: "s", dict: ["ω", "", 'a,b=c d"e'], codes: Uint32Array.of(0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1) }],
        ["f", { type: "f", values: floats, valid }],
        ["i", { type: "i", values: ints, valid }],
        ["u", { type: "u", values: uints, valid }],
        ["b", { type: "b", values: bools, valid }],
        ["s", { type: "s", dict: ["x", "日本語"], codes: Uint32Array.of(0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0), valid }],
    ]);
    return { measurement: "mësurement ☃", rows, tags: ["höst 🖥"], columns };
}

describe("WAL payload", () => {
    it("round-trips every column type, with nulls, 64-bit extremes and unicode names", () => {
        const batch = everyTypeBatch();
        const decoded = roundTrip("dätabase 🚀", batch);
        expect(decoded.database).toBe("dätabase 🚀");
        expect(decoded.batch.measurement).toBe("mësurement ☃");
        expect(decoded.batch.tags).toEqual(["höst 🖥"]);
        expect([...decoded.batch.columns.keys()]).toEqual([...batch.columns.keys()]);
        expect(rowsOf(decoded.batch)).toEqual(rowsOf(batch));
        const row0 = rowsOf(decoded.batch)[0]!;
        expect(row0).toMatchObject({ time: I64_MIN, i: I64_MIN, u: 0n, f: 0, b: true, s: "x" });
        expect(rowsOf(decoded.batch)[3]).toMatchObject({ f: null, i: null, u: null, b: null, s: null });
        expect(Object.is(valueAt(decoded.batch.columns.get("f")!, 1), -0)).toBe(true);
    });

    it("keeps NaN and infinities bit-exact in float columns", () => {
        const batch = cpuBatch(3);
        const columns = new Map(batch.columns);
        columns.set("usage", { type: "f", values: Float64Array.of(NaN, Infinity, -Infinity) });
        const decoded = roundTrip("db", { ...batch, columns });
        expect([...(decoded.batch.columns.get("usage") as { values: Float64Array }).values]).toEqual([NaN, Infinity, -Infinity]);
    });

    it("decodes into arrays that do not alias the payload", () => {
        const payload = Buffer.concat(encodePayload("db", cpuBatch(4)));
        const decoded = decodePayload(payload);
        payload.fill(0xff);
        expect(rowsOf(decoded.batch)).toEqual(rowsOf(cpuBatch(4)));
    });

    it("is a plain msgpack map that any decoder reads", () => {
        const [envelope, body] = encodePayload("db", cpuBatch(2));
        expect([...envelope]).toEqual([0x01, 0x00, 0x02, 0x64, 0x62]);
        const map = unpack(body) as Record<string, unknown>;
        expect(Object.keys(map)).toEqual(["m", "n", "tags", "types", "columns"]);
        expect(map.m).toBe("cpu");
        expect(map.n).toBe(2);
        expect(map.tags).toEqual(["host", "region"]);
        expect(map.types).toEqual({ time: "t", host: "s", region: "s", usage: "f", count: "i", ok: "b" });
        const columns = map.columns as Record<string, unknown>;
        expect(columns.host).toEqual({ dict: ["h0", "h1", "h2", "h3", "h4"], codes: Buffer.from([0, 0, 0, 0, 1, 0, 0, 0]) });
        expect(Buffer.from(columns.usage as Uint8Array).readDoubleLE(8)).toBe(0.25);
        expect(Buffer.from(columns.time as Uint8Array).readBigInt64LE(0)).toBe(1_700_000_000_000_000_000n);
        expect(columns.ok).toEqual(Buffer.from([0b01]));
    });

    it("writes the valid map only for columns with nulls", () => {
        const batch = everyTypeBatch();
        const map = unpack(encodePayload("db", batch)[1]) as Record<string, Record<string, Uint8Array>>;
        expect(Object.keys(map.valid!)).toEqual(["f", "i", "u", "b", "s"]);
        expect([...map.valid!.f!]).toEqual([0b10110111, 0b101]);
    });

    it("reads Arc's form: {m, columns} of plain arrays, types from the values, time unit guessed", () => {
        const packr = new Packr({ useRecords: false, int64AsType: "bigint" } as never);
        const arc = packr.pack({
            m: "mem",
            columns: {
                time: [1_700_000_000_000, 1_700_000_000_001], // milliseconds
                host: ["a", null],
                used: [1.5, 2],
                total: [8, null],
                big: [2n ** 63n + 1n, 1n],
                ok: [true, false],
            },
        });
        const payload = Buffer.concat([Buffer.from([0x01, 0x00, 0x03]), Buffer.from("arc"), arc]);
        const { database, batch } = decodePayload(payload);
        expect(database).toBe("arc");
        expect(batch.tags).toEqual([]);
        expect(Object.fromEntries([...batch.columns].map(([k, c]) => [k, c.type]))).toEqual({
            time: "t",
            host: "s",
            used: "f",
            total: "i",
            big: "u",
            ok: "b",
        });
        expect(rowsOf(batch)).toEqual([
            { time: 1_700_000_000_000_000_000n, host: "a", used: 1.5, total: 8n, big: 2n ** 63n + 1n, ok: true },
            { time: 1_700_000_000_001_000_000n, host: null, used: 2, total: null, big: 1n, ok: false },
        ]);
    });

    it("gives a payload without an envelope to the default database (Arc's rule)", () => {
        const body = new Packr({ useRecords: false }).pack({ m: "cpu", columns: { time: [1], v: [0.5] } });
        const { database, batch } = decodePayload(body);
        expect(database).toBe("default");
        expect(rowsOf(batch)).toEqual([{ time: 1_000_000_000n, v: 0.5 }]);
    });

    it.each([
        ["truncated msgpack", Buffer.from([0x01, 0x00, 0x00, 0x85, 0xa1]), /not msgpack/],
        ["msgpack that is not a map", Buffer.from([0x01, 0x00, 0x00, 0x93, 1, 2, 3]), /payload is not a map/],
        ["a bin of the wrong size", mutate((m) => (m.get("columns") as Map<string, unknown>).set("usage", Buffer.alloc(9))), /"usage" has 9 bytes, expected 16/],
        ["an unknown type code", mutate((m) => (m.get("types") as Map<string, unknown>).set("usage", "x")), /unknown type x/],
        ["a column missing from columns", mutate((m) => (m.get("columns") as Map<string, unknown>).delete("usage")), /"usage" is in "types" but not in "columns"/],
        [
            "a dictionary code out of range",
            mutate((m) => (m.get("columns") as Map<string, Map<string, unknown>>).get("host")!.set("dict", ["only"])),
            /code 1 outside its 1-entry dictionary/,
        ],
        ["a tag that is not a string column", mutate((m) => m.set("tags", ["usage"])), /tag "usage" is not a string column/],
        [
            "no time column",
            mutate((m) => {
                (m.get("types") as Map<string, unknown>).delete("time");
                (m.get("columns") as Map<string, unknown>).delete("time");
            }),
            /no "time" column/,
        ],
        ["a negative row count", mutate((m) => m.set("n", -1)), /not a row count/],
        ["a mixed-type Arc column", Buffer.from(new Packr({ useRecords: false }).pack({ m: "x", columns: { time: [1, 2], v: [1, "a"] } })), /row 1 .* expected a number/],
    ])("rejects %s with a WalDecodeError naming the problem", (_, payload, message) => {
        expect(() => decodePayload(payload)).toThrow(WalDecodeError);
        expect(() => decodePayload(payload)).toThrow(message);
    });
});

/** A valid payload whose msgpack map was changed before it was packed again. */
function mutate(change: (map: Map<string, unknown>) => void): Buffer {
    const [envelope, body] = encodePayload("db", cpuBatch(2));
    const map = new Unpackr({ mapsAsObjects: false, useRecords: false }).unpack(body) as Map<string, unknown>;
    change(map);
    return Buffer.concat([envelope, new Packr({ useRecords: false, variableMapSize: true }).pack(map)]);
}

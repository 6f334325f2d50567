import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Column, ColumnarBatch } from "../src/columnar/batch.js";
import { encodeEntryHeader, encodeFileHeader, fileHeaderProblem, parseWalFileName, walFileName } from "../src/wal/format.js";
import { encodePayload } from "../src/wal/payload.js";
import { WalWriter } from "../src/wal/writer.js";
import { walOptions } from "./helpers/wal.js";
import { tempDir } from "./helpers/batches.js";

/** One row of cpu,h=a v=1.5 1 in database "db", with every byte of its entry spelled out. */
const batch: ColumnarBatch = {
    measurement: "cpu",
    rows: 1,
    tags: ["h"],
    columns: new Map<string, Column>([
        ["time", { type: "t", values: BigInt64Array.of(1n) }],
        ["h", { type: "s", dict: ["a"], codes: Uint32Array.of(0) }],
        ["v", { type: "f", values: Float64Array.of(1.5) }],
    ]),
};

const envelope = "01 0002 6462"; // marker, u16 BE length 2, "db"
const map = [
    "85", // fixmap, 5 keys
    "a16d a3637075", // "m": "cpu"
    "a16e 01", // "n": 1
    "a474616773 91a168", // "tags": ["h"]
    "a57479706573 83 a474696d65a174 a168a173 a176a166", // "types": {time: t, h: s, v: f}
    "a7636f6c756d6e73 83", // "columns": map of 3
    "a474696d65 c408 0100000000000000", // time: bin8 of 8 bytes, int64 1 little-endian
    "a168 82 a464696374 91a161 a5636f646573 c404 00000000", // h: {dict: ["a"], codes: bin u32 LE [0]}
    "a176 c408 000000000000f83f", // v: bin8, float64 1.5 little-endian
].join("");
const entryHeader = [
    "00000068", // payload length 104, big-endian
    "00060a24181e4000", // append time 1700000000000000 µs, big-endian
    "d7a682e0", // CRC32-IEEE of the 104 payload bytes, big-endian
].join("");
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("WAL byte format", () => {
    let cleanup = async () => {};
    afterEach(() => cleanup());

    it("writes the 7-byte file header ARCW, version 1, CRC32", () => {
        expect(encodeFileHeader()).toEqual(hex("41524357 0001 01"));
        expect(fileHeaderProblem(encodeFileHeader())).toBeUndefined();
        expect(fileHeaderProblem(hex("41524357 0002 01"))).toMatch(/version 2/);
        expect(fileHeaderProblem(hex("41524358 0001 01"))).toMatch(/magic/);
        expect(fileHeaderProblem(hex("41524357 0001 02"))).toMatch(/checksum type 2/);
    });

    it("encodes a hand-computed entry byte for byte", () => {
        const parts = encodePayload("db", batch);
        expect(Buffer.concat(parts)).toEqual(hex(envelope + map));
        expect(encodeEntryHeader(parts, 1_700_000_000_000_000n)).toEqual(hex(entryHeader));
    });

    it("puts exactly that entry after the header in a writer's file", async () => {
        const dir = await tempDir();
        cleanup = dir.cleanup;
        const writer = await WalWriter.open(walOptions({ dir: dir.path, syncMode: "fsync" }));
        const before = BigInt(Date.now()) * 1000n;
        const { sequence, file } = await writer.append("db", batch);
        await writer.close();
        const bytes = await readFile(join(dir.path, file));
        expect(sequence).toBe(0);
        expect(file).toBe("00000000000000000000.wal");
        expect(bytes.length).toBe(7 + 16 + 104);
        expect(bytes.subarray(0, 7)).toEqual(hex("41524357 0001 01"));
        expect(bytes.subarray(7, 11)).toEqual(hex("00000068"));
        const appendTime = bytes.readBigUInt64BE(11);
        expect(appendTime >= before && appendTime <= BigInt(Date.now()) * 1000n).toBe(true);
        expect(bytes.subarray(19, 23)).toEqual(hex("d7a682e0"));
        expect(bytes.subarray(23)).toEqual(hex(envelope + map));
    });

    it("names files by their first sequence in 20 digits", () => {
        expect(walFileName(42)).toBe("00000000000000000042.wal");
        expect(parseWalFileName("00000000000000000042.wal")).toBe(42);
        expect(parseWalFileName("0000000000000000042.wal")).toBeUndefined();
        expect(parseWalFileName("0000000000000000004x.wal")).toBeUndefined();
        expect(parseWalFileName("00000000000000000042.wal.tmp")).toBeUndefined();
    });
});

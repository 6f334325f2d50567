/**
 * Remote write's WAL entries are written by hand from the decoded rows (ingest/prom/entries.ts),
 * not by the batch encoder: each entry's payload must be byte for byte what encodePayload writes
 * for the same batch, with a header whose length and CRC32 match it, so recovery reads them like
 * any other entry.
 */
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeRemoteWrite } from "../ingest/prom/decode.js";
import { writeEntries } from "../ingest/prom/entries.js";
import { PromSeriesCache } from "../ingest/prom/series-cache.js";
import { SchemaRegistry } from "../ingest/schema.js";
import { EntryWriter } from "../src/wal/entry-writer.js";
import { ENTRY_HEADER_SIZE } from "../src/wal/format.js";
import { decodePayload, encodePayload } from "../src/wal/payload.js";
import { type TestRequest, type TestSeries, encodeWriteRequest } from "./helpers/prom-remote-write.js";

const T0 = 1_700_000_000_000;
const APPEND_TIME_US = 1_700_000_000_123_456;

interface Entry {
    readonly appendTimeUs: number;
    readonly payload: Buffer;
}

/** The entries in `bytes`, their headers checked (length, CRC32 of the payload). */
function entriesOf(bytes: Buffer): Entry[] {
    const entries: Entry[] = [];
    for (let at = 0; at < bytes.length;) {
        const length = bytes.readUInt32BE(at);
        const appendTimeUs = bytes.readUInt32BE(at + 4) * 2 ** 32 + bytes.readUInt32BE(at + 8);
        const payload = bytes.subarray(at + ENTRY_HEADER_SIZE, at + ENTRY_HEADER_SIZE + length);
        expect(payload.length).toBe(length);
        expect(bytes.readUInt32BE(at + 12)).toBe(crc32(payload));
        entries.push({ appendTimeUs, payload });
        at += ENTRY_HEADER_SIZE + length;
    }
    return entries;
}

function series(name: string, labels: [string, string][], samples: number, offset: number): TestSeries {
    return {
        labels: [["__name__", name], ...labels],
        samples: Array.from({ length: samples }, (_, s) => ({ value: offset + s / 4, timestamp: T0 + 15_000 * s + offset })),
    };
}

/** Metrics interleaved as Prometheus shards them: uniform tag names, one metric whose series differ in them, shared and unicode values, empty values. */
const REQUEST: TestRequest = {
    timeseries: [
        series(
            "http_requests_total",
            [
                ["code", "200"],
                ["instance", "a:9100"],
                ["job", "api"],
            ],
            3,
            1,
        ),
        series(
            "node_load1",
            [
                ["instance", "a:9100"],
                ["job", "node"],
            ],
            1,
            2,
        ),
        series(
            "http_requests_total",
            [
                ["code", "500"],
                ["instance", "b:9100"],
                ["job", "api"],
            ],
            2,
            3,
        ),
        series(
            "mixed",
            [
                ["instance", "a:9100"],
                ["zone", "zürich-🌍"],
            ],
            2,
            4,
        ),
        series(
            "node_load1",
            [
                ["instance", "b:9100"],
                ["job", "node"],
            ],
            1,
            5,
        ),
        series(
            "mixed",
            [
                ["instance", "b:9100"],
                ["rack", "r1"],
                ["zone", ""],
            ],
            1,
            6,
        ),
        series(
            "http_requests_total",
            [
                ["code", "200"],
                ["instance", "b:9100"],
                ["job", "api"],
            ],
            1,
            7,
        ),
        series("mixed", [["pod", "p-1"]], 1, 8),
    ],
};

describe("remote write WAL entries", () => {
    it("are byte for byte the payloads encodePayload writes for the request's batches, and decode to them", () => {
        const result = decodeRemoteWrite(encodeWriteRequest(REQUEST), { database: "prom", schema: new SchemaRegistry(), cache: new PromSeriesCache() });
        const rows = result.rows!;
        expect(rows.metrics.map((metric) => metric.name)).toEqual(["http_requests_total", "node_load1", "mixed"]);
        const writer = new EntryWriter(64);
        writeEntries(writer, "prom", rows, APPEND_TIME_US);
        const entries = entriesOf(writer.finish());
        const batches = result.batches;
        expect(entries).toHaveLength(batches.length);
        entries.forEach((entry, k) => {
            expect(entry.appendTimeUs).toBe(APPEND_TIME_US);
            expect(entry.payload.equals(Buffer.concat(encodePayload("prom", batches[k]!, batches.length - 1 - k)))).toBe(true);
            const decoded = decodePayload(entry.payload);
            expect(decoded.database).toBe("prom");
            expect([decoded.batch.rows, decoded.following]).toEqual([batches[k]!.rows, batches.length - 1 - k]);
        });
        expect(batches.map((batch) => batch.rows)).toEqual([6, 2, 4]);
    });

    it("stay equal over a request whose dictionaries and codes outgrow the writer's first allocation", () => {
        const many: TestRequest = {
            timeseries: Array.from({ length: 600 }, (_, i) =>
                series(
                    `metric_${i % 7}`,
                    [
                        ["instance", `host-${i}:9100`],
                        ["job", `job-${i % 3}`],
                        ["shard", String(i % 11)],
                    ],
                    1 + (i % 3),
                    i,
                ),
            ),
        };
        const result = decodeRemoteWrite(encodeWriteRequest(many), { database: "db", schema: new SchemaRegistry(), cache: new PromSeriesCache() });
        const writer = new EntryWriter(64);
        writeEntries(writer, "db", result.rows!, APPEND_TIME_US);
        const entries = entriesOf(writer.finish());
        const batches = result.batches;
        expect(entries.map((entry) => entry.payload)).toEqual(batches.map((batch, k) => Buffer.concat(encodePayload("db", batch, batches.length - 1 - k))));
        expect(batches.reduce((sum, batch) => sum + batch.rows, 0)).toBe(1200);
    });
});

/**
 * The remote-write decoder on requests encoded by protobufjs from prompb's schema (an encoder
 * independent of the decoder): the mapping, every field, stale markers, NaN/±Inf, unicode,
 * empty, truncated and corrupt bodies, rejected series, the schema, and thousands of series.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ColumnarBatch, type FloatColumn, assertBatchShape, valueAt } from "../src/columnar/batch.js";
import { BadRequestError } from "../ingest/errors.js";
import { type RemoteWriteResult, decodeRemoteWrite } from "../ingest/prom/decode.js";
import { PromSeriesCache } from "../ingest/prom/series-cache.js";
import { SchemaRegistry } from "../ingest/schema.js";
import { STALE_BITS, type TestRequest, type TestSeries, encodeTimeSeries, encodeWriteRequest, lengthField, patchFloatBits, varint } from "./helpers/prom-remote-write.js";

const T0 = 1_700_000_000_123; // ms

function decode(body: Buffer, registry = new SchemaRegistry(), database = "prometheus", cache = new PromSeriesCache()): RemoteWriteResult {
    const result = decodeRemoteWrite(body, { database, schema: registry, cache });
    for (const batch of result.batches) assertBatchShape(batch);
    return result;
}

/** Every row of every batch as a plain object: measurement, time (ns), value, tags. */
function rows(result: RemoteWriteResult): Record<string, unknown>[] {
    return result.batches.flatMap((batch: ColumnarBatch) =>
        Array.from({ length: batch.rows }, (_, row) => {
            const out: Record<string, unknown> = { measurement: batch.measurement };
            for (const [name, column] of batch.columns) {
                const value = valueAt(column, row);
                if (value !== null) out[name] = value;
            }
            return out;
        }),
    );
}

const series = (labels: [string, string][], ...samples: [number, number | string][]): TestSeries => ({
    labels,
    samples: samples.map(([value, timestamp]) => ({ value, timestamp })),
});

describe("remote-write decoder", () => {
    it("maps __name__ to the measurement, other labels to tags, the value to a float field and ms to ns", () => {
        const result = decode(
            encodeWriteRequest({
                timeseries: [
                    series(
                        [
                            ["__name__", "up"],
                            ["instance", "localhost:9090"],
                            ["job", "prometheus"],
                        ],
                        [1, T0],
                        [0, T0 + 15_000],
                    ),
                    series(
                        [
                            ["__name__", "http_requests_total"],
                            ["code", "200"],
                        ],
                        [1234.5, T0],
                    ),
                ],
            }),
        );
        expect(result.samples).toBe(3);
        expect(result.batches.map((b) => [b.measurement, b.tags, [...b.columns].map(([name, c]) => `${name}:${c.type}`)])).toEqual([
            ["up", ["instance", "job"], ["time:t", "instance:s", "job:s", "value:f"]],
            ["http_requests_total", ["code"], ["time:t", "code:s", "value:f"]],
        ]);
        expect(rows(result)).toEqual([
            { measurement: "up", time: BigInt(T0) * 1_000_000n, instance: "localhost:9090", job: "prometheus", value: 1 },
            { measurement: "up", time: BigInt(T0 + 15_000) * 1_000_000n, instance: "localhost:9090", job: "prometheus", value: 0 },
            { measurement: "http_requests_total", time: BigInt(T0) * 1_000_000n, code: "200", value: 1234.5 },
        ]);
        expect(result.declarations.values).toEqual(new Set(["up", "http_requests_total"]));
        expect(result.declarations.tags.get("up")).toEqual(new Set(["instance", "job"]));
    });

    it("drops and counts stale markers; stores other NaN payloads, +Inf and -Inf as they are", () => {
        // Placeholders patched into the stale marker and Go's math.NaN() (0x7ff8000000000001).
        const encoded = encodeWriteRequest({
            timeseries: [series([["__name__", "g"]], [1111.5, T0], [2222.5, T0 + 1], [Infinity, T0 + 2], [-Infinity, T0 + 3], [-0, T0 + 4])],
        });
        const body = patchFloatBits(patchFloatBits(encoded, 1111.5, STALE_BITS.hi, STALE_BITS.lo), 2222.5, 0x7ff8_0000, 1);
        const result = decode(body);
        expect(result.staleMarkers).toBe(1);
        const values = (result.batches[0]!.columns.get("value") as FloatColumn).values;
        expect(values.length).toBe(4);
        const words = new Uint32Array(values.buffer, values.byteOffset, 8);
        expect([words[0], words[1]]).toEqual([1, 0x7ff8_0000]);
        expect([values[1], values[2], Object.is(values[3], -0)]).toEqual([Infinity, -Infinity, true]);
    });

    it("ignores and counts metadata, exemplars and native histograms, and skips unknown fields", () => {
        const withExtras = encodeTimeSeries({
            labels: [["__name__", "h"]],
            samples: [{ value: 2, timestamp: T0 }],
            exemplars: [{ labels: [["trace_id", "abc"]], value: 1, timestamp: T0 }],
            histograms: [{ count_int: 3, sum: 4.5, timestamp: T0 }],
        });
        const histogramOnly = encodeTimeSeries({ labels: [["__name__", "native"]], samples: [], histograms: [{ count_int: 1, sum: 1, timestamp: T0 }] });
        // Unknown fields: a fixed32 (field 9) and a varint (field 10) inside the series, a string (field 15) at the top.
        const unknownInSeries = Buffer.concat([withExtras, Buffer.from([(9 << 3) | 5, 1, 2, 3, 4]), varint((10 << 3) | 0), varint(300)]);
        const body = Buffer.concat([
            lengthField(1, unknownInSeries),
            lengthField(1, histogramOnly),
            encodeWriteRequest({ timeseries: [], metadata: [{ type: 1, metric_family_name: "h", help: "a counter", unit: "" }] }),
            lengthField(15, Buffer.from("future")),
        ]);
        const result = decode(body);
        expect({ metadata: result.metadata, exemplars: result.exemplars, histograms: result.histograms, samples: result.samples }).toEqual({
            metadata: 1,
            exemplars: 1,
            histograms: 2,
            samples: 1,
        });
        expect(rows(result)).toEqual([{ measurement: "h", time: BigInt(T0) * 1_000_000n, value: 2 }]);
    });

    it("keeps unicode metric names, label names and values", () => {
        const result = decode(
            encodeWriteRequest({
                timeseries: [
                    series(
                        [
                            ["__name__", "température_°C"],
                            ["ville", "Zürich"],
                            ["名前", "値🌡️"],
                        ],
                        [21.5, T0],
                    ),
                ],
            }),
        );
        expect(rows(result)).toEqual([{ measurement: "température_°C", time: BigInt(T0) * 1_000_000n, ville: "Zürich", 名前: "値🌡️", value: 21.5 }]);
    });

    it("answers an empty request (and an empty body) with nothing to store", () => {
        for (const body of [encodeWriteRequest({ timeseries: [] }), Buffer.alloc(0)]) {
            const result = decode(body);
            expect(result.batches).toEqual([]);
            expect(result.samples + result.rejectedSamples).toBe(0);
        }
    });

    it("treats labels in any order, and labels after the samples, as the same series", () => {
        const sorted: [string, string][] = [
            ["__name__", "m"],
            ["a", "1"],
            ["b", "2"],
        ];
        const shuffled: [string, string][] = [
            ["b", "2"],
            ["__name__", "m"],
            ["a", "1"],
        ];
        const sample = encodeTimeSeries({ labels: [], samples: [{ value: 3, timestamp: T0 + 2 }] });
        const labelsLast = Buffer.concat([sample, encodeTimeSeries({ labels: sorted, samples: [] })]);
        const interleaved = Buffer.concat([
            encodeTimeSeries({ labels: [["a", "1"]], samples: [] }),
            encodeTimeSeries({ labels: [], samples: [{ value: 4, timestamp: T0 + 3 }] }),
            encodeTimeSeries({ labels: sorted.filter(([name]) => name !== "a"), samples: [] }),
        ]);
        const body = Buffer.concat([
            encodeWriteRequest({ timeseries: [series(sorted, [1, T0]), series(shuffled, [2, T0 + 1])] }),
            lengthField(1, labelsLast),
            lengthField(1, interleaved),
        ]);
        const result = decode(body);
        expect(result.batches).toHaveLength(1);
        expect(rows(result).map(({ a, b, value }) => ({ a, b, value }))).toEqual([1, 2, 3, 4].map((value) => ({ a: "1", b: "2", value })));
    });

    it("treats a label with an empty value as absent, as Prometheus does", () => {
        const result = decode(
            encodeWriteRequest({
                timeseries: [
                    series(
                        [
                            ["__name__", "m"],
                            ["empty", ""],
                            ["x", "1"],
                        ],
                        [1, T0],
                    ),
                ],
            }),
        );
        expect(result.batches[0]!.tags).toEqual(["x"]);
    });

    it("rejects series it can never store, lists why, and keeps the rest of the request", () => {
        const bad = (labels: [string, string][]) => series(labels, [1, T0], [2, T0 + 1]);
        const invalidUtf8 = Buffer.concat([
            lengthField(1, Buffer.concat([lengthField(1, Buffer.from("__name__")), lengthField(2, Buffer.from("m"))])),
            lengthField(1, Buffer.concat([lengthField(1, Buffer.from("k")), lengthField(2, Buffer.from([0xc3, 0x28]))])),
        ]);
        const body = Buffer.concat([
            encodeWriteRequest({
                timeseries: [
                    series(
                        [
                            ["__name__", "good"],
                            ["k", "v"],
                        ],
                        [7, T0],
                    ),
                    bad([["job", "x"]]),
                    bad([["__name__", ""]]),
                    bad([
                        ["__name__", "m"],
                        ["a", "1"],
                        ["a", "2"],
                    ]),
                    bad([
                        ["__name__", "m"],
                        ["time", "now"],
                    ]),
                    bad([
                        ["__name__", "m"],
                        ["value", "v"],
                    ]),
                    bad([
                        ["__name__", "m"],
                        ["", "v"],
                    ]),
                    bad([
                        ["__name__", "m"],
                        ["__name__", "n"],
                    ]),
                ],
            }),
            lengthField(1, Buffer.concat([invalidUtf8, encodeTimeSeries({ labels: [], samples: [{ value: 1, timestamp: T0 }] })])),
        ]);
        const result = decode(body);
        expect(rows(result)).toEqual([{ measurement: "good", time: BigInt(T0) * 1_000_000n, k: "v", value: 7 }]);
        expect(result.rejectedSamples).toBe(15);
        expect(result.rejections).toBe(8);
        expect(result.rejected.map((r) => [r.index, r.samples, r.reason.split(/[:(]/)[0]])).toEqual([
            [1, 2, "no __name__ label"],
            [2, 2, "no __name__ label"],
            [3, 2, 'label "a" appears twice'],
            [4, 2, 'label "time" is reserved'],
            [5, 2, 'label "value" is reserved'],
            [6, 2, "a label has an empty name"],
            [7, 2, 'label "__name__" appears twice'],
            [8, 1, 'the value of label "k" is not valid UTF-8'],
        ]);
        expect(result.rejected[3]!.labels).toBe('{__name__="m", time="now"}');
    });

    it("checks the schema: a label that is a field, or a value field of another type, rejects the series", () => {
        const registry = new SchemaRegistry();
        registry.declareField("db", "cpu", "host", "s");
        registry.declareField("db", "mem", "value", "i");
        registry.declareTag("db", "disk", "value");
        const request: TestRequest = {
            timeseries: [
                series(
                    [
                        ["__name__", "cpu"],
                        ["host", "a"],
                    ],
                    [1, T0],
                ),
                series([["__name__", "mem"]], [1, T0]),
                series([["__name__", "disk"]], [1, T0]),
                series(
                    [
                        ["__name__", "cpu"],
                        ["core", "0"],
                    ],
                    [1, T0],
                ),
            ],
        };
        const result = decode(encodeWriteRequest(request), registry, "db");
        expect(result.rejected.map((r) => r.reason)).toEqual([
            'label "host" is a string field of measurement "cpu"',
            'field "value" of measurement "mem" is integer: remote write stores floats',
            'measurement "disk" has a tag "value": remote write stores each sample in a field of that name',
        ]);
        expect(rows(result)).toEqual([{ measurement: "cpu", time: BigInt(T0) * 1_000_000n, core: "0", value: 1 }]);
        // What the write path does once the request is durable.
        registry.reserve("db", result.batches).commit();
        expect([registry.isTag("db", "cpu", "core"), registry.fieldType("db", "cpu", "value")]).toEqual([true, "f"]);
        // Declared now: the same request needs nothing more.
        expect(decode(encodeWriteRequest(request), registry, "db").declarations.empty).toBe(true);
    });

    it("reads timestamps exactly: 0, negative, beyond 2^49 ms, and rejects those int64 ns cannot hold", () => {
        const max = 9_223_372_036_854; // ⌊(2^63 − 1) / 10^6⌋ ms
        const result = decode(
            encodeWriteRequest({
                timeseries: [series([["__name__", "t"]], [1, 0], [2, -1], [3, "-86400000"], [4, max], [5, -max], [6, max + 1], [7, "-9223372036854775808"], [8, 2 ** 50])],
            }),
        );
        // 8 is a 50-bit ms (an 8-byte varint): beyond year 2262 like 6 and 7.
        expect(rows(result).map((row) => [row.value, row.time])).toEqual([
            [1, 0n],
            [2, -1_000_000n],
            [3, -86_400_000_000_000n],
            [4, BigInt(max) * 1_000_000n],
            [5, -BigInt(max) * 1_000_000n],
        ]);
        expect(result.rejectedSamples).toBe(3);
    });

    it("decodes thousands of series, and decodes each label set once across requests", () => {
        const cache = new PromSeriesCache();
        const registry = new SchemaRegistry();
        const make = (offset: number): TestRequest => ({
            timeseries: Array.from({ length: 5_000 }, (_, i) =>
                series(
                    [
                        ["__name__", `metric_${i % 50}`],
                        ["instance", `host-${i % 100}:9100`],
                        ["job", "node"],
                        ["n", String(i)],
                    ],
                    [i, T0 + offset],
                    [i + 0.5, T0 + offset + 1],
                ),
            ),
        });
        const first = decode(encodeWriteRequest(make(0)), registry, "prometheus", cache);
        expect(first.samples).toBe(10_000);
        expect(first.batches).toHaveLength(50);
        expect(cache.size).toBe(5_000);
        registry.reserve("prometheus", first.batches).commit();
        const second = decode(encodeWriteRequest(make(60_000)), registry, "prometheus", cache);
        expect(cache.size).toBe(5_000);
        expect(second.declarations.empty).toBe(true);
        const metric7 = rows(second).filter((row) => row.measurement === "metric_7");
        expect(metric7).toHaveLength(200);
        expect(metric7[0]).toEqual({ measurement: "metric_7", time: BigInt(T0 + 60_000) * 1_000_000n, instance: "host-7:9100", job: "node", n: "7", value: 7 });
    });

    it("empties a cache over its bound before the next request, and still decodes correctly", () => {
        const cache = new PromSeriesCache({ maxEntries: 10 });
        const request = (count: number) => encodeWriteRequest({ timeseries: Array.from({ length: count }, (_, i) => series([["__name__", `m${i}`]], [i, T0])) });
        const registry = new SchemaRegistry();
        expect(decode(request(25), registry, "prometheus", cache).samples).toBe(25);
        expect(cache.size).toBe(25); // a request adds all its label sets
        const next = decode(request(5), registry, "prometheus", cache);
        expect(cache.size).toBe(5);
        expect(rows(next).map((row) => [row.measurement, row.value])).toEqual([0, 1, 2, 3, 4].map((i) => [`m${i}`, i]));
    });

    it("rejects truncated bodies with a 400, never another error", () => {
        const body = encodeWriteRequest({
            timeseries: [
                series(
                    [
                        ["__name__", "m"],
                        ["a", "b"],
                    ],
                    [1, T0],
                    [2, T0 + 1],
                ),
                series([["__name__", "n"]], [3, T0]),
            ],
        });
        let rejected = 0;
        for (let cut = 1; cut < body.length; cut++) {
            try {
                decode(body.subarray(0, cut));
            } catch (error) {
                expect(error).toBeInstanceOf(BadRequestError);
                rejected++;
            }
        }
        expect(rejected).toBeGreaterThan(body.length / 2);
    });

    it("answers corrupt bodies with a 400 or a decode, never a crash or a malformed batch", () => {
        const body = encodeWriteRequest({
            timeseries: [
                series(
                    [
                        ["__name__", "m"],
                        ["a", "b"],
                    ],
                    [1, T0],
                ),
                series([["__name__", "n"]], [3, T0]),
            ],
        });
        fc.assert(
            fc.property(fc.array(fc.tuple(fc.nat(body.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 }), (flips) => {
                const corrupt = Buffer.from(body);
                for (const [at, byte] of flips) corrupt[at] = byte;
                try {
                    decode(corrupt);
                } catch (error) {
                    if (!(error instanceof BadRequestError)) throw error;
                }
            }),
            { numRuns: 2_000 },
        );
    });

    it("refuses a request whose batches would outgrow their budget", () => {
        // One measurement, every series a new tag: each new tag column spans all earlier rows.
        const request = encodeWriteRequest({
            timeseries: Array.from({ length: 400 }, (_, i) =>
                series(
                    [
                        ["__name__", "wide"],
                        [`tag_${i}`, "x"],
                    ],
                    ...Array.from({ length: 400 }, (_, k): [number, number] => [k, T0 + k]),
                ),
            ),
        });
        expect(() => decode(request)).toThrow(/bytes of columns/);
    });
});

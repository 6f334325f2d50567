/**
 * Remote-write requests built by libraries independent of Sluice's decoder: protobufjs encodes
 * from the schema of prometheus/prometheus prompb (remote.proto, types.proto: the field numbers
 * below are theirs), snappyjs compresses (snappy's block format). Used by the unit and HTTP tests
 * and the promwrite benchmark. Also the few raw protobuf helpers the odd-shape tests need.
 */
import protobuf from "protobufjs";
import SnappyJS from "snappyjs";

const PROMPB = `
syntax = "proto3";
package prometheus;
message WriteRequest {
  repeated TimeSeries timeseries = 1;
  reserved 2;
  repeated MetricMetadata metadata = 3;
}
message MetricMetadata {
  int32 type = 1;
  string metric_family_name = 2;
  string help = 4;
  string unit = 5;
}
message Sample {
  double value = 1;
  int64 timestamp = 2;
}
message Exemplar {
  repeated Label labels = 1;
  double value = 2;
  int64 timestamp = 3;
}
message BucketSpan {
  sint32 offset = 1;
  uint32 length = 2;
}
message Histogram {
  oneof count { uint64 count_int = 1; double count_float = 2; }
  double sum = 3;
  sint32 schema = 4;
  double zero_threshold = 5;
  oneof zero_count { uint64 zero_count_int = 6; double zero_count_float = 7; }
  repeated BucketSpan negative_spans = 8;
  repeated sint64 negative_deltas = 9;
  repeated double negative_counts = 10;
  repeated BucketSpan positive_spans = 11;
  repeated sint64 positive_deltas = 12;
  repeated double positive_counts = 13;
  int32 reset_hint = 14;
  int64 timestamp = 15;
}
message TimeSeries {
  repeated Label labels = 1;
  repeated Sample samples = 2;
  repeated Exemplar exemplars = 3;
  repeated Histogram histograms = 4;
}
message Label {
  string name = 1;
  string value = 2;
}
`;

const root = protobuf.parse(PROMPB, { keepCase: true }).root;
const WriteRequestType = root.lookupType("prometheus.WriteRequest");
const TimeSeriesType = root.lookupType("prometheus.TimeSeries");

export interface TestSample {
    readonly value: number;
    /** Milliseconds since the epoch; a string for values beyond 2^53 or negative int64 edge cases. */
    readonly timestamp: number | string;
}

export interface TestSeries {
    /** Name/value pairs in the order they are encoded. */
    readonly labels: readonly (readonly [string, string])[];
    readonly samples: readonly TestSample[];
    readonly exemplars?: readonly { readonly labels: readonly (readonly [string, string])[]; readonly value: number; readonly timestamp: number }[];
    readonly histograms?: readonly { readonly count_int: number; readonly sum: number; readonly timestamp: number }[];
}

export interface TestRequest {
    readonly timeseries: readonly TestSeries[];
    readonly metadata?: readonly { readonly type: number; readonly metric_family_name: string; readonly help: string; readonly unit: string }[];
}

function seriesMessage(series: TestSeries): Record<string, unknown> {
    return {
        labels: series.labels.map(([name, value]) => ({ name, value })),
        samples: series.samples.map((sample) => ({ value: sample.value, timestamp: sample.timestamp })),
        exemplars: (series.exemplars ?? []).map((e) => ({ ...e, labels: e.labels.map(([name, value]) => ({ name, value })) })),
        histograms: series.histograms ?? [],
    };
}

/** The protobuf bytes of a WriteRequest (uncompressed). */
export function encodeWriteRequest(request: TestRequest): Buffer {
    const message = WriteRequestType.fromObject({ timeseries: request.timeseries.map(seriesMessage), metadata: request.metadata ?? [] });
    return Buffer.from(WriteRequestType.encode(message).finish());
}

/** The protobuf bytes of one TimeSeries message (for hand-built requests). */
export function encodeTimeSeries(series: TestSeries): Buffer {
    return Buffer.from(TimeSeriesType.encode(TimeSeriesType.fromObject(seriesMessage(series))).finish());
}

/** Snappy block format, by snappyjs. */
export function snappyBlock(bytes: Uint8Array): Buffer {
    return Buffer.from(SnappyJS.compress(Buffer.from(bytes)));
}

/** A remote-write body: the request encoded and snappy-compressed. */
export function remoteWriteBody(request: TestRequest): Buffer {
    return snappyBlock(encodeWriteRequest(request));
}

/** The headers Prometheus sends with a remote-write 1.0 request. */
export const REMOTE_WRITE_HEADERS = {
    "content-type": "application/x-protobuf",
    "content-encoding": "snappy",
    "x-prometheus-remote-write-version": "0.1.0",
} as const;

// Raw protobuf pieces, for shapes protobufjs will not produce (unknown fields, odd field order).

export function varint(value: number): Buffer {
    const out: number[] = [];
    let v = value;
    while (v >= 0x80) {
        out.push((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
    }
    out.push(v);
    return Buffer.from(out);
}

/** A length-delimited field: key, length, bytes. */
export function lengthField(field: number, bytes: Uint8Array): Buffer {
    return Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
}

/**
 * `body` with every encoded `placeholder` double replaced by the bits `hi:lo` (protobufjs
 * canonicalises NaN payloads, so the stale marker is patched in after encoding).
 */
export function patchFloatBits(body: Buffer, placeholder: number, hi: number, lo: number): Buffer {
    const find = Buffer.alloc(8);
    find.writeDoubleLE(placeholder);
    const bits = Buffer.alloc(8);
    bits.writeUInt32LE(lo, 0);
    bits.writeUInt32LE(hi, 4);
    const out = Buffer.from(body);
    let patched = 0;
    for (let at = out.indexOf(find); at >= 0; at = out.indexOf(find, at + 8), patched++) bits.copy(out, at);
    if (patched === 0) throw new Error(`placeholder ${placeholder} is not in the body`);
    return out;
}

/** The stale marker's bits (Prometheus sends this NaN when a series ends). */
export const STALE_BITS = { hi: 0x7ff0_0000, lo: 2 } as const;

/**
 * Prometheus remote write 1.0 (DESIGN.md §5): `POST /api/v1/prom/write?db=D` (InfluxDB 1.x's
 * path) and `POST /api/v1/write[?db=D]` (the Prometheus receiver path), database from `?db=`,
 * else `prometheus.database`. Body: a protobuf WriteRequest, snappy block format.
 *
 * Prometheus drops a request answered 4xx and retries one answered 5xx, so: 204 once durable;
 * 400 only for what no retry can fix (bytes that are not a snappy-compressed WriteRequest, or
 * series it can never store: those are listed, the rest of the request is stored first); 503 +
 * Retry-After under backpressure or a WAL failure (from the write path); 413 above the body limit,
 * also after decompression; 415 for remote write 2.0 and for other content types and encodings.
 */
import { nameProblem } from "../../src/names.js";
import { BadRequestError, UnsupportedEncodingError } from "../errors.js";
import type { HttpReply, HttpRequest } from "../http/exchange.js";
import { parseQuery } from "../http/query.js";
import { type RejectedSeries, type RemoteWriteResult, decodeRemoteWrite } from "../prom/decode.js";
import { uncompressBlockHeld } from "../prom/snappy.js";
import { promWriteUnit } from "../prom/write-unit.js";
import type { AppContext } from "./context.js";

export type PromPath = "/api/v1/prom/write" | "/api/v1/write";

const PROTOBUF = "application/x-protobuf";
/** The `proto` parameter of each remote-write version's Content-Type (absent means 1.0). */
const PROTO_V1 = "prometheus.WriteRequest";
const PROTO_V2 = "io.prometheus.write.v2.Request";

/** Refuses what this endpoint cannot read: another media type, remote write 2.0, another encoding. */
function checkContent(request: HttpRequest): void {
    const [type = "", ...parameters] = (request.headers.get("content-type") ?? "").split(";").map((part) => part.trim());
    if (type !== "" && type.toLowerCase() !== PROTOBUF) throw new UnsupportedEncodingError(`Content-Type "${type}" is not supported: remote write sends ${PROTOBUF}`);
    const proto = parameters.find((parameter) => parameter.toLowerCase().startsWith("proto="))?.slice("proto=".length);
    if (proto === PROTO_V2) {
        throw new UnsupportedEncodingError(`remote write 2.0 (${PROTO_V2}) is not supported yet: configure the sender for 1.0 (protobuf_message: ${PROTO_V1})`);
    }
    if (proto !== undefined && proto !== PROTO_V1) throw new UnsupportedEncodingError(`protobuf message "${proto}" is not supported: remote write 1.0 sends ${PROTO_V1}`);
    const encoding = (request.headers.get("content-encoding") ?? "snappy").trim().toLowerCase();
    if (encoding !== "snappy" && encoding !== "")
        throw new UnsupportedEncodingError(`Content-Encoding "${encoding}" is not supported: remote write 1.0 bodies are snappy (block format)`);
}

function describe(rejected: RejectedSeries): string {
    return `series ${rejected.index} ${rejected.labels}: ${rejected.reason}`;
}

/** The 400 after the good series were stored: what was not, and why (Prometheus logs it). */
function partialWrite(result: RemoteWriteResult): BadRequestError {
    const more = result.rejections > result.rejected.length ? `; and ${result.rejections - result.rejected.length} more` : "";
    return new BadRequestError(
        `partial write: ${result.rejectedSamples} samples rejected, ${result.samples} stored: ${result.rejected.map(describe).join("; ")}${more} dropped=${result.rejectedSamples}`,
    );
}

export async function writePrometheus(path: PromPath, request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const query = parseQuery(request.rawQuery);
    const database = query.get("db") ?? context.prometheusDatabase;
    const problem = nameProblem("database", database);
    if (problem !== undefined) throw new BadRequestError(problem);
    checkContent(request);
    const raw = await request.body.read(context.maxBodyBytes);
    const body = await uncompressBlockHeld(raw, context.maxBodyBytes, (bytes) => request.body.hold(bytes));
    const result = decodeRemoteWrite(body, { database, schema: context.schema });
    const skipped = context.metrics.promSkipped;
    if (result.staleMarkers > 0) skipped.inc({ kind: "stale_marker" }, result.staleMarkers);
    if (result.metadata > 0) skipped.inc({ kind: "metadata" }, result.metadata);
    if (result.exemplars > 0) skipped.inc({ kind: "exemplar" }, result.exemplars);
    if (result.histograms > 0) skipped.inc({ kind: "histogram" }, result.histograms);
    if (result.rejectedSamples > 0) context.metrics.linesRejected.inc({ endpoint: path }, result.rejectedSamples);
    const { rows } = await context.writePath.writeUnit(database, promWriteUnit(result));
    context.metrics.linesAccepted.inc({ endpoint: path }, rows);
    if (result.rejectedSamples > 0) throw partialWrite(result);
    return { status: 204 };
}

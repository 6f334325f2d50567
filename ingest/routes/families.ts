/**
 * Each write API answers in the shapes its clients parse (line-protocol.md §B3–B4): InfluxDB 1.x
 * `{"error"}`, 2.x `{"code","message"}`, 3 `{"error","data"}`, Arc `{"error"}`.
 */
import { type HttpReply, jsonReply } from "../http/exchange.js";
import { IngestError, UnauthorizedError, UnavailableError } from "../errors.js";
import type { LineError } from "../lp/index.js";

export type ApiFamily = "v1" | "v2" | "v3" | "arc";

const V2_CODES: Readonly<Record<number, string>> = {
    400: "invalid",
    401: "unauthorized",
    404: "not found",
    405: "method not allowed",
    413: "request too large",
    415: "unsupported media type",
    500: "internal error",
    503: "unavailable",
};

/** A header value as HTTP allows it: printable ASCII, at most 1 KiB (InfluxDB's X-Influxdb-Error). */
function headerSafe(text: string): string {
    return text.replace(/[^\x20-\x7e]/g, " ").slice(0, 1024);
}

function statusHeaders(error: IngestError, family: ApiFamily): Record<string, string> {
    const headers: Record<string, string> = {};
    if (error instanceof UnavailableError) headers["retry-after"] = String(error.retryAfterSeconds);
    if (error instanceof UnauthorizedError && family === "v1") headers["www-authenticate"] = 'Basic realm="Sluice"';
    if (family === "v1") headers["x-influxdb-error"] = headerSafe(error.message);
    return headers;
}

export function errorReply(family: ApiFamily, error: IngestError): HttpReply {
    const headers = statusHeaders(error, family);
    if (family === "v2") return jsonReply(error.status, { code: V2_CODES[error.status] ?? "invalid", message: error.message }, headers);
    return jsonReply(error.status, { error: error.message }, headers);
}

function describe(error: LineError): string {
    return `unable to parse '${error.text}' (line ${error.line}): ${error.message}`;
}

/** The 400 for a body whose good lines were stored: the `listed` bad lines (the parse's first ones), `rejected` of them in all. */
export function partialWriteReply(family: Exclude<ApiFamily, "arc">, listed: readonly LineError[], rejected: number): HttpReply {
    const more = rejected > listed.length ? `; and ${rejected - listed.length} more` : "";
    switch (family) {
        case "v1": {
            const message = `partial write: ${listed.map(describe).join("\n")}${more} dropped=${rejected}`;
            return jsonReply(400, { error: message }, { "x-influxdb-error": headerSafe(message) });
        }
        case "v2":
            return jsonReply(400, {
                code: "invalid",
                message: `partial write: ${listed.map(describe).join("\n")}${more} dropped=${rejected}`,
                line: listed[0]!.line,
            });
        case "v3":
            return jsonReply(400, {
                error: "partial write of line protocol occurred",
                data: listed.map((error) => ({ error_message: error.message, line_number: error.line, original_line: error.text })),
            });
    }
}

/** InfluxDB 3's answer when `accept_partial=false` and a line is bad: nothing was stored. */
export function rejectedWriteReply(first: LineError): HttpReply {
    return jsonReply(400, {
        error: "line protocol parsing error: nothing was written (accept_partial=false)",
        data: { error_message: first.message, line_number: first.line, original_line: first.text },
    });
}

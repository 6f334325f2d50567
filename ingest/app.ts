/**
 * The routes: every endpoint of DESIGN.md §5 as a function of an `HttpRequest`, independent of
 * the HTTP library that carries it. Errors become replies in the caller's API family. Every
 * request is counted and timed in the metrics; every rejected one (4xx, 5xx) goes to the
 * rejection log.
 */
import { performance } from "node:perf_hooks";
import type { LogFields } from "../src/log.js";
import { SLUICE_VERSION } from "../src/version.js";
import { IngestError, UnavailableError } from "./errors.js";
import { type HttpReply, type HttpRequest, type RequestHandler, jsonReply } from "./http/exchange.js";
import { parseQuery } from "./http/query.js";
import type { LineTally } from "./metrics.js";
import { type RejectionLog, replyReason } from "./rejection-log.js";
import { compactRoute, flushRoute, retentionRoute, walEntriesRoute, walPurgeRoute, walStatsRoute } from "./routes/admin.js";
import type { AppContext } from "./routes/context.js";
import { type ApiFamily, errorReply } from "./routes/families.js";
import { query } from "./routes/query.js";
import { writeLineProtocol } from "./routes/write-lp.js";
import { writeMsgpack } from "./routes/write-msgpack.js";
import { writePrometheus } from "./routes/write-prom.js";

type Route = (request: HttpRequest, context: AppContext) => Promise<HttpReply>;

interface Endpoint {
    readonly methods: Partial<Record<string, Route>>;
    /** The error shapes the endpoint's clients expect. */
    readonly family: ApiFamily;
    /** Open to requests without a token even when `auth.tokens` is set. */
    readonly open?: true;
}

const VERSION_HEADERS = { "x-influxdb-version": `sluice-${SLUICE_VERSION}`, "x-influxdb-build": "OSS" } as const;

const ping: Route = async () => ({ status: 204 });

/** 200 while Sluice takes writes; `warn` with the failing flushes listed (their rows are safe in the WAL). */
const health: Route = async (_request, context) => {
    const failures = context.flushFailures();
    if (!context.accepting()) return jsonReply(503, { name: "sluice", status: "fail", message: "shutting down", checks: [], version: SLUICE_VERSION });
    const walFailure = context.writer.failure;
    if (walFailure !== undefined) {
        return jsonReply(503, { name: "sluice", status: "fail", message: `the WAL refuses writes: ${walFailure.message}`, checks: [], version: SLUICE_VERSION });
    }
    const commitFailure = context.commitFailure();
    if (commitFailure !== undefined) {
        return jsonReply(503, {
            name: "sluice",
            status: "fail",
            message: `flushes are stopped (writes are kept in the WAL and buffers until they fill): ${commitFailure}`,
            checks: [],
            version: SLUICE_VERSION,
        });
    }
    const checks = failures.map((failure) => ({
        name: `flush ${failure.database}/${failure.measurement}`,
        status: "warn",
        message: failure.error,
        attempts: failure.attempts,
        next_retry_ms: failure.nextRetryMs,
    }));
    return jsonReply(200, {
        name: "sluice",
        status: failures.length === 0 ? "pass" : "warn",
        message: failures.length === 0 ? "ready for queries and writes" : "flushes are failing; writes are kept in the WAL and buffers",
        checks,
        version: SLUICE_VERSION,
    });
};

const metrics: Route = async (_request, context) => {
    return { status: 200, headers: { "content-type": context.metrics.registry.contentType }, body: await context.metrics.exposition() };
};

/** Writes are refused with 503 once shutdown began (nothing of them is stored). */
function writing(route: Route): Route {
    return async (request, context) => {
        if (!context.accepting()) throw new UnavailableError("Sluice is shutting down: retry against another instance or after restart", 5);
        return route(request, context);
    };
}

const ENDPOINTS: Readonly<Record<string, Endpoint>> = {
    "/ping": { methods: { GET: ping, HEAD: ping }, family: "v1", open: true },
    "/health": { methods: { GET: health }, family: "v2", open: true },
    "/metrics": { methods: { GET: metrics }, family: "v1" },
    "/query": { methods: { GET: query, POST: query }, family: "v1" },
    "/write": { methods: { POST: writing((request, context) => writeLineProtocol("/write", request, context)) }, family: "v1" },
    "/api/v2/write": { methods: { POST: writing((request, context) => writeLineProtocol("/api/v2/write", request, context)) }, family: "v2" },
    "/api/v3/write_lp": { methods: { POST: writing((request, context) => writeLineProtocol("/api/v3/write_lp", request, context)) }, family: "v3" },
    "/api/v1/write/msgpack": { methods: { POST: writing(writeMsgpack) }, family: "arc" },
    "/api/v1/prom/write": { methods: { POST: writing((request, context) => writePrometheus("/api/v1/prom/write", request, context)) }, family: "v1" },
    "/api/v1/write": { methods: { POST: writing((request, context) => writePrometheus("/api/v1/write", request, context)) }, family: "v1" },
    "/api/v1/flush": { methods: { POST: flushRoute }, family: "arc" },
    "/api/v1/compact": { methods: { POST: compactRoute }, family: "arc" },
    "/api/v1/retention": { methods: { POST: retentionRoute }, family: "arc" },
    "/api/v1/wal/stats": { methods: { GET: walStatsRoute }, family: "arc" },
    "/api/v1/wal/entries": { methods: { GET: walEntriesRoute }, family: "arc" },
    "/api/v1/wal/purge": { methods: { POST: walPurgeRoute }, family: "arc" },
};

/** The database a request names (`db`, `bucket`, `X-Arc-Database`), if any and readable: for the log of a rejected one. */
function databaseNamed(request: HttpRequest): string | undefined {
    const header = request.headers.get("x-arc-database");
    if (header !== undefined) return header;
    try {
        const query = parseQuery(request.rawQuery);
        return query.get("db") ?? query.get("bucket");
    } catch {
        // A query that is not valid UTF-8 (the reason of its rejection says so).
        return undefined;
    }
}

function rejectionFields(request: HttpRequest, reply: HttpReply, tally: LineTally, seconds: number, failure: Error | undefined): LogFields {
    const counted = tally.accepted + tally.rejected > 0;
    return {
        method: request.method,
        path: request.path,
        reason: failure === undefined ? replyReason(reply.body) : `internal error: ${failure.message}`,
        database: databaseNamed(request),
        lines_accepted: counted ? tally.accepted : undefined,
        lines_rejected: counted ? tally.rejected : undefined,
        ms: Math.round(seconds * 10_000) / 10,
        error: failure?.stack,
    };
}

/** The context as one request's route sees it: the same, its lines also counted in `tally` (a prototype view: ~20 ns, where a copy took µs). */
function forRequest(context: AppContext, tally: LineTally): AppContext {
    const scoped = Object.create(context) as { -readonly [K in keyof AppContext]: AppContext[K] };
    scoped.metrics = context.metrics.forRequest(tally);
    return scoped;
}

// Invariant kept: a request to an endpoint that is not open reaches its route only with a valid
// token, checked on the headers and query before any byte of its body is read.
export function createApp(context: AppContext, rejections: RejectionLog): RequestHandler {
    return async (request) => {
        const started = performance.now();
        const endpoint = Object.hasOwn(ENDPOINTS, request.path) ? ENDPOINTS[request.path] : undefined;
        const tally: LineTally = { accepted: 0, rejected: 0 };
        let reply: HttpReply;
        let failure: Error | undefined;
        if (endpoint === undefined) reply = jsonReply(404, { error: `no endpoint ${request.path}` });
        else {
            const route = endpoint.methods[request.method];
            if (route === undefined) {
                reply = jsonReply(405, { error: `${request.method} is not allowed on ${request.path}` }, { allow: Object.keys(endpoint.methods).join(", ") });
            } else {
                try {
                    if (endpoint.open !== true) context.auth.check(request, parseQuery(request.rawQuery));
                    reply = await route(request, forRequest(context, tally));
                } catch (error) {
                    if (error instanceof IngestError) reply = errorReply(endpoint.family, error);
                    else {
                        failure = error instanceof Error ? error : new Error(String(error));
                        reply = jsonReply(500, { error: `internal error: ${failure.message}` });
                    }
                }
            }
        }
        const seconds = (performance.now() - started) / 1000;
        context.metrics.request(endpoint === undefined ? "other" : request.path, reply.status, seconds);
        if (reply.status >= 400) {
            const answered = reply;
            rejections.record(reply.status, request.clientAddress?.(), () => rejectionFields(request, answered, tally, seconds, failure));
        }
        return { ...reply, headers: { ...VERSION_HEADERS, ...reply.headers } };
    };
}

/**
 * The line-protocol write endpoints (DESIGN.md §5): `/write` (InfluxDB 1.x), `/api/v2/write`
 * (2.x) and `/api/v3/write_lp` (3). Good lines are stored even when others are rejected, except
 * with `accept_partial=false`; bad input is always a 4xx, never a 5xx.
 */
import { nameProblem } from "../../src/names.js";
import { BadRequestError } from "../errors.js";
import { decodedBody } from "../http/body.js";
import type { HttpReply, HttpRequest } from "../http/exchange.js";
import { parseQuery } from "../http/query.js";
import { type Precision, parseLineProtocol } from "../lp/index.js";
import type { AppContext } from "./context.js";
import { type ApiFamily, partialWriteReply, rejectedWriteReply } from "./families.js";

type LpFamily = Exclude<ApiFamily, "arc">;

interface LpEndpoint {
    readonly family: LpFamily;
    /** The query parameter naming the database. */
    readonly databaseParam: string;
    readonly defaultPrecision: Precision;
    /** Accepted `precision` values and what each means. */
    readonly precisions: Readonly<Record<string, Precision>>;
    readonly precisionHelp: string;
}

const V3_PRECISIONS: Readonly<Record<string, Precision>> = {
    auto: "auto",
    nanosecond: "ns",
    ns: "ns",
    n: "ns",
    microsecond: "us",
    us: "us",
    u: "us",
    millisecond: "ms",
    ms: "ms",
    second: "s",
    s: "s",
};

export const LP_ENDPOINTS = {
    "/write": {
        family: "v1",
        databaseParam: "db",
        defaultPrecision: "ns",
        precisions: { n: "ns", ns: "ns", u: "us", us: "us", ms: "ms", s: "s", m: "m", h: "h" },
        precisionHelp: "use n, ns, u, us, ms, s, m or h",
    },
    "/api/v2/write": {
        family: "v2",
        databaseParam: "bucket",
        defaultPrecision: "ns",
        precisions: { ns: "ns", us: "us", ms: "ms", s: "s" },
        precisionHelp: "valid precision units are ns, us, ms, and s",
    },
    "/api/v3/write_lp": {
        family: "v3",
        databaseParam: "db",
        defaultPrecision: "auto",
        precisions: V3_PRECISIONS,
        precisionHelp: "use auto, nanosecond, microsecond, millisecond or second (or ns, us, ms, s)",
    },
} as const satisfies Readonly<Record<string, LpEndpoint>>;

export type LpPath = keyof typeof LP_ENDPOINTS;

function requiredDatabase(query: ReadonlyMap<string, string>, endpoint: LpEndpoint): string {
    const database = query.get(endpoint.databaseParam);
    if (database === undefined || database === "") {
        throw new BadRequestError(endpoint.family === "v1" ? "database is required" : `query parameter "${endpoint.databaseParam}" is required`);
    }
    const problem = nameProblem("database", database);
    if (problem !== undefined) throw new BadRequestError(problem);
    return database;
}

function precisionOf(query: ReadonlyMap<string, string>, endpoint: LpEndpoint): Precision {
    const given = query.get("precision");
    if (given === undefined || given === "") return endpoint.defaultPrecision;
    const precision = Object.hasOwn(endpoint.precisions, given) ? endpoint.precisions[given] : undefined;
    if (precision === undefined) throw new BadRequestError(`invalid precision "${given}" (${endpoint.precisionHelp})`);
    return precision;
}

function acceptPartial(query: ReadonlyMap<string, string>): boolean {
    const value = query.get("accept_partial");
    if (value === undefined || value === "true") return true;
    if (value === "false") return false;
    throw new BadRequestError(`accept_partial must be true or false, got "${value}"`);
}

export async function writeLineProtocol(path: LpPath, request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const endpoint: LpEndpoint = LP_ENDPOINTS[path];
    const query = parseQuery(request.rawQuery);
    const database = requiredDatabase(query, endpoint);
    const precision = precisionOf(query, endpoint);
    const partial = endpoint.family !== "v3" || acceptPartial(query);
    const body = await decodedBody(request, context.maxBodyBytes);
    if (body.length === 0 && endpoint.family === "v3") throw new BadRequestError("incoming write was empty");
    const parsed = parseLineProtocol(body, { database, precision, nowNs: context.nowNs(), schema: context.schema });
    context.metrics.linesRejected.inc({ endpoint: path }, parsed.rejected);
    if (!partial && parsed.rejected > 0) return rejectedWriteReply(parsed.errors[0]!);
    const misnamed = parsed.batches.map((batch) => nameProblem("measurement", batch.measurement)).find((problem) => problem !== undefined);
    if (misnamed !== undefined) throw new BadRequestError(misnamed);
    await context.writePath.write(database, parsed.batches);
    context.metrics.linesAccepted.inc({ endpoint: path }, parsed.accepted);
    return parsed.rejected > 0 ? partialWriteReply(endpoint.family, parsed.errors, parsed.rejected) : { status: 204 };
}

/** `POST /api/v1/write/msgpack`: Arc's columnar msgpack, all of a payload stored or none of it. */
import { nameProblem } from "../../src/names.js";
import { BadRequestError } from "../errors.js";
import { decodedBody } from "../http/body.js";
import type { HttpReply, HttpRequest } from "../http/exchange.js";
import { parseQuery } from "../http/query.js";
import { ARC_TIME_UNITS, type ArcTimeUnit } from "../../src/columnar/time-units.js";
import { decodeArcPayload } from "../msgpack/arc.js";
import type { AppContext } from "./context.js";

function timeUnit(query: ReadonlyMap<string, string>, fallback: ArcTimeUnit): ArcTimeUnit {
    const given = query.get("precision");
    if (given === undefined || given === "") return fallback;
    if (!(ARC_TIME_UNITS as readonly string[]).includes(given)) throw new BadRequestError(`invalid precision "${given}" (use ${ARC_TIME_UNITS.join(", ")})`);
    return given as ArcTimeUnit;
}

export async function writeMsgpack(request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const query = parseQuery(request.rawQuery);
    const database = request.headers.get("x-arc-database") ?? query.get("db") ?? "default";
    const problem = nameProblem("database", database);
    if (problem !== undefined) throw new BadRequestError(problem);
    const body = await decodedBody(request, context.maxBodyBytes, true);
    const batches = decodeArcPayload(body, { database, schema: context.schema, timeUnit: timeUnit(query, context.msgpackTimeUnit), nowNs: context.nowNs() });
    const { rows } = await context.writePath.write(database, batches);
    context.metrics.linesAccepted.inc({ endpoint: "/api/v1/write/msgpack" }, rows);
    return { status: 204 };
}

/**
 * `/query`: just enough InfluxQL for agents that manage databases at start (Telegraf sends
 * `CREATE DATABASE "telegraf"`): CREATE DATABASE and SHOW DATABASES, answered as InfluxDB 1.x
 * does. Queries over data are for the Parquet files (DuckDB and the like).
 */
import { nameProblem } from "../../src/names.js";
import { BadRequestError } from "../errors.js";
import { decodedBody } from "../http/body.js";
import { type HttpReply, type HttpRequest, jsonReply } from "../http/exchange.js";
import { parseQuery } from "../http/query.js";
import type { AppContext } from "./context.js";

type Statement = { kind: "create"; database: string } | { kind: "show" };

/** `"quoted \" name"` or a bare identifier, at the start of `text`. */
function identifier(text: string): string | undefined {
    const quoted = /^"((?:[^"\\]|\\.)*)"/.exec(text);
    if (quoted) return quoted[1]!.replace(/\\(.)/g, "$1");
    return /^[A-Za-z_][A-Za-z0-9_]*/.exec(text)?.[0];
}

function parseStatement(text: string): Statement {
    const create = /^create\s+database\s+(.*)$/is.exec(text);
    if (create) {
        const database = identifier(create[1]!.trim());
        if (database === undefined) throw new BadRequestError(`error parsing query: expected a database name in "${text}"`);
        const problem = nameProblem("database", database);
        if (problem !== undefined) throw new BadRequestError(problem);
        return { kind: "create", database };
    }
    if (/^show\s+databases$/i.test(text)) return { kind: "show" };
    throw new BadRequestError(`Sluice answers only CREATE DATABASE and SHOW DATABASES; query the Parquet files (e.g. with DuckDB) for data: "${text}"`);
}

export async function query(request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const params = parseQuery(request.rawQuery);
    const form =
        request.method === "POST" && (request.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")
            ? parseQuery((await decodedBody(request, context.maxBodyBytes)).toString("latin1"))
            : new Map<string, string>();
    const q = form.get("q") ?? params.get("q");
    if (q === undefined || q.trim() === "") throw new BadRequestError(`missing required parameter "q"`);
    const statements = q
        .split(";")
        .map((s) => s.trim())
        .filter((s) => s !== "")
        .map(parseStatement);
    const results = statements.map((statement, statement_id) => {
        if (statement.kind === "create") {
            context.databases.create(statement.database);
            return { statement_id };
        }
        return { statement_id, series: [{ name: "databases", columns: ["name"], values: context.databases.list().map((name) => [name]) }] };
    });
    return jsonReply(200, { results });
}

/**
 * `/query`: just enough InfluxQL for agents that manage databases at start (Telegraf sends
 * `CREATE DATABASE "telegraf"`), answered as InfluxDB 1.x does: CREATE DATABASE (with an
 * optional `WITH DURATION`, kept as the database's retention period), SHOW DATABASES and SHOW
 * RETENTION POLICIES. Queries over data are for the Parquet files (DuckDB and the like).
 */
import { messageOf } from "../../src/errors.js";
import { parseDuration } from "../../src/duration.js";
import { nameProblem } from "../../src/names.js";
import { BadRequestError } from "../errors.js";
import { decodedBody } from "../http/body.js";
import { type HttpReply, type HttpRequest, jsonReply } from "../http/exchange.js";
import { parseQuery } from "../http/query.js";
import type { AppContext } from "./context.js";

type Statement = { kind: "create"; database: string; durationMs?: number } | { kind: "show-databases" } | { kind: "show-retention"; database: string | undefined };

/** The statements of a query: split at `;` outside quotes (a database may be named "a;b"). */
export function splitStatements(text: string): string[] {
    const statements: string[] = [];
    let current = "";
    let quote: string | undefined;
    for (let i = 0; i < text.length; i++) {
        const c = text[i]!;
        if (quote !== undefined) {
            current += c;
            if (c === "\\" && i + 1 < text.length) current += text.charAt(++i);
            else if (c === quote) quote = undefined;
        } else if (c === '"' || c === "'") {
            quote = c;
            current += c;
        } else if (c === ";") {
            statements.push(current);
            current = "";
        } else current += c;
    }
    statements.push(current);
    return statements.map((s) => s.trim()).filter((s) => s !== "");
}

/** `"quoted \" name"` or a bare identifier at the start of `text`, and what follows it. */
function identifier(text: string): { name: string; rest: string } | undefined {
    const quoted = /^"((?:[^"\\]|\\.)*)"/.exec(text);
    if (quoted) return { name: quoted[1]!.replace(/\\(.)/g, "$1"), rest: text.slice(quoted[0].length).trim() };
    const bare = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text)?.[0];
    return bare === undefined ? undefined : { name: bare, rest: text.slice(bare.length).trim() };
}

function databaseName(text: string, statement: string): { name: string; rest: string } {
    const found = identifier(text);
    if (found === undefined) throw new BadRequestError(`error parsing query: expected a database name in "${statement}"`);
    const problem = nameProblem("database", found.name);
    if (problem !== undefined) throw new BadRequestError(problem);
    return found;
}

/** InfluxQL's `WITH DURATION d [REPLICATION n] [SHARD DURATION d] [NAME rp]`: the duration in ms (0: INF). */
function withClause(text: string, statement: string): number | undefined {
    if (text === "") return undefined;
    const match = /^with\s+(.*)$/is.exec(text);
    if (match === null) throw new BadRequestError(`error parsing query: unexpected "${text}" in "${statement}"`);
    const duration = /(?:^|\s)duration\s+(\S+)/i.exec(match[1]!)?.[1];
    if (duration === undefined) return undefined;
    if (/^inf$/i.test(duration)) return 0;
    try {
        return parseDuration(duration);
    } catch (error) {
        throw new BadRequestError(`error parsing query: ${messageOf(error)} in "${statement}"`, { cause: error });
    }
}

function parseStatement(text: string): Statement {
    const create = /^create\s+database\s+(.*)$/is.exec(text);
    if (create) {
        const { name, rest } = databaseName(create[1]!.trim(), text);
        const durationMs = withClause(rest, text);
        return durationMs === undefined ? { kind: "create", database: name } : { kind: "create", database: name, durationMs };
    }
    if (/^show\s+databases$/i.test(text)) return { kind: "show-databases" };
    const retention = /^show\s+retention\s+policies(?:\s+on\s+(.*))?$/is.exec(text);
    if (retention) return { kind: "show-retention", database: retention[1] === undefined ? undefined : databaseName(retention[1].trim(), text).name };
    throw new BadRequestError(`Sluice answers only CREATE DATABASE, SHOW DATABASES and SHOW RETENTION POLICIES; query the Parquet files (e.g. with DuckDB) for data: "${text}"`);
}

/** InfluxDB 1.x's duration format: "168h0m0s", "0s" for infinite. */
function influxDuration(ms: number): string {
    const seconds = Math.floor(ms / 1000);
    return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m${seconds % 60}s`;
}

export async function query(request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const params = parseQuery(request.rawQuery);
    const form =
        request.method === "POST" && (request.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")
            ? parseQuery((await decodedBody(request, context.maxBodyBytes)).toString("latin1"))
            : new Map<string, string>();
    const q = form.get("q") ?? params.get("q");
    if (q === undefined || q.trim() === "") throw new BadRequestError(`missing required parameter "q"`);
    const statements = splitStatements(q).map(parseStatement);
    const results = [];
    for (const [statement_id, statement] of statements.entries()) {
        switch (statement.kind) {
            case "create":
                await context.databases.create(statement.database, statement.durationMs);
                results.push({ statement_id });
                break;
            case "show-databases":
                results.push({ statement_id, series: [{ name: "databases", columns: ["name"], values: context.databases.list().map((name) => [name]) }] });
                break;
            case "show-retention": {
                const database = statement.database ?? params.get("db");
                if (database === undefined || database === "") throw new BadRequestError("database name required (SHOW RETENTION POLICIES ON <db>, or ?db=)");
                if (!context.databases.list().includes(database)) {
                    results.push({ statement_id, error: `database not found: ${database}` });
                    break;
                }
                const duration = influxDuration(context.databases.retentionOf(database));
                results.push({
                    statement_id,
                    series: [{ columns: ["name", "duration", "shardGroupDuration", "replicaN", "default"], values: [["autogen", duration, "1h0m0s", 1, true]] }],
                });
                break;
            }
        }
    }
    return jsonReply(200, { results });
}

/**
 * Operator endpoints: `POST /api/v1/flush`, `POST /api/v1/compact`, `POST /api/v1/retention`,
 * `GET /api/v1/wal/stats`, `GET /api/v1/wal/entries` and `POST /api/v1/wal/purge` (safe modes
 * only: never deletes an entry not yet in Parquet).
 */
import { parseDuration } from "../../src/duration.js";
import { messageOf } from "../../src/errors.js";
import { readWalEntries, walStats } from "../../src/wal/report.js";
import { BadRequestError, UnavailableError } from "../errors.js";
import { type HttpReply, type HttpRequest, jsonReply } from "../http/exchange.js";
import { parseQuery } from "../http/query.js";
import type { AppContext } from "./context.js";

const DEFAULT_ENTRIES_LIMIT = 100;
const MAX_ENTRIES_LIMIT = 10_000;

function nonNegative(query: ReadonlyMap<string, string>, name: string, fallback: number): number {
    const text = query.get(name);
    if (text === undefined || text === "") return fallback;
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new BadRequestError(`${name} must be a non-negative integer, got "${text}"`);
    return Number(text);
}

export async function flushRoute(_request: HttpRequest, context: AppContext): Promise<HttpReply> {
    try {
        const files = await context.flush();
        return jsonReply(200, { files: files.map(({ database, measurement, path, rows, bytes }) => ({ database, measurement, path, rows, bytes })) });
    } catch (error) {
        throw new UnavailableError(messageOf(error), 5, { cause: error });
    }
}

/** Compacts every partition holding more than one file; 200 once the swaps are durable. */
export async function compactRoute(_request: HttpRequest, context: AppContext): Promise<HttpReply> {
    try {
        return jsonReply(200, await context.compact());
    } catch (error) {
        throw new UnavailableError(`compaction failed (the lake is unchanged where it did): ${messageOf(error)}`, 5, { cause: error });
    }
}

/** Deletes the partitions past their database's retention period (`?dry_run=true`: only lists them). */
export async function retentionRoute(request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const query = parseQuery(request.rawQuery);
    const dry = query.get("dry_run") ?? "false";
    if (dry !== "true" && dry !== "false") throw new BadRequestError(`dry_run must be true or false, got "${dry}"`);
    try {
        return jsonReply(200, await context.retention(dry === "true"));
    } catch (error) {
        throw new UnavailableError(`enforcing retention failed: ${messageOf(error)}`, 5, { cause: error });
    }
}

export async function walStatsRoute(_request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const { writer } = context;
    return jsonReply(200, { ...(await walStats(writer.dir)), active_file: writer.activeFile, next_sequence: writer.nextSequence, writer: writer.stats });
}

/** Entries from sequence `from_offset` on, `limit` at a time, with where the next page starts. */
export async function walEntriesRoute(request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const query = parseQuery(request.rawQuery);
    const from = nonNegative(query, "from_offset", 0);
    const limit = Math.min(MAX_ENTRIES_LIMIT, nonNegative(query, "limit", DEFAULT_ENTRIES_LIMIT));
    const entries = [];
    for await (const entry of readWalEntries(context.writer.dir, { fromSequence: from, limit: limit + 1 })) entries.push(entry);
    const hasMore = entries.length > limit;
    const page = entries.slice(0, limit);
    const nextOffset = page.length === 0 ? from : page.at(-1)!.seq + 1;
    return jsonReply(200, { entries: page, next_offset: nextOffset, has_more: hasMore });
}

export async function walPurgeRoute(request: HttpRequest, context: AppContext): Promise<HttpReply> {
    const query = parseQuery(request.rawQuery);
    if (query.has("force")) throw new BadRequestError("force is refused over HTTP: stop the server and use `sluice wal purge --force`");
    const olderThan = query.get("older_than");
    let report;
    if (olderThan !== undefined) {
        let ageMs: number;
        try {
            ageMs = parseDuration(olderThan);
        } catch (error) {
            throw new BadRequestError(messageOf(error));
        }
        report = await context.purge({ kind: "older-than", ageMs });
    } else {
        const mode = query.get("mode") ?? "inactive";
        if (mode !== "inactive" && mode !== "all") throw new BadRequestError(`mode must be inactive or all, got "${mode}"`);
        report = await context.purge({ kind: mode });
    }
    return jsonReply(200, report);
}

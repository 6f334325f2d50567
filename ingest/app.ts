/**
 * The routes: every endpoint of DESIGN.md §5 as a function of an `HttpRequest`, independent of
 * the HTTP library that carries it.
 */
import { SLUICE_VERSION } from "../src/version.js";
import type { WalWriter } from "../src/wal/index.js";
import { walStats } from "../src/wal/report.js";
import { type HttpReply, type HttpRequest, type RequestHandler, jsonReply } from "./http/exchange.js";

export interface AppContext {
    readonly writer: WalWriter;
}

type Route = (request: HttpRequest, context: AppContext) => Promise<HttpReply>;

const routes: Readonly<Record<string, Partial<Record<string, Route>>>> = {
    "/ping": { GET: ping, HEAD: ping },
    "/health": { GET: health },
    "/api/v1/wal/stats": { GET: walStatsRoute },
};

export function createApp(context: AppContext): RequestHandler {
    return async (request) => {
        const methods = routes[request.path];
        if (methods === undefined) return jsonReply(404, { error: `no endpoint ${request.path}` });
        const route = methods[request.method];
        if (route === undefined) {
            return jsonReply(405, { error: `${request.method} is not allowed on ${request.path}` }, { allow: Object.keys(methods).join(", ") });
        }
        return route(request, context);
    };
}

async function ping(): Promise<HttpReply> {
    return { status: 204, headers: { "x-influxdb-version": `sluice-${SLUICE_VERSION}`, "x-influxdb-build": "OSS" } };
}

async function health(): Promise<HttpReply> {
    return jsonReply(200, { name: "sluice", status: "pass", message: "ready for queries and writes", version: SLUICE_VERSION });
}

async function walStatsRoute(_request: HttpRequest, { writer }: AppContext): Promise<HttpReply> {
    return jsonReply(200, { ...(await walStats(writer.dir)), active_file: writer.activeFile, next_sequence: writer.nextSequence, writer: writer.stats });
}

/**
 * The hyper-express adapter (`http.server = "hyper-express"`), on the npm build of uWebSockets.js
 * that package.json's override pins. Every reply is ended through the uWS object itself:
 * - a 204 sent through hyper-express carries `Content-Length: 9223372036854775808` (uWS 20.30
 *   prints an undefined length as INT64_MIN) and breaks keep-alive: 204s end without arguments;
 * - hyper-express's own `send` waits for a request's whole body before it answers, so a refused
 *   request (401, 413, 503) would be read to its end; uWS's `end(body, true)` answers at once
 *   and closes the connection, leaving the body unread.
 * HTTP/1.0 requests get no answer at all (unsupported on this adapter).
 *
 * Limits: bodies are left to the route (hyper-express's own limit is off) and read through the
 * shared body budget. uWS offers no hook on accepted connections, so `http.max_connections` is
 * not enforced here, and its timeouts are fixed at build time: a connection idle for 10 s
 * (before its headers, between requests, or in a stalled body) is closed; the header, request
 * and keep-alive timeout keys apply to the node adapter only.
 */
import { STATUS_CODES } from "node:http";
import HyperExpress from "hyper-express";
import type { HttpReply, HttpRequest, ListenOptions, ListeningServer, RequestHandler } from "./exchange.js";
import { jsonReply } from "./exchange.js";
import { RequestBody, framingOf } from "./request-body.js";

/** The parts of hyper-express's Response that ending a response by hand must update. */
interface ResponseState {
    completed: boolean;
    initiated: boolean;
    readonly route: { readonly app: { _resolve_pending_request(): void } };
}

/** The parts of hyper-express's Request that say whether the whole body arrived, and stop its body parser. */
interface RequestState {
    readonly received: boolean;
    _body_parser_stop(): void;
}

// Invariant kept: every reply is written once, whole, and hyper-express's pending-request count
// (which its graceful shutdown waits on) drops by one for it. Before a reply that leaves the body
// unread, hyper-express's body parser is stopped: it would otherwise go on buffering the chunks
// uWS still delivers and pause the finished uWS response, which throws and kills the process.
function send(request: HyperExpress.Request, response: HyperExpress.Response, reply: HttpReply, closeConnection: boolean): void {
    const state = response as unknown as ResponseState;
    if (state.completed) return;
    if (closeConnection) (request as unknown as RequestState)._body_parser_stop();
    response.raw.cork(() => {
        response.raw.writeStatus(`${reply.status} ${STATUS_CODES[reply.status] ?? ""}`);
        for (const [name, value] of Object.entries(reply.headers ?? {})) response.raw.writeHeader(name, value);
        if (reply.status !== 204) response.raw.end(reply.body ?? "", closeConnection);
        else {
            // Any argument, even undefined, makes uWS print a Content-Length; a 204 must have none.
            // The client closes on the header (there is no unread body behind a 204).
            if (closeConnection) response.raw.writeHeader("connection", "close");
            response.raw.endWithoutBody();
        }
    });
    state.initiated = true;
    state.completed = true;
    state.route.app._resolve_pending_request();
}

function toRequest(request: HyperExpress.Request, body: RequestBody): HttpRequest {
    const headers = new Map<string, string>(Object.entries(request.headers as Record<string, string>));
    // hyper-express types path_query as a string, but it is undefined when the URL has no query.
    const rawQuery = (request.path_query as string | undefined) ?? "";
    // hyper-express's `ip` throws once the request has ended.
    const clientAddress = () => {
        try {
            return request.ip;
        } catch {
            return undefined;
        }
    };
    return { method: request.method, path: request.path, rawQuery, headers, body, clientAddress };
}

export async function listenHyperExpress(handler: RequestHandler, options: ListenOptions): Promise<ListeningServer> {
    // auto_close off: shutdown is Sluice's (hyper-express would close on SIGINT/SIGTERM itself).
    const server = new HyperExpress.Server({ max_body_length: Number.MAX_SAFE_INTEGER, fast_buffers: true, auto_close: false });
    let closing = false;
    const serve = async (request: HyperExpress.Request, response: HyperExpress.Response) => {
        const headers = request.headers as Record<string, string | undefined>;
        const body = new RequestBody(
            {
                framing: framingOf(headers["content-length"], headers["transfer-encoding"]),
                readable: request,
                complete: () => (request as unknown as RequestState).received,
            },
            options.budget.lease(),
        );
        let reply: HttpReply;
        try {
            reply = await handler(toRequest(request, body));
        } catch (error) {
            reply = jsonReply(500, { error: `internal error: ${(error as Error).message}` });
        } finally {
            body.lease.release();
        }
        send(request, response, reply, closing || !body.fullyRead);
    };
    const route = (request: HyperExpress.Request, response: HyperExpress.Response) => void serve(request, response);
    server.any("/*", route);
    server.set_not_found_handler(route);
    await server.listen(options.port, options.host);
    return {
        host: options.host,
        port: server.port,
        close: async () => {
            closing = true;
            // uWS 20.30's App.close() (missing from its types) closes every connection; the listen
            // socket is closed through hyper-express first, so that it is never closed twice.
            const closeAll = () => {
                server.close();
                (server.uws_instance as unknown as { close(): void }).close();
            };
            const deadline = setTimeout(closeAll, options.closeGraceMs);
            deadline.unref();
            await server.shutdown();
            clearTimeout(deadline);
            // Idle keep-alive connections would otherwise stay open until uWS's idle timeout.
            closeAll();
        },
    };
}

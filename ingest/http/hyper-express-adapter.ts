/**
 * The hyper-express adapter (`http.server = "hyper-express"`), on the npm build of uWebSockets.js
 * that package.json's override pins. Two defects of that pairing are handled here: a 204 sent
 * through hyper-express carries `Content-Length: 9223372036854775808` (uWS 20.30 prints an
 * undefined length as INT64_MIN) and breaks keep-alive, so 204s are ended through the uWS
 * object directly; and HTTP/1.0 requests get no answer at all (unsupported on this adapter).
 */
import { STATUS_CODES } from "node:http";
import HyperExpress from "hyper-express";
import type { HttpReply, ListenOptions, ListeningServer, RequestHandler } from "./exchange.js";
import { jsonReply } from "./exchange.js";

/** The parts of hyper-express's Response that ending a response by hand must update. */
interface ResponseState {
    completed: boolean;
    initiated: boolean;
    readonly route: { readonly app: { _resolve_pending_request(): void } };
}

function endWithoutBody(response: HyperExpress.Response, reply: HttpReply): void {
    const state = response as unknown as ResponseState;
    if (state.completed) return;
    response.raw.cork(() => {
        response.raw.writeStatus(`${reply.status} ${STATUS_CODES[reply.status] ?? ""}`);
        for (const [name, value] of Object.entries(reply.headers ?? {})) response.raw.writeHeader(name, value);
        response.raw.endWithoutBody();
    });
    state.initiated = true;
    state.completed = true;
    state.route.app._resolve_pending_request();
}

function send(response: HyperExpress.Response, reply: HttpReply, closeConnection: boolean): void {
    if (reply.status === 204) {
        endWithoutBody(response, reply);
        return;
    }
    response.status(reply.status);
    for (const [name, value] of Object.entries(reply.headers ?? {})) response.header(name, value);
    response.send(reply.body === undefined ? "" : reply.body, closeConnection);
}

export async function listenHyperExpress(handler: RequestHandler, options: ListenOptions): Promise<ListeningServer> {
    const server = new HyperExpress.Server({ max_body_length: options.maxBodyBytes, fast_buffers: true });
    let closing = false;
    const serve = async (request: HyperExpress.Request, response: HyperExpress.Response) => {
        let reply: HttpReply;
        try {
            const body = await request.buffer();
            const headers = new Map<string, string>(Object.entries(request.headers as Record<string, string>));
            // hyper-express types path_query as a string, but it is undefined when the URL has no query.
            const rawQuery = (request.path_query as string | undefined) ?? "";
            reply = await handler({ method: request.method, path: request.path, rawQuery, headers, body });
        } catch (error) {
            reply = jsonReply(500, { error: `internal error: ${(error as Error).message}` });
        }
        send(response, reply, closing);
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
            await server.shutdown();
        },
    };
}

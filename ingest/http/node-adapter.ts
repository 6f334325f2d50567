/** The `node:http` adapter (the default `http.server`). */
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type HttpReply, type HttpRequest, type ListenOptions, type ListeningServer, type RequestHandler, jsonReply } from "./exchange.js";

class BodyTooLargeError extends Error {}

/** How long a shutdown waits for busy keep-alive connections before it cuts them. */
const CLOSE_DEADLINE_MS = 10_000;

export async function listenNode(handler: RequestHandler, options: ListenOptions): Promise<ListeningServer> {
    let closing = false;
    const server = createServer((req, res) => {
        // Once shutdown began, every answer closes its connection, so busy clients let go.
        if (closing) res.setHeader("connection", "close");
        void serve(handler, options, req, res);
    });
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(options.port, options.host, () => {
            server.off("error", reject);
            resolve();
        });
    });
    const address = server.address() as AddressInfo;
    return {
        host: options.host,
        port: address.port,
        close: () =>
            new Promise<void>((resolve, reject) => {
                closing = true;
                const deadline = setTimeout(() => {
                    server.closeAllConnections();
                }, CLOSE_DEADLINE_MS);
                deadline.unref();
                server.close((error) => {
                    clearTimeout(deadline);
                    if (error) reject(error);
                    else resolve();
                });
                server.closeIdleConnections();
            }),
    };
}

async function serve(handler: RequestHandler, options: ListenOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: HttpReply;
    try {
        let body: Buffer | undefined;
        try {
            body = await readBody(req, options.maxBodyBytes);
        } catch (error) {
            if (!(error instanceof BodyTooLargeError)) throw error;
            res.setHeader("connection", "close");
        }
        reply = await handler({ ...toRequest(req, body ?? Buffer.alloc(0)), ...(body === undefined ? { oversized: true } : {}) });
    } catch (error) {
        reply = jsonReply(500, { error: `internal error: ${(error as Error).message}` });
    }
    const body = reply.body === undefined ? undefined : Buffer.from(reply.body);
    try {
        res.writeHead(reply.status, { ...reply.headers, ...(body === undefined || reply.status === 204 ? {} : { "content-length": String(body.length) }) });
    } catch (error) {
        const failure = Buffer.from(JSON.stringify({ error: `internal error: ${(error as Error).message}` }));
        res.writeHead(500, { "content-type": "application/json; charset=utf-8", "content-length": String(failure.length) });
        res.end(failure);
        return;
    }
    res.end(reply.status === 204 ? undefined : body);
}

function toRequest(req: IncomingMessage, body: Buffer): HttpRequest {
    const target = req.url ?? "/";
    const at = target.indexOf("?");
    const headers = new Map<string, string>();
    for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    return { method: req.method ?? "GET", path: at < 0 ? target : target.slice(0, at), rawQuery: at < 0 ? "" : target.slice(at + 1), headers, body };
}

// Invariant kept: never holds more than `limit` body bytes in memory.
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) {
        req.resume();
        return Promise.reject(new BodyTooLargeError());
    }
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        req.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > limit) {
                req.removeAllListeners("data");
                req.resume();
                reject(new BodyTooLargeError());
                return;
            }
            chunks.push(chunk);
        });
        req.on("end", () => {
            resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
        });
        req.on("error", reject);
    });
}

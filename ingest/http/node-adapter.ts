/**
 * The `node:http` adapter (the default `http.server`), or `node:https` with TLS credentials.
 * Limits: `http.max_connections` (at the cap a new connection closes an idle one, see
 * ConnectionTable), and the header, request and keep-alive timeouts, checked every
 * `connectionsCheckingInterval`; with TLS, a connection gets as long for its handshake as for its
 * headers. `Expect: 100-continue` is answered only when a route starts reading the body, so a
 * refused request (401, 413, 503) never gets it sent.
 */
import { type IncomingMessage, type ServerOptions, type ServerResponse, createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { ConnectionTable } from "./connection-table.js";
import { type HttpReply, type HttpRequest, type ListenOptions, type ListeningServer, type RequestHandler, jsonReply } from "./exchange.js";
import { RequestBody, framingOf } from "./request-body.js";
import type { TlsCredentials } from "./tls.js";

/** The check interval of the header and request timeouts: a quarter of the shorter one, within [25 ms, 1 s]. */
function checkingIntervalMs(options: ListenOptions): number {
    return Math.max(25, Math.min(1000, Math.floor(Math.min(options.headersTimeoutMs, options.requestTimeoutMs) / 4)));
}

/** How often connections closed at the cap are reported at most. */
const REPORT_EVERY_MS = 10_000;

/** Counts connections closed at `http.max_connections` and logs them at most every 10 s. */
function limitReporter(options: ListenOptions): (refused: boolean) => void {
    let evicted = 0;
    let refused = 0;
    let reportedAt = Number.NEGATIVE_INFINITY;
    return (newOne) => {
        if (newOne) refused++;
        else evicted++;
        if (Date.now() - reportedAt < REPORT_EVERY_MS) return;
        reportedAt = Date.now();
        options.log.warn(
            `http.max_connections (${options.maxConnections}) reached: closed ${evicted} idle connections to admit new ones and refused ${refused} while all were busy (since the last report)`,
        );
        evicted = 0;
        refused = 0;
    };
}

/** The client's address and port: with the server's, they identify a connection among the open ones. */
function peerOf(socket: Socket): string | undefined {
    return socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress} ${socket.remotePort}`;
}

/**
 * The accepted TCP sockets by peer. The connection table counts accepted sockets, from their
 * first byte; with TLS a request's socket is the TLS socket around one, which has the same peer.
 */
class AcceptedSockets {
    readonly #byPeer = new Map<string, Socket>();

    accepted(socket: Socket): void {
        const peer = peerOf(socket);
        if (peer === undefined) return;
        this.#byPeer.set(peer, socket);
        socket.once("close", () => {
            if (this.#byPeer.get(peer) === socket) this.#byPeer.delete(peer);
        });
    }

    /** The accepted socket under `socket` (itself, without TLS). */
    of(socket: Socket): Socket {
        const peer = peerOf(socket);
        return (peer === undefined ? undefined : this.#byPeer.get(peer)) ?? socket;
    }
}

export async function listenNode(handler: RequestHandler, options: ListenOptions, tls?: TlsCredentials): Promise<ListeningServer> {
    let closing = false;
    const limits: ServerOptions = {
        headersTimeout: options.headersTimeoutMs,
        requestTimeout: options.requestTimeoutMs,
        connectionsCheckingInterval: checkingIntervalMs(options),
    };
    const server = tls === undefined ? createHttpServer(limits) : createHttpsServer({ ...limits, cert: tls.cert, key: tls.key, handshakeTimeout: options.headersTimeoutMs });
    server.keepAliveTimeout = options.keepAliveTimeoutMs;
    const connections = new ConnectionTable<Socket>(options.maxConnections);
    const accepted = new AcceptedSockets();
    const report = limitReporter(options);
    server.on("connection", (socket: Socket) => {
        accepted.accepted(socket);
        const closed = connections.opened(socket);
        if (closed !== undefined) report(closed === socket);
        socket.once("close", () => {
            connections.closed(socket);
        });
    });
    const onRequest = (expectsContinue: boolean) => (req: IncomingMessage, res: ServerResponse) => {
        const connection = accepted.of(req.socket);
        connections.requestStarted(connection);
        res.once("close", () => {
            connections.requestEnded(connection);
        });
        void serve(handler, options, req, res, expectsContinue, () => closing);
    };
    server.on("request", onRequest(false));
    server.on("checkContinue", onRequest(true));
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
                }, options.closeGraceMs);
                deadline.unref();
                server.close((error) => {
                    clearTimeout(deadline);
                    if (error) reject(error);
                    else resolve();
                });
                server.closeIdleConnections();
                connections.closeIdle();
            }),
    };
}

async function serve(handler: RequestHandler, options: ListenOptions, req: IncomingMessage, res: ServerResponse, expectsContinue: boolean, closing: () => boolean): Promise<void> {
    const body = new RequestBody(
        {
            framing: framingOf(req.headers["content-length"], req.headers["transfer-encoding"]),
            readable: req,
            complete: () => req.complete,
            ...(expectsContinue
                ? {
                      beforeRead: () => {
                          res.writeContinue();
                      },
                  }
                : {}),
        },
        options.budget.lease(),
    );
    let reply: HttpReply;
    try {
        reply = await handler(toRequest(req, body));
    } catch (error) {
        reply = jsonReply(500, { error: `internal error: ${(error as Error).message}` });
    } finally {
        body.lease.release();
    }
    // Once shutdown began, every answer closes its connection, so busy clients let go; a body
    // left unread is never read: its connection closes, after a linger.
    if (closing() || !body.fullyRead) res.setHeader("connection", "close");
    if (!body.fullyRead) lingerOnClose(req);
    const bytes = reply.body === undefined ? undefined : Buffer.from(reply.body);
    try {
        res.writeHead(reply.status, { ...reply.headers, ...(bytes === undefined || reply.status === 204 ? {} : { "content-length": String(bytes.length) }) });
    } catch (error) {
        const failure = Buffer.from(JSON.stringify({ error: `internal error: ${(error as Error).message}` }));
        res.writeHead(500, { "content-type": "application/json; charset=utf-8", "content-length": String(failure.length) });
        res.end(failure);
        return;
    }
    res.end(reply.status === 204 ? undefined : bytes);
}

/**
 * How long a connection whose body was left unread stays half-closed after its reply: closing a
 * socket with unread bytes sends a reset, which can reach the client before it has read the reply
 * (a 401 turns into EPIPE). Node's http server calls `destroySoon` once the reply is written; here
 * it sends FIN and closes when the client does, or after this long (Go's net/http waits as long).
 */
const LINGER_MS = 500;

// Invariant kept: a body left unread is not read meanwhile either. Once the reply is written,
// node:http "dumps" a body nobody consumed (reads and discards it to its end: an attacker's
// bandwidth turned into our CPU) and then calls `destroySoon`. Pausing the request there, before
// the dump's resume runs, keeps the socket stopped where backpressure stopped it: the client's
// writes stall on TCP flow control while it reads the reply.
function lingerOnClose(req: IncomingMessage): void {
    const socket = req.socket;
    socket.destroySoon = () => {
        req.pause();
        socket.end();
        const timer = setTimeout(() => socket.destroy(), LINGER_MS);
        timer.unref();
        socket.once("close", () => {
            clearTimeout(timer);
        });
    };
}

function toRequest(req: IncomingMessage, body: RequestBody): HttpRequest {
    const target = req.url ?? "/";
    const at = target.indexOf("?");
    const headers = new Map<string, string>();
    for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    return {
        method: req.method ?? "GET",
        path: at < 0 ? target : target.slice(0, at),
        rawQuery: at < 0 ? "" : target.slice(at + 1),
        headers,
        body,
        clientAddress: () => req.socket.remoteAddress,
    };
}

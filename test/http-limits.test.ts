/**
 * The limits of issue 13 on the HTTP side, with small limits so that each test is quick: the
 * token is checked before a body is read, the body budget (wait, then 503), Content-Length above
 * the body limit, the connection cap and the header / request / keep-alive timeouts, the
 * descriptor arithmetic, the bounded shutdown and the reload of tokens.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/load.js";
import { UnavailableError } from "../ingest/errors.js";
import { BodyBudget } from "../ingest/http/body-budget.js";
import { ConnectionTable } from "../ingest/http/connection-table.js";
import { decodedBody, gunzipWithin } from "../ingest/http/body.js";
import type { HttpRequest } from "../ingest/http/exchange.js";
import { AUTO_MAX_CONNECTIONS, DESCRIPTOR_RESERVE, HttpLimitError, checkHttpKeys, connectionLimit, processDescriptors } from "../ingest/http/limits.js";
import { RequestBody } from "../ingest/http/request-body.js";
import { ShutdownTimeoutError } from "../src/server.js";
import { tempDir } from "./helpers/batches.js";
import { walFiles } from "./helpers/parquet.js";
import { type TestServer, startTestServer } from "./helpers/server.js";

const ADAPTERS = ["node", "hyper-express"] as const;

/** A raw TCP connection: what it received, and when the server closed it. */
interface RawConnection {
    write(text: string | Buffer): void;
    received(): string;
    /** Resolves once the server closed (or reset) the connection, with the ms since connecting. */
    readonly closed: Promise<number>;
    destroy(): void;
}

const open = new Set<RawConnection>();

async function rawConnection(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    const socket = connect({ host: hostname, port: Number(port) });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const t0 = performance.now();
    let text = "";
    socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
    socket.on("error", () => undefined);
    const closed = new Promise<number>((resolve) =>
        socket.once("close", () => {
            resolve(performance.now() - t0);
        }),
    );
    const connection: RawConnection = {
        write: (data) => socket.write(data),
        received: () => text,
        closed,
        destroy: () => socket.destroy(),
    };
    open.add(connection);
    return connection;
}

/** Resolves with the first value `probe` gives that is not undefined, polling every 20 ms. */
async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
        const value = probe();
        if (value !== undefined) return value;
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

function head(method: string, path: string, headers: Record<string, string | number>): string {
    return [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join("\r\n") + "\r\n\r\n";
}

function statusOf(response: string): number {
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
}

afterEach(() => {
    for (const connection of open) connection.destroy();
    open.clear();
});

describe("body budget", () => {
    it("grants within its capacity, makes others wait in line and refuses with 503 after the wait", async () => {
        const budget = new BodyBudget(100, 200);
        const a = budget.lease();
        const b = budget.lease();
        const c = budget.lease();
        await a.hold(60);
        const bWaits = b.hold(50);
        const cWaits = c.hold(10);
        expect(budget.held).toBe(60);
        a.release();
        await bWaits;
        await cWaits;
        expect(budget.held).toBe(60);
        const d = budget.lease();
        const refused = await d.hold(50).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(UnavailableError);
        expect((refused as UnavailableError).retryAfterSeconds).toBe(1);
        expect((refused as UnavailableError).message).toMatch(/http\.max_inflight_body_bytes \(100 bytes; 60 held, 50 more asked\)/);
        b.release();
        c.release();
        expect(budget.held).toBe(0);
    });

    it("lets one request exceed the capacity when it holds everything held (a large gzipped body)", async () => {
        const budget = new BodyBudget(100, 50);
        const alone = budget.lease();
        await alone.hold(80);
        await alone.hold(90);
        expect(budget.held).toBe(170);
        const other = budget.lease();
        await expect(other.hold(1)).rejects.toBeInstanceOf(UnavailableError);
        alone.release();
        await other.hold(100);
        expect(budget.held).toBe(100);
    });

    it("serves a request that already holds bytes before new ones, and never counts a released lease", async () => {
        const budget = new BodyBudget(100, 300);
        const reading = budget.lease();
        await reading.hold(40);
        const newcomer = budget.lease();
        const waiting = newcomer.hold(70);
        await reading.hold(20);
        expect(budget.held).toBe(60);
        const gone = budget.lease();
        const goneWaits = gone.hold(30);
        gone.release();
        reading.release();
        await waiting;
        await goneWaits;
        expect(budget.held).toBe(70);
    });
});

describe("request bodies", () => {
    function fakeRequest(body: Buffer, headers: Record<string, string>, budget: BodyBudget): HttpRequest {
        const chunks = [body];
        const readable = {
            on: () => readable,
            pause: () => readable,
            unpipe: () => readable,
            pipe: (sink: NodeJS.WritableStream) => {
                for (const chunk of chunks) sink.write(chunk);
                sink.end();
                return sink;
            },
        };
        const requestBody = new RequestBody({ framing: { kind: "length", bytes: body.length }, readable, complete: () => true }, budget.lease());
        return { method: "POST", path: "/write", rawQuery: "", headers: new Map(Object.entries(headers)), body: requestBody };
    }

    it("counts the raw body and every inflated step against the budget", async () => {
        const text = Buffer.from("m f=1 1\n".repeat(200_000));
        const gz = gzipSync(text);
        const budget = new BodyBudget(64 * 1024 * 1024);
        const request = fakeRequest(gz, { "content-encoding": "gzip" }, budget);
        expect((await decodedBody(request, text.length)).equals(text)).toBe(true);
        expect(budget.held).toBe(gz.length + text.length);
        request.body.lease.release();
        expect(budget.held).toBe(0);
    });

    it("refuses an unknown Content-Encoding before reading the body", async () => {
        const budget = new BodyBudget(1024);
        const request = fakeRequest(Buffer.from("m f=1"), { "content-encoding": "br" }, budget);
        await expect(decodedBody(request, 1024)).rejects.toMatchObject({ status: 415 });
        expect(request.body.fullyRead).toBe(false);
        expect(budget.held).toBe(0);
    });

    it("gunzip stops at the limit (413) and names bad gzip (400)", async () => {
        const held: number[] = [];
        await expect(gunzipWithin(gzipSync(Buffer.alloc(1_000_000)), 100_000, async (bytes) => void held.push(bytes))).rejects.toMatchObject({ status: 413 });
        expect(held.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(100_000);
        await expect(gunzipWithin(Buffer.from("not gzip"), 100)).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/not valid gzip/) });
    });
});

describe("connection table", () => {
    class Connection {
        destroyed = false;
        destroy(): void {
            this.destroyed = true;
        }
    }

    it("at the cap closes a never-used connection first, then the keep-alive one idle longest, never a busy one", () => {
        const table = new ConnectionTable<Connection>(3);
        const [a, b, c, d, e, f] = [new Connection(), new Connection(), new Connection(), new Connection(), new Connection(), new Connection()];
        expect([table.opened(a), table.opened(b), table.opened(c)]).toEqual([undefined, undefined, undefined]);
        table.requestStarted(a);
        table.requestEnded(a);
        // a has been served and is idle; b and c never sent anything: b, the older, goes first.
        expect(table.opened(d)).toBe(b);
        // With no never-used connection left, the keep-alive one idle longest goes, never a busy one.
        table.requestStarted(c);
        table.requestStarted(d);
        expect(table.opened(e)).toBe(a);
        expect([a.destroyed, b.destroyed, c.destroyed, d.destroyed]).toEqual([true, true, false, false]);
        // All busy: the new connection itself is closed.
        table.requestStarted(e);
        expect(table.opened(f)).toBe(f);
        expect(f.destroyed).toBe(true);
        expect(table.size).toBe(3);
        table.closed(c);
        expect(table.size).toBe(2);
        table.requestEnded(d);
        table.closeIdle();
        expect([d.destroyed, e.destroyed]).toEqual([true, false]);
        expect(table.size).toBe(1);
    });
});

describe("descriptor arithmetic", () => {
    it("takes the most connections that fit when 0, refuses a value that does not fit, saying why", () => {
        expect(connectionLimit(0, { limit: 1024, open: 30 })).toBe(1024 - 30 - DESCRIPTOR_RESERVE);
        expect(connectionLimit(0, { limit: 1_000_000, open: 30 })).toBe(AUTO_MAX_CONNECTIONS);
        expect(connectionLimit(500, { limit: 1024, open: 30 })).toBe(500);
        expect(() => connectionLimit(2000, { limit: 1024, open: 30 })).toThrow(HttpLimitError);
        expect(() => connectionLimit(2000, { limit: 1024, open: 30 })).toThrow(
            /http\.max_connections = 2000 does not fit: the file-descriptor limit \(RLIMIT_NOFILE\) is 1024, 30 are open and 128 are kept for the WAL.*at most 866 connections fit/,
        );
        expect(() => connectionLimit(0, { limit: 150, open: 20 })).toThrow(/too few file descriptors to serve.*leaves 2 for connections; raise the limit/);
        expect(connectionLimit(0, { limit: undefined, open: undefined })).toBe(AUTO_MAX_CONNECTIONS);
        expect(connectionLimit(70_000, { limit: undefined, open: undefined })).toBe(70_000);
    });

    it("reads the soft RLIMIT_NOFILE and the open descriptors from /proc", async () => {
        const dir = await tempDir("sluice-proc-");
        try {
            await writeFile(
                join(dir.path, "limits"),
                "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 4096                 files     \n",
            );
            await mkdir(join(dir.path, "fd"));
            for (const fd of ["0", "1", "2", "7"]) await writeFile(join(dir.path, "fd", fd), "");
            expect(await processDescriptors(dir.path)).toEqual({ limit: 1024, open: 4 });
            expect(await processDescriptors(join(dir.path, "missing"))).toEqual({ limit: undefined, open: undefined });
            // This process: stdin, stdout and stderr at least, and the limit Node raised the soft one to.
            const self = await processDescriptors();
            expect(self.open).toBeGreaterThanOrEqual(3);
            expect(self.limit).toBe(Number(/^Max open files\s+(\d+)/m.exec(await readFile("/proc/self/limits", "utf8"))![1]));
        } finally {
            await dir.cleanup();
        }
    });

    it("refuses a body budget below the body limit and a header timeout above the request timeout", () => {
        const config = (flags: Record<string, unknown>) => loadConfig({ env: {}, flags });
        expect(() => {
            checkHttpKeys(config({ "http.max_inflight_body_bytes": "1MiB", "http.max_body_bytes": "2MiB" }));
        }).toThrow(/max_inflight_body_bytes \(1048576\) is below http\.max_body_bytes/);
        expect(() => {
            checkHttpKeys(config({ "http.headers_timeout_ms": 5000, "http.request_timeout_ms": 1000 }));
        }).toThrow(/headers_timeout_ms \(5000\) is above http\.request_timeout_ms/);
        expect(() => {
            checkHttpKeys(config({}));
        }).not.toThrow();
    });
});

describe.each(ADAPTERS)("limits on %s", (adapter) => {
    let t: TestServer | undefined;
    afterEach(async () => {
        await t?.stop();
        t = undefined;
    });
    const start = async (settings: Record<string, unknown> = {}) => (t = await startTestServer(adapter, settings));

    it("answers 401 from the headers alone and closes, never reading the body", async () => {
        await start({ "auth.tokens": ["s3cret"] });
        const connection = await rawConnection(t!.url);
        connection.write(head("POST", "/write?db=a", { "content-length": 10 * 1024 * 1024, "content-type": "text/plain" }));
        await connection.closed;
        expect(statusOf(connection.received())).toBe(401);
        expect(connection.received()).toMatch(/\r\nconnection: close\r\n/i);
        const allowed = await fetch(`${t!.url}/write?db=a`, { method: "POST", body: "m f=1", headers: { authorization: "Token s3cret" } });
        expect(allowed.status).toBe(204);
    });

    it("keeps serving while clients stream large bodies without a token (node:http clients read their 401)", async () => {
        await start({ "auth.tokens": ["s3cret"] });
        const body = Buffer.alloc(16 * 1024 * 1024, "m f=1 1\n");
        const post = () =>
            new Promise<number | string>((resolve) => {
                const request = httpRequest(`${t!.url}/write?db=a`, { method: "POST", agent: false, headers: { "content-length": body.length } }, (response) => {
                    response.resume();
                    resolve(response.statusCode ?? 0);
                });
                request.on("error", (error: NodeJS.ErrnoException) => {
                    resolve(error.code ?? error.message);
                });
                request.end(body);
            });
        const outcomes = await Promise.all(Array.from({ length: 12 }, post));
        // uWS closes at once after its answer (node lingers): a client still sending may see the reset first.
        for (const outcome of outcomes) expect(adapter === "node" ? [401] : [401, "EPIPE", "ECONNRESET"]).toContain(outcome);
        expect((await fetch(`${t!.url}/health`)).status).toBe(200);
        const allowed = await fetch(`${t!.url}/write?db=a`, { method: "POST", body: "m f=1", headers: { authorization: "Token s3cret" } });
        expect(allowed.status).toBe(204);
    });

    it("answers 413 for a Content-Length above http.max_body_bytes without reading the body", async () => {
        await start({ "http.max_body_bytes": 4096 });
        const connection = await rawConnection(t!.url);
        connection.write(head("POST", "/api/v2/write?bucket=b", { "content-length": 5000 }));
        await connection.closed;
        expect(statusOf(connection.received())).toBe(413);
        expect(connection.received()).toMatch(/"code":"request too large"/);
    });

    it("holds request bodies within http.max_inflight_body_bytes: a body that does not fit waits, then gets 503 with Retry-After", async () => {
        const limit = 64 * 1024;
        await start({ "http.max_body_bytes": limit, "http.max_inflight_body_bytes": limit });
        const line = "m f=1 1\n";
        const body = line.repeat(Math.floor((60 * 1024) / line.length));
        // A slow client holds 60 KiB of the 64 KiB: it sent its headers and half its body.
        const slow = await rawConnection(t!.url);
        slow.write(head("POST", "/write?db=slow", { "content-length": body.length }) + body.slice(0, body.length / 2));
        await new Promise((resolve) => setTimeout(resolve, 200));
        const t0 = performance.now();
        const refused = await fetch(`${t!.url}/write?db=other`, { method: "POST", body: line.repeat(1500) });
        expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
        expect(refused.status).toBe(503);
        expect(refused.headers.get("retry-after")).toBe("1");
        expect(await refused.text()).toMatch(/http\.max_inflight_body_bytes/);
        // Small bodies that fit in what is left go on.
        expect((await fetch(`${t!.url}/write?db=small`, { method: "POST", body: line })).status).toBe(204);
        slow.write(body.slice(body.length / 2));
        await until("the slow request's answer", () => (statusOf(slow.received()) === 0 ? undefined : true));
        expect(statusOf(slow.received())).toBe(204);
        expect((await fetch(`${t!.url}/write?db=other`, { method: "POST", body: line.repeat(1500) })).status).toBe(204);
    });

    it("reads a chunked body within the limits (413 above http.max_body_bytes)", async () => {
        await start({ "http.max_body_bytes": 4096 });
        const chunked = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n`;
        const ok = await rawConnection(t!.url);
        ok.write(head("POST", "/write?db=c", { "transfer-encoding": "chunked" }) + chunked("m f=1 1\n") + chunked("m f=2 2\n") + "0\r\n\r\n");
        await until("the chunked answer", () => (statusOf(ok.received()) === 0 ? undefined : true));
        expect(statusOf(ok.received())).toBe(204);
        const big = await rawConnection(t!.url);
        big.write(head("POST", "/write?db=c", { "transfer-encoding": "chunked" }) + chunked("m f=1 1\n".repeat(300)) + chunked("m f=1 1\n".repeat(300)) + "0\r\n\r\n");
        await big.closed;
        expect(statusOf(big.received())).toBe(413);
        expect(t!.server.context.buffers.get("c", "m")?.rows).toBe(2);
    });

    it("refuses to start when http.max_connections would not leave descriptors for the WAL and flushes", async () => {
        await expect(startTestServer(adapter, { "http.max_connections": 100_000_000 })).rejects.toThrow(
            /http\.max_connections = 100000000 does not fit: the file-descriptor limit/,
        );
        await expect(startTestServer(adapter, { "http.max_inflight_body_bytes": 1024, "http.max_body_bytes": 4096 })).rejects.toBeInstanceOf(HttpLimitError);
    });

    it("ends a shutdown that cannot finish within shutdown_timeout_ms, naming what is not in Parquet and keeping the WAL", async () => {
        const hanging = { encode: () => new Promise<never>(() => undefined) };
        const dir = await tempDir("sluice-shutdown-");
        try {
            t = await startTestServer(adapter, { shutdown_timeout_ms: 500 }, { encoder: hanging }, dir.path);
            expect((await fetch(`${t.url}/write?db=stuck`, { method: "POST", body: "cpu f=1 1\ncpu f=2 2\n" })).status).toBe(204);
            const t0 = performance.now();
            const outcome = await t.server.close().catch((error: unknown) => error);
            expect(performance.now() - t0).toBeLessThan(10_000);
            expect(outcome).toBeInstanceOf(ShutdownTimeoutError);
            expect((outcome as Error).message).toMatch(/did not end within shutdown_timeout_ms \(500 ms\).*they stay in the WAL/);
            expect((outcome as Error).message).toMatch(/a flush was still under way|stuck\/cpu \(2 rows\)/);
            expect(await walFiles(dir.path)).not.toEqual([]);
        } finally {
            t = undefined;
            await rm(dir.path, { recursive: true, force: true });
        }
    });

    it("reloads auth.tokens while running; other changed keys wait for a restart", async () => {
        await start({ "auth.tokens": ["old"] });
        const write = (token: string) => fetch(`${t!.url}/write?db=r`, { method: "POST", body: "m f=1", headers: { authorization: `Token ${token}` } });
        expect((await write("old")).status).toBe(204);
        const next = loadConfig({
            env: {},
            flags: { data_dir: t!.dataDir, "http.host": "127.0.0.1", "http.port": 0, "http.server": adapter, "auth.tokens": ["new"], "flush.max_rows": 7 },
        });
        expect(t!.server.reload(next)).toEqual({ applied: ["auth.tokens"], needRestart: ["flush.max_rows"] });
        expect((await write("old")).status).toBe(401);
        expect((await write("new")).status).toBe(204);
    });
});

describe("node:http connection limits and timeouts", () => {
    let t: TestServer | undefined;
    afterEach(async () => {
        await t?.stop();
        t = undefined;
    });

    it("closes a connection that sends no headers after http.headers_timeout_ms, and one stuck in its headers with 408", async () => {
        t = await startTestServer("node", { "http.headers_timeout_ms": 300, "http.request_timeout_ms": 5000 });
        const silent = await rawConnection(t.url);
        const partial = await rawConnection(t.url);
        partial.write("POST /write?db=x HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        const ms = await silent.closed;
        expect(ms).toBeGreaterThanOrEqual(290);
        expect(ms).toBeLessThan(4000);
        await partial.closed;
        expect(statusOf(partial.received())).toBe(408);
    });

    it("closes a request whose body does not arrive within http.request_timeout_ms, nothing stored", async () => {
        t = await startTestServer("node", { "http.headers_timeout_ms": 200, "http.request_timeout_ms": 600 });
        const trickle = await rawConnection(t.url);
        trickle.write(head("POST", "/write?db=slow", { "content-length": 100 }) + "m f=1");
        const ms = await trickle.closed;
        expect(ms).toBeGreaterThanOrEqual(590);
        expect(ms).toBeLessThan(5000);
        expect(t.server.context.buffers.get("slow", "m")).toBeUndefined();
    });

    it("closes an idle keep-alive connection after http.keep_alive_timeout_ms", async () => {
        t = await startTestServer("node", { "http.keep_alive_timeout_ms": 300 });
        const connection = await rawConnection(t.url);
        connection.write(head("GET", "/ping", {}));
        const ms = await connection.closed;
        expect(statusOf(connection.received())).toBe(204);
        expect(ms).toBeGreaterThanOrEqual(290);
        expect(ms).toBeLessThan(4000);
    });

    it("at http.max_connections a new connection closes one that sent nothing; with all busy, the new one is closed", { timeout: 30_000 }, async () => {
        t = await startTestServer("node", { "http.max_connections": 20, "http.headers_timeout_ms": 500, "http.request_timeout_ms": 3000 });
        const idle = [];
        for (let i = 0; i < 20; i++) idle.push(await rawConnection(t.url));
        await new Promise((resolve) => setTimeout(resolve, 100));
        const client = await rawConnection(t.url);
        client.write(head("GET", "/ping", {}));
        await until("the ping's answer", () => (statusOf(client.received()) === 204 ? true : undefined));
        expect(await Promise.race([idle[0]!.closed.then(() => "closed"), new Promise((resolve) => setTimeout(resolve, 2000, "open"))])).toBe("closed");
        expect(idle.slice(1).every((connection) => connection.received() === "")).toBe(true);
        await Promise.all(idle.map((connection) => connection.closed));
        client.destroy();
        await client.closed;

        // Twenty requests waiting for their bodies (the 100 Continue says a route reads it): none
        // is idle, so a new connection is refused.
        const busy = [];
        for (let i = 0; i < 20; i++) {
            const connection = await rawConnection(t.url);
            connection.write(head("POST", "/write?db=busy", { "content-length": 100, expect: "100-continue" }));
            await until("100 Continue", () => (connection.received().includes("100 Continue") ? true : undefined));
            connection.write("m f=1");
            busy.push(connection);
        }
        const refused = await rawConnection(t.url);
        refused.write(head("GET", "/ping", {}));
        await refused.closed;
        expect(refused.received()).toBe("");
        await Promise.all(busy.map((connection) => connection.closed));
        expect((await fetch(`${t.url}/health`)).status).toBe(200);
        expect(t.server.context.buffers.get("busy", "m")).toBeUndefined();
    });

    it("after refusing an unread body, lingers half-closed for a while instead of resetting a client still sending", async () => {
        t = await startTestServer("node", { "auth.tokens": ["s3cret"] });
        const { hostname, port } = new URL(t.url);
        // Half-open, as an HTTP client still uploading: the server's FIN does not stop it sending.
        const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true });
        let received = "";
        let failure: string | undefined;
        socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
        socket.on("error", (error: NodeJS.ErrnoException) => (failure = error.code));
        const closed = new Promise<void>((resolve) =>
            socket.once("close", () => {
                resolve();
            }),
        );
        await new Promise<void>((resolve) => socket.once("connect", resolve));
        socket.write(head("POST", "/write?db=a", { "content-length": 64 * 1024 * 1024 }));
        await until("the 401", () => (statusOf(received) === 401 ? true : undefined));
        // A client that has not read the answer yet goes on sending its body: no reset meanwhile.
        const chunk = Buffer.alloc(64 * 1024, "m f=1 1\n");
        const until300 = performance.now() + 300;
        while (performance.now() < until300 && failure === undefined) {
            socket.write(chunk);
            await new Promise((resolve) => setTimeout(resolve, 5));
        }
        expect(failure).toBeUndefined();
        socket.end();
        await closed;
    });

    it("a shutdown closes connections that never sent a byte at once, instead of waiting for them", async () => {
        t = await startTestServer("node");
        const silent = await rawConnection(t.url);
        const t0 = performance.now();
        await t.server.close();
        await silent.closed;
        // The cut-off for busy connections is 10 s: an idle one must not wait for it.
        expect(performance.now() - t0).toBeLessThan(5000);
    });

    it("answers Expect: 100-continue only once the token is checked", async () => {
        t = await startTestServer("node", { "auth.tokens": ["s3cret"] });
        const refused = await rawConnection(t.url);
        refused.write(head("POST", "/write?db=e", { "content-length": 5, expect: "100-continue" }));
        await refused.closed;
        expect(refused.received()).not.toMatch(/100 Continue/);
        expect(statusOf(refused.received())).toBe(401);
        const allowed = await rawConnection(t.url);
        allowed.write(head("POST", "/write?db=e", { "content-length": 5, expect: "100-continue", authorization: "Token s3cret" }));
        await until("100 Continue", () => (allowed.received().includes("100 Continue") ? true : undefined));
        allowed.write("m f=1");
        await until("the final answer", () => (/HTTP\/1\.1 204/.test(allowed.received()) ? true : undefined));
    });
});

describe("hyper-express idle connections", () => {
    it("are closed by uWS after its fixed idle timeout (about 10 s), whatever the timeout keys say", { timeout: 40_000 }, async () => {
        const t = await startTestServer("hyper-express", { "http.headers_timeout_ms": 100, "http.request_timeout_ms": 100 });
        try {
            const silent = await rawConnection(t.url);
            const ms = await silent.closed;
            expect(ms).toBeGreaterThanOrEqual(5000);
            expect(ms).toBeLessThan(30_000);
        } finally {
            await t.stop();
        }
    });
});

/**
 * HTTPS on the node adapter (issue 15.3), with a self-signed certificate made by openssl for
 * this run: a write over HTTPS is stored, plain HTTP on the TLS port gets no answer, the
 * adapter's timeouts and connection cap hold for TLS connections too, and every bad TLS
 * configuration stops the start before recovery, naming the key or the file.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/load.js";
import { silentLogger } from "../src/log.js";
import { startServer } from "../src/server.js";
import { chooseServer } from "../ingest/http/listen.js";
import { TlsConfigError, readTlsCredentials } from "../ingest/http/tls.js";
import { tempDir } from "./helpers/batches.js";
import { runCli, startServe } from "./helpers/cli.js";
import { readParquet } from "./helpers/parquet.js";
import { type TestServer, startTestServer } from "./helpers/server.js";

const run = promisify(execFile);

let dir: { path: string; cleanup: () => Promise<void> };
let cert: string;
let key: string;
let otherKey: string;

/** A self-signed certificate for 127.0.0.1 and its key, and a second key that does not belong to it. */
beforeAll(async () => {
    dir = await tempDir("sluice-tls-");
    cert = join(dir.path, "cert.pem");
    key = join(dir.path, "key.pem");
    otherKey = join(dir.path, "other-key.pem");
    const subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2", "-nodes"];
    await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", key, "-out", cert, ...subject]);
    await run("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", otherKey]);
});
afterAll(async () => {
    await dir.cleanup();
});

let t: TestServer | undefined;
const sockets = new Set<{ destroy(): void }>();
afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await t?.stop();
    t = undefined;
});

const tlsSettings = () => ({ "http.tls_cert_file": cert, "http.tls_key_file": key });

/** One HTTPS request trusting the test certificate: status and body. */
async function httpsCall(url: string, method: string, body?: string): Promise<{ status: number; body: string }> {
    const ca = await readFile(cert);
    return new Promise((resolve, reject) => {
        const req = httpsRequest(url, { method, ca, agent: false }, (res) => {
            let text = "";
            res.on("data", (chunk: Buffer) => (text += chunk.toString()));
            res.on("end", () => {
                resolve({ status: res.statusCode ?? 0, body: text });
            });
        });
        req.on("error", reject);
        req.end(body);
    });
}

/** A TLS connection that completed its handshake and sends nothing yet. */
async function tlsConnection(url: string): Promise<{ socket: TLSSocket; received: () => string; closed: Promise<void> }> {
    const { hostname, port } = new URL(url);
    const socket = tlsConnect({ host: hostname, port: Number(port), ca: await readFile(cert) });
    sockets.add(socket);
    let text = "";
    socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
    socket.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => {
        socket.once("close", () => {
            resolve();
        });
    });
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
    return { socket, received: () => text, closed };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    const late = new Promise<T>((_, reject) => {
        setTimeout(() => {
            reject(new Error(`${what} did not happen within ${ms} ms`));
        }, ms).unref();
    });
    return Promise.race([promise, late]);
}

describe("HTTPS on the node adapter", () => {
    it("stores a write made over HTTPS", async () => {
        t = await startTestServer("node", tlsSettings());
        expect(t.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        const lines = ["m,writer=tls seq=1i,v=1.5 1732260000000000001", "m,writer=tls seq=2i,v=2.5 1732260000000000002"].join("\n");
        expect(await httpsCall(`${t.url}/write?db=secure`, "POST", lines)).toEqual({ status: 204, body: "" });
        expect((await httpsCall(`${t.url}/api/v1/flush`, "POST")).status).toBe(200);
        const { points } = await readParquet(t.dataDir);
        expect(points.map(({ database, measurement, seq, v }) => ({ database, measurement, seq, v }))).toEqual([
            { database: "secure", measurement: "m", seq: 1n, v: 1.5 },
            { database: "secure", measurement: "m", seq: 2n, v: 2.5 },
        ]);
    });

    it("gives plain HTTP on the TLS port no HTTP answer", async () => {
        t = await startTestServer("node", tlsSettings());
        const plain = t.url.replace("https://", "http://");
        const outcome = await new Promise<string>((resolve) => {
            const req = httpRequest(`${plain}/ping`, { agent: false }, (res) => {
                resolve(`answered ${res.statusCode}`);
            });
            req.on("error", (error: NodeJS.ErrnoException) => {
                resolve(`failed ${error.code}`);
            });
            req.end();
        });
        expect(outcome).toMatch(/^failed /);
        // The server is unharmed.
        expect((await httpsCall(`${t.url}/ping`, "GET")).status).toBe(204);
    });

    it("closes a connection that never finishes its handshake after http.headers_timeout_ms, not node's 120 s", async () => {
        t = await startTestServer("node", { ...tlsSettings(), "http.headers_timeout_ms": 300, "http.request_timeout_ms": 5000 });
        const { hostname, port } = new URL(t.url);
        const silent = netConnect({ host: hostname, port: Number(port) });
        sockets.add(silent);
        silent.on("error", () => undefined);
        await within(new Promise((resolve) => silent.once("close", resolve)), 20_000, "closing a silent TCP connection");
        // After the handshake, the header timeout applies as on plain HTTP.
        const quiet = await tlsConnection(t.url);
        await within(quiet.closed, 20_000, "closing a TLS connection that sends no headers");
    });

    it("at http.max_connections a new connection closes a TLS connection that sent nothing, never one with a request in flight", { timeout: 30_000 }, async () => {
        t = await startTestServer("node", { ...tlsSettings(), "http.max_connections": 16, "http.headers_timeout_ms": 10_000, "http.request_timeout_ms": 20_000 });
        // One connection with a request in flight: headers sent, its body not yet.
        const busy = await tlsConnection(t.url);
        busy.socket.write("POST /write?db=capped HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 24\r\n\r\n");
        await new Promise((resolve) => setTimeout(resolve, 200));
        const idle = [];
        for (let i = 0; i < 15; i++) idle.push(await tlsConnection(t.url));
        // The 17th connection: the oldest that sent nothing goes, not the busy one.
        expect((await httpsCall(`${t.url}/ping`, "GET")).status).toBe(204);
        await within(idle[0]!.closed, 10_000, "closing the oldest idle connection");
        busy.socket.write("m,writer=w seq=1i,v=1 1\n");
        await within(
            new Promise<void>((resolve) => {
                const check = () => {
                    if (busy.received().startsWith("HTTP/1.1 204")) resolve();
                    else setTimeout(check, 20);
                };
                check();
            }),
            10_000,
            "the busy connection's 204",
        );
        expect(t.server.context.buffers.get("capped", "m")?.rows).toBe(1);
    });
});

describe("a bad TLS configuration stops the start, saying what is wrong", () => {
    const http = (settings: Record<string, unknown>) => loadConfig({ env: {}, flags: settings }).http;

    it("needs both files or neither", async () => {
        await expect(chooseServer(http({ "http.tls_cert_file": cert }))).rejects.toThrow(
            "http.tls_cert_file is set but http.tls_key_file is not: HTTPS needs both http.tls_cert_file and http.tls_key_file (neither: plain HTTP)",
        );
        await expect(chooseServer(http({ "http.tls_key_file": key }))).rejects.toThrow("http.tls_key_file is set but http.tls_cert_file is not");
        expect(await chooseServer(http({}))).toEqual({ server: "node", tls: undefined });
    });

    it("names a missing file, a directory, an unreadable file, and a key that is not the certificate's", async () => {
        const missing = join(dir.path, "missing.pem");
        await expect(chooseServer(http({ "http.tls_cert_file": missing, "http.tls_key_file": key }))).rejects.toThrow(`http.tls_cert_file ${missing}: no such file`);
        await expect(chooseServer(http({ "http.tls_cert_file": cert, "http.tls_key_file": dir.path }))).rejects.toThrow(`http.tls_key_file ${dir.path}: is a directory`);
        const denied = Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
        await expect(readTlsCredentials({ tls_cert_file: cert, tls_key_file: key }, () => Promise.reject(denied))).rejects.toThrow(
            `http.tls_cert_file ${cert}: permission denied (the file must be readable by the user Sluice runs as)`,
        );
        const error = await chooseServer(http({ "http.tls_cert_file": cert, "http.tls_key_file": otherKey })).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(TlsConfigError);
        expect((error as Error).message).toMatch(
            new RegExp(`^http.tls_cert_file ${cert} and http.tls_key_file ${otherKey} are not a PEM certificate and its unencrypted private key: .+`),
        );
        const text = join(dir.path, "not-pem.txt");
        await writeFile(text, "not a certificate\n");
        await expect(chooseServer(http({ "http.tls_cert_file": text, "http.tls_key_file": key }))).rejects.toThrow(
            `http.tls_cert_file ${text} and http.tls_key_file ${key} are not`,
        );
    });

    it("refuses hyper-express with TLS keys, before recovery touches the data directory", async () => {
        const data = join(dir.path, "hyper-data");
        await mkdir(data);
        const config = loadConfig({ env: {}, flags: { data_dir: data, "http.port": 0, "http.server": "hyper-express", ...tlsSettings() } });
        await expect(startServer(config, silentLogger)).rejects.toThrow(
            /^http.server = "hyper-express" cannot serve HTTPS \(the npm build of uWebSockets.js it runs on has no TLS\)/,
        );
        expect(await readdir(data)).toEqual([]);
    });

    it("sluice serve exits 2 naming a missing certificate file", async () => {
        const data = join(dir.path, "cli-data");
        const missing = join(dir.path, "gone.pem");
        const result = await runCli(["serve", "--data-dir", data, "--port", "0", "--set", `http.tls_cert_file=${missing}`, "--set", `http.tls_key_file=${key}`]);
        expect(result.code).toBe(2);
        expect(result.stderr).toContain(`http.tls_cert_file ${missing}: no such file`);
    });

    it("sluice serve logs its https:// URL and stops cleanly", async () => {
        const data = join(dir.path, "serve-data");
        const server = await startServe(["--data-dir", data], { SLUICE_HTTP_TLS_CERT_FILE: cert, SLUICE_HTTP_TLS_KEY_FILE: key });
        try {
            expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
            expect((await httpsCall(`${server.url}/write?db=d`, "POST", "m,writer=w seq=1i,v=1 1")).status).toBe(204);
        } finally {
            expect(await server.stop("SIGTERM")).toBe(0);
        }
        expect(server.output()).toContain("shut down cleanly");
    });
});

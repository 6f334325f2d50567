import { connect } from "node:net";
import { loadConfig } from "../../src/config/load.js";
import type { HttpServer } from "../../src/config/schema.js";
import { silentLogger } from "../../src/log.js";
import type { EngineSeams } from "../../src/engine.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { WalDirectoryReader, decodedRecords } from "../../src/wal/directory-reader.js";
import { tempDir } from "./batches.js";

export interface TestServer {
    readonly url: string;
    readonly dataDir: string;
    readonly server: RunningServer;
    stop(): Promise<void>;
}

/**
 * An in-process server on 127.0.0.1 and a free port, with its own data directory (removed by
 * `stop`), or with `reuse`, a data directory the caller owns (kept).
 */
export async function startTestServer(adapter: HttpServer, settings: Record<string, unknown> = {}, seams: EngineSeams = {}, reuse?: string): Promise<TestServer> {
    const dir = reuse === undefined ? await tempDir("sluice-http-") : { path: reuse, cleanup: async () => undefined };
    const config = loadConfig({ env: {}, flags: { data_dir: dir.path, "http.host": "127.0.0.1", "http.port": 0, "http.server": adapter, ...settings } });
    let server: RunningServer;
    try {
        server = await startServer(config, silentLogger, seams);
    } catch (error) {
        await dir.cleanup();
        throw error;
    }
    return {
        url: server.url,
        dataDir: dir.path,
        server,
        stop: async () => {
            try {
                await server.close();
            } finally {
                await dir.cleanup();
            }
        },
    };
}

/** Every readable WAL entry of a data directory: database, measurement, rows. */
export async function walEntries(dataDir: string): Promise<{ database: string; measurement: string; rows: number; sequence: number }[]> {
    const entries = [];
    for await (const record of decodedRecords(new WalDirectoryReader(`${dataDir}/wal`))) {
        if (record.kind === "entry") entries.push({ database: record.database, measurement: record.batch.measurement, rows: record.batch.rows, sequence: record.sequence });
    }
    return entries;
}

export interface RawResponse {
    readonly statusLine: string;
    readonly headers: Map<string, string>;
    readonly body: string;
}

/**
 * Sends `requests` one after another over one TCP connection (keep-alive), reading each
 * response whole (by Content-Length, or none for 204/HEAD) before sending the next.
 */
export async function keepAliveExchange(url: string, requests: string[]): Promise<RawResponse[]> {
    const { hostname, port } = new URL(url);
    const socket = connect({ host: hostname, port: Number(port) });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    let pending = Buffer.alloc(0);
    let waiter: (() => void) | undefined;
    let closed = false;
    socket.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        waiter?.();
    });
    socket.on("close", () => {
        closed = true;
        waiter?.();
    });
    const more = () => new Promise<void>((resolve) => (waiter = resolve));
    const responses: RawResponse[] = [];
    try {
        for (const request of requests) {
            socket.write(request);
            let end: number;
            while ((end = pending.indexOf("\r\n\r\n")) < 0) {
                // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by a callback, which the rule cannot see
                if (closed) throw new Error(`connection closed after ${responses.length} responses`);
                await more();
            }
            const head = pending.subarray(0, end).toString("latin1").split("\r\n");
            const headers = new Map(head.slice(1).map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()] as const));
            const length = Number(headers.get("content-length") ?? 0);
            while (pending.length < end + 4 + length) {
                // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by a callback, which the rule cannot see
                if (closed) throw new Error(`connection closed inside response ${responses.length + 1}`);
                await more();
            }
            responses.push({ statusLine: head[0]!, headers, body: pending.subarray(end + 4, end + 4 + length).toString("utf8") });
            pending = pending.subarray(end + 4 + length);
        }
    } finally {
        socket.destroy();
    }
    return responses;
}

/** A raw HTTP/1.1 request with a body. */
export function rawRequest(method: string, path: string, body = "", headers: Record<string, string> = {}): string {
    const lines = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", `Content-Length: ${Buffer.byteLength(body)}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

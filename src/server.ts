/**
 * `sluice serve`: open the engine (which recovers before anything else), then listen. `close()`
 * is the graceful shutdown of invariant 3: stop taking writes (503), let requests in flight
 * finish, flush everything, purge the WAL, close.
 */
import { createApp } from "../ingest/app.js";
import { TokenAuthenticator } from "../ingest/auth.js";
import { listen } from "../ingest/http/listen.js";
import { Metrics } from "../ingest/metrics.js";
import type { AppContext } from "../ingest/routes/context.js";
import { createEncoder } from "../flush/encoder.js";
import type { Config } from "./config/schema.js";
import { Engine, type EngineSeams, type StartupReport } from "./engine.js";
import { SluiceError } from "./errors.js";
import type { Logger } from "./log.js";
import { purgeAll, purgeInactive, purgeOlderThan } from "./wal/index.js";

export interface RunningServer {
    readonly url: string;
    readonly context: AppContext;
    readonly engine: Engine;
    readonly startup: StartupReport;
    /** Graceful shutdown; rejects (after closing everything) when the final flush failed. */
    close(): Promise<void>;
}

export class UnsafeListenError extends SluiceError {
    readonly code = "unsafe-listen";
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Refuses to serve a non-loopback address without tokens, unless told to. */
function checkExposure(config: Config): void {
    if (LOOPBACK.test(config.http.host) || config.auth.tokens.length > 0 || config.http.allow_unauthenticated) return;
    throw new UnsafeListenError(
        `refusing to listen on ${config.http.host} without auth.tokens: anyone who can reach it could write. Set auth.tokens, or http.allow_unauthenticated = true`,
    );
}

export async function startServer(config: Config, log: Logger, seams: EngineSeams = {}): Promise<RunningServer> {
    checkExposure(config);
    const { engine, startup } = await Engine.open(config, log, createEncoder({ nice: config.flush.worker_nice, dedup: config.dedup.enabled }), seams);
    let accepting = true;
    const { schemaStore, writer, buffers, flusher } = engine;
    const context: AppContext = {
        writePath: engine.writePath(),
        writer,
        buffers,
        schema: schemaStore.registry,
        auth: new TokenAuthenticator(config.auth.tokens),
        metrics: new Metrics(writer, buffers, () => flusher.stats),
        maxBodyBytes: config.http.max_body_bytes,
        msgpackTimeUnit: config.ingest.msgpack_time_unit,
        databases: {
            create: (name) => {
                if (schemaStore.databases.has(name)) return;
                schemaStore.databases.add(name);
                schemaStore.markDirty();
            },
            list: () => [...new Set([...schemaStore.databases, ...schemaStore.registry.snapshot().map((m) => m.database)])].sort(),
        },
        nowNs: () => BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000)) * 1000n,
        accepting: () => accepting,
        flush: () => flusher.flushAll(),
        flushFailures: () => flusher.failures(),
        commitFailure: () => engine.commit.failure,
        purge: async (mode) => {
            await schemaStore.flush();
            const target = engine.purgeTarget();
            if (mode.kind === "all") return purgeAll(target);
            if (mode.kind === "older-than") return purgeOlderThan(target, mode.ageMs, engine.clock.now());
            return purgeInactive(target);
        },
    };
    let server;
    try {
        server = await listen(config.http.server, createApp(context, log), { host: config.http.host, port: config.http.port, maxBodyBytes: config.http.max_body_bytes });
    } catch (error) {
        await engine.shutdown().catch(() => undefined);
        throw error;
    }
    const host = server.host.includes(":") ? `[${server.host}]` : server.host;
    const url = `http://${host}:${server.port}`;
    log.info(`listening on ${url}`);
    let closing: Promise<void> | undefined;
    return {
        url,
        context,
        engine,
        startup,
        close: () =>
            (closing ??= (async () => {
                accepting = false;
                await server.close();
                await engine.shutdown();
            })()),
    };
}

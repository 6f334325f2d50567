/**
 * `sluice serve`: open the engine (which recovers before anything else), then listen. `close()`
 * is the graceful shutdown of invariant 3: stop taking writes (503), let requests in flight
 * finish, flush everything, purge the WAL, close — within `shutdown_timeout_ms`, after which it
 * gives up, saying what is not in Parquet yet (the WAL keeps it for the next start).
 */
import { createApp } from "../ingest/app.js";
import { TokenAuthenticator } from "../ingest/auth.js";
import { BodyBudget } from "../ingest/http/body-budget.js";
import { checkHttpKeys, connectionLimit, processDescriptors } from "../ingest/http/limits.js";
import { chooseServer, listen, schemeOf } from "../ingest/http/listen.js";
import { Metrics } from "../ingest/metrics.js";
import { RejectionLog } from "../ingest/rejection-log.js";
import type { AppContext } from "../ingest/routes/context.js";
import { createEncoder, encoderSettings } from "../flush/encoder.js";
import { configValue } from "./config/load.js";
import { CONFIG_ENTRIES, type Config, type ConfigKey } from "./config/schema.js";
import { Engine, type EngineSeams, type StartupReport } from "./engine.js";
import { SluiceError } from "./errors.js";
import type { Logger } from "./log.js";
import { purgeAll, purgeInactive, purgeOlderThan } from "./wal/index.js";

export interface RunningServer {
    readonly url: string;
    readonly context: AppContext;
    readonly engine: Engine;
    readonly startup: StartupReport;
    /**
     * Graceful shutdown; rejects (after closing everything) when the final flush failed, or
     * with `ShutdownTimeoutError` when it did not end within `shutdown_timeout_ms`.
     */
    close(): Promise<void>;
    /** Applies what a new configuration can change while running (`auth.tokens`). */
    reload(config: Config): ReloadReport;
}

export interface ReloadReport {
    /** Keys now in effect. */
    readonly applied: readonly ConfigKey[];
    /** Keys whose new value waits for the next start. */
    readonly needRestart: readonly ConfigKey[];
}

export class UnsafeListenError extends SluiceError {
    readonly code = "unsafe-listen";
}

export class ShutdownTimeoutError extends SluiceError {
    readonly code = "shutdown-timeout";
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
/** Keys a reload applies while running. */
const RELOADABLE: ReadonlySet<ConfigKey> = new Set(["auth.tokens"]);
/** How long requests in flight may take at shutdown before their connections are cut. */
const CLOSE_GRACE_MS = 10_000;
/** Measurements named at most in the shutdown-timeout message. */
const LISTED = 10;

/** Refuses to serve a non-loopback address without tokens, unless told to. */
function checkExposure(config: Config): void {
    if (LOOPBACK.test(config.http.host) || config.auth.tokens.length > 0 || config.http.allow_unauthenticated) return;
    throw new UnsafeListenError(
        `refusing to listen on ${config.http.host} without auth.tokens: anyone who can reach it could write. Set auth.tokens, or http.allow_unauthenticated = true`,
    );
}

function changedKeys(before: Config, after: Config): ConfigKey[] {
    return CONFIG_ENTRIES.map(([key]) => key).filter((key) => JSON.stringify(configValue(before, key)) !== JSON.stringify(configValue(after, key)));
}

/** What a shutdown that ran out of time leaves unflushed, for its error message. */
function unflushed(engine: Engine): string {
    const held = engine.buffers.nonEmpty();
    const rows = held.reduce((sum, buffer) => sum + buffer.rows, 0);
    const named = held.slice(0, LISTED).map((buffer) => `${buffer.database}/${buffer.measurement} (${buffer.rows} rows)`);
    const more = held.length > LISTED ? `, and ${held.length - LISTED} more` : "";
    const failing = engine.flusher.failures().map((failure) => `${failure.database}/${failure.measurement}: ${failure.error}`);
    return [
        `${rows} buffered rows of ${held.length} measurements are not in Parquet${held.length === 0 ? "" : `: ${named.join(", ")}${more}`}`,
        ...(engine.flusher.inFlightBytes > 0 ? ["a flush was still under way"] : []),
        ...(failing.length === 0 ? [] : [`failing flushes: ${failing.slice(0, LISTED).join("; ")}`]),
        `they stay in the WAL (${engine.writer.dir}) and the next start replays them`,
    ].join("; ");
}

export async function startServer(config: Config, log: Logger, seams: EngineSeams = {}): Promise<RunningServer> {
    checkExposure(config);
    checkHttpKeys(config);
    const choice = await chooseServer(config.http);
    const maxConnections = connectionLimit(config.http.max_connections, await processDescriptors());
    const { engine, startup } = await Engine.open(config, log, createEncoder(encoderSettings(config)), seams);
    let accepting = true;
    let running = config;
    const { schemaStore, writer, buffers, flusher } = engine;
    const auth = new TokenAuthenticator(config.auth.tokens);
    const context: AppContext = {
        writePath: engine.writePath(),
        writer,
        buffers,
        schema: schemaStore.registry,
        auth,
        metrics: new Metrics({ writer, buffers, flusher, upkeep: engine.upkeep, clock: engine.clock }),
        maxBodyBytes: config.http.max_body_bytes,
        msgpackTimeUnit: config.ingest.msgpack_time_unit,
        prometheusDatabase: config.prometheus.database,
        databases: {
            create: (name, durationMs) => schemaStore.createDatabase(name, durationMs),
            list: () => schemaStore.databases().map((database) => database.name),
            retentionOf: (name) => engine.retentionPeriod(name),
        },
        nowNs: () => BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000)) * 1000n,
        accepting: () => accepting,
        flush: () => flusher.flushAll(),
        flushFailures: () => flusher.failures(),
        commitFailure: () => engine.commit.failure,
        compact: () => engine.upkeep.compactNow(),
        retention: (dryRun) => engine.upkeep.retainNow(dryRun),
        purge: async (mode) => {
            await schemaStore.flush();
            const target = engine.purgeTarget();
            if (mode.kind === "all") return purgeAll(target);
            if (mode.kind === "older-than") return purgeOlderThan(target, mode.ageMs, engine.clock.now());
            return purgeInactive(target);
        },
    };
    const { http } = config;
    const rejections = new RejectionLog(log, engine.clock);
    let server;
    try {
        server = await listen(choice, createApp(context, rejections), {
            host: http.host,
            port: http.port,
            budget: new BodyBudget(http.max_inflight_body_bytes),
            maxConnections,
            headersTimeoutMs: http.headers_timeout_ms,
            requestTimeoutMs: http.request_timeout_ms,
            keepAliveTimeoutMs: http.keep_alive_timeout_ms,
            closeGraceMs: Math.min(CLOSE_GRACE_MS, Math.floor(config.shutdown_timeout_ms / 2)),
            log,
        });
    } catch (error) {
        await engine.shutdown().catch(() => undefined);
        throw error;
    }
    const host = server.host.includes(":") ? `[${server.host}]` : server.host;
    const url = `${schemeOf(choice)}://${host}:${server.port}`;
    // One line, the URL followed by a space: `listening on (https?://\S+)` finds it in either log format.
    const limits =
        http.server === "node"
            ? `${maxConnections} connections, ${http.max_inflight_body_bytes} body bytes in memory, bodies up to ${http.max_body_bytes} bytes`
            : `${http.max_inflight_body_bytes} body bytes in memory, bodies up to ${http.max_body_bytes} bytes; connections are not capped on hyper-express (uWS closes idle ones after 10 s)`;
    log.info(`listening on ${url} (http limits: ${limits})`, { url });
    if (schemeOf(choice) === "http" && !LOOPBACK.test(http.host))
        log.warn("plain HTTP beyond loopback: tokens and data travel in clear text (set http.tls_cert_file and http.tls_key_file)");
    let closing: Promise<void> | undefined;
    return {
        url,
        context,
        engine,
        startup,
        close: () =>
            (closing ??= (async () => {
                accepting = false;
                const work = (async () => {
                    await server.close();
                    rejections.close();
                    await engine.shutdown();
                })();
                let timer: NodeJS.Timeout | undefined;
                const expired = new Promise<never>((_, reject) => {
                    timer = setTimeout(() => {
                        // The shutdown goes on in the background; its outcome no longer matters.
                        work.catch(() => undefined);
                        reject(new ShutdownTimeoutError(`the graceful shutdown did not end within shutdown_timeout_ms (${config.shutdown_timeout_ms} ms): ${unflushed(engine)}`));
                    }, config.shutdown_timeout_ms);
                });
                try {
                    await Promise.race([work, expired]);
                } finally {
                    clearTimeout(timer);
                }
            })()),
        reload: (next) => {
            const changed = changedKeys(running, next);
            const applied = changed.filter((key) => RELOADABLE.has(key));
            if (applied.includes("auth.tokens")) {
                checkExposure({ ...running, auth: next.auth });
                auth.replace(next.auth.tokens);
            }
            running = { ...running, auth: next.auth };
            return { applied, needRestart: changed.filter((key) => !RELOADABLE.has(key)) };
        },
    };
}

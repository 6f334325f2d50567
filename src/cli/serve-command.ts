/**
 * `sluice serve` and the life of its process:
 * - SIGTERM / SIGINT: the graceful shutdown (refuse writes, flush, purge, close), bounded by
 *   `shutdown_timeout_ms`; exit 0 when everything is in Parquet, 2 otherwise (the WAL is kept).
 *   Repeats are logged and ignored: under `npm start` a terminal's Ctrl-C reaches Sluice twice
 *   (from the terminal and forwarded by npm).
 * - SIGHUP: never fatal. Reloads the configuration sources (file, environment, flags) and applies
 *   `auth.tokens`; other changed keys are named as waiting for a restart. Logs go to stdout and
 *   stderr, so there is no log file to reopen.
 * - Started from an npm script (`npm start`, or a tool `npm run` started): npm forwards SIGTERM
 *   and SIGINT but dies of SIGHUP, leaving Sluice behind with no supervisor. When its parent
 *   process is gone, Sluice shuts down gracefully.
 */
import { messageOf } from "../errors.js";
import type { Command } from "commander";
import { type Logger, createLogger } from "../log.js";
import { type RunningServer, startServer } from "../server.js";
import { type ConfigOptions, EXIT_FAILURE, configFrom, withConfigOptions } from "./options.js";

/** How often the parent process is checked when an npm script started Sluice. */
const PARENT_CHECK_MS = 1000;

type Stop = (reason: string) => void;

/** Runs the graceful shutdown once, then exits with its outcome. */
function shutdown(server: RunningServer, log: Logger): Promise<void> {
    return server.close().then(
        () => {
            log.info("shut down cleanly: every acknowledged write is in Parquet");
            process.exitCode = 0;
        },
        (error: unknown) => {
            log.error(`shutdown could not flush everything; the WAL is kept and the next start recovers it: ${messageOf(error)}`);
            process.exitCode = EXIT_FAILURE;
        },
    );
}

function reload(server: RunningServer, options: ConfigOptions, log: Logger): void {
    try {
        const { applied, needRestart } = server.reload(configFrom(options));
        const now = applied.length === 0 ? "nothing reloadable changed" : `now in effect: ${applied.join(", ")}`;
        const later = needRestart.length === 0 ? "" : `; changed but waiting for a restart: ${needRestart.join(", ")}`;
        log.info(`SIGHUP: configuration reloaded (${now}${later}); logs go to stdout/stderr, nothing to reopen`);
    } catch (error) {
        log.error(`SIGHUP: configuration not reloaded, the running one stays: ${messageOf(error)}`);
    }
}

/** Calls `stop` once the parent process is gone (the orphan is adopted), if an npm script started Sluice. */
function watchNpmParent(stop: Stop): void {
    if (process.env.npm_lifecycle_event === undefined) return;
    const parent = process.ppid;
    const timer = setInterval(() => {
        if (process.ppid === parent) return;
        clearInterval(timer);
        stop(`the process that started Sluice from an npm script (pid ${parent}) is gone`);
    }, PARENT_CHECK_MS);
    timer.unref();
}

export function registerServeCommand(program: Command): void {
    withConfigOptions(program.command("serve").description("run the ingestion server"), true).action(async (options: ConfigOptions) => {
        const config = configFrom(options);
        const log = createLogger(config.log);
        // Signals are taken from the start: one that arrives during recovery shuts down right after it.
        const life: { server?: RunningServer; stopping?: string; ended?: () => void } = {};
        const end = new Promise<void>((resolve) => (life.ended = resolve));
        const begin = (server: RunningServer) => void shutdown(server, log).then(life.ended);
        const stop: Stop = (reason) => {
            if (life.stopping !== undefined) {
                log.info(`${reason}: already shutting down (${life.stopping})`);
                return;
            }
            life.stopping = reason;
            if (life.server === undefined) log.info(`${reason} during recovery: shutting down once it is done`);
            else {
                log.info(`${reason}: refusing new writes, flushing everything, then exiting`);
                begin(life.server);
            }
        };
        process.on("SIGTERM", () => {
            stop("SIGTERM received");
        });
        process.on("SIGINT", () => {
            stop("SIGINT received");
        });
        process.on("SIGHUP", () => {
            if (life.server === undefined) log.info("SIGHUP received during recovery: ignored (nothing to reload yet)");
            else if (life.stopping !== undefined) log.info("SIGHUP received while shutting down: ignored");
            else reload(life.server, options, log);
        });
        watchNpmParent(stop);
        life.server = await startServer(config, log);
        if (life.stopping !== undefined) begin(life.server);
        await end;
        // Everything is flushed and closed, or given up on: connections a client still holds,
        // or a flush still hanging after shutdown_timeout_ms, must not keep the process.
        setImmediate(() => process.exit());
    });
}

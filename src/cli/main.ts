#!/usr/bin/env -S node --initial-old-space-size=64
/**
 * The `sluice` command line: `serve`, and the offline WAL tools (`wal read|verify|stats|purge`).
 * Exit codes: 0 success, 1 `wal verify` found corruption, 2 any error.
 *
 * The first line's V8 flag (also in package.json's `start`): each request leaves a few hundred
 * KB of parser objects that outlive a scavenge, and with V8's default limit, sized to the
 * ~10 MB the server keeps, that forced 7-8 full collections a second under load (~25 % of a core
 * in V8's helper threads). Measured in bench/RESULTS.md; the flag cannot go in NODE_OPTIONS.
 */
import { Command, CommanderError } from "commander";
import { consoleLogger } from "../log.js";
import { startServer } from "../server.js";
import { SLUICE_VERSION } from "../version.js";
import { type ConfigOptions, EXIT_FAILURE, configFrom, withConfigOptions } from "./options.js";
import { registerRecoverCommand } from "./recover-command.js";
import { registerWalCommands } from "./wal-commands.js";

function buildProgram(): Command {
    const program = new Command("sluice")
        .description("Durable time-series ingestion: line protocol and msgpack in, Parquet out.")
        .version(SLUICE_VERSION)
        .exitOverride()
        .showHelpAfterError();
    withConfigOptions(program.command("serve").description("run the ingestion server"), true).action(async (options: ConfigOptions) => {
        // Signals are taken from the start: one that arrives during recovery shuts down right after it.
        let signalled: string | undefined;
        let stop = (signal: string) => {
            signalled = signal;
            consoleLogger.info(`${signal} received during recovery: shutting down once it is done`);
        };
        const onSignal = (signal: string) => {
            stop(signal);
        };
        process.once("SIGTERM", onSignal);
        process.once("SIGINT", onSignal);
        const server = await startServer(configFrom(options), consoleLogger);
        await new Promise<void>((resolve) => {
            stop = (signal: string) => {
                consoleLogger.info(`${signal} received: refusing new writes, flushing everything, then exiting`);
                server.close().then(
                    () => {
                        consoleLogger.info("shut down cleanly: every acknowledged write is in Parquet");
                        resolve();
                        // Everything is flushed and closed; idle keep-alive sockets a client still
                        // holds open (hyper-express cannot close them) must not keep the process.
                        setImmediate(() => process.exit());
                    },
                    (error: unknown) => {
                        consoleLogger.error(`shutdown could not flush everything; the WAL is kept and the next start recovers it: ${(error as Error).message}`);
                        process.exitCode = EXIT_FAILURE;
                        resolve();
                        setImmediate(() => process.exit());
                    },
                );
            };
            if (signalled !== undefined) stop(signalled);
        });
    });
    registerRecoverCommand(program);
    registerWalCommands(program);
    return program;
}

async function main(argv: string[]): Promise<void> {
    try {
        await buildProgram().parseAsync(argv);
    } catch (error) {
        if (error instanceof CommanderError) {
            process.exitCode = error.exitCode === 0 ? 0 : EXIT_FAILURE;
            return;
        }
        process.stderr.write(`sluice: ${(error as Error).message}\n`);
        process.exitCode = EXIT_FAILURE;
    }
}

await main(process.argv);

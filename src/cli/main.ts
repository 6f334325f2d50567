#!/usr/bin/env -S node --initial-old-space-size=64
/**
 * The `sluice` command line: `serve`, the offline tools (`recover`, `compact`, `retention`,
 * `wal read|verify|stats|purge`), and `config` (the effective configuration and where each
 * value came from).
 * Exit codes: 0 success, 1 `wal verify` found corruption, 2 any error (for `serve`: also a
 * shutdown that could not put everything in Parquet, within shutdown_timeout_ms or at all).
 *
 * The first line's V8 flag (also in package.json's `start`): each request leaves a few hundred
 * KB of parser objects that outlive a scavenge, and with V8's default limit, sized to the
 * ~10 MB the server keeps, that forced 7-8 full collections a second under load (~25 % of a core
 * in V8's helper threads). Measured in bench/RESULTS.md; the flag cannot go in NODE_OPTIONS.
 */
import { messageOf } from "../errors.js";
import { Command, CommanderError } from "commander";
import { SLUICE_VERSION } from "../version.js";
import { registerConfigCommand } from "./config-command.js";
import { EXIT_FAILURE } from "./options.js";
import { registerRecoverCommand } from "./recover-command.js";
import { registerServeCommand } from "./serve-command.js";
import { registerUpkeepCommands } from "./upkeep-commands.js";
import { registerWalCommands } from "./wal-commands.js";

function buildProgram(): Command {
    const program = new Command("sluice")
        .description("Durable time-series ingestion: line protocol and msgpack in, Parquet out.")
        .version(SLUICE_VERSION)
        .exitOverride()
        .showHelpAfterError();
    registerServeCommand(program);
    registerRecoverCommand(program);
    registerUpkeepCommands(program);
    registerWalCommands(program);
    registerConfigCommand(program);
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
        process.stderr.write(`sluice: ${messageOf(error)}\n`);
        process.exitCode = EXIT_FAILURE;
    }
}

await main(process.argv);

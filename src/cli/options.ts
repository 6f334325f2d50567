/** What every command shares: exit codes, and the options that locate the configuration. */
import { type Command, Option } from "commander";
import { type ResolvedConfig, resolveConfig } from "../config/load.js";
import { CONFIG_FLAGS, type Config, type ConfigKey } from "../config/schema.js";
import { SluiceError } from "../errors.js";

export const EXIT_FAILURE = 2;

/** The options every command takes to find its configuration. */
export interface ConfigOptions {
    config?: string;
    dataDir?: string;
    host?: string;
    port?: string;
    set?: string[];
}

export function withConfigOptions(command: Command, withServerFlags: boolean): Command {
    command
        .option("--config <file>", "TOML configuration file (see config/default.toml)")
        .option("--data-dir <dir>", "data directory (default ./data)")
        .addOption(new Option("--set <key=value...>", "set any configuration key, e.g. --set wal.sync_mode=off").default([]));
    if (withServerFlags) command.option("--host <address>", "address to listen on").option("--port <port>", "port to listen on (0: any free port)");
    return command;
}

/** Defaults < --config file < SLUICE_* environment < flags (contract flags and --set). */
export function configFrom(options: ConfigOptions): Config {
    return resolvedConfigFrom(options).config;
}

/** The configuration and where each value came from; a contract flag is named as given (`--port`), over `--set` of its key. */
export function resolvedConfigFrom(options: ConfigOptions): ResolvedConfig {
    const flags: Record<string, unknown> = {};
    const flagNames: Record<string, string> = {};
    for (const pair of options.set ?? []) {
        const at = pair.indexOf("=");
        if (at <= 0) throw new CliUsageError(`--set takes key=value, got "${pair}"`);
        flags[pair.slice(0, at)] = pair.slice(at + 1);
    }
    const byFlag: Record<string, string | undefined> = { "--data-dir": options.dataDir, "--host": options.host, "--port": options.port };
    for (const [flag, value] of Object.entries(byFlag)) {
        const key: ConfigKey | undefined = CONFIG_FLAGS[flag];
        if (key === undefined || value === undefined) continue;
        flags[key] = value;
        flagNames[key] = flag;
    }
    return resolveConfig({ file: options.config, flags, flagNames });
}

export class CliUsageError extends SluiceError {
    readonly code = "cli-usage";
}

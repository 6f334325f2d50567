/**
 * `sluice config [--json]`: the configuration a command would run with (the same file,
 * environment and flags), every key with its value and where that value came from: the
 * default, the file, the environment variable, or the flag.
 */
import type { Command } from "commander";
import { type Origin, configValue } from "../config/load.js";
import { CONFIG_ENTRIES, CONFIG_SCHEMA, type Config, type ConfigKey, type KeySpec } from "../config/schema.js";
import { type ConfigOptions, resolvedConfigFrom, withConfigOptions } from "./options.js";

/** One key in `sluice config --json`. */
export interface ConfigLine {
    /** As loaded: sizes in bytes, durations in ms; a secret's values are replaced by `(hidden: N values)`. */
    readonly value: unknown;
    readonly source: Origin["kind"];
    /** The file's path, the variable's name, or the flag as given (`--port`, `--set http.port`); absent for a default. */
    readonly from?: string;
}

function fromOf(origin: Origin): string | undefined {
    switch (origin.kind) {
        case "default":
            return undefined;
        case "file":
            return origin.path;
        case "env":
            return origin.variable;
        case "flag":
            return origin.flag;
    }
}

// Invariant kept: a secret key's value is never shown, only whether it is set (and how many values a list has).
function shownValue(spec: KeySpec, value: unknown): unknown {
    if (spec.secret !== true) return value;
    if (Array.isArray(value)) return value.length === 0 ? value : `(hidden: ${value.length} value${value.length === 1 ? "" : "s"})`;
    return typeof value === "string" && value !== "" ? "(hidden)" : value;
}

export function configLines(config: Config, origins: ReadonlyMap<ConfigKey, Origin>): Record<ConfigKey, ConfigLine> {
    const lines: Partial<Record<ConfigKey, ConfigLine>> = {};
    for (const [key, spec] of CONFIG_ENTRIES) {
        const origin = origins.get(key) ?? { kind: "default" };
        const from = fromOf(origin);
        lines[key] = { value: shownValue(spec, configValue(config, key)), source: origin.kind, ...(from === undefined ? {} : { from }) };
    }
    return lines as Record<ConfigKey, ConfigLine>;
}

function textOf(key: ConfigKey, line: ConfigLine): [string, string, string] {
    const spec: KeySpec = CONFIG_SCHEMA[key];
    const unit = spec.type === "duration" || spec.type === "durations" ? " (ms)" : "";
    const hidden = spec.secret === true && typeof line.value === "string" && line.value !== "";
    const value = hidden ? line.value : `${JSON.stringify(line.value)}${unit}`;
    const from = line.from === undefined ? line.source : `${line.source} ${line.from}`;
    return [key, value, from];
}

function table(rows: readonly (readonly [string, string, string])[]): string {
    const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
    return rows.map((row) => `${row[0].padEnd(widths[0]!)}  ${row[1].padEnd(widths[1]!)}  ${row[2]}`.trimEnd()).join("\n");
}

export function registerConfigCommand(program: Command): void {
    withConfigOptions(program.command("config").description("print the effective configuration and where each value came from (default, file, environment, flag)"), true)
        .option("--json", "one JSON object: key → {value, source, from}")
        .action((options: ConfigOptions & { json?: boolean }) => {
            const { config, origins } = resolvedConfigFrom(options);
            const lines = configLines(config, origins);
            if (options.json) process.stdout.write(`${JSON.stringify(lines)}\n`);
            else {
                const rows = (Object.entries(lines) as [ConfigKey, ConfigLine][]).map(([key, line]) => textOf(key, line));
                process.stdout.write(`${table([["key", "value", "from"], ...rows])}\n`);
            }
        });
}

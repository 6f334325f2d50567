/**
 * Loads the configuration: schema defaults, then a TOML file, then the environment, then flags,
 * each later source overriding the earlier ones key by key. Every value is checked against
 * `CONFIG_SCHEMA`; a bad value anywhere, an unknown key in the file or among the flags, or an
 * unknown `SLUICE_` environment variable is a `ConfigError`. `resolveConfig` also says where
 * each value came from (`sluice config`).
 */
import { readFileSync } from "node:fs";
import { type TomlTable, parse } from "smol-toml";
import { parseDuration } from "../duration.js";
import { messageOf, SluiceError } from "../errors.js";
import { closest } from "./closest.js";
import { BYTE_UNITS, CONFIG_ENTRIES, CONFIG_SCHEMA, type Config, type ConfigKey, type KeySpec, envVarName } from "./schema.js";

/** A configuration that cannot be loaded; the message names the key, the source and the value. */
export class ConfigError extends SluiceError {
    readonly code = "config";
}

export interface LoadConfigOptions {
    /** A TOML file with the keys of `CONFIG_SCHEMA` (top-level keys, then `[section]` tables); it must exist. */
    readonly file?: string | undefined;
    /**
     * Read for the `envVarName` of every key (default `process.env`). Text: integers may use `_`
     * separators, booleans are `true`/`false`, lists are comma-separated. Any other `SLUICE_`
     * variable is refused (a mistyped key), but for `OTHER_VARIABLES`.
     */
    readonly env?: Readonly<Record<string, string | undefined>> | undefined;
    /** Values by dotted key (`{"http.port": 9000}`): typed values, or text as in the environment; `undefined` is skipped. */
    readonly flags?: Readonly<Record<string, unknown>> | undefined;
    /** How the command line gave each of `flags` (`{"http.port": "--port"}`), for messages; unnamed ones read `--set <key>`. */
    readonly flagNames?: Readonly<Record<string, string>> | undefined;
}

/** Where a value came from. */
export type Origin =
    | { readonly kind: "default" }
    | { readonly kind: "file"; readonly path: string }
    | { readonly kind: "env"; readonly variable: string }
    /** `flag`: as given, `--port` or `--set http.port`. */
    | { readonly kind: "flag"; readonly flag: string };

export interface ResolvedConfig {
    readonly config: Config;
    /** Every key's origin: the source whose value won. */
    readonly origins: ReadonlyMap<ConfigKey, Origin>;
}

/** A source that gives values. */
type Given = Exclude<Origin, { readonly kind: "default" }>;

type Value = string | number | boolean | readonly string[] | Readonly<Record<string, number>>;

/**
 * `SLUICE_` variables that are not configuration keys and may reach a Sluice process: the crash
 * tests' injection point (flush/crash-points.ts) and their seed (test/helpers/load.ts).
 */
const OTHER_VARIABLES: ReadonlySet<string> = new Set(["SLUICE_TEST_CRASH_AT", "SLUICE_CRASH_SEED"]);
const ENV_PREFIX = "SLUICE_";

const KEYS: ReadonlySet<string> = new Set(CONFIG_ENTRIES.map(([key]) => key));
const KEYS_BY_VARIABLE: ReadonlyMap<string, ConfigKey> = new Map(CONFIG_ENTRIES.map(([key]) => [envVarName(key), key]));
const SECTIONS: ReadonlySet<string> = new Set(CONFIG_ENTRIES.flatMap(([key]) => (key.includes(".") ? [key.slice(0, key.indexOf("."))] : [])));
const INTEGER_TEXT = new RegExp(`^(\\d+(?:_\\d+)*)(?: ?(${Object.keys(BYTE_UNITS).join("|")}))?$`);

export function loadConfig(options: LoadConfigOptions = {}): Config {
    return resolveConfig(options).config;
}

export function resolveConfig(options: LoadConfigOptions = {}): ResolvedConfig {
    const values = new Map<ConfigKey, Value>(CONFIG_ENTRIES.map(([key, spec]) => [key, toValue(spec, spec.default, true)!]));
    const origins = new Map<ConfigKey, Origin>(CONFIG_ENTRIES.map(([key]) => [key, { kind: "default" }]));
    const set = (key: ConfigKey, raw: unknown, origin: Given) => {
        values.set(key, convert(key, raw, origin));
        origins.set(key, origin);
    };
    if (options.file !== undefined) {
        const origin = { kind: "file", path: options.file } as const;
        for (const [key, raw] of readFile(options.file)) set(key, raw, origin);
    }
    const env = options.env ?? process.env;
    checkEnvironment(env);
    for (const [variable, key] of KEYS_BY_VARIABLE) {
        const raw = env[variable];
        if (raw !== undefined) set(key, raw, { kind: "env", variable });
    }
    for (const [key, raw] of Object.entries(options.flags ?? {})) {
        if (raw === undefined) continue;
        const flag = options.flagNames?.[key] ?? `--set ${key}`;
        if (!isConfigKey(key)) throw new ConfigError(`${flag}: unknown configuration key "${key}" (did you mean ${closest(key, KEYS)}?)`);
        set(key, raw, { kind: "flag", flag });
    }
    return { config: freeze(values), origins };
}

/** One key's value in a loaded configuration. */
export function configValue(config: Config, key: ConfigKey): unknown {
    const dot = key.indexOf(".");
    const record = config as unknown as Record<string, unknown>;
    return dot < 0 ? record[key] : (record[key.slice(0, dot)] as Record<string, unknown>)[key.slice(dot + 1)];
}

/** Refuses `SLUICE_` variables that name no key: a mistyped one would otherwise be ignored. */
function checkEnvironment(env: Readonly<Record<string, string | undefined>>): void {
    const unknown = Object.keys(env).filter((name) => name.startsWith(ENV_PREFIX) && env[name] !== undefined && !KEYS_BY_VARIABLE.has(name) && !OTHER_VARIABLES.has(name));
    if (unknown.length === 0) return;
    const named = unknown.sort().map((name) => {
        const near = closest(name, KEYS_BY_VARIABLE.keys())!;
        return `${name} (did you mean ${near}, for ${KEYS_BY_VARIABLE.get(near)}?)`;
    });
    throw new ConfigError(
        `unknown environment variable${unknown.length === 1 ? "" : "s"} ${named.join(", ")}: every ${ENV_PREFIX} variable must name a configuration key (config/default.toml lists them)`,
    );
}

/** The file's values by key, in file order; rejects unknown keys and sections. */
function readFile(path: string): [ConfigKey, unknown][] {
    let table: TomlTable;
    try {
        table = parse(readFileSync(path, "utf8"), { integersAsBigInt: true });
    } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : messageOf(error);
        throw new ConfigError(`config file ${path}: ${reason}`, { cause: error });
    }
    const found: [ConfigKey, unknown][] = [];
    for (const [name, value] of Object.entries(table)) {
        if (SECTIONS.has(name)) {
            if (!isTable(value)) throw new ConfigError(`${name} = ${show(value)} in ${path}: ${name} must be a section ([${name}])`);
            for (const [sub, subValue] of Object.entries(value)) found.push([fileKey(`${name}.${sub}`, path), subValue]);
        } else if (isTable(value)) {
            throw new ConfigError(`${path}: unknown section [${name}]`);
        } else {
            // A quoted top-level key with a dot (`"http.port" = 1`) is not `http.port`.
            found.push([fileKey(name.includes(".") ? `"${name}"` : name, path), value]);
        }
    }
    return found;
}

function fileKey(key: string, path: string): ConfigKey {
    if (isConfigKey(key)) return key;
    throw new ConfigError(`${path}: unknown key ${key} (did you mean ${closest(key, KEYS)}?)`);
}

function isConfigKey(key: string): key is ConfigKey {
    return KEYS.has(key);
}

function isTable(value: unknown): value is TomlTable {
    return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function convert(key: ConfigKey, raw: unknown, origin: Given): Value {
    const spec: KeySpec = CONFIG_SCHEMA[key];
    const value = toValue(spec, raw, origin.kind !== "file");
    if (value !== undefined) return value;
    const must = `${key} must be ${expected(spec, origin)}`;
    if (origin.kind === "file") {
        // A whole TOML float is shown as written, `8086.0`, not `8086`.
        const shown = spec.secret === true ? "(hidden)" : Number.isInteger(raw) ? (raw as number).toFixed(1) : show(raw);
        throw new ConfigError(`${key} = ${shown} in ${origin.path}: ${must}`);
    }
    const name = origin.kind === "env" ? origin.variable : origin.flag;
    if (raw === "")
        throw new ConfigError(`${name} is empty: ${must} (${origin.kind === "env" ? "unset the variable" : "leave the flag out"} to keep the value from the file or the default)`);
    throw new ConfigError(`${name}=${spec.secret === true ? "(hidden)" : show(raw)}: ${must}`);
}

/** `raw` as the key's type, or undefined when it is not one; `text`: strings are parsed (environment, flags). */
function toValue(spec: KeySpec, raw: unknown, text: boolean): Value | undefined {
    switch (spec.type) {
        case "string":
            return typeof raw === "string" && (raw !== "" || spec.optional === true) ? raw : undefined;
        case "enum":
            return typeof raw === "string" && spec.values.includes(raw) ? raw : undefined;
        case "boolean":
            if (typeof raw === "boolean") return raw;
            return text && (raw === "true" || raw === "false") ? raw === "true" : undefined;
        case "integer": {
            const n =
                typeof raw === "bigint"
                    ? raw
                    : typeof raw === "number" && text && Number.isSafeInteger(raw)
                      ? BigInt(raw)
                      : typeof raw === "string" && (text || spec.bytes === true)
                        ? parseInteger(raw, spec.bytes === true)
                        : undefined;
            const inRange = n !== undefined && n >= BigInt(spec.min) && n <= BigInt(spec.max ?? Number.MAX_SAFE_INTEGER);
            return inRange ? Number(n) : undefined;
        }
        case "duration":
            return typeof raw === "string" ? durationMs(raw) : undefined;
        case "durations": {
            const entries: [string, unknown][] | undefined = isTable(raw)
                ? Object.entries(raw)
                : text && typeof raw === "string"
                  ? raw === ""
                      ? []
                      : raw.split(",").map((item) => {
                            const at = item.indexOf("=");
                            return at < 0 ? [item.trim(), undefined] : [item.slice(0, at).trim(), item.slice(at + 1).trim()];
                        })
                  : undefined;
            if (entries === undefined) return undefined;
            const out: Record<string, number> = {};
            for (const [name, value] of entries) {
                const ms = typeof value === "string" && name !== "" ? durationMs(value) : undefined;
                if (ms === undefined) return undefined;
                out[name] = ms;
            }
            return out;
        }
        case "list": {
            const items: unknown[] | undefined = Array.isArray(raw)
                ? raw
                : text && typeof raw === "string"
                  ? raw === ""
                      ? []
                      : raw.split(",").map((item) => item.trim())
                  : undefined;
            return items?.every((item): item is string => typeof item === "string" && item !== "") ? items : undefined;
        }
    }
}

/** Digits with optional `_` separators (`64_000`), and for byte sizes an optional unit (`64MiB`). */
function parseInteger(text: string, bytes: boolean): bigint | undefined {
    const match = INTEGER_TEXT.exec(text);
    const digits = match?.[1];
    const unit = match?.[2] as keyof typeof BYTE_UNITS | undefined;
    if (digits === undefined || (unit !== undefined && !bytes)) return undefined;
    return BigInt(digits.replaceAll("_", "")) * BigInt(unit === undefined ? 1 : BYTE_UNITS[unit]);
}

function expected(spec: KeySpec, origin: Given): string {
    switch (spec.type) {
        case "string":
            return spec.optional === true ? "a string" : "a non-empty string";
        case "enum":
            return `one of ${spec.values.join(", ")}`;
        case "boolean":
            return "true or false";
        case "integer": {
            const range = spec.max === undefined ? `an integer of at least ${spec.min}` : `an integer from ${spec.min} to ${spec.max}`;
            return spec.bytes === true ? `${range}, or a size such as "64MiB" (${Object.keys(BYTE_UNITS).join(", ")})` : range;
        }
        case "list":
            return origin.kind === "env" ? "a comma-separated list of non-empty strings" : "a list of non-empty strings";
        case "duration":
            return 'a duration such as "30d", "12h", "15m" or "500ms" ("0": none)';
        case "durations":
            return origin.kind === "file" ? 'a table of names to durations such as "7d"' : 'comma-separated name=duration pairs such as "telegraf=7d,logs=30d"';
    }
}

/** Milliseconds of a duration text ("0" and "INF": 0, none), or undefined when it is not one. */
function durationMs(text: string): number | undefined {
    if (/^(0|inf)$/i.test(text.trim())) return 0;
    try {
        return parseDuration(text);
    } catch {
        return undefined;
    }
}

function show(raw: unknown): string {
    if (typeof raw === "bigint") return String(raw);
    // JSON.stringify gives undefined (not a string) for undefined and functions.
    const text = JSON.stringify(raw, (_key, value: unknown) => (typeof value === "bigint" ? Number(value) : value)) as string | undefined;
    return text ?? String(raw);
}

function isStringList(value: Value): value is readonly string[] {
    return Array.isArray(value);
}

function freeze(values: ReadonlyMap<ConfigKey, Value>): Config {
    const root: Record<string, Value | Record<string, Value>> = {};
    for (const [key, value] of values) {
        const frozen = isStringList(value) ? Object.freeze([...value]) : typeof value === "object" ? Object.freeze({ ...value }) : value;
        const dot = key.indexOf(".");
        if (dot < 0) root[key] = frozen;
        else ((root[key.slice(0, dot)] ??= {}) as Record<string, Value>)[key.slice(dot + 1)] = frozen;
    }
    for (const section of Object.values(root)) Object.freeze(section);
    return Object.freeze(root) as unknown as Config;
}

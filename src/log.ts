/**
 * The process log, written by pino: one line per event on stdout, every level, in `log.format`:
 * - `json` (the default): `{"level":"info","time":"2025-01-01T00:00:00.000Z","database":"db",…,"msg":"flushed"}`
 *   (pino puts the message last);
 * - `text`: `2025-01-01T00:00:00.000Z INFO  flushed database=db …`, a value with a space, quote,
 *   `=` or control character written as a JSON string, so that one event is always one line.
 * An event below `log.level` costs a level check. Lines are written synchronously (stdout is a
 * blocking pipe or file on Linux), so nothing logged before an exit is lost.
 */
import pino from "pino";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ["json", "text"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
    info(message: string, fields?: LogFields): void;
    warn(message: string, fields?: LogFields): void;
    error(message: string, fields?: LogFields): void;
}

export interface LogOptions {
    readonly level: LogLevel;
    readonly format: LogFormat;
}

/** Where finished lines (each ending in "\n") go: stdout, unless a test captures them. */
export type LineSink = (line: string) => void;

const writeStdout: LineSink = (line) => {
    process.stdout.write(line);
};

/** A field value as the text format writes it: bare when that cannot be misread, else a JSON string. */
function textValue(value: unknown): string {
    if (typeof value === "string") return value === "" || /[\s"=\\\p{Cc}]/u.test(value) ? JSON.stringify(value) : value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    return JSON.stringify(value);
}

/** pino's JSON line as one text line: time, level, message, then the fields as key=value. */
export function textLine(json: string): string {
    const { time, level, msg, ...fields } = JSON.parse(json) as Record<string, unknown>;
    const details = Object.entries(fields).map(([key, value]) => ` ${key}=${textValue(value)}`);
    return `${String(time)} ${String(level).toUpperCase().padEnd(5)} ${String(msg)}${details.join("")}\n`;
}

export function createLogger(options: LogOptions, sink: LineSink = writeStdout): Logger {
    const write =
        options.format === "json"
            ? sink
            : (line: string) => {
                  sink(textLine(line));
              };
    const logger = pino(
        {
            level: options.level,
            // No pid or hostname on every line: the supervisor (systemd, a container runtime) adds its own.
            base: null,
            timestamp: pino.stdTimeFunctions.isoTime,
            formatters: { level: (label) => ({ level: label }) },
        },
        { write },
    );
    const at =
        (level: "info" | "warn" | "error") =>
        (message: string, fields?: LogFields): void => {
            if (fields === undefined) logger[level](message);
            else logger[level](fields, message);
        };
    return { info: at("info"), warn: at("warn"), error: at("error") };
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

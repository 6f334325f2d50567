/**
 * The process log: one plain line per event on stdout (`listening on http://…`), warnings and
 * errors prefixed with their level on stderr. Details are appended as key=value pairs.
 */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
    info(message: string, fields?: LogFields): void;
    warn(message: string, fields?: LogFields): void;
    error(message: string, fields?: LogFields): void;
}

function format(message: string, fields: LogFields | undefined): string {
    if (fields === undefined) return message;
    const details = Object.entries(fields)
        .filter(([, value]) => value !== undefined)
        .map(([key, value]) => `${key}=${typeof value === "string" && /[\s"=]/.test(value) ? JSON.stringify(value) : String(value)}`);
    return details.length === 0 ? message : `${message} ${details.join(" ")}`;
}

export const consoleLogger: Logger = {
    info: (message, fields) => process.stdout.write(`${format(message, fields)}\n`),
    warn: (message, fields) => process.stderr.write(`warn: ${format(message, fields)}\n`),
    error: (message, fields) => process.stderr.write(`error: ${format(message, fields)}\n`),
};

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

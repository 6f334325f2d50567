/**
 * Checking a benchmark's own options (`parseArgs` hands them over as strings): each helper
 * returns the fallback when the option is absent and throws a one-line message when it is wrong
 * (the benchmark prints it and exits 2).
 */

/** As `BenchOptions.values` holds it (a `multiple` option is an array at run time). */
type OptionValue = string | boolean | undefined;

/** A positive integer (`--batch 5000`). */
export function positiveInteger(value: OptionValue, fallback: number, what: string): number {
    if (typeof value !== "string") return fallback;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got "${value}"`);
    return n;
}

/** A positive number (`--runs 3`, `--mb 0.5`). */
export function positiveNumber(value: OptionValue, fallback: number, what: string): number {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (typeof value !== "string" || !Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number, got "${String(value)}"`);
    return n;
}

/** A number of seconds ≥ 0 (`--warmup 0`). */
export function seconds(value: OptionValue, fallback: number, what: string): number {
    const n = typeof value === "string" ? Number(value) : fallback;
    if (!Number.isFinite(n) || n < 0) throw new Error(`${what} must be a number of seconds ≥ 0, got "${String(value)}"`);
    return n;
}

/** A comma-separated list of positive integers (`--connections 4,16`). */
export function integerList(value: OptionValue, fallback: readonly number[], what: string): number[] {
    if (typeof value !== "string") return [...fallback];
    return value.split(",").map((item) => {
        const n = Number(item.trim());
        if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${what}: "${item}" is not a positive integer`);
        return n;
    });
}

/** A comma-separated list of known names (`--systems a,b`), each resolved by `parse`; `hint` follows the error. */
export function choiceList<T>(value: OptionValue, all: readonly T[], parse: (item: string) => T | undefined, what: string, hint = ""): T[] {
    if (typeof value !== "string") return [...all];
    return value.split(",").map((item) => {
        const parsed = parse(item.trim());
        if (parsed === undefined) throw new Error(`unknown ${what} "${item}"${hint}`);
        return parsed;
    });
}

/** A byte count like `16MiB`, `64k` or `1048576`. */
export function byteCount(value: OptionValue, what: string): number | undefined {
    if (typeof value !== "string") return undefined;
    const match = /^(\d+)\s*(k|m|g|kib|mib|gib)?$/i.exec(value.trim());
    if (match === null) throw new Error(`${what} must be a byte count like 16MiB, got "${value}"`);
    const unit = (match[2] ?? "").toLowerCase();
    const scale = unit.startsWith("k") ? 2 ** 10 : unit.startsWith("m") ? 2 ** 20 : unit.startsWith("g") ? 2 ** 30 : 1;
    return Number(match[1]) * scale;
}

/** A repeatable string option (`--set a=1 --set b=2`) as a list. */
export function repeated(value: OptionValue): string[] {
    return Array.isArray(value) ? (value as string[]) : typeof value === "string" ? [value] : [];
}

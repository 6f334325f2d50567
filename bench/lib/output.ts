/**
 * What benchmarks print and write: aligned text tables, numbers that may be missing, one JSON
 * object per run, and marked sections of bench/RESULTS.md (each benchmark owns its sections;
 * the peers benchmark rewrites the file and keeps them).
 */
import { readFile, writeFile } from "node:fs/promises";

export interface TableColumn<R> {
    readonly title: string;
    readonly align: "left" | "right";
    cell(row: R): string;
}

export function formatTable<R>(columns: readonly TableColumn<R>[], rows: readonly R[]): string {
    const cells = rows.map((row) => columns.map((column) => column.cell(row)));
    const widths = columns.map((column, i) => Math.max(column.title.length, ...cells.map((row) => row[i]!.length)));
    const line = (values: readonly string[]) =>
        values
            .map((value, i) => (columns[i]!.align === "left" ? value.padEnd(widths[i]!) : value.padStart(widths[i]!)))
            .join("  ")
            .trimEnd();
    return [line(columns.map((c) => c.title)), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

/** A number with `digits` decimals, or "-" when it is not finite. */
export function fixed(value: number | undefined, digits: number): string {
    return value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits);
}

/** A whole number with thousands separators, or "-" when it is not finite. */
export function thousands(value: number): string {
    return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "-";
}

/**
 * One JSON line: numbers that are not finite become null, and so do undefined values
 * (`undefinedAs: "omit"` leaves them out instead, as JSON.stringify does).
 */
export function jsonLine(value: unknown, undefinedAs: "null" | "omit" = "null"): string {
    return `${JSON.stringify(value, (_, item: unknown) => ((undefinedAs === "null" && item === undefined) || (typeof item === "number" && !Number.isFinite(item)) ? null : item))}\n`;
}

const SECTION = /<!-- ([\w-]+):begin -->[\s\S]*?<!-- \1:end -->\n?/g;

/** The marked sections (`<!-- NAME:begin -->…<!-- NAME:end -->`) of a results file. */
export function markedSections(text: string): string[] {
    return [...text.matchAll(SECTION)].map((match) => (match[0].endsWith("\n") ? match[0] : `${match[0]}\n`));
}

/** Puts `body` into `path` as section `name`: in place of the old one, or at the end. */
export async function writeSection(path: string, name: string, body: string): Promise<void> {
    const section = `<!-- ${name}:begin -->\n${body.trimEnd()}\n<!-- ${name}:end -->\n`;
    const old = await readFile(path, "utf8").catch(() => "");
    const pattern = new RegExp(`<!-- ${name}:begin -->[\\s\\S]*?<!-- ${name}:end -->\\n?`);
    const text = pattern.test(old) ? old.replace(pattern, () => section) : `${old}${old === "" || old.endsWith("\n\n") ? "" : old.endsWith("\n") ? "\n" : "\n\n"}${section}`;
    await writeFile(path, text);
}

/** How a results section names the command that made it: `npm run bench -- <the arguments given>`. */
export function benchCommand(): string {
    return `npm run bench -- ${process.argv.slice(2).join(" ")}`;
}

/** The per-cut table, printed a row at a time, and the failure classes with the cuts that show them. */
import { problemsAfterLockRemoved, type CutResult, type ServeOutcome } from "./check-cut.js";
import { describeExit } from "./sluice.js";

const COLUMNS = [
    ["cut", 4],
    ["barrier", 8],
    ["why", 8],
    ["unflushed kept", 15],
    ["first", 8],
    ["fsck", 5],
    ["lock before", 12],
    ["recover", 8],
    ["serve", 12],
    ["acked before", 13],
    ["found", 8],
    ["stored", 8],
    ["dup", 6],
    ["missing", 8],
    ["never sent", 11],
    ["s", 5],
    ["verdict", 8],
] as const;

function row(cells: readonly string[]): string {
    return cells
        .map((cell, i) => cell.padEnd(COLUMNS[i]![1]))
        .join(" ")
        .trimEnd();
}

export function tableHeader(): string {
    return row(COLUMNS.map(([name]) => name));
}

function serveCell(serve: ServeOutcome): string {
    if (!serve.listened) return `no (${describeExit(serve.exit)})`;
    if (serve.health !== 200) return `health ${serve.health ?? "-"}`;
    return serve.exit?.code === 0 ? "ok" : `stop ${describeExit(serve.exit)}`;
}

export function tableRow(result: CutResult, barriers: number): string {
    const { cut, accounting, image } = result;
    return row([
        String(result.index),
        `${cut.barrier}/${barriers}`,
        cut.why,
        cut.unflushedKept === undefined ? `0/${image.unflushedBlocks}` : `${image.keptBlocks}/${image.unflushedBlocks}`,
        cut.order.startsWith("recover") ? "recover" : "serve",
        result.fsck.code === 0 ? "ok" : `E${result.fsck.code}`,
        result.lock,
        describeExit(result.recover.exit),
        serveCell(result.serve),
        String(accounting.required),
        String(accounting.requiredFound),
        String(accounting.stored),
        String(accounting.report.duplicated.length),
        String(accounting.report.missing.length),
        String(accounting.report.neverSent.length),
        result.seconds.toFixed(1),
        result.problems.length === 0 ? "ok" : "FAIL",
    ]);
}

/** A problem without what varies between cuts (paths, numbers, example keys): its class. */
export function problemClass(problem: string): string {
    return problem
        .replace(/\/[^\s:"']+/g, "<path>")
        .replace(/\b(missing|duplicated|neverSent|refusedButStored|altered|rejected)( \([^)]*\))? \d+:.*/, "$1 points$2")
        .replace(/^partly stored .*/, "partly stored requests (invariant 7)")
        .replace(/\d+/g, "N")
        .slice(0, 240);
}

/** The failure classes: each with the cuts (index@barrier) that show it. */
export function failureClasses(
    results: readonly CutResult[],
    problemsOf: (result: CutResult) => readonly string[] | undefined = (result) => result.problems,
): Map<string, string[]> {
    const classes = new Map<string, string[]>();
    for (const result of results) {
        const seen = new Set<string>();
        for (const problem of problemsOf(result) ?? []) {
            const name = problemClass(problem);
            if (seen.has(name)) continue;
            seen.add(name);
            let cuts = classes.get(name);
            if (cuts === undefined) classes.set(name, (cuts = []));
            cuts.push(`${result.index}@${result.cut.barrier}`);
        }
    }
    return classes;
}

export function printClasses(title: string, classes: Map<string, string[]>, write: (line: string) => void): void {
    if (classes.size === 0) return;
    write(title);
    for (const [name, cuts] of [...classes].sort((a, b) => b[1].length - a[1].length)) {
        write(`  ${String(cuts.length).padStart(3)} cut(s): ${name}`);
        write(`        cuts (index@barrier): ${cuts.slice(0, 12).join(", ")}${cuts.length > 12 ? ", …" : ""}`);
    }
}

/** What the lock failure hid, per cut: the problems once sluice.lock was deleted by hand. */
export function hiddenClasses(results: readonly CutResult[]): Map<string, string[]> {
    return failureClasses(
        results.filter((result) => result.afterLockRemoved !== undefined),
        problemsAfterLockRemoved,
    );
}

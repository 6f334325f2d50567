/**
 * `npm run e2e -- partial-write`: a request that no one acknowledged must be in the lake wholly or
 * not at all (DESIGN.md invariant 7), and the client's retry must then store each point once.
 *
 * A request with more than ~341 measurements is one WAL unit of that many entries, written with
 * one writev of 3 buffers per entry; libuv passes at most 1,024 buffers to one pwritev, so the
 * unit takes several calls. `strace -f -e inject=pwritev:signal=SIGKILL:when=N` kills the real
 * `sluice serve` at the N-th pwritev of the thread that writes it, i.e. between the calls of that
 * one request (the request is the fresh server's first write, so no earlier pwritev counts). Then:
 * the WAL is inspected (how many complete entries of the request the kill left), the server is
 * restarted and flushed (`POST /api/v1/flush`) and the lake read with DuckDB (none or all of the
 * request's points), the request is retried (204) and flushed, and every point must be stored
 * exactly once. Installs strace when missing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Ledger, type Outcome, pointTime, pointValue, problemsOf } from "../helpers/load.js";
import { readParquet } from "../helpers/parquet.js";
import { WalDirectoryReader } from "../../src/wal/directory-reader.js";
import type { EndToEnd } from "./run.js";
import { type Exit, type Serving, describeExit, isServing, serve } from "./powercut/sluice.js";
import { Teardown, ensureDebianPackages, say } from "./powercut/system.js";

const USAGE = `npm run e2e -- partial-write [--case MEASUREMENTSxKILL_AT]...
  --case 400x2   a request of 400 measurements, the server killed at its 2nd pwritev (repeatable;
                 default: 400x2, 2500x2, 2500x3: 2,500 entries need several
                 pwritev calls even at one buffer per entry)
  --points P     points per measurement (default 2)`;

const DATABASE = "partial";
const START_TIMEOUT_MS = 60_000;

interface Case {
    readonly measurements: number;
    readonly killAt: number;
}

/** The request: one batch per measurement in a ledger, all of writer 0, settled as `outcome`. */
function requestLedger(request: Case, points: number, outcome: Exclude<Outcome, "pending">): Ledger {
    const ledger = new Ledger();
    for (let m = 0; m < request.measurements; m++) {
        const batch = ledger.sent({ writer: 0, count: points, database: DATABASE, measurement: `m${String(m).padStart(4, "0")}`, endpoint: "v1" });
        ledger.settle(batch, outcome, outcome);
    }
    return ledger;
}

function body(ledger: Ledger): string {
    const lines: string[] = [];
    for (const batch of ledger.batches) {
        for (let seq = batch.firstSeq; seq < batch.firstSeq + batch.count; seq++) {
            lines.push(`${batch.measurement},writer=w${batch.writer} seq=${seq}i,v=${pointValue(seq)} ${pointTime(batch.writer, seq)}`);
        }
    }
    return `${lines.join("\n")}\n`;
}

async function post(url: string, path: string, text = ""): Promise<{ status: number; text: string } | { error: string }> {
    try {
        const response = await fetch(`${url}${path}`, { method: "POST", body: text, signal: AbortSignal.timeout(60_000) });
        return { status: response.status, text: await response.text() };
    } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause;
        return { error: `${(error as Error).message}${cause?.code === undefined ? "" : ` (${cause.code})`}` };
    }
}

const answer = (result: Awaited<ReturnType<typeof post>>) => ("error" in result ? `no answer: ${result.error}` : `${result.status} ${result.text.slice(0, 200)}`);

async function started(env: Record<string, string>, teardown: Teardown, wrapper: readonly string[] = []): Promise<Serving> {
    const result = await serve(env, teardown, START_TIMEOUT_MS, wrapper);
    if (!isServing(result)) throw new Error(`sluice serve did not start (exit ${describeExit(result.exit)}): ${result.process.tail(5)}`);
    return result;
}

interface CaseResult {
    readonly request: Case;
    /** Complete WAL entries of the request the kill left (of `measurements`). */
    readonly walEntries: number;
    readonly killed: Exit;
    /** What the restarted server logged as replayed ("WAL replayed: N entries …"), if anything. */
    readonly replayed: string;
    readonly firstAnswer: string;
    /** Distinct points of the request in Parquet after the restart and a flush, before the retry. */
    readonly storedBeforeRetry: number;
    readonly retryAnswer: string;
    readonly storedAfterRetry: number;
    readonly duplicatedAfterRetry: number;
    readonly problems: string[];
}

/**
 * Entries whose bytes are all in the WAL files (CRC checked), whatever request they belong to:
 * what the kill left on disk, not what recovery will make of it (it drops incomplete requests).
 */
async function completeWalEntries(walDir: string): Promise<number> {
    let entries = 0;
    for await (const record of new WalDirectoryReader(walDir, { payloads: true }).records()) if (record.kind === "entry") entries++;
    return entries;
}

async function runCase(request: Case, points: number, teardown: Teardown): Promise<CaseResult> {
    const dir = await mkdtemp(join(tmpdir(), "sluice-partial-write-"));
    const removeDir = teardown.add(`rm -r ${dir}`, () => rm(dir, { recursive: true, force: true }));
    try {
        const env = { SLUICE_DATA_DIR: join(dir, "data") };
        const problems: string[] = [];
        const text = body(requestLedger(request, points, "unknown"));
        const strace = ["strace", "-f", "-qq", "-o", join(dir, "strace.log"), "-e", "trace=pwritev", "-e", `inject=pwritev:signal=SIGKILL:when=${request.killAt}`];
        const traced = await started(env, teardown, strace);
        const first = await post(traced.url, `/write?db=${DATABASE}`, text);
        const killed = (await traced.process.exitWithin(30_000)) ?? { code: null, signal: null };
        if (!("error" in first)) problems.push(`HARNESS: the request was answered (${answer(first)}): the kill did not land inside it`);
        if (killed.signal !== "SIGKILL" && killed.code !== 128 + 9) problems.push(`HARNESS: the server was not killed by SIGKILL (exit ${describeExit(killed)})`);
        const entries = await completeWalEntries(join(env.SLUICE_DATA_DIR, "wal"));
        if (entries === 0 || entries >= request.measurements) problems.push(`HARNESS: the kill left ${entries} of ${request.measurements} entries in the WAL, not a part`);

        const restarted = await started(env, teardown);
        try {
            const flushed = await post(restarted.url, "/api/v1/flush");
            if ("error" in flushed || flushed.status !== 200) problems.push(`flush after the restart: ${answer(flushed)}`);
            const before = requestLedger(request, points, "unknown").verify((await readParquet(env.SLUICE_DATA_DIR)).points);
            const storedBeforeRetry = before.counts.stored;
            const total = request.measurements * points;
            if (storedBeforeRetry !== 0 && storedBeforeRetry !== total) {
                problems.push(`an unacknowledged request is partly in the lake: ${storedBeforeRetry} of its ${total} points (invariant 7: wholly or not at all)`);
            }
            for (const [kind, detail] of Object.entries(problemsOf(before))) problems.push(`before the retry: ${kind} ${detail}`);

            const retry = await post(restarted.url, `/write?db=${DATABASE}`, text);
            if ("error" in retry || retry.status !== 204) problems.push(`the retry was answered ${answer(retry)}, not 204`);
            const flushedAgain = await post(restarted.url, "/api/v1/flush");
            if ("error" in flushedAgain || flushedAgain.status !== 200) problems.push(`flush after the retry: ${answer(flushedAgain)}`);
            const after = requestLedger(request, points, "acked").verify((await readParquet(env.SLUICE_DATA_DIR)).points);
            for (const [kind, detail] of Object.entries(problemsOf(after))) problems.push(`after the retry: ${kind} ${detail}`);
            return {
                request,
                walEntries: entries,
                killed,
                replayed: /WAL replayed: (\d+) entries/.exec(restarted.process.output)?.[1] ?? "0",
                firstAnswer: answer(first),
                storedBeforeRetry,
                retryAnswer: answer(retry),
                storedAfterRetry: after.counts.stored,
                duplicatedAfterRetry: after.duplicated.length,
                problems,
            };
        } finally {
            const exit = await restarted.process.kill("SIGTERM");
            if (exit.code !== 0) problems.push(`SIGTERM: exit ${describeExit(exit)}: ${restarted.process.tail()}`);
        }
    } finally {
        await removeDir();
    }
}

function parse(args: readonly string[]): { cases: Case[]; points: number } {
    const { values } = parseArgs({ args: [...args], options: { case: { type: "string", multiple: true }, points: { type: "string" } } });
    const cases = (values.case ?? ["400x2", "2500x2", "2500x3"]).map((text) => {
        const match = /^(\d+)x(\d+)$/.exec(text);
        if (match === null || Number(match[2]) < 2) throw new Error(`--case wants MEASUREMENTSxKILL_AT with KILL_AT >= 2, got "${text}"\n${USAGE}`);
        return { measurements: Number(match[1]), killAt: Number(match[2]) };
    });
    const points = Number(values.points ?? 2);
    if (!Number.isSafeInteger(points) || points < 1) throw new Error(`--points wants a positive integer\n${USAGE}`);
    return { cases, points };
}

async function partialWrite(args: readonly string[]): Promise<number> {
    if (args.includes("--help")) {
        say(USAGE);
        return 0;
    }
    const { cases, points } = parse(args);
    await ensureDebianPackages([{ debian: "strace", probe: ["strace", "-V"] }]);
    const startedAt = Date.now();
    const teardown = new Teardown();
    const results = await teardown.around(async () => {
        const done: CaseResult[] = [];
        for (const request of cases) done.push(await runCase(request, points, teardown));
        return done;
    });
    say("measurements  kill at pwritev  WAL entries left  replayed  first answer      stored before retry  retry  stored after  duplicated  verdict");
    for (const result of results) {
        say(
            [
                String(result.request.measurements).padEnd(13),
                `#${result.request.killAt}`.padEnd(16),
                `${result.walEntries}/${result.request.measurements}`.padEnd(17),
                result.replayed.padEnd(9),
                (result.firstAnswer.startsWith("no answer") ? "none (killed)" : result.firstAnswer.slice(0, 16)).padEnd(17),
                `${result.storedBeforeRetry}/${result.request.measurements * points}`.padEnd(20),
                result.retryAnswer.slice(0, 6).padEnd(6),
                `${result.storedAfterRetry}`.padEnd(13),
                String(result.duplicatedAfterRetry).padEnd(11),
                result.problems.length === 0 ? "ok" : "FAIL",
            ].join(" "),
        );
    }
    for (const result of results) {
        for (const problem of result.problems) say(`  ${result.request.measurements}x${result.request.killAt}: ${problem.slice(0, 400)}`);
    }
    say(`partial-write took ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
    return results.some((result) => result.problems.length > 0) ? 1 : 0;
}

export const check: EndToEnd = {
    about: "kill -9 between the pwritev calls of one big request (strace injection), restart, retry: wholly or not at all, then exactly once; installs strace",
    run: partialWrite,
};

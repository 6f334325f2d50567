/**
 * DuckDB query times over Parquet lakes, compared: each query runs against every lake once to
 * warm the page cache, then `runs` times, interleaved, each run on a fresh in-memory DuckDB (no
 * cached footers between runs); the answers must agree between lakes (floating-point sums may
 * differ in their last bits: the rows are added in another order).
 */
import { performance } from "node:perf_hooks";
import { DuckDBInstance, type Json } from "@duckdb/node-api";
import { interleaved } from "./interleave.js";
import { type Stat, stat } from "./stats.js";

export interface LakeQuery {
    readonly name: string;
    /** The SQL over a lake, given its `read_parquet(…)` source for a measurement (or `*` for all). */
    sql(source: (measurement: string) => string): string;
}

export interface QueryTiming {
    readonly name: string;
    /** Wall ms of the query (connect and load excluded), by lake. */
    readonly ms: Readonly<Record<string, Stat>>;
    /** The answer (rows) of the first lake. */
    readonly answer: readonly Json[][];
    /** Lakes whose answer differs from the first's. */
    readonly disagreeing: readonly string[];
}

/** Equal, numbers within a relative 1e-9. */
function agree(a: Json, b: Json): boolean {
    if (typeof a === "number" && typeof b === "number") return a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
    if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => agree(item, b[i]!));
    return JSON.stringify(a) === JSON.stringify(b);
}

async function timedRun(sql: string): Promise<{ ms: number; answer: Json[][] }> {
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
        const started = performance.now();
        const reader = await connection.runAndReadAll(sql);
        const ms = performance.now() - started;
        return { ms, answer: reader.getRowsJson() };
    } finally {
        connection.closeSync();
        instance.closeSync();
    }
}

/** Times every query over every lake (`sources`: lake name → its source builder). */
export async function timeQueries(
    queries: readonly LakeQuery[],
    sources: Readonly<Record<string, (measurement: string) => string>>,
    runs: number,
    onProgress?: (message: string) => void,
): Promise<QueryTiming[]> {
    const lakes = Object.keys(sources);
    const results: QueryTiming[] = [];
    for (const query of queries) {
        const answers = new Map<string, Json[][]>();
        for (const lake of lakes) answers.set(lake, (await timedRun(query.sql(sources[lake]!))).answer);
        const times = new Map<string, number[]>(lakes.map((lake) => [lake, []]));
        for (const { item: lake } of interleaved(lakes, runs, { alternate: true })) times.get(lake)!.push((await timedRun(query.sql(sources[lake]!))).ms);
        const first = answers.get(lakes[0]!)!;
        const ms = Object.fromEntries(lakes.map((lake) => [lake, stat(times.get(lake)!)]));
        results.push({ name: query.name, ms, answer: first, disagreeing: lakes.filter((lake) => !agree(answers.get(lake)!, first)) });
        onProgress?.(`  ${query.name}: ${lakes.map((lake) => `${lake} ${ms[lake]!.median.toFixed(1)} ms`).join(", ")}`);
    }
    return results;
}

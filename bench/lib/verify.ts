/**
 * After a load run: `POST /api/v1/flush`, then DuckDB over `<data>/parquet/**\/*.parquet`: the
 * rows must equal the acknowledged lines (every line the generator sends is a distinct (series,
 * time) point), no (series, time) key twice, every field value present, the times within those
 * sent.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { DuckDBInstance } from "@duckdb/node-api";
import type { LoadResult } from "./http-load.js";
import { FIELD_NAMES, FIELDS_PER_LINE } from "./line-source.js";

export interface SluiceVerify {
    readonly flushMs: number;
    readonly files: number;
    readonly rows: number;
    readonly duplicateKeys: number;
    readonly fieldValues: number;
    readonly series: number;
    readonly minSeconds: number;
    readonly maxSeconds: number;
    readonly ok: boolean;
    readonly problems: readonly string[];
}

export function sqlString(value: string): string {
    return `'${value.replaceAll("'", "''")}'`;
}

/** `POST /api/v1/flush`, then DuckDB over `<data>/parquet/**\/*.parquet`, compared with what the load generator had acknowledged. */
export async function verifySluice(url: string, dataDir: string, load: LoadResult): Promise<SluiceVerify> {
    const problems: string[] = [];
    const t0 = performance.now();
    const response = await fetch(`${url}/api/v1/flush`, { method: "POST", signal: AbortSignal.timeout(600_000) });
    const flushMs = performance.now() - t0;
    const flushText = await response.text();
    if (response.status !== 200) problems.push(`POST /api/v1/flush answered ${response.status}: ${flushText.slice(0, 300)}`);
    const root = join(dataDir, "parquet");
    const files = (await readdir(root, { recursive: true }).catch(() => [] as string[])).filter((name) => name.endsWith(".parquet"));
    let rows = 0;
    let duplicateKeys = 0;
    let fieldValues = 0;
    let series = 0;
    let minSeconds = Number.NaN;
    let maxSeconds = Number.NaN;
    if (files.length > 0) {
        const instance = await DuckDBInstance.create(":memory:", { threads: "2" });
        const connection = await instance.connect();
        try {
            const source = `read_parquet(${sqlString(join(root, "**", "*.parquet"))}, union_by_name = true, hive_partitioning = false)`;
            const counted = (
                await connection.runAndReadAll(
                    `SELECT count(*) AS n, ${FIELD_NAMES.map((f) => `count(${f})`).join(" + ")} AS v, count(DISTINCT (host, region, service)) AS s, ` +
                        `epoch_ns(min(time)) AS tmin, epoch_ns(max(time)) AS tmax FROM ${source}`,
                )
            ).getRowObjects()[0]!;
            rows = Number(counted.n);
            fieldValues = Number(counted.v);
            series = Number(counted.s);
            minSeconds = Number((counted.tmin as bigint) / 1_000_000_000n);
            maxSeconds = Number((counted.tmax as bigint) / 1_000_000_000n);
            const dups = (
                await connection.runAndReadAll(`SELECT count(*) AS d FROM (SELECT host, region, service, time FROM ${source} GROUP BY ALL HAVING count(*) > 1)`)
            ).getRowObjects()[0]!;
            duplicateKeys = Number(dups.d);
        } finally {
            connection.closeSync();
            instance.closeSync();
        }
    }
    const { ackedLines, errorLines } = load.total;
    if (errorLines === 0 ? rows !== ackedLines : rows < ackedLines || rows > ackedLines + errorLines) {
        problems.push(`Parquet holds ${rows} rows, ${ackedLines} lines were acknowledged${errorLines > 0 ? ` (+ ${errorLines} unanswered)` : ""}`);
    }
    if (duplicateKeys > 0) problems.push(`${duplicateKeys} (series, time) keys stored more than once`);
    if (fieldValues !== rows * FIELDS_PER_LINE) problems.push(`${fieldValues} field values for ${rows} rows (expected ${FIELDS_PER_LINE} each)`);
    if (rows > 0 && (minSeconds < load.total.firstSeconds || maxSeconds > load.total.lastSeconds)) {
        problems.push(`stored times ${minSeconds}…${maxSeconds} s outside the ones sent (${load.total.firstSeconds}…${load.total.lastSeconds})`);
    }
    return { flushMs, files: files.length, rows, duplicateKeys, fieldValues, series, minSeconds, maxSeconds, ok: problems.length === 0, problems };
}

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Column, type ColumnType, type ColumnarBatch, bitmapBytes, setBit } from "../../src/columnar/batch.js";

/** A temporary directory removed after the test (call `cleanup` in afterEach). */
export async function tempDir(prefix = "sluice-test-"): Promise<{ path: string; cleanup: () => Promise<void> }> {
    const path = await mkdtemp(join(tmpdir(), prefix));
    return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** A Telegraf-like batch: time, tags host/region, fields usage (f), count (i), ok (b). */
export function cpuBatch(rows: number, offset = 0, measurement = "cpu"): ColumnarBatch {
    const time = new BigInt64Array(rows);
    const usage = new Float64Array(rows);
    const count = new BigInt64Array(rows);
    const ok = new Uint8Array(bitmapBytes(rows));
    const host = new Uint32Array(rows);
    const region = new Uint32Array(rows);
    for (let i = 0; i < rows; i++) {
        const n = offset + i;
        time[i] = 1_700_000_000_000_000_000n + BigInt(n) * 1_000_000_007n;
        usage[i] = n / 4;
        count[i] = BigInt(n) * 3n - 7n;
        if (n % 3 === 0) setBit(ok, i);
        host[i] = n % 5;
        region[i] = n % 2;
    }
    const columns = new Map<string, Column>([
        ["time", { type: "t", values: time }],
        ["host", { type: "s", dict: ["h0", "h1", "h2", "h3", "h4"], codes: host }],
        ["region", { type: "s", dict: ["eu", "us"], codes: region }],
        ["usage", { type: "f", values: usage }],
        ["count", { type: "i", values: count }],
        ["ok", { type: "b", values: ok }],
    ]);
    return { measurement, rows, tags: ["host", "region"], columns };
}

export type Value = bigint | number | boolean | string | null;
export type Row = Record<string, Value | undefined>;

/**
 * A batch from plain rows: `types` names every column but `time` (tags are `s`), a missing or
 * null value is a null. Strings are dictionary-coded in order of first use.
 */
export function makeBatch(measurement: string, tags: readonly string[], types: Record<string, ColumnType>, rows: readonly Row[]): ColumnarBatch {
    const n = rows.length;
    const columns = new Map<string, Column>([["time", { type: "t", values: BigInt64Array.from(rows, (row) => row["time"] as bigint) }]]);
    for (const [name, type] of Object.entries(types)) {
        const valid = new Uint8Array(bitmapBytes(n));
        let nulls = 0;
        rows.forEach((row, i) => {
            if (row[name] === undefined || row[name] === null) nulls++;
            else setBit(valid, i);
        });
        const validity = nulls === 0 ? {} : { valid };
        const value = (i: number) => rows[i]![name];
        switch (type) {
            case "f":
                columns.set(name, { type, values: Float64Array.from(rows, (_, i) => (value(i) as number | null) ?? 0), ...validity });
                break;
            case "i":
                columns.set(name, { type, values: BigInt64Array.from(rows, (_, i) => (value(i) as bigint | null) ?? 0n), ...validity });
                break;
            case "u":
                columns.set(name, { type, values: BigUint64Array.from(rows, (_, i) => (value(i) as bigint | null) ?? 0n), ...validity });
                break;
            case "b": {
                const bits = new Uint8Array(bitmapBytes(n));
                rows.forEach((_, i) => {
                    if (value(i) === true) setBit(bits, i);
                });
                columns.set(name, { type, values: bits, ...validity });
                break;
            }
            case "s": {
                const dict: string[] = [];
                const codeOf = new Map<string, number>();
                const codes = Uint32Array.from(rows, (_, i) => {
                    const v = value(i);
                    if (typeof v !== "string") return 0;
                    let code = codeOf.get(v);
                    if (code === undefined) {
                        code = dict.length;
                        codeOf.set(v, code);
                        dict.push(v);
                    }
                    return code;
                });
                columns.set(name, { type, dict, codes, ...validity });
                break;
            }
            case "t":
                throw new Error("only the time column is of type t");
        }
    }
    return { measurement, rows: n, tags, columns };
}

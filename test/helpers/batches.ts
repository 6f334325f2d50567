import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Column, type ColumnarBatch, bitmapBytes, setBit } from "../../src/columnar/batch.js";

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

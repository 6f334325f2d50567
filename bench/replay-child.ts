/**
 * One side of `npm run bench -- replay`, in its own process (msgpackr picks its decoder when it
 * is loaded): `node dist/bench/replay-child.js WAL_DIR PASSES`. Reads every entry of the WAL
 * directory through recovery (read, CRC, msgpack decode into batches; the batches are only
 * counted), once to warm up, then PASSES times, and prints one JSON line: the rows of a pass, the
 * median wall and CPU ms of a pass, and whether msgpackr's native part was in use.
 */
import { isNativeAccelerationEnabled } from "msgpackr";
import { recoverWal } from "../src/wal/recovery.js";

function median(values: readonly number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function pass(dir: string): Promise<{ rows: number; wallMs: number; cpuMs: number }> {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const stats = await recoverWal({ dir, batchRows: Number.MAX_SAFE_INTEGER, onBatch: () => undefined });
    const wallMs = performance.now() - start;
    const used = process.cpuUsage(cpu);
    return { rows: stats.recoveredRows, wallMs, cpuMs: (used.user + used.system) / 1000 };
}

const [dir, passesText] = process.argv.slice(2);
const passes = Number(passesText);
if (dir === undefined || !Number.isSafeInteger(passes) || passes < 1) throw new Error("usage: replay-child.js WAL_DIR PASSES");
const warm = await pass(dir);
const runs = [];
for (let i = 0; i < passes; i++) runs.push(await pass(dir));
process.stdout.write(
    `${JSON.stringify({ rows: warm.rows, native: isNativeAccelerationEnabled, wallMs: median(runs.map((run) => run.wallMs)), cpuMs: median(runs.map((run) => run.cpuMs)) })}\n`,
);

/**
 * `npm run bench -- smallfile [--rounds R]`: what one flush file of N rows costs to encode with
 * parquet-wasm (Arrow, IPC, the wasm writer) and with hyparquet-writer (small-parquet.ts), in
 * this thread, for N from 1 to 1,024 Telegraf-like rows (two tags, float, int and bool fields):
 * CPU ms per file (median of R rounds) and bytes per file with the default codec (ZSTD for
 * parquet-wasm; hyparquet-writer's files are UNCOMPRESSED). `parquet.small_file_rows` defaults
 * to the largest N at which hyparquet-writer is cheaper and its file no larger than ~10% beyond parquet-wasm's.
 * Run under `flock /tmp/sluice-bench.lock` when other benchmarks may run.
 */
import { encodeParquet } from "../flush/encode/parquet.js";
import type { EncodeInput, EncodeOptions } from "../flush/encode/types.js";
import { cpuBatch } from "../test/helpers/batches.js";
import { type Benchmark, type BenchOptions, progress } from "./lib/benchmark.js";
import { machineInfo, machineLine } from "./lib/machine.js";
import { fixed, formatTable } from "./lib/output.js";

const SIZES = [1, 4, 16, 32, 64, 128, 256, 1024];
const DEFAULT_ROUNDS = 5;
/** Encodes per round: enough rows that a round takes tens of milliseconds. */
const ROWS_PER_ROUND = 8_192;

interface Cell {
    readonly rows: number;
    readonly wasmMs: number;
    readonly smallMs: number;
    readonly wasmBytes: number;
    readonly smallBytes: number;
}

function median(values: readonly number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[sorted.length >> 1]!;
}

/** Median ms per encode of `input` over `rounds` rounds, after a warm-up, and the bytes of its one file. */
function measure(input: EncodeInput, options: EncodeOptions, rounds: number): { ms: number; bytes: number } {
    const reps = Math.max(20, Math.ceil(ROWS_PER_ROUND / input.segments[0]!.rows));
    for (let i = 0; i < reps; i++) encodeParquet(input, options);
    const perRound: number[] = [];
    for (let round = 0; round < rounds; round++) {
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) encodeParquet(input, options);
        perRound.push((performance.now() - t0) / reps);
    }
    const files = encodeParquet(input, options);
    return { ms: median(perRound), bytes: files.reduce((sum, file) => sum + file.bytes.length, 0) };
}

async function run(options: BenchOptions): Promise<number> {
    const rounds = Number(options.values.rounds ?? DEFAULT_ROUNDS);
    if (!Number.isInteger(rounds) || rounds < 1) {
        progress("--rounds takes a positive integer");
        return 2;
    }
    progress(machineLine(await machineInfo(process.cwd())));
    const cells: Cell[] = [];
    for (const rows of SIZES) {
        // cpuBatch's rows are a second apart: every size here is one hour, one file.
        const input: EncodeInput = { database: "db", segments: [cpuBatch(rows)], minSequence: 1, maxSequence: 1 };
        const wasm = measure(input, { sluiceVersion: "bench", smallFileRows: 0 }, rounds);
        const small = measure(input, { sluiceVersion: "bench", smallFileRows: rows }, rounds);
        cells.push({ rows, wasmMs: wasm.ms, smallMs: small.ms, wasmBytes: wasm.bytes, smallBytes: small.bytes });
        progress(`${rows} rows: parquet-wasm ${fixed(wasm.ms, 3)} ms, hyparquet-writer ${fixed(small.ms, 3)} ms`);
    }
    if (options.json) {
        process.stdout.write(`${JSON.stringify({ rounds, cells })}\n`);
        return 0;
    }
    process.stdout.write(
        `${formatTable(
            [
                { title: "rows per file", align: "right", cell: (c: Cell) => String(c.rows) },
                { title: "parquet-wasm ms", align: "right", cell: (c) => fixed(c.wasmMs, 3) },
                { title: "hyparquet-writer ms", align: "right", cell: (c) => fixed(c.smallMs, 3) },
                { title: "cost ratio", align: "right", cell: (c) => `${fixed(c.wasmMs / c.smallMs, 1)}×` },
                { title: "parquet-wasm bytes (zstd)", align: "right", cell: (c) => String(c.wasmBytes) },
                { title: "hyparquet-writer bytes (uncompressed)", align: "right", cell: (c) => String(c.smallBytes) },
            ],
            cells,
        )}\n`,
    );
    return 0;
}

export const benchmark: Benchmark = {
    options: { rounds: { type: "string" } },
    optionHelp: ["  --rounds R        timed rounds per cell, median reported (default 5)"],
    run,
};

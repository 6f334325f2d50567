/**
 * What every benchmark shares: the options `bench/run.ts` hands over, the machine description,
 * a seeded PRNG, a latency reservoir that never allocates while measuring, the scratch
 * directory, the raw-disk baseline (dd) and table printing.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, rmdir } from "node:fs/promises";
import { cpus, availableParallelism, release, totalmem } from "node:os";
import { join, resolve } from "node:path";
import type { ParseArgsConfig } from "node:util";
import type { StringColumn } from "../src/columnar/batch.js";

export type BenchOptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** What `bench/run.ts` parsed for a benchmark. */
export interface BenchOptions {
    /** `--seconds N`: how long each measured cell runs (the benchmark's default when absent). */
    readonly seconds: number | undefined;
    /** `--json`: one JSON object on stdout instead of the table. */
    readonly json: boolean;
    /** `--dir PATH`: the parent of the scratch directory (default `<cwd>/bench-tmp`). */
    readonly dir: string | undefined;
    /** The benchmark's own options, as `node:util` parseArgs returned them. */
    readonly values: Readonly<Record<string, string | boolean | undefined>>;
}

export interface Benchmark {
    /** Extra options (beyond --seconds, --json, --dir) and their one-line help. */
    readonly options?: BenchOptionSpec;
    readonly optionHelp?: readonly string[];
    /** Runs the benchmark; resolves to the process exit code. */
    run(options: BenchOptions): Promise<number>;
}

/** Progress and warnings go to stderr, so `--json` keeps stdout to the one object. */
export function progress(message: string): void {
    process.stderr.write(`${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness (never Math.random: runs must compare)

/** mulberry32: a fast 32-bit PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
        state = (state + 0x6d2b79f5) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

// ---------------------------------------------------------------------------------------------
// Latency samples

/**
 * Latency samples in a preallocated Float64Array. Once full it keeps a uniform reservoir sample
 * (Algorithm R, xorshift32 index), so recording never allocates.
 */
export class LatencyReservoir {
    readonly samples: Float64Array;
    /** Samples held (≤ capacity). */
    count = 0;
    /** Samples offered since the last reset. */
    seen = 0;
    #rng = 0x9e3779b9;

    constructor(capacity: number) {
        this.samples = new Float64Array(capacity);
    }

    reset(): void {
        this.count = 0;
        this.seen = 0;
        this.#rng = 0x9e3779b9;
    }

    record(value: number): void {
        const seen = this.seen++;
        if (this.count < this.samples.length) {
            this.samples[this.count++] = value;
            return;
        }
        let x = this.#rng;
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        this.#rng = x >>> 0;
        const slot = Math.floor((this.#rng / 4294967296) * (seen + 1));
        if (slot < this.samples.length) this.samples[slot] = value;
    }

    /** Sorts the held samples in place; call once, then `percentile`. */
    sort(): void {
        this.samples.subarray(0, this.count).sort();
    }

    /** Nearest-rank percentile of the sorted samples (NaN when there are none). */
    percentile(p: number): number {
        if (this.count === 0) return Number.NaN;
        const rank = Math.min(this.count, Math.max(1, Math.ceil((p / 100) * this.count)));
        return this.samples[rank - 1]!;
    }

    max(): number {
        return this.count === 0 ? Number.NaN : this.samples[this.count - 1]!;
    }
}

// ---------------------------------------------------------------------------------------------
// Scratch directory

/**
 * A fresh directory for one benchmark run: under `<parent>/` (default `<cwd>/bench-tmp/`, on
 * the same disk as the working directory). `remove()` deletes it, and `bench-tmp` too when it
 * created that and it is empty; a `--dir` parent itself is never deleted.
 */
export async function scratchDirectory(parent: string | undefined, prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
    const base = resolve(parent ?? join(process.cwd(), "bench-tmp"));
    await mkdir(base, { recursive: true });
    const path = await mkdtemp(join(base, `${prefix}-`));
    return {
        path,
        async remove() {
            await rm(path, { recursive: true, force: true });
            if (parent === undefined) {
                const left = await readdir(base).catch(() => ["?"]);
                if (left.length === 0) await rmdir(base).catch(() => undefined);
            }
        },
    };
}

// ---------------------------------------------------------------------------------------------
// Child processes, machine line, dd

export function runCommand(command: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolvePromise, reject) => {
        const child = spawn(command, args, { env: { ...process.env, LC_ALL: "C" }, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        child.on("error", reject);
        child.on("close", (code) => {
            resolvePromise({ code, stdout, stderr });
        });
    });
}

export interface MachineInfo {
    readonly nproc: number;
    readonly cpuModel: string;
    readonly totalMemoryBytes: number;
    readonly node: string;
    readonly kernel: string;
    /** `df -PhT <dir>`'s line for the target file system. */
    readonly df: string;
}

export async function machineInfo(dir: string): Promise<MachineInfo> {
    let df: string;
    try {
        const result = await runCommand("df", ["-PhT", dir]);
        df = result.stdout.trim().split("\n").at(-1)?.replace(/\s+/g, " ") ?? "";
        if (result.code !== 0) df = `df failed: ${result.stderr.trim()}`;
    } catch (error) {
        df = `df failed: ${(error as Error).message}`;
    }
    return {
        nproc: availableParallelism(),
        cpuModel: cpus()[0]?.model.trim() ?? "unknown",
        totalMemoryBytes: totalmem(),
        node: process.version,
        kernel: release(),
        df,
    };
}

export function machineLine(info: MachineInfo): string {
    const gib = (info.totalMemoryBytes / 2 ** 30).toFixed(1);
    return `machine: nproc=${info.nproc} mem=${gib}GiB node=${info.node} kernel=${info.kernel} cpu="${info.cpuModel}" | df: ${info.df}`;
}

export interface DdResult {
    readonly command: string;
    /** Decimal megabytes (10^6 bytes) per second, from dd's byte count and elapsed time. */
    readonly mbPerSec: number | undefined;
    readonly bytes: number | undefined;
    readonly seconds: number | undefined;
    /** dd's own summary line, or why there is no figure. */
    readonly summary: string;
}

/**
 * The disk's raw direct-I/O write bandwidth on `dir`'s file system:
 * `dd if=/dev/zero of=F bs=1M count=512 oflag=direct`, F deleted afterwards.
 */
export async function ddBandwidth(dir: string, name = "dd-bandwidth.tmp"): Promise<DdResult> {
    const file = join(dir, name);
    const args = ["if=/dev/zero", `of=${file}`, "bs=1M", "count=512", "oflag=direct"];
    const command = `dd ${args.join(" ")}`;
    try {
        const { code, stderr } = await runCommand("dd", args);
        const line =
            stderr
                .trim()
                .split("\n")
                .find((l) => l.includes("copied")) ?? stderr.trim();
        const match = /^(\d+) bytes.*copied, ([\d.]+) s, ([\d.]+) ([kMGT]?B)\/s/.exec(line);
        if (code !== 0 || match === null) return { command, mbPerSec: undefined, bytes: undefined, seconds: undefined, summary: `dd failed (exit ${code}): ${stderr.trim()}` };
        const bytes = Number(match[1]);
        const seconds = Number(match[2]);
        return { command, mbPerSec: bytes / seconds / 1e6, bytes, seconds, summary: line };
    } catch (error) {
        return { command, mbPerSec: undefined, bytes: undefined, seconds: undefined, summary: `dd could not run: ${(error as Error).message}` };
    } finally {
        await rm(file, { force: true });
    }
}

// ---------------------------------------------------------------------------------------------
// Tables

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

export function sleep(ms: number): Promise<void> {
    return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}

/**
 * A dictionary column whose row i holds `values[pick(i)]`, its dictionary holding only the
 * values used, in order of first use (as the line-protocol decoder builds it).
 */
export function firstUseDictionaryColumn(values: readonly string[], rows: number, pick: (row: number) => number): StringColumn {
    const codeOf = new Int32Array(values.length).fill(-1);
    const dict: string[] = [];
    const codes = new Uint32Array(rows);
    for (let i = 0; i < rows; i++) {
        const chosen = pick(i);
        let code = codeOf[chosen]!;
        if (code < 0) {
            code = dict.length;
            codeOf[chosen] = code;
            dict.push(values[chosen]!);
        }
        codes[i] = code;
    }
    return { type: "s", dict, codes };
}

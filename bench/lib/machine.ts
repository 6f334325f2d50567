/**
 * The machine a run was measured on: its description (CPUs, memory, kernel, Node, the scratch
 * directory's file system), the disk's raw write bandwidth (dd), and waiting for other work to
 * calm down before a measured run (on a shared 2-vCPU box it shows up in every figure).
 */
import { rm } from "node:fs/promises";
import { availableParallelism, cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { runCommand } from "../../test/helpers/processes.js";
import { clockTicksPerSecond, machineTicks } from "./procfs.js";

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

/**
 * Waits until the machine is quiet (all CPUs together busy below `thresholdPct` of one core,
 * measured over 1 s) or `maxWaitMs` passed; returns the last figure.
 */
export async function waitForQuiet(thresholdPct = 25, maxWaitMs = 60_000): Promise<{ busyPct: number; waitedMs: number }> {
    const t0 = performance.now();
    for (;;) {
        const a = await machineTicks();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const b = await machineTicks();
        const busyPct = a === undefined || b === undefined ? 0 : ((b.busy - a.busy) / clockTicksPerSecond()) * 100;
        const waitedMs = performance.now() - t0;
        if (busyPct < thresholdPct || waitedMs >= maxWaitMs) return { busyPct, waitedMs };
    }
}

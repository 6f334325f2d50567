/**
 * What /proc says about processes and the machine: CPU seconds of a process (all its threads,
 * and each thread), its resident memory, every other process's CPU, and the machine's busy and
 * steal time. Each read returns undefined (or an empty map) when the process is gone.
 */
import { execFileSync } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";

let clockTicks: number | undefined;
/** USER_HZ (`getconf CLK_TCK`), 100 when that cannot run. */
export function clockTicksPerSecond(): number {
    if (clockTicks === undefined) {
        try {
            clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
        } catch {
            clockTicks = 100;
        }
    }
    return clockTicks;
}

function splitTicksOfStat(text: string): { user: number; system: number } {
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // After the comm: state is field 3, utime field 14, stime field 15 (1-based, man proc).
    return { user: Number(fields[11]), system: Number(fields[12]) };
}

/** utime + stime (in clock ticks) from a /proc …/stat line. */
function ticksOfStat(text: string): number {
    const { user, system } = splitTicksOfStat(text);
    return user + system;
}

/** User and system CPU seconds of a process (all its threads). */
export async function processCpu(pid: number): Promise<{ user: number; system: number } | undefined> {
    try {
        const { user, system } = splitTicksOfStat(await readFile(`/proc/${pid}/stat`, "utf8"));
        return { user: user / clockTicksPerSecond(), system: system / clockTicksPerSecond() };
    } catch {
        return undefined;
    }
}

export async function processCpuSeconds(pid: number): Promise<number | undefined> {
    const cpu = await processCpu(pid);
    return cpu === undefined ? undefined : cpu.user + cpu.system;
}

/** CPU seconds of each thread of a process, by tid. */
export async function threadCpuSeconds(pid: number): Promise<Map<number, number>> {
    const result = new Map<number, number>();
    let tids: string[];
    try {
        tids = await readdir(`/proc/${pid}/task`);
    } catch {
        return result;
    }
    await Promise.all(
        tids.map(async (tid) => {
            try {
                result.set(Number(tid), ticksOfStat(await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8")) / clockTicksPerSecond());
            } catch {
                // The thread ended meanwhile.
            }
        }),
    );
    return result;
}

/** VmRSS and VmHWM in bytes. */
export async function processMemory(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
    try {
        const text = await readFile(`/proc/${pid}/status`, "utf8");
        const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN) * 1024;
        return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
    } catch {
        return undefined;
    }
}

export type ProcessTable = Map<number, { name: string; seconds: number }>;

/** CPU seconds and name of every process but `exclude`, by pid. */
export async function allProcesses(exclude: ReadonlySet<number>): Promise<ProcessTable> {
    const result: ProcessTable = new Map();
    const pids = (await readdir("/proc").catch(() => [] as string[])).filter((name) => /^\d+$/.test(name)).map(Number);
    await Promise.all(
        pids
            .filter((pid) => !exclude.has(pid))
            .map(async (pid) => {
                try {
                    const text = await readFile(`/proc/${pid}/stat`, "utf8");
                    const name = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
                    result.set(pid, { name, seconds: ticksOfStat(text) / clockTicksPerSecond() });
                } catch {
                    // Gone meanwhile.
                }
            }),
    );
    return result;
}

/** A process's command line (the first 160 characters). */
export async function commandLine(pid: number): Promise<string | undefined> {
    try {
        return (await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ").trim().slice(0, 160);
    } catch {
        return undefined;
    }
}

export interface MachineTicks {
    readonly steal: number;
    readonly busy: number;
    /** user + nice (guest time is included in user). */
    readonly user: number;
    readonly total: number;
}

/** Machine-wide steal, busy, user and total CPU ticks (all CPUs) from /proc/stat. */
export async function machineTicks(): Promise<MachineTicks | undefined> {
    try {
        const line = (await readFile("/proc/stat", "utf8")).split("\n")[0]!;
        const v = line.trim().split(/\s+/).slice(1).map(Number);
        const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
        const idle = (v[3] ?? 0) + (v[4] ?? 0);
        const steal = v[7] ?? 0;
        return { steal, busy: total - idle - steal, user: (v[0] ?? 0) + (v[1] ?? 0), total };
    } catch {
        return undefined;
    }
}

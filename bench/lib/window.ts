/**
 * A measured window as /proc saw it: snapshots at its two edges of this process's CPU (the
 * client), a server process's CPU (all threads, and each thread), every other process's CPU,
 * and the machine's busy and steal time; and the server's resident memory sampled in between.
 * `summary()` turns the two snapshots into rates over the window.
 */
import { performance } from "node:perf_hooks";
import { type MachineTicks, type ProcessTable, allProcesses, clockTicksPerSecond, commandLine, machineTicks, processCpu, processMemory, threadCpuSeconds } from "./procfs.js";

export interface ServerSample {
    readonly pid: number;
    readonly cpuSeconds: number;
    /** Of one core (200 % = both cores of a 2-vCPU machine). */
    readonly cpuPct: number;
    /** Peak of VmRSS sampled every 100 ms over the window. */
    readonly rssPeakBytes: number;
    readonly rssStartBytes: number;
    /** VmHWM at the end (peak since the process started). */
    readonly hwmBytes: number;
    /** Busiest threads over the window: tid, CPU % of one core; tid = pid is the main thread. */
    readonly threads: readonly { readonly tid: number; readonly main: boolean; readonly cpuPct: number }[];
}

/**
 * Over the window, in % of one core: steal (the host took the CPU), all CPUs busy, and what
 * neither the client nor the server used (other processes, kernel work not charged to them).
 */
export interface MachineShare {
    readonly stealPct: number;
    readonly busyPct: number;
    /** Busy time neither the client nor the server was charged (other processes, kernel work such as loopback softirqs and writeback). */
    readonly otherPct: number | undefined;
    /** User time of other processes: the sign of a disturbed run (kernel work is not in it). */
    readonly otherUserPct: number | undefined;
}

export interface OtherProcess {
    readonly pid: number;
    readonly name: string;
    readonly cpuPct: number;
    readonly command: string | undefined;
}

export interface ClientSample {
    readonly cpuSeconds: number;
    readonly cpuPct: number;
    readonly userSeconds: number;
    readonly systemSeconds: number;
}

export interface WindowSummary {
    readonly seconds: number;
    /** The window's edges on CLOCK_MONOTONIC in µs (the clock of V8's CPU profiles). */
    readonly monotonicUs: { readonly start: number; readonly end: number };
    readonly client: ClientSample;
    readonly server: ServerSample | undefined;
    readonly machine: MachineShare | undefined;
    /** Other processes that used ≥ 5 % of a core over the window (processes started meanwhile count from zero). */
    readonly others: readonly OtherProcess[];
}

/** The peak of a process's VmRSS over the samples taken (one at a time: a slow read is not stacked). */
export class PeakRss {
    peak = 0;
    first = Number.NaN;
    #sampling = false;
    #timer: NodeJS.Timeout | undefined;

    constructor(readonly pid: number) {}

    async sample(): Promise<void> {
        if (this.#sampling) return;
        this.#sampling = true;
        const memory = await processMemory(this.pid);
        this.#sampling = false;
        if (memory !== undefined) {
            this.peak = Math.max(this.peak, memory.rss);
            if (Number.isNaN(this.first)) this.first = memory.rss;
        }
    }

    /** Samples every `everyMs` while `when()` holds, until `stop()`. */
    every(everyMs: number, when: () => boolean = () => true): this {
        this.#timer = setInterval(() => {
            if (when()) void this.sample();
        }, everyMs);
        return this;
    }

    stop(): void {
        clearInterval(this.#timer);
    }
}

interface Edge {
    readonly machine: MachineTicks | undefined;
    readonly serverCpu: { user: number; system: number } | undefined;
    readonly threads: Map<number, number>;
    readonly others: ProcessTable;
}

const OTHERS_MIN_PCT = 5;
const OTHERS_LISTED = 5;
const THREAD_MIN_PCT = 0.5;

export class MeasuredWindow {
    /** True between the edges: answers arriving meanwhile are measured. */
    open = false;
    readonly rss: PeakRss | undefined;
    #startedAt: number;
    #endedAt: number;
    #monotonicStart = 0;
    #monotonicEnd = 0;
    #cpuAtStart: NodeJS.CpuUsage | undefined;
    #cpu: NodeJS.CpuUsage | undefined;
    #start: Edge | undefined;
    #end: Edge | undefined;
    #hwm = Number.NaN;
    readonly #exclude: ReadonlySet<number>;

    /** `plannedStart`/`plannedEnd` (`performance.now()`) stand for the edges until they are taken. */
    constructor(
        readonly serverPid: number | undefined,
        plannedStart: number,
        plannedEnd: number,
    ) {
        this.#startedAt = plannedStart;
        this.#endedAt = plannedEnd;
        this.#exclude = new Set([process.pid, ...(serverPid === undefined ? [] : [serverPid])]);
        this.rss = serverPid === undefined ? undefined : new PeakRss(serverPid);
    }

    async #edge(): Promise<Edge> {
        const pid = this.serverPid;
        const [machine, serverCpu, threads, others] = await Promise.all([
            machineTicks(),
            pid === undefined ? undefined : processCpu(pid),
            pid === undefined ? new Map<number, number>() : threadCpuSeconds(pid),
            allProcesses(this.#exclude),
        ]);
        return { machine, serverCpu, threads, others };
    }

    /** Opens the window now and snapshots its start (the server's RSS is sampled by the caller's `rss.sample()`). */
    async begin(): Promise<void> {
        this.open = true;
        this.#startedAt = performance.now();
        this.#monotonicStart = Number(process.hrtime.bigint() / 1000n);
        this.#cpuAtStart = process.cpuUsage();
        this.#start = await this.#edge();
    }

    /** Closes the window now and snapshots its end, with the server's RSS and VmHWM. */
    async end(): Promise<void> {
        this.open = false;
        this.#endedAt = performance.now();
        this.#monotonicEnd = Number(process.hrtime.bigint() / 1000n);
        this.#cpu = process.cpuUsage(this.#cpuAtStart);
        this.#end = await this.#edge();
        if (this.serverPid !== undefined) {
            const memory = await processMemory(this.serverPid);
            if (memory !== undefined && this.rss !== undefined) {
                this.rss.peak = Math.max(this.rss.peak, memory.rss);
                this.#hwm = memory.hwm;
            }
        }
    }

    get seconds(): number {
        return (this.#endedAt - this.#startedAt) / 1000;
    }

    async summary(): Promise<WindowSummary> {
        const seconds = this.seconds;
        const ticks = clockTicksPerSecond();
        const cpu = this.#cpu ?? { user: 0, system: 0 };
        const clientCpu = (cpu.user + cpu.system) / 1e6;
        const start = this.#start;
        const end = this.#end;
        const serverCpu0 = start?.serverCpu;
        const serverCpu1 = end?.serverCpu;
        const pid = this.serverPid;
        let server: ServerSample | undefined;
        if (pid !== undefined && serverCpu0 !== undefined && serverCpu1 !== undefined) {
            const threads0 = start?.threads ?? new Map<number, number>();
            const threadRows = [...(end?.threads ?? [])].map(([tid, after]) => ({ tid, main: tid === pid, cpuPct: ((after - (threads0.get(tid) ?? 0)) / seconds) * 100 }));
            threadRows.sort((a, b) => b.cpuPct - a.cpuPct);
            const cpuSeconds = serverCpu1.user + serverCpu1.system - serverCpu0.user - serverCpu0.system;
            server = {
                pid,
                cpuSeconds,
                cpuPct: (cpuSeconds / seconds) * 100,
                rssPeakBytes: this.rss?.peak ?? 0,
                rssStartBytes: this.rss?.first ?? Number.NaN,
                hwmBytes: this.#hwm,
                threads: threadRows.filter((t) => t.cpuPct >= THREAD_MIN_PCT),
            };
        }
        const machine0 = start?.machine;
        const machine1 = end?.machine;
        const machine: MachineShare | undefined =
            machine0 !== undefined && machine1 !== undefined && machine1.total > machine0.total
                ? {
                      stealPct: ((machine1.steal - machine0.steal) / ticks / seconds) * 100,
                      busyPct: ((machine1.busy - machine0.busy) / ticks / seconds) * 100,
                      otherPct: server === undefined ? undefined : (((machine1.busy - machine0.busy) / ticks - server.cpuSeconds - clientCpu) / seconds) * 100,
                      otherUserPct:
                          serverCpu0 === undefined || serverCpu1 === undefined
                              ? undefined
                              : (((machine1.user - machine0.user) / ticks - (serverCpu1.user - serverCpu0.user) - cpu.user / 1e6) / seconds) * 100,
                  }
                : undefined;
        const others0: ProcessTable = start?.others ?? new Map<number, { name: string; seconds: number }>();
        const busyOthers = [...(end?.others ?? [])]
            .map(([otherPid, after]) => ({ pid: otherPid, name: after.name, cpuPct: ((after.seconds - (others0.get(otherPid)?.seconds ?? 0)) / seconds) * 100 }))
            .filter((o) => o.cpuPct >= OTHERS_MIN_PCT)
            .sort((a, b) => b.cpuPct - a.cpuPct)
            .slice(0, OTHERS_LISTED);
        const others = await Promise.all(busyOthers.map(async (o) => ({ ...o, command: await commandLine(o.pid) })));
        return {
            seconds,
            monotonicUs: { start: this.#monotonicStart, end: this.#monotonicEnd },
            client: { cpuSeconds: clientCpu, cpuPct: (clientCpu / seconds) * 100, userSeconds: cpu.user / 1e6, systemSeconds: cpu.system / 1e6 },
            server,
            machine,
            others,
        };
    }
}

/**
 * Telegraf-like data, as Telegraf's default system inputs report it: 10 measurements (cpu per
 * core and total, mem, disk per mount, diskio per device, net per interface, system, processes,
 * swap, kernel, netstat) from `hosts` hosts every 10 s. Timestamps are the interval's start
 * (Telegraf's defaults: `round_interval`, and a precision of 1 s for a 10 s interval). Values
 * move as real ones do, so they compress like real ones: percentages (ratios, full double
 * precision as Telegraf computes them) and gauges drift around a level, load averages have 2
 * decimals, counters only grow, some fields never change. `steady`: every field keeps its first
 * value (the most regular data there is: the best case for compaction's bytes). Seeded: the
 * same arguments give the same rows.
 *
 * `minute(m)` returns the columnar batches of minute m (one per measurement, rows in time then
 * series order, as agents send them): what one flush a minute writes.
 */
import type { Column, ColumnarBatch } from "../../src/columnar/batch.js";
import { seededRandom } from "../../test/helpers/random.js";

const NS_PER_MS = 1_000_000n;
const INTERVAL_MS = 10_000;
const TICKS_PER_MINUTE = 60_000 / INTERVAL_MS;

type Random = () => number;

/** A field: its column type, its first value for a host, and its next value from the last. */
interface FieldSpec {
    readonly name: string;
    readonly type: "f" | "i";
    first(random: Random, host: number): number;
    next(previous: number, random: Random): number;
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const clamp = (x: number, low: number, high: number) => Math.min(high, Math.max(low, x));

/** A percentage drifting around `level` by about `jitter` per interval. */
function percent(name: string, level: number, jitter: number): FieldSpec {
    return {
        name,
        type: "f",
        first: (random) => clamp(level * (0.5 + random()), 0, 100),
        next: (previous, random) => clamp(previous + (random() - 0.5) * jitter + (level - previous) * 0.05, 0, 100),
    };
}

/** A float gauge with 2 decimals (load averages) drifting around `level`. */
function level(name: string, mean: number, jitter: number): FieldSpec {
    return {
        name,
        type: "f",
        first: (random) => round2(mean * (0.5 + random())),
        next: (previous, random) => round2(Math.max(0, previous + (random() - 0.5) * jitter + (mean - previous) * 0.05)),
    };
}

/** An integer gauge around `base` (± `spread` between hosts), moving by up to `step` per interval. */
function gauge(name: string, base: number, spread: number, step: number): FieldSpec {
    return {
        name,
        type: "i",
        first: (random) => Math.round(base + (random() - 0.5) * spread),
        next: (previous, random) => Math.max(0, Math.round(previous + (random() - 0.5) * step)),
    };
}

/** A counter growing by up to `rate` per interval. */
function counter(name: string, rate: number): FieldSpec {
    return {
        name,
        type: "i",
        first: (random) => Math.floor(random() * rate * 100_000),
        next: (previous, random) => previous + Math.floor(random() * rate),
    };
}

/** A value fixed per host (memory size, CPU count, boot time). */
function constant(name: string, value: (host: number) => number): FieldSpec {
    return { name, type: "i", first: (_, host) => value(host), next: (previous) => previous };
}

const GiB = 2 ** 30;

interface Shape {
    readonly name: string;
    /** Tags besides `host`, one entry per series of a host. */
    readonly series: readonly Readonly<Record<string, string>>[];
    readonly fields: readonly FieldSpec[];
}

const SHAPES: readonly Shape[] = [
    {
        name: "cpu",
        series: [{ cpu: "cpu-total" }, { cpu: "cpu0" }, { cpu: "cpu1" }],
        fields: [
            percent("usage_user", 20, 6),
            percent("usage_system", 6, 2),
            percent("usage_idle", 70, 8),
            percent("usage_iowait", 2, 1),
            percent("usage_nice", 0.5, 0.2),
            percent("usage_irq", 0.1, 0.05),
            percent("usage_softirq", 0.6, 0.3),
            percent("usage_steal", 0.3, 0.2),
            percent("usage_guest", 0, 0),
            percent("usage_guest_nice", 0, 0),
        ],
    },
    {
        name: "mem",
        series: [{}],
        fields: [
            constant("total", (host) => (8 + (host % 4) * 8) * GiB),
            gauge("available", 6 * GiB, 4 * GiB, 64 * 2 ** 20),
            gauge("used", 4 * GiB, 4 * GiB, 64 * 2 ** 20),
            gauge("free", 1 * GiB, GiB, 32 * 2 ** 20),
            gauge("cached", 3 * GiB, 2 * GiB, 16 * 2 ** 20),
            gauge("buffered", 200 * 2 ** 20, 100 * 2 ** 20, 2 ** 20),
            percent("used_percent", 45, 1),
            percent("available_percent", 55, 1),
        ],
    },
    {
        name: "disk",
        series: [
            { path: "/", device: "vda1", fstype: "ext4", mode: "rw" },
            { path: "/var/lib/data", device: "vdb", fstype: "xfs", mode: "rw" },
        ],
        fields: [
            constant("total", (host) => (100 + (host % 5) * 100) * GiB),
            gauge("free", 60 * GiB, 40 * GiB, 2 ** 20),
            gauge("used", 40 * GiB, 40 * GiB, 2 ** 20),
            percent("used_percent", 40, 0.01),
            constant("inodes_total", () => 6_553_600),
            gauge("inodes_free", 6_000_000, 500_000, 20),
            gauge("inodes_used", 500_000, 400_000, 20),
        ],
    },
    {
        name: "diskio",
        series: [{ name: "vda" }, { name: "vdb" }],
        fields: [
            counter("reads", 200),
            counter("writes", 800),
            counter("read_bytes", 8_000_000),
            counter("write_bytes", 30_000_000),
            counter("read_time", 400),
            counter("write_time", 2_000),
            counter("io_time", 1_500),
            gauge("iops_in_progress", 1, 2, 2),
        ],
    },
    {
        name: "net",
        series: [{ interface: "eth0" }, { interface: "eth1" }],
        fields: [
            counter("bytes_sent", 5_000_000),
            counter("bytes_recv", 8_000_000),
            counter("packets_sent", 6_000),
            counter("packets_recv", 9_000),
            counter("err_in", 1),
            counter("err_out", 1),
            counter("drop_in", 2),
            counter("drop_out", 1),
        ],
    },
    {
        name: "system",
        series: [{}],
        fields: [level("load1", 1.2, 0.4), level("load5", 1.1, 0.1), level("load15", 1, 0.05), gauge("n_users", 1, 2, 0), constant("n_cpus", () => 2), counter("uptime", 10)],
    },
    {
        name: "processes",
        series: [{}],
        fields: [
            gauge("blocked", 0, 1, 1),
            gauge("running", 2, 2, 2),
            gauge("sleeping", 180, 60, 4),
            gauge("stopped", 0, 0, 0),
            gauge("total", 190, 60, 4),
            gauge("zombies", 0, 0, 0),
            gauge("total_threads", 600, 200, 10),
        ],
    },
    {
        name: "swap",
        series: [{}],
        fields: [
            constant("total", () => 2 * GiB),
            gauge("used", 100 * 2 ** 20, 100 * 2 ** 20, 2 ** 16),
            gauge("free", 1.9 * GiB, 100 * 2 ** 20, 2 ** 16),
            percent("used_percent", 5, 0.01),
            counter("in", 10),
            counter("out", 20),
        ],
    },
    {
        name: "kernel",
        series: [{}],
        fields: [
            constant("boot_time", (host) => 1_690_000_000 + host * 3_600),
            counter("context_switches", 200_000),
            counter("interrupts", 100_000),
            counter("processes_forked", 300),
            gauge("entropy_avail", 3_500, 500, 50),
        ],
    },
    {
        name: "netstat",
        series: [{}],
        fields: [
            gauge("tcp_established", 120, 80, 6),
            gauge("tcp_syn_sent", 1, 2, 2),
            gauge("tcp_syn_recv", 0, 1, 1),
            gauge("tcp_fin_wait1", 1, 2, 2),
            gauge("tcp_fin_wait2", 2, 2, 2),
            gauge("tcp_time_wait", 300, 200, 20),
            gauge("tcp_close", 0, 0, 0),
            gauge("tcp_close_wait", 2, 2, 2),
            gauge("tcp_last_ack", 0, 1, 1),
            gauge("tcp_listen", 12, 4, 0),
            gauge("tcp_closing", 0, 0, 0),
            gauge("tcp_none", 40, 20, 4),
            gauge("udp_socket", 10, 6, 1),
        ],
    },
];

export const TELEGRAF_MEASUREMENTS: readonly string[] = SHAPES.map((shape) => shape.name);

/** Host names as Telegraf reports them (the `host` tag). */
export function hostName(host: number): string {
    return `web-${String(host).padStart(3, "0")}.prod.example.net`;
}

/** One measurement's series (hosts × its per-host series) and their current values. */
class MeasurementState {
    readonly tagNames: readonly string[];
    /** values[f][s]: field f of series s, as of the last interval generated. */
    readonly values: Float64Array[];
    readonly hostCodes: Uint32Array;
    readonly tagCodes: Map<string, { dict: string[]; codes: Uint32Array }>;

    constructor(
        readonly shape: Shape,
        readonly hosts: number,
        random: Random,
    ) {
        const perHost = shape.series.length;
        const series = hosts * perHost;
        this.tagNames = ["host", ...Object.keys(shape.series[0]!)];
        this.hostCodes = Uint32Array.from({ length: series }, (_, s) => Math.floor(s / perHost));
        this.tagCodes = new Map(
            this.tagNames.slice(1).map((tag) => {
                const dict = [...new Set(shape.series.map((one) => one[tag]!))];
                return [tag, { dict, codes: Uint32Array.from({ length: series }, (_, s) => dict.indexOf(shape.series[s % perHost]![tag]!)) }];
            }),
        );
        this.values = shape.fields.map((field) => Float64Array.from({ length: series }, (_, s) => field.first(random, Math.floor(s / perHost))));
    }

    get series(): number {
        return this.hostCodes.length;
    }
}

export class TelegrafDay {
    readonly #random: Random;
    readonly #states: MeasurementState[];
    readonly #hostNames: string[];

    /** `startMs`: the first interval's start (ms since the epoch, a whole minute). */
    constructor(
        readonly hosts: number,
        readonly startMs: number,
        readonly options: { readonly steady?: boolean; readonly seed?: number } = {},
    ) {
        const seed = options.seed ?? 0x7e1e;
        this.#random = seededRandom(seed);
        this.#states = SHAPES.map((shape) => new MeasurementState(shape, hosts, this.#random));
        this.#hostNames = Array.from({ length: hosts }, (_, h) => hostName(h));
    }

    /** Rows per minute, all measurements together. */
    get rowsPerMinute(): number {
        return this.#states.reduce((sum, state) => sum + state.series, 0) * TICKS_PER_MINUTE;
    }

    /** The batches of minute `m` (counted from `startMs`); call in order, each minute once. */
    minute(m: number): ColumnarBatch[] {
        const random = this.#random;
        const steady = this.options.steady === true;
        return this.#states.map((state) => {
            const series = state.series;
            const rows = series * TICKS_PER_MINUTE;
            const time = new BigInt64Array(rows);
            const fields = state.shape.fields.map((field) => (field.type === "f" ? new Float64Array(rows) : new BigInt64Array(rows)));
            for (let t = 0; t < TICKS_PER_MINUTE; t++) {
                const at = BigInt(this.startMs + m * 60_000 + t * INTERVAL_MS) * NS_PER_MS;
                state.shape.fields.forEach((field, f) => {
                    const values = state.values[f]!;
                    const out = fields[f]!;
                    for (let s = 0; s < series; s++) {
                        const value = steady ? values[s]! : field.next(values[s]!, random);
                        values[s] = value;
                        if (out instanceof Float64Array) out[t * series + s] = value;
                        else out[t * series + s] = BigInt(value);
                    }
                });
                time.fill(at, t * series, (t + 1) * series);
            }
            const repeat = (codes: Uint32Array) => {
                const all = new Uint32Array(rows);
                for (let t = 0; t < TICKS_PER_MINUTE; t++) all.set(codes, t * series);
                return all;
            };
            const columns = new Map<string, Column>([["time", { type: "t", values: time }]]);
            columns.set("host", { type: "s", dict: this.#hostNames, codes: repeat(state.hostCodes) });
            for (const [tag, { dict, codes }] of state.tagCodes) columns.set(tag, { type: "s", dict, codes: repeat(codes) });
            state.shape.fields.forEach((field, f) => {
                const values = fields[f]!;
                columns.set(field.name, values instanceof Float64Array ? { type: "f", values } : { type: "i", values });
            });
            return { measurement: state.shape.name, rows, tags: state.tagNames, columns };
        });
    }
}

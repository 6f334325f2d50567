/**
 * The lines the load generator sends: Telegraf-like `cpu` lines, measurement `cpu`, tags host
 * (100) / region (4, from the host) / service (20) = 2,000 series reporting round-robin, 7
 * fields (5 floats with 2 decimals, 1 int, 1 bool), about 176 B each. Timestamps are whole
 * seconds in ns: they start at now − 24 h and advance one second per series tick (every 2,000
 * lines), so the global line number g has series g mod 2000 and time base + ⌊g / 2000⌋ s:
 * **every line sent is a distinct (series, time) point**, and a store can be checked afterwards
 * by counting.
 *
 * Cheap to send: the bodies are generated once from a seeded PRNG (a pool of distinct
 * templates; batch k uses template k mod P), and before a batch is sent only the 10 seconds
 * digits of each timestamp are patched into a copy of its template. Gzip output cannot be
 * patched, so `gzipPool` compresses every batch a run may send before it starts.
 */
import { availableParallelism } from "node:os";
import { promisify } from "node:util";
import { gzip as gzipCallback } from "node:zlib";
import { seededRandom } from "../../test/helpers/random.js";

const gzipAsync = promisify(gzipCallback);

export const SERIES = 2_000;
export const HOSTS = 100;
export const SERVICES = 20;
/** Field values per line: usage_user, usage_system, usage_idle, usage_iowait, load1 (floats), procs (int), healthy (bool). */
export const FIELDS_PER_LINE = 7;
export const FIELD_NAMES = ["usage_user", "usage_system", "usage_idle", "usage_iowait", "load1", "procs", "healthy"] as const;
export const MEASUREMENT = "cpu";
const REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const DEFAULT_SEED = 0x10ad;
const NS_SUFFIX = "000000000";

/** The tags of series s: host s mod 100, service ⌊s / 100⌋, region from the host. */
export function seriesTags(series: number): { host: string; region: string; service: string } {
    const host = series % HOSTS;
    return { host: `host-${String(host).padStart(3, "0")}`, region: REGIONS[host % REGIONS.length]!, service: `svc-${String(Math.floor(series / HOSTS)).padStart(2, "0")}` };
}

// ---------------------------------------------------------------------------------------------
// Bodies

function gcd(a: number, b: number): number {
    while (b !== 0) [a, b] = [b, a % b];
    return a;
}

interface Template {
    readonly bytes: Buffer;
    /** Byte offset of each line's 10 seconds digits. */
    readonly offsets: Uint32Array;
    /** Each line's tick relative to the template's first use: ⌊(t·N + j) / 2000⌋. */
    readonly ticks: Uint32Array;
}

/**
 * The lines of the run. Batch k holds global lines k·N … k·N + N − 1; template k mod P has
 * their series and field values, and `fill` writes their timestamps. P is a multiple of
 * 2000 / gcd(N, 2000), so P·N lines are whole series ticks and a template fits every batch
 * that uses it.
 */
export class LineSource {
    readonly batchLines: number;
    readonly baseSeconds: number;
    readonly templates: readonly Template[];
    /** Series ticks covered by one round through the pool. */
    readonly ticksPerRound: number;

    constructor(batchLines: number, options: { seed?: number; baseSeconds?: number; minTemplates?: number; maxTemplateBytes?: number } = {}) {
        if (!Number.isSafeInteger(batchLines) || batchLines < 1) throw new Error(`batch must be a positive integer, got ${batchLines}`);
        this.batchLines = batchLines;
        this.baseSeconds = options.baseSeconds ?? Math.floor(Date.now() / 1000) - 86_400;
        const period = SERIES / gcd(batchLines, SERIES);
        // Distinct bodies: at least `minTemplates`, within ~64 MB of templates.
        const wanted = Math.max(options.minTemplates ?? 16, 1);
        const bytesPerTemplate = batchLines * 170;
        const cap = Math.max(1, Math.floor((options.maxTemplateBytes ?? 64 * 2 ** 20) / bytesPerTemplate));
        const count = period * Math.max(1, Math.ceil(Math.min(wanted, Math.max(cap, period)) / period));
        this.ticksPerRound = (count * batchLines) / SERIES;
        const random = seededRandom(options.seed ?? DEFAULT_SEED);
        const prefixes = Array.from({ length: SERIES }, (_, s) => {
            const t = seriesTags(s);
            return `${MEASUREMENT},host=${t.host},region=${t.region},service=${t.service} `;
        });
        const templates: Template[] = [];
        const placeholder = "0".repeat(10);
        for (let t = 0; t < count; t++) {
            const parts: string[] = [];
            const offsets = new Uint32Array(batchLines);
            const ticks = new Uint32Array(batchLines);
            let length = 0;
            for (let j = 0; j < batchLines; j++) {
                const g = t * batchLines + j;
                const user = random() * 80;
                const system = random() * 15;
                const iowait = random() * 5;
                const idle = Math.max(0, 100 - user - system - iowait);
                const line =
                    `${prefixes[g % SERIES]}usage_user=${user.toFixed(2)},usage_system=${system.toFixed(2)},usage_idle=${idle.toFixed(2)},` +
                    `usage_iowait=${iowait.toFixed(2)},load1=${(random() * 8).toFixed(2)},procs=${100 + Math.floor(random() * 900)}i,` +
                    `healthy=${random() < 0.98 ? "true" : "false"} `;
                offsets[j] = length + line.length;
                ticks[j] = Math.floor(g / SERIES);
                const full = `${line}${placeholder}${NS_SUFFIX}\n`;
                parts.push(full);
                length += full.length;
            }
            templates.push({ bytes: Buffer.from(parts.join(""), "latin1"), offsets, ticks });
        }
        this.templates = templates;
    }

    get meanLineBytes(): number {
        return this.templates[0]!.bytes.length / this.batchLines;
    }

    /** The time (s) of global line g. */
    secondsOf(line: number): number {
        return this.baseSeconds + Math.floor(line / SERIES);
    }

    /** Writes batch k into `target` (at least `bodyBytes(k)` long) and returns the body slice. */
    fill(k: number, target: Buffer): Buffer {
        const template = this.templates[k % this.templates.length]!;
        const round = Math.floor(k / this.templates.length);
        const body = target.subarray(0, template.bytes.length);
        template.bytes.copy(body);
        const { offsets, ticks } = template;
        let lastTick = -1;
        const digits = new Uint8Array(10);
        for (let j = 0; j < offsets.length; j++) {
            const tick = ticks[j]!;
            if (tick !== lastTick) {
                lastTick = tick;
                let value = this.baseSeconds + round * this.ticksPerRound + tick;
                for (let d = 9; d >= 0; d--) {
                    digits[d] = 48 + (value % 10);
                    value = Math.floor(value / 10);
                }
            }
            body.set(digits, offsets[j]);
        }
        return body;
    }

    bodyBytes(k: number): number {
        return this.templates[k % this.templates.length]!.bytes.length;
    }

    get maxBodyBytes(): number {
        return Math.max(...this.templates.map((t) => t.bytes.length));
    }
}

/** Batches 0 … count − 1, gzipped (level 6, as Go's gzip default), compressed on the threadpool. */
export async function gzipPool(source: LineSource, count: number): Promise<Buffer[]> {
    const out: Buffer[] = new Array<Buffer>(count);
    let next = 0;
    const worker = async () => {
        const scratch = Buffer.allocUnsafe(source.maxBodyBytes);
        for (let k = next++; k < count; k = next++) out[k] = await gzipAsync(source.fill(k, scratch));
    };
    await Promise.all(Array.from({ length: Math.max(1, availableParallelism()) }, worker));
    return out;
}

/**
 * `npm run bench -- sustained`: end-to-end ingest for minutes (default 5) at full speed against
 * one Sluice in `fdatasync` mode, sampling the server's buffered bytes and RSS every few
 * seconds. The question it answers: does the flush loop keep up (buffered bytes flat), and at
 * what accepted rate; if it cannot, the buffers reach their budget and writes get 503, so the
 * accepted rate falls to what flushing sustains. With each sample it counts the Parquet files
 * per partition (`date=…/hour=…` directory) on disk, to show that flush + compaction keep the file
 * count flat too. `--set k=v,k=v` passes Sluice settings (e.g. a smaller
 * `ingest.max_buffered_bytes` and `flush.max_rows`).
 */
import { readdir } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { type Benchmark, type BenchOptions, progress, sleep } from "./lib/benchmark.js";
import { runLoad } from "./lib/http-load.js";
import { machineInfo, machineLine } from "./lib/machine.js";
import { fixed, formatTable } from "./lib/output.js";
import { scratchDirectory } from "./lib/scratch.js";
import { scrapeMetrics, startSluice } from "./lib/sluice.js";
import { verifySluice } from "./lib/verify.js";

const DEFAULT_SECONDS = 300;
const SAMPLE_EVERY_MS = 5000;

interface Sample {
    readonly second: number;
    readonly bufferedMiB: number;
    readonly rssMiB: number;
    readonly flushedRows: number;
    readonly acceptedLines: number;
    /** Parquet files on disk, the partitions holding them, and the most files one partition holds. */
    readonly files: number;
    readonly partitions: number;
    readonly maxFilesPerPartition: number;
}

/** Counts the visible Parquet files per partition directory (dot-directories, compaction's staging, skipped). */
async function partitionFiles(parquetDir: string): Promise<{ files: number; partitions: number; maxFilesPerPartition: number }> {
    const entries = await readdir(parquetDir, { recursive: true }).catch(() => [] as string[]);
    const perPartition = new Map<string, number>();
    for (const entry of entries) {
        if (!entry.endsWith(".parquet") || entry.split(sep).some((part) => part.startsWith("."))) continue;
        perPartition.set(dirname(entry), (perPartition.get(dirname(entry)) ?? 0) + 1);
    }
    const counts = [...perPartition.values()];
    return { files: counts.reduce((a, b) => a + b, 0), partitions: counts.length, maxFilesPerPartition: Math.max(0, ...counts) };
}

/**
 * `verifySluice`, again when its query fails: a background compaction may swap a partition's
 * files while DuckDB reads them (README: a query across a swap may fail, and succeeds when retried).
 */
async function verifyRetrying(...args: Parameters<typeof verifySluice>): Promise<Awaited<ReturnType<typeof verifySluice>>> {
    for (let attempt = 1; ; attempt++) {
        try {
            return await verifySluice(...args);
        } catch (error) {
            if (attempt >= 5) throw error;
            progress(`verify failed (${(error as Error).message.slice(0, 200)}); again`);
            await sleep(2_000);
        }
    }
}

async function run(options: BenchOptions): Promise<number> {
    const seconds = options.seconds ?? DEFAULT_SECONDS;
    const connections = Number(options.values.connections ?? 8);
    const batch = Number(options.values.batch ?? 5000);
    const scratch = await scratchDirectory(options.dir, "sluice-sustained-");
    try {
        const machine = await machineInfo(scratch.path);
        progress(machineLine(machine));
        const sets = (options.values.set as string | undefined)?.split(",").filter((set) => set !== "") ?? [];
        const sluice = await startSluice({ dataDir: `${scratch.path}/data`, sets });
        const samples: Sample[] = [];
        let done = false;
        const started = performance.now();
        const sampler = (async () => {
            // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by a callback, which the rule cannot see
            while (!done) {
                await sleep(SAMPLE_EVERY_MS);
                const metrics = await scrapeMetrics(sluice.url).catch(() => undefined);
                if (metrics === undefined) continue;
                const files = await partitionFiles(join(scratch.path, "data", "parquet"));
                const sample: Sample = {
                    second: Math.round((performance.now() - started) / 1000),
                    bufferedMiB: (metrics.get("sluice_buffered_bytes") ?? 0) / 2 ** 20,
                    rssMiB: (metrics.get("sluice_process_resident_memory_bytes") ?? 0) / 2 ** 20,
                    flushedRows: metrics.get("sluice_flushed_rows_total") ?? 0,
                    acceptedLines: metrics.get("sluice_lines_accepted_total") ?? 0,
                    ...files,
                };
                samples.push(sample);
                progress(
                    `t=${sample.second}s buffered ${fixed(sample.bufferedMiB, 1)} MiB, RSS ${fixed(sample.rssMiB, 0)} MiB, accepted ${sample.acceptedLines}, flushed ${sample.flushedRows}, ` +
                        `${sample.files} files in ${sample.partitions} partitions (at most ${sample.maxFilesPerPartition})`,
                );
            }
        })();
        const result = await runLoad({ url: sluice.writeUrl, connections, batchLines: batch, seconds, warmupSeconds: 2, serverPid: sluice.service.pid });
        done = true;
        await sampler;
        const verify = await verifyRetrying(sluice.url, `${scratch.path}/data`, result);
        await sluice.service.stop(120_000);
        const buffered = samples.map((sample) => sample.bufferedMiB);
        const half = Math.floor(samples.length / 2);
        const summary = {
            machine: machineLine(machine),
            seconds,
            connections,
            batch,
            linesPerSecond: result.window.linesPerSec,
            p99Ms: result.window.p99Ms,
            refused: result.total.non2xx,
            serverRssPeakMiB: (result.server?.rssPeakBytes ?? 0) / 2 ** 20,
            bufferedMiBFirstHalfMax: Math.max(0, ...buffered.slice(0, half)),
            bufferedMiBSecondHalfMax: Math.max(0, ...buffered.slice(half)),
            stored: verify.ok ? "stored = acknowledged" : verify.problems.join("; "),
            samples,
        };
        if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else {
            process.stdout.write(`${summary.machine}\n`);
            process.stdout.write(
                `sustained ${seconds}s, C=${connections}, batch ${batch}: ${Math.round(summary.linesPerSecond)} lines/s acknowledged (p99 ${fixed(summary.p99Ms, 1)} ms); refused ${JSON.stringify(summary.refused)}; server RSS peak ${fixed(summary.serverRssPeakMiB, 0)} MiB; buffered max ${fixed(summary.bufferedMiBFirstHalfMax, 1)} MiB (first half) / ${fixed(summary.bufferedMiBSecondHalfMax, 1)} MiB (second half); ${summary.stored}\n`,
            );
            process.stdout.write(
                formatTable(
                    [
                        { title: "t s", align: "right", cell: (s: Sample) => String(s.second) },
                        { title: "buffered MiB", align: "right", cell: (s: Sample) => fixed(s.bufferedMiB, 1) },
                        { title: "RSS MiB", align: "right", cell: (s: Sample) => fixed(s.rssMiB, 0) },
                        { title: "accepted lines", align: "right", cell: (s: Sample) => String(s.acceptedLines) },
                        { title: "flushed rows", align: "right", cell: (s: Sample) => String(s.flushedRows) },
                        { title: "files", align: "right", cell: (s: Sample) => String(s.files) },
                        { title: "partitions", align: "right", cell: (s: Sample) => String(s.partitions) },
                        { title: "max files/partition", align: "right", cell: (s: Sample) => String(s.maxFilesPerPartition) },
                    ],
                    samples,
                ) + "\n",
            );
        }
        return verify.ok ? 0 : 1;
    } finally {
        await scratch.remove();
    }
}

export const benchmark: Benchmark = {
    options: { connections: { type: "string" }, batch: { type: "string" }, set: { type: "string" } },
    optionHelp: ["sustained options:", "  --connections N  (default 8)", "  --batch N        lines per request (default 5000)", "  --set k=v,k=v    Sluice settings"],
    run,
};

/** `sluice wal read|verify|stats|purge`: the WAL, inspected and purged offline. */
import { stat } from "node:fs/promises";
import { type Command, InvalidArgumentError, Option } from "commander";
import { lockDataDir, walDirOf } from "../data-dir.js";
import { nodeFileSystem } from "../fs/file-system.js";
import { readFlushedThrough } from "../../flush/commit.js";
import { manifestPathOf } from "../../flush/layout.js";
import { type PurgeReport, offlinePurgeTarget, purgeAll, purgeInactive, purgeOlderThan } from "../wal/index.js";
import { type WalStats, type WalVerification, readWalEntries, verifyWal, walStats } from "../wal/report.js";
import { parseDuration } from "../duration.js";
import { messageOf } from "../errors.js";
import { type ConfigOptions, CliUsageError, configFrom, withConfigOptions } from "./options.js";

/** A duration option's value, refused the way commander reports bad arguments. */
function durationArgument(text: string): number {
    try {
        return parseDuration(text);
    } catch (error) {
        throw new InvalidArgumentError(messageOf(error));
    }
}

/** `wal verify` exits with this when anything is corrupted. */
export const EXIT_CORRUPTED = 1;

interface JsonOption {
    json?: boolean;
}

function nonNegativeInteger(value: string): number {
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed)) throw new InvalidArgumentError("expected a non-negative integer");
    return parsed;
}

/** The configured WAL directory, which must exist. */
async function walDir(options: ConfigOptions): Promise<string> {
    const dataDir = configFrom(options).data_dir;
    const dir = walDirOf(dataDir);
    const info = await stat(dir).catch(() => undefined);
    if (info === undefined) throw new CliUsageError(`no WAL directory at ${dir} (is --data-dir ${dataDir} right?)`);
    if (!info.isDirectory()) throw new CliUsageError(`${dir} is not a directory`);
    return dir;
}

function print(line: string): void {
    process.stdout.write(`${line}\n`);
}

function bytes(count: number): string {
    if (count < 1024) return `${count} B`;
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let value = count / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
        value /= 1024;
        unit++;
    }
    return `${value.toFixed(1)} ${units[unit]}`;
}

export function registerWalCommands(program: Command): void {
    const wal = program.command("wal").description("inspect, verify and purge the write-ahead log (offline)");

    withConfigOptions(wal.command("read").description("list WAL entries, one per line"), false)
        .option("--from-seq <n>", "start at this sequence", nonNegativeInteger)
        .option("--limit <n>", "at most this many entries", nonNegativeInteger)
        .option("--json", "one JSON object per entry")
        .action(async (options: ConfigOptions & JsonOption & { fromSeq?: number; limit?: number }) => {
            const dir = await walDir(options);
            const read = { ...(options.fromSeq === undefined ? {} : { fromSequence: options.fromSeq }), ...(options.limit === undefined ? {} : { limit: options.limit }) };
            for await (const entry of readWalEntries(dir, read)) {
                if (options.json) print(JSON.stringify(entry));
                else if ("error" in entry) print(`${entry.seq}\t${entry.file}\tUNREADABLE: ${entry.error}`);
                else {
                    const columns = Object.entries(entry.columns)
                        .map(([name, type]) => `${name}:${type}`)
                        .join(",");
                    const when = new Date(entry.time_us / 1000).toISOString();
                    print(`${entry.seq}\t${when}\t${entry.database}\t${entry.measurement}\t${entry.rows} rows\t${columns}`);
                }
            }
        });

    withConfigOptions(wal.command("verify").description("read and decode every entry; exit 1 if anything is corrupted"), false)
        .option("--json", "one JSON object")
        .action(async (options: ConfigOptions & JsonOption) => {
            const result = await verifyWal(await walDir(options));
            if (options.json) {
                const { problems, ...counts } = result;
                print(JSON.stringify(counts));
                for (const problem of problems) process.stderr.write(`${JSON.stringify(problem)}\n`);
            } else printVerification(result);
            if (result.corrupted > 0 || result.bad_files > 0) process.exitCode = EXIT_CORRUPTED;
        });

    withConfigOptions(wal.command("stats").description("files, sequences and sizes"), false)
        .option("--json", "one JSON object")
        .action(async (options: ConfigOptions & JsonOption) => {
            const dir = await walDir(options);
            const stats = await walStats(dir);
            if (options.json) print(JSON.stringify(stats));
            else printStats(dir, stats);
        });

    // Offline no writer holds an active file, so --inactive and --all choose the same files here;
    // they differ in POST /api/v1/wal/purge, where mode=all first rotates the running writer.
    withConfigOptions(
        wal
            .command("purge")
            .description(
                "delete WAL files whose entries are all in Parquet (--force: also those that are not); offline no file is active, so the newest one goes too once its entries are in Parquet",
            ),
        false,
    )
        .addOption(new Option("--inactive", "files whose entries are all in Parquet, the newest included (offline no file is active)").conflicts(["olderThan", "all"]))
        .addOption(
            new Option("--older-than <duration>", "as --inactive, only files last written at least this long ago (e.g. 30s, 15m, 2h, 7d)")
                .argParser(durationArgument)
                .conflicts("all"),
        )
        .option("--all", "offline the same as --inactive (over HTTP, mode=all also rotates and takes the file being written)")
        .option("--force", "also delete entries not yet in Parquet (they are lost)")
        .option("--json", "one JSON object")
        .action(async (options: ConfigOptions & JsonOption & { inactive?: boolean; olderThan?: number; all?: boolean; force?: boolean }) => {
            if (!options.inactive && options.olderThan === undefined && !options.all) throw new CliUsageError("wal purge needs one of --inactive, --older-than DURATION, --all");
            const dir = await walDir(options);
            const lock = await lockDataDir(nodeFileSystem, configFrom(options).data_dir);
            try {
                const target = offlinePurgeTarget(dir, await readFlushedThrough(nodeFileSystem, manifestPathOf(configFrom(options).data_dir)));
                const force = { force: options.force ?? false };
                const report = options.all
                    ? await purgeAll(target, force)
                    : options.olderThan !== undefined
                      ? await purgeOlderThan(target, options.olderThan, Date.now(), force)
                      : await purgeInactive(target, force);
                if (options.json) print(JSON.stringify(report));
                else printPurge(report);
            } finally {
                await lock.release();
            }
        });
}

function printVerification(result: WalVerification): void {
    print(`${result.files} files, ${result.entries} entries: ${result.corrupted} corrupted, ${result.torn_tails} torn tails, ${result.bad_files} bad files`);
    for (const problem of result.problems) print(`  ${problem.file}${problem.sequence === undefined ? "" : ` seq ${problem.sequence}`}: ${problem.reason}`);
    if (result.torn_tails > 0) print("(a torn tail is the unfinished last write of a crash: never acknowledged, not corruption)");
}

function printStats(dir: string, stats: WalStats): void {
    const range = stats.first_sequence === null ? "no entries" : `sequences ${stats.first_sequence}..${stats.current_sequence}`;
    print(`${dir}: ${stats.files.length} files, ${bytes(stats.total_bytes)}, ${range}`);
    for (const file of stats.files) {
        const seq = file.last_sequence === null ? "empty" : `${file.first_sequence}..${file.last_sequence}`;
        print(`  ${file.name}  ${seq}  ${file.entries} entries  ${bytes(file.bytes)}`);
    }
}

function printPurge(report: PurgeReport): void {
    const freed = report.deleted.reduce((sum, file) => sum + file.bytes, 0);
    print(`deleted ${report.deleted.length} files (${bytes(freed)})${report.forced ? " (forced)" : ""}; low-water mark ${report.lowWaterMark}`);
    for (const file of report.deleted) print(`  deleted ${file.name}`);
    for (const file of report.kept) print(`  kept ${file.name}: ${file.reason}`);
}

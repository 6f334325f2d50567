/** `sluice recover`: offline, replay every WAL entry not yet in Parquet, flush it, purge, report. */
import type { Command } from "commander";
import { createEncoder } from "../../flush/encoder.js";
import { Engine } from "../engine.js";
import { consoleLogger, silentLogger } from "../log.js";
import type { RecoveryStats } from "../wal/index.js";
import { type ConfigOptions, configFrom, withConfigOptions } from "./options.js";

/** What `sluice recover --json` prints: the replay's stats and what the flushes made of them. */
export interface RecoverReport extends RecoveryStats {
    readonly finishedCommits: number;
    readonly discardedTemps: number;
    readonly flushedFiles: number;
    readonly flushedRows: number;
}

export function registerRecoverCommand(program: Command): void {
    withConfigOptions(program.command("recover").description("replay the WAL into Parquet offline, purge it, print what was recovered"), false)
        .option("--json", "one JSON object")
        .action(async (options: ConfigOptions & { json?: boolean }) => {
            const config = configFrom(options);
            const { engine, startup } = await Engine.open(config, options.json ? silentLogger : consoleLogger, createEncoder({ nice: config.flush.worker_nice }));
            await engine.shutdown();
            const flushed = engine.flusher.stats;
            const report: RecoverReport = {
                ...startup.wal,
                finishedCommits: startup.commitLog.finishedCommits,
                discardedTemps: startup.commitLog.discardedTemps,
                flushedFiles: flushed.files,
                flushedRows: flushed.rows,
            };
            if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
            else {
                const { recoveredEntries, recoveredRows, recoveredFiles, corruptedEntries, tornTails, alreadyFlushedEntries } = startup.wal;
                process.stdout.write(
                    `recovered ${recoveredEntries} entries (${recoveredRows} rows) from ${recoveredFiles} WAL files; ${alreadyFlushedEntries} were already in Parquet, ${corruptedEntries} corrupted, ${tornTails} torn tails\n` +
                        `finished ${startup.commitLog.finishedCommits} interrupted flushes, discarded ${startup.commitLog.discardedTemps} temp files\n` +
                        `flushed ${flushed.rows} rows into ${flushed.files} Parquet files; the WAL is purged\n`,
                );
            }
        });
}

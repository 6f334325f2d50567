/** `sluice recover`: offline, replay every WAL entry not yet in Parquet, flush it, purge, report. */
import type { Command } from "commander";
import { createEncoder, encoderSettings } from "../../flush/encoder.js";
import { Engine } from "../engine.js";
import { messageOf } from "../errors.js";
import { createLogger, silentLogger } from "../log.js";
import type { RecoveryStats } from "../wal/index.js";
import { type ConfigOptions, EXIT_FAILURE, configFrom, withConfigOptions } from "./options.js";

/** What `sluice recover --json` prints: the replay's stats and what the flushes made of them. */
export interface RecoverReport extends RecoveryStats {
    readonly finishedCommits: number;
    readonly discardedTemps: number;
    readonly flushedFiles: number;
    readonly flushedRows: number;
    /** Why the replayed rows could not all be flushed (a full disk): the WAL is kept for the next try. */
    readonly error?: string;
}

export function registerRecoverCommand(program: Command): void {
    withConfigOptions(program.command("recover").description("replay the WAL into Parquet offline, purge it, print what was recovered"), false)
        .option("--json", "one JSON object")
        .action(async (options: ConfigOptions & { json?: boolean }) => {
            const config = configFrom(options);
            // With --json, stdout is the report alone: its problems are in the report and the exit code.
            const log = options.json ? silentLogger : createLogger(config.log);
            const { engine, startup } = await Engine.open(config, log, createEncoder(encoderSettings(config)), {}, { writable: false });
            const failure = await engine.shutdown().then(
                () => undefined,
                (error: unknown) => messageOf(error),
            );
            const flushed = engine.flusher.stats;
            const report: RecoverReport = {
                ...startup.wal,
                finishedCommits: startup.commit.finishedCommits,
                discardedTemps: startup.commit.discardedTemps,
                flushedFiles: flushed.files,
                flushedRows: flushed.rows,
                ...(failure === undefined ? {} : { error: failure }),
            };
            if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
            else {
                const { recoveredEntries, recoveredRows, recoveredFiles, corruptedEntries, incompleteRequests, tornTails, alreadyFlushedEntries } = startup.wal;
                log.info(
                    `recovered ${recoveredEntries} entries (${recoveredRows} rows) from ${recoveredFiles} WAL files; ${alreadyFlushedEntries} were already in Parquet, ${corruptedEntries} corrupted, ${incompleteRequests} requests cut short by a crash (never acknowledged, not replayed), ${tornTails} torn tails`,
                );
                log.info(`finished ${startup.commit.finishedCommits} interrupted changes, discarded ${startup.commit.discardedTemps} temp files`);
                if (failure === undefined) log.info(`flushed ${flushed.rows} rows into ${flushed.files} Parquet files; the WAL is purged`);
                else
                    log.error(
                        `flushed ${flushed.rows} rows into ${flushed.files} Parquet files, then flushing failed (${failure}); the WAL is kept: run recover again once that is fixed`,
                    );
            }
            if (failure !== undefined) process.exitCode = EXIT_FAILURE;
        });
}

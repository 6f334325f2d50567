/**
 * `sluice compact` and `sluice retention`: lake upkeep offline, on a data directory no server
 * holds. The engine opens it as `recover` does (half-done steps finished, the WAL replayed into
 * Parquet), runs the step, and shuts down (flush, purge); answers as POST /api/v1/compact and
 * POST /api/v1/retention do.
 */
import type { Command } from "commander";
import { createEncoder, encoderSettings } from "../../flush/encoder.js";
import type { CompactionReport } from "../../flush/upkeep/compactor.js";
import type { RetentionReport } from "../../flush/upkeep/retention.js";
import { Engine } from "../engine.js";
import { createLogger, silentLogger } from "../log.js";
import { type ConfigOptions, configFrom, withConfigOptions } from "./options.js";

interface UpkeepOptions extends ConfigOptions {
    json?: boolean;
}

// Invariant kept: the engine is shut down (its lock released) whatever the step did.
async function offline<T>(options: UpkeepOptions, step: (engine: Engine) => Promise<T>): Promise<T> {
    const config = configFrom(options);
    const { engine } = await Engine.open(config, options.json === true ? silentLogger : createLogger(config.log), createEncoder(encoderSettings(config)), {}, { writable: false });
    let result: T;
    try {
        result = await step(engine);
    } catch (error) {
        await engine.shutdown().catch(() => undefined);
        throw error;
    }
    await engine.shutdown();
    return result;
}

function describeCompaction(report: CompactionReport): string {
    return report.partitions === 0
        ? "nothing to compact: no hour holds more than one file worth merging\n"
        : `compacted ${report.partitions} hours: ${report.files_in} files (${report.rows_in} rows) into ${report.files_out} (${report.rows_out} rows, ${report.duplicates_merged} duplicates merged)\n`;
}

function describeRetention(report: RetentionReport): string {
    const verb = report.dry_run ? "would delete" : "deleted";
    const lines = report.partitions.map(
        (partition) => `  ${partition.database}/${partition.measurement} ${partition.date} hour ${partition.hour}: ${partition.files} files, ${partition.bytes} bytes\n`,
    );
    return `${verb} ${report.partitions.length} hours (${report.files} files, ${report.bytes} bytes)${lines.length === 0 ? "" : ":"}\n${lines.join("")}`;
}

export function registerUpkeepCommands(program: Command): void {
    withConfigOptions(program.command("compact").description("merge each hour's files into few, offline (as POST /api/v1/compact)"), false)
        .option("--json", "one JSON object, as POST /api/v1/compact answers")
        .action(async (options: UpkeepOptions) => {
            const report = await offline(options, (engine) => engine.upkeep.compactNow());
            process.stdout.write(options.json === true ? `${JSON.stringify(report)}\n` : describeCompaction(report));
        });
    withConfigOptions(program.command("retention").description("delete the hours past each database's retention period, offline (as POST /api/v1/retention)"), false)
        .option("--dry-run", "only list what would be deleted")
        .option("--json", "one JSON object, as POST /api/v1/retention answers")
        .action(async (options: UpkeepOptions & { dryRun?: boolean }) => {
            const report = await offline(options, (engine) => engine.upkeep.retainNow(options.dryRun === true));
            process.stdout.write(options.json === true ? `${JSON.stringify(report)}\n` : describeRetention(report));
        });
}

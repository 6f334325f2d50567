/**
 * Retention (DESIGN.md §4 "Lake upkeep"): partitions whose hour ends before now − the database's
 * period are dropped through the commit protocol (each leaves the lake in one rename, so a
 * reader sees all of a partition or none of it).
 *
 * Points already older than the period when written are stored like any other and dropped by
 * the next check (InfluxDB 1.x refuses them as "points beyond retention policy"; Sluice takes
 * them, so a backfill is never refused, and they live at most until the next check).
 */
import type { PartitionRef } from "../manifest/records.js";
import type { CommitProtocol } from "../commit.js";
import type { Lake } from "../lake/lake.js";

/** The retention period of a database in ms, 0 for none (kept forever). */
export type RetentionPeriods = (database: string) => number;

export interface DroppedPartition extends PartitionRef {
    readonly files: number;
    readonly bytes: number;
}

/** What a check did (or, dry, would do), as POST /api/v1/retention and `sluice retention` report it. */
export interface RetentionReport {
    readonly dry_run: boolean;
    readonly partitions: DroppedPartition[];
    readonly files: number;
    readonly bytes: number;
}

const HOUR_MS = 3_600_000;
/** Partitions dropped by one change (one manifest record). */
const DROPS_PER_CHANGE = 1000;

/** When a partition's hour ends (ms since the epoch). */
export function hourEndMs(partition: PartitionRef): number {
    return Date.parse(`${partition.date}T00:00:00Z`) + (Number(partition.hour) + 1) * HOUR_MS;
}

// Invariant kept: only partitions whose whole hour lies before now − period are dropped, and
// only for databases with a period (0: kept forever).
export async function enforceRetention(
    deps: { readonly lake: Lake; readonly commit: Pick<CommitProtocol, "commit"> },
    periods: RetentionPeriods,
    nowMs: number,
    dryRun: boolean,
): Promise<RetentionReport> {
    const expired: DroppedPartition[] = [];
    for await (const partition of deps.lake.partitions()) {
        const period = periods(partition.database);
        if (period <= 0) continue;
        if (hourEndMs(partition) <= nowMs - period) {
            const files = await deps.lake.files(partition);
            expired.push({ ...partition, files: files.length, bytes: files.reduce((sum, file) => sum + file.bytes, 0) });
        }
    }
    if (!dryRun) {
        for (let at = 0; at < expired.length; at += DROPS_PER_CHANGE) {
            const drops = expired.slice(at, at + DROPS_PER_CHANGE).map(({ database, measurement, date, hour, measurementDir }) => ({
                database,
                measurement,
                date,
                hour,
                ...(measurementDir === undefined ? {} : { measurementDir }),
            }));
            await deps.commit.commit({ flushed: [], adds: [], replaces: [], drops });
        }
    }
    return { dry_run: dryRun, partitions: expired, files: expired.reduce((sum, p) => sum + p.files, 0), bytes: expired.reduce((sum, p) => sum + p.bytes, 0) };
}

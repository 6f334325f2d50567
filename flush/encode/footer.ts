/** The footer key-values of Sluice's Parquet files (DESIGN.md §4, contract), and how they are made. */
import type { ColumnarBatch } from "../../src/columnar/batch.js";
import type { TimeLayout } from "./time-unit.js";
import type { EncodeInput, ResolvedEncodeOptions } from "./types.js";

export const FOOTER_KEYS = {
    database: "sluice:database",
    measurement: "sluice:measurement",
    tags: "sluice:tags",
    walSequence: "sluice:wal_seq",
    version: "sluice:version",
    timeZone: "sluice:time_zone",
    /** The file's lowest and highest time (ns), `min-max`: compaction plans from it without reading data. */
    timeRange: "sluice:time_range",
    /** In files whose `time` is in µs: the column holding the nanoseconds past each microsecond. */
    timeNanos: "sluice:time_nanos",
} as const;

/** The footer key-values every file of this input (joined into `batch`, its time written as `layout` says) carries. */
export function footerMetadata(input: EncodeInput, batch: ColumnarBatch, options: ResolvedEncodeOptions, layout: TimeLayout): Map<string, string> {
    const metadata = new Map<string, string>([
        [FOOTER_KEYS.database, input.database],
        [FOOTER_KEYS.measurement, batch.measurement],
        [FOOTER_KEYS.tags, JSON.stringify(batch.tags)],
        [FOOTER_KEYS.walSequence, `${input.minSequence}-${input.maxSequence}`],
        [FOOTER_KEYS.version, options.sluiceVersion],
        [FOOTER_KEYS.timeZone, "UTC"],
    ]);
    if (layout.unit === "us") metadata.set(FOOTER_KEYS.timeNanos, layout.nanosColumn);
    return metadata;
}

/** `metadata` with the time range of one file. */
export function withTimeRange(metadata: ReadonlyMap<string, string>, minTimeNs: bigint, maxTimeNs: bigint): Map<string, string> {
    return new Map([...metadata, [FOOTER_KEYS.timeRange, `${minTimeNs}-${maxTimeNs}`]]);
}

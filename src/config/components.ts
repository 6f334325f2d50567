/**
 * Each component's options, resolved from the configuration: the config schema is the one place
 * defaults live (issue 11.4); components take these resolved options and never default a setting.
 */
import { FLUSHER_TUNING, type FlusherOptions } from "../../flush/flusher.js";
import type { SchemaLimits } from "../../ingest/schema.js";
import type { Clock } from "../clock.js";
import type { FileSystem } from "../fs/file-system.js";
import type { WalWriterOptions } from "../wal/writer.js";
import type { Config } from "./schema.js";

/** The seams every durable component takes. */
export interface Seams {
    readonly fileSystem: FileSystem;
    readonly clock: Clock;
}

export function walWriterOptions(config: Config, dir: string, minSequence: number, seams: Seams): WalWriterOptions {
    return {
        dir,
        syncMode: config.wal.sync_mode,
        syncIntervalMs: config.wal.sync_interval_ms,
        maxFileBytes: config.wal.max_file_bytes,
        maxFileAgeMs: config.wal.max_file_age_ms,
        minSequence,
        ...seams,
    } satisfies Required<Omit<WalWriterOptions, "maxGroupBytes">>;
}

export function flusherOptions(config: Config): FlusherOptions {
    return { maxRows: config.flush.max_rows, maxAgeMs: config.flush.max_age_ms, ...FLUSHER_TUNING };
}

export function schemaLimits(config: Config): SchemaLimits {
    return { maxMeasurementsPerDatabase: config.ingest.max_measurements_per_database, maxColumnsPerMeasurement: config.ingest.max_columns_per_measurement };
}

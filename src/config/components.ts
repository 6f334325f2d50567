/**
 * Each component's options, resolved from the configuration: the config schema is the one place
 * defaults live (issue 11.4); components take these resolved options and never default a setting.
 */
import { FLUSHER_TUNING, type FlusherOptions } from "../../flush/flusher.js";
import type { LakeSettings } from "../../flush/lake/open.js";
import type { ObjectStore } from "../../flush/storage/object-store.js";
import { S3ObjectStore } from "../../flush/storage/s3-store.js";
import type { CompactionOptions } from "../../flush/upkeep/compactor.js";
import type { UpkeepOptions } from "../../flush/upkeep/upkeep.js";
import type { SchemaLimits } from "../../ingest/schema.js";
import type { Clock } from "../clock.js";
import type { FileSystem } from "../fs/file-system.js";
import type { WalWriterOptions } from "../wal/writer.js";
import { SluiceError } from "../errors.js";
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
    return {
        maxMeasurementsPerDatabase: config.ingest.max_measurements_per_database,
        maxMeasurements: config.ingest.max_measurements,
        maxColumnsPerMeasurement: config.ingest.max_columns_per_measurement,
    };
}

export function compactionOptions(config: Config): CompactionOptions {
    return {
        minFiles: config.compaction.min_files,
        maxDelayMs: config.compaction.max_delay_ms,
        maxRowsPerFile: config.compaction.max_rows_per_file,
        rowGroupRows: config.compaction.row_group_rows,
        encodings: config.compaction.encodings,
        batchRows: COMPACTION_BATCH_ROWS,
    };
}

export function upkeepOptions(config: Config): UpkeepOptions {
    return { compactionEnabled: config.compaction.enabled, compactionIntervalMs: config.compaction.interval_ms, retentionIntervalMs: config.retention.check_interval_ms };
}

/** A `storage.backend = "s3"` setting that cannot work: the start stops with it. */
export class StorageConfigError extends SluiceError {
    readonly code = "storage-config";
}

/** The lake's settings; `store` replaces the configured bucket (tests: an in-process store). */
export function lakeSettings(config: Config, store?: ObjectStore): LakeSettings {
    if (config.storage.backend === "local") return { backend: "local" };
    const { s3 } = config;
    if (store === undefined && s3.bucket === "") throw new StorageConfigError('storage.backend = "s3" needs s3.bucket (SLUICE_S3_BUCKET)');
    if ((s3.access_key_id === "") !== (s3.secret_access_key === ""))
        throw new StorageConfigError("set both s3.access_key_id and s3.secret_access_key, or neither (the AWS SDK's chain)");
    return {
        backend: "s3",
        store:
            store ??
            new S3ObjectStore({
                bucket: s3.bucket,
                prefix: s3.prefix,
                endpoint: s3.endpoint === "" ? undefined : s3.endpoint,
                region: s3.region,
                forcePathStyle: s3.force_path_style,
                credentials: s3.access_key_id === "" ? undefined : { accessKeyId: s3.access_key_id, secretAccessKey: s3.secret_access_key },
            }),
        nodeId: config.node_id,
        leaseTtlMs: s3.lease_ttl_ms,
    };
}

/** Rows compaction reads from each input at a time: its memory per input (about 6 MB for a Telegraf-like row). */
const COMPACTION_BATCH_ROWS = 65_536;

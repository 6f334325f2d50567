/**
 * Where things live in a shared bucket, relative to the store's prefix: the local layout
 * (`<db>/<m>/date=YYYY-MM-DD/hour=HH/<file>.parquet`, names encoded as on disk) with file names
 * that start with the writer's `node_id.incarnation.`, a manifest object per measurement, and
 * leases under `.sluice/` (a leading `.` no encoded database name has).
 */
import { encodeDirectoryName } from "../../src/names.js";
import type { PartitionRef } from "../manifest/records.js";
import type { NodeIdentity } from "./node-identity.js";

export const CONTROL_PREFIX = ".sluice/";
export const MANIFEST_NAME = ".sluice-manifest.json";

export function measurementPrefix(database: string, measurement: string): string {
    return `${encodeDirectoryName(database)}/${encodeDirectoryName(measurement)}/`;
}

export function manifestKey(database: string, measurement: string): string {
    return measurementPrefix(database, measurement) + MANIFEST_NAME;
}

/** `YYYY-MM-DD/HH`, as manifests name partitions. */
export function partitionName(partition: Pick<PartitionRef, "date" | "hour">): string {
    return `${partition.date}/${partition.hour}`;
}

export function partitionPrefix(partition: PartitionRef): string {
    return `${measurementPrefix(partition.database, partition.measurement)}date=${partition.date}/hour=${partition.hour}/`;
}

/** The object name of a file this ingester writes: unique across ingesters and their data directories. */
export function objectName(identity: NodeIdentity, name: string): string {
    return `${identity.nodeId}.${identity.incarnation}.${name}`;
}

export function nodeLeaseKey(nodeId: string): string {
    return `${CONTROL_PREFIX}nodes/${nodeId}.json`;
}

/** One compactor per measurement at a time across ingesters (so one per partition). */
export function compactionLeaseKey(database: string, measurement: string): string {
    return `${CONTROL_PREFIX}compaction/${measurementPrefix(database, measurement).slice(0, -1)}.json`;
}

/** The name of a key after its last `/`. */
export function baseName(key: string): string {
    return key.slice(key.lastIndexOf("/") + 1);
}

/**
 * The manifest object of one measurement in a shared bucket (`<db>/<m>/.sluice-manifest.json`):
 * the live files of every partition, written by every ingester with compare-and-swap, so an exact
 * reader lists the files it names (a reader that lists keys may also see, for a few
 * milliseconds, the inputs a compaction just replaced: see `garbage`).
 *
 * ```json
 * { "format": "sluice-lake-manifest", "version": 1, "database": "telegraf", "measurement": "cpu",
 *   "generation": 42, "writer": "node-a/1f2e3d4c",
 *   "applied": { "node-a/1f2e3d4c": 117 },
 *   "files": [ { "key": "telegraf/cpu/date=2026-12-04/hour=13/node-a.1f2e3d4c.000…7-000…9.parquet",
 *                "partition": "2026-12-04/13", "rows": 6000, "bytes": 81234, "rank": 1764855300123 } ],
 *   "garbage": [ { "key": "…", "since": 1764855360000 } ] }
 * ```
 *
 * - `files`: the live files (keys relative to the store's prefix), by key; `rank` orders writes
 *   across ingesters (the time the flush that wrote the rows listed them; a compaction output
 *   keeps the highest rank of its inputs), so a later write of a point wins.
 * - `applied`: per ingester (`node_id/incarnation`), the last of its changes whose files are
 *   listed here. Applying a change again after a crash is a no-op once listed, even if a
 *   compaction has since replaced the files (this is what makes adds exactly once).
 * - `garbage`: files no longer live, to be deleted; whoever moved them deletes them at once, and
 *   any ingester deletes those older than a grace period (their deleter died).
 * - `generation` grows with every write and `writer` names who wrote it: no two writes send the
 *   same bytes, so a compare-and-swap on the ETag can never be fooled by equal content.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { messageOf, SluiceError } from "../../src/errors.js";
import { type ObjectStore, ObjectStoreUnavailableError } from "../storage/object-store.js";

export const MANIFEST_FORMAT = "sluice-lake-manifest";
export const MANIFEST_VERSION = 1;

export interface ManifestFile {
    readonly key: string;
    /** `YYYY-MM-DD/HH` (UTC). */
    readonly partition: string;
    readonly rows: number;
    readonly bytes: number;
    readonly rank: number;
}

export interface GarbageFile {
    readonly key: string;
    /** When it stopped being live (ms since the epoch, the mover's clock). */
    readonly since: number;
}

export interface MeasurementManifest {
    readonly format: typeof MANIFEST_FORMAT;
    readonly version: typeof MANIFEST_VERSION;
    readonly database: string;
    readonly measurement: string;
    readonly generation: number;
    readonly writer: string;
    readonly applied: Readonly<Record<string, number>>;
    readonly files: readonly ManifestFile[];
    readonly garbage: readonly GarbageFile[];
}

/** A manifest object that is not one Sluice wrote (or of a newer format). */
export class ManifestFormatError extends SluiceError {
    readonly code = "lake-manifest-format";
}

export function emptyManifest(database: string, measurement: string): MeasurementManifest {
    return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, database, measurement, generation: 0, writer: "", applied: {}, files: [], garbage: [] };
}

export function decodeManifest(key: string, body: Uint8Array): MeasurementManifest {
    let value: unknown;
    try {
        value = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
    } catch (error) {
        throw new ManifestFormatError(`${key} is not JSON: ${messageOf(error)}`);
    }
    const manifest = value as Partial<MeasurementManifest> | null;
    if (manifest?.format !== MANIFEST_FORMAT) throw new ManifestFormatError(`${key} is not a Sluice lake manifest`);
    if (manifest.version !== MANIFEST_VERSION) throw new ManifestFormatError(`${key} has version ${String(manifest.version)}; this Sluice reads version ${MANIFEST_VERSION}`);
    if (!Array.isArray(manifest.files) || !Array.isArray(manifest.garbage) || typeof manifest.applied !== "object") {
        throw new ManifestFormatError(`${key} lacks files, garbage or applied`);
    }
    return manifest as MeasurementManifest;
}

export function encodeManifest(manifest: MeasurementManifest): Uint8Array {
    return Buffer.from(JSON.stringify(manifest), "utf8");
}

/** The manifest changed between reads too often: many writers on one measurement, or a store refusing every conditional write. */
export class ManifestContentionError extends ObjectStoreUnavailableError {}

/** What a mutation decided: a new manifest to write, or none (nothing to change), with what the caller wants back. */
export type Mutation<T> = { readonly write: Omit<MeasurementManifest, "generation" | "writer"> | undefined; readonly result: T };

const MAX_ATTEMPTS = 50;
const BACKOFF_MS = 10;
const MAX_BACKOFF_MS = 1000;

/**
 * Reads a measurement's manifest, lets `mutate` decide, and writes the result with a
 * compare-and-swap (a create-only write when there is none yet), again from a fresh read when
 * another writer came first.
 */
// Invariant kept: a write is based on the manifest as it was stored when it lands (its ETag, or
// its absence), so no writer's change is ever lost to another's.
export async function updateManifest<T>(
    store: ObjectStore,
    key: string,
    identity: { readonly database: string; readonly measurement: string; readonly writer: string },
    mutate: (current: MeasurementManifest) => Mutation<T>,
): Promise<T> {
    for (let attempt = 1; ; attempt++) {
        const stored = await store.get(key);
        const current = stored === undefined ? emptyManifest(identity.database, identity.measurement) : decodeManifest(key, stored.body);
        const { write, result } = mutate(current);
        if (write === undefined) return result;
        const next: MeasurementManifest = { ...write, generation: current.generation + 1, writer: identity.writer };
        const body = encodeManifest(next);
        const landed = stored === undefined ? (await store.putIfAbsent(key, body)).created : (await store.putIfMatch(key, body, stored.etag)).replaced;
        if (landed) return result;
        if (attempt === MAX_ATTEMPTS) {
            throw new ManifestContentionError(
                store.location,
                { operation: "putIfMatch", key, reason: "contention" },
                `the manifest changed under ${MAX_ATTEMPTS} attempts in a row`,
            );
        }
        await sleep(Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** Math.min(attempt, 7)) * (0.5 + Math.random()));
    }
}

/** Reads a measurement's manifest (an empty one when there is none). */
export async function readManifest(store: ObjectStore, key: string, database: string, measurement: string): Promise<MeasurementManifest> {
    const stored = await store.get(key);
    return stored === undefined ? emptyManifest(database, measurement) : decodeManifest(key, stored.body);
}

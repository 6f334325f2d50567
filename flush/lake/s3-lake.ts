/**
 * The lake in an S3-compatible bucket shared by several ingesters (DESIGN.md §4 "Object storage").
 *
 * Changes reach it after their record is durable in the ingester's local manifest (flush/commit.ts),
 * from the staged files in `<data>/flush/tmp`, so an upload is always for a recorded change, to
 * a key the record fixes: a crash, a replay or a retried upload can never leave a second copy.
 * Each measurement's manifest object (s3-manifest.ts) lists the live files and is changed only by
 * compare-and-swap:
 *
 * - add (flush): upload each file with a create-only write (an existing key with our bytes is
 *   ours from an earlier attempt), then list them and mark the change applied for this ingester,
 *   in one swap; applied again after a crash, a change already marked is skipped, even if a
 *   compaction has since merged its files away.
 * - replace (compaction): upload the outputs, then swap them for the inputs if every input is
 *   still live (else another ingester got there first: the outputs are deleted); the inputs
 *   become garbage, deleted at once. A reader that lists keys sees inputs and outputs together
 *   from the outputs' upload to that delete; an exact reader (the manifest) never does.
 * - drop (retention): the partition's files leave the manifest in one swap, then are deleted.
 *
 * The staged file is deleted once its change is listed. Compaction merges local copies of the
 * inputs, downloaded to `<data>/flush/download`.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Clock } from "../../src/clock.js";
import { IO_CONCURRENCY, mapLimit } from "../../src/concurrency.js";
import { messageOf, SluiceError } from "../../src/errors.js";
import { ensureDurableDirectory, writeFully } from "../../src/fs/durable.js";
import { type FileSystem, errorCode } from "../../src/fs/file-system.js";
import type { Logger } from "../../src/log.js";
import { decodeDirectoryName } from "../../src/names.js";
import type { Applied, LakeApplier } from "../commit.js";
import type { AddFiles, ChangeRecord, LegacyCommitRecord, PartitionRef, ReplaceFiles, StagedFile } from "../manifest/records.js";
import { type ObjectStore, ObjectStoreUnavailableError } from "../storage/object-store.js";
import type { Lake, LakeFile, LocalCopies } from "./lake.js";
import { Lease } from "./lease.js";
import { type NodeIdentity, nodeTag } from "./node-identity.js";
import { type ManifestFile, type MeasurementManifest, decodeManifest, readManifest, updateManifest } from "./s3-manifest.js";
import { CONTROL_PREFIX, MANIFEST_NAME, baseName, compactionLeaseKey, manifestKey, nodeLeaseKey, objectName, partitionName, partitionPrefix } from "./s3-keys.js";

/** Another ingester holds this `node_id` on the bucket. */
export class NodeIdInUseError extends SluiceError {
    readonly code = "node-id-in-use";
}

/** A key this ingester was to create holds other bytes: two data directories share an incarnation (a copied directory). */
export class LakeKeyConflictError extends SluiceError {
    readonly code = "lake-key-conflict";
}

/** The local manifest holds an unapplied change of Sluice 0.1, which only a local lake can apply. */
export class LegacyChangeError extends SluiceError {
    readonly code = "legacy-change";
}

/** An input vanished while compaction read it (another ingester compacted or dropped the partition). */
export class PartitionChangedError extends ObjectStoreUnavailableError {}

export interface S3LakeOptions {
    readonly store: ObjectStore;
    readonly fs: FileSystem;
    readonly identity: NodeIdentity;
    /** `<data>/flush/tmp` */
    readonly tempDir: string;
    /** `<data>/flush/download` */
    readonly downloadDir: string;
    readonly clock: Clock;
    readonly log: Logger;
    /** Time to live of the node and compaction leases, renewed every third of it; garbage is swept after twice it. */
    readonly leaseTtlMs: number;
}

interface Upload {
    readonly file: StagedFile;
    readonly key: string;
    readonly partition: string;
}

function groupByMeasurement<T extends { readonly partition: PartitionRef }>(items: readonly T[]): T[][] {
    const groups = new Map<string, T[]>();
    for (const item of items) {
        const key = `${item.partition.database}\u0000${item.partition.measurement}`;
        const group = groups.get(key);
        if (group === undefined) groups.set(key, [item]);
        else group.push(item);
    }
    return [...groups.values()];
}

function byKey(a: { readonly key: string }, b: { readonly key: string }): number {
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export class S3Lake implements Lake, LakeApplier {
    readonly location: string;
    readonly #options: S3LakeOptions;
    readonly #store: ObjectStore;
    readonly #tag: string;
    #nodeLease: Lease | undefined;
    #renewal: NodeJS.Timeout | undefined;

    private constructor(options: S3LakeOptions) {
        this.#options = options;
        this.#store = options.store;
        this.#tag = nodeTag(options.identity);
        this.location = options.store.location;
    }

    /** Checks the bucket and takes this ingester's `node_id` lease (refused while another ingester holds it). */
    static async open(options: S3LakeOptions): Promise<S3Lake> {
        const lake = new S3Lake(options);
        await options.store.check();
        const { nodeId } = options.identity;
        const outcome = await Lease.acquire(options.store, nodeLeaseKey(nodeId), lake.#tag, options.leaseTtlMs, options.clock);
        if (!outcome.held) {
            const { by } = outcome;
            throw new NodeIdInUseError(
                `node_id "${nodeId}" is in use on ${lake.location} by ${by.holder} (host ${by.host}, pid ${by.pid}) until ${new Date(by.expiresMs).toISOString()}: give each ingester its own node_id; if that ingester is gone, its lease expires then`,
            );
        }
        lake.#nodeLease = outcome.lease;
        lake.#renewal = setInterval(() => void lake.#renewNodeLease(), Math.max(1, Math.floor(options.leaseTtlMs / 3)));
        lake.#renewal.unref();
        return lake;
    }

    get applier(): LakeApplier {
        return this;
    }

    async #renewNodeLease(): Promise<void> {
        const lease = this.#nodeLease;
        if (lease === undefined) return;
        try {
            if (await lease.renew()) return;
            this.#options.log.error("this ingester's node_id lease was taken by another process: two ingesters share a node_id", { node_id: this.#options.identity.nodeId });
            const again = await Lease.acquire(this.#store, lease.key, this.#tag, this.#options.leaseTtlMs, this.#options.clock);
            if (again.held) this.#nodeLease = again.lease;
        } catch (error) {
            this.#options.log.warn("renewing the node_id lease failed; retried shortly", { error: messageOf(error) });
        }
    }

    async prepare(): Promise<void> {
        return undefined;
    }

    async apply(change: ChangeRecord): Promise<Applied> {
        const steps: Applied[] = [];
        for (const group of groupByMeasurement(change.drops.map((partition) => ({ partition })))) steps.push(await this.#drop(group.map(({ partition }) => partition)));
        for (const replace of change.replaces) steps.push(await this.#replace(replace));
        steps.push(...(await mapLimit(groupByMeasurement(change.adds), IO_CONCURRENCY, (adds) => this.#add(change.id, adds))));
        return { changed: steps.some((step) => step.changed), missing: steps.flatMap((step) => step.missing) };
    }

    async legacy(record: LegacyCommitRecord): Promise<Applied> {
        throw new LegacyChangeError(
            `the flush manifest holds a change of Sluice 0.1 (${record.database}/${record.measurement}) that is not applied: finish it with storage.backend = "local" before switching to "s3"`,
        );
    }

    /** Deletes what downloads a crash left. */
    async cleanup(): Promise<void> {
        await this.#options.fs.remove(this.#options.downloadDir);
    }

    #identity(partition: Pick<PartitionRef, "database" | "measurement">): { database: string; measurement: string; writer: string } {
        return { database: partition.database, measurement: partition.measurement, writer: this.#tag };
    }

    // Invariant kept: a change's files are listed at most once per ingester change id; once
    // listed (or compacted away), applying the change again uploads nothing.
    async #add(id: number, adds: readonly AddFiles[]): Promise<Applied> {
        const first = adds[0]!.partition;
        const key = manifestKey(first.database, first.measurement);
        const uploads: Upload[] = adds.flatMap((add) =>
            add.files.map((file) => ({ file, key: partitionPrefix(add.partition) + objectName(this.#options.identity, file.name), partition: partitionName(add.partition) })),
        );
        const applied = (manifest: MeasurementManifest) => (manifest.applied[this.#tag] ?? 0) >= id;
        if (applied(await readManifest(this.#store, key, first.database, first.measurement))) {
            await this.#removeTemps(uploads.map(({ file }) => file));
            return { changed: false, missing: [] };
        }
        const missing = new Set<string>();
        await mapLimit(uploads, IO_CONCURRENCY, async (upload) => {
            if (!(await this.#upload(upload.file, upload.key))) missing.add(upload.key);
        });
        const rank = this.#options.clock.now();
        const changed = await updateManifest(this.#store, key, this.#identity(first), (manifest) => {
            if (applied(manifest)) return { write: undefined, result: false };
            const listed = new Set(manifest.files.map((file) => file.key));
            const added: ManifestFile[] = uploads
                .filter((upload) => !listed.has(upload.key) && !missing.has(upload.key))
                .map((upload) => ({ key: upload.key, partition: upload.partition, rows: upload.file.rows, bytes: upload.file.bytes, rank }));
            return { write: { ...manifest, applied: { ...manifest.applied, [this.#tag]: id }, files: [...manifest.files, ...added].sort(byKey) }, result: true };
        });
        await this.#removeTemps(uploads.map(({ file }) => file));
        return { changed, missing: [...missing] };
    }

    // Invariant kept: the outputs become live in the same swap that retires every input, and only
    // if every input is still live and every output is uploaded; otherwise the outputs are deleted.
    async #replace(replace: ReplaceFiles): Promise<Applied> {
        const { partition } = replace;
        const key = manifestKey(partition.database, partition.measurement);
        const prefix = partitionPrefix(partition);
        const inputs = new Set(replace.inputs.map((name) => prefix + name));
        const outputs: Upload[] = replace.outputs.map((file) => ({ file, key: prefix + objectName(this.#options.identity, file.name), partition: partitionName(partition) }));
        const state = (manifest: MeasurementManifest): "swapped" | "ready" | "superseded" => {
            const live = new Set(manifest.files.map((file) => file.key));
            if (outputs.some((output) => live.has(output.key))) return "swapped";
            return [...inputs].every((input) => live.has(input)) ? "ready" : "superseded";
        };
        const abandon = async (): Promise<void> => {
            await this.#store.deleteMany(outputs.map((output) => output.key));
            await this.#removeTemps(outputs.map(({ file }) => file));
        };
        const before = state(await readManifest(this.#store, key, partition.database, partition.measurement));
        if (before === "superseded") {
            await abandon();
            return { changed: false, missing: [] };
        }
        const missing: string[] = [];
        /** When the first output became visible to a reader that lists keys. */
        let visible: number | undefined;
        if (before === "ready") {
            await mapLimit(outputs, IO_CONCURRENCY, async (output) => {
                if (await this.#upload(output.file, output.key)) visible ??= performance.now();
                else missing.push(output.key);
            });
            if (missing.length > 0) {
                await abandon();
                return { changed: false, missing };
            }
        }
        const now = this.#options.clock.now();
        const swapped = await updateManifest(this.#store, key, this.#identity(partition), (manifest) => {
            const current = state(manifest);
            if (current !== "ready") return { write: undefined, result: current === "swapped" };
            const rank = Math.max(0, ...manifest.files.filter((file) => inputs.has(file.key)).map((file) => file.rank));
            const files = manifest.files.filter((file) => !inputs.has(file.key));
            files.push(...outputs.map((output) => ({ key: output.key, partition: output.partition, rows: output.file.rows, bytes: output.file.bytes, rank })));
            return { write: { ...manifest, files: files.sort(byKey), garbage: [...manifest.garbage, ...[...inputs].map((input) => ({ key: input, since: now }))] }, result: true };
        });
        if (!swapped) {
            await abandon();
            return { changed: false, missing: [] };
        }
        await this.#deleteGarbage(partition, inputs);
        // From here a reader that lists keys no longer sees inputs next to the outputs.
        if (visible !== undefined) {
            this.#options.log.info("swapped on the bucket", {
                partition: prefix,
                inputs: inputs.size,
                outputs: outputs.length,
                listing_overlap_ms: Math.round(performance.now() - visible),
            });
        }
        await this.#removeTemps(outputs.map(({ file }) => file));
        return { changed: before === "ready", missing: [] };
    }

    // Invariant kept: a dropped partition leaves the manifest in one swap; its files are deleted only after.
    async #drop(partitions: readonly PartitionRef[]): Promise<Applied> {
        const first = partitions[0]!;
        const names = new Set(partitions.map(partitionName));
        const prefixes = partitions.map(partitionPrefix);
        const now = this.#options.clock.now();
        const changed = await updateManifest(this.#store, manifestKey(first.database, first.measurement), this.#identity(first), (manifest) => {
            const going = manifest.files.filter((file) => names.has(file.partition));
            if (going.length === 0) return { write: undefined, result: false };
            return {
                write: {
                    ...manifest,
                    files: manifest.files.filter((file) => !names.has(file.partition)),
                    garbage: [...manifest.garbage, ...going.map((file) => ({ key: file.key, since: now }))],
                },
                result: true,
            };
        });
        await this.#collect(first, (garbage) => prefixes.some((prefix) => garbage.startsWith(prefix)));
        return { changed, missing: [] };
    }

    /** Deletes the measurement's garbage that `chosen` picks, then forgets it. */
    async #collect(measurement: Pick<PartitionRef, "database" | "measurement">, chosen: (key: string, since: number) => boolean): Promise<number> {
        const key = manifestKey(measurement.database, measurement.measurement);
        const current = await readManifest(this.#store, key, measurement.database, measurement.measurement);
        const doomed = new Set(current.garbage.filter((garbage) => chosen(garbage.key, garbage.since)).map((garbage) => garbage.key));
        if (doomed.size > 0) await this.#deleteGarbage(measurement, doomed);
        return doomed.size;
    }

    /** Deletes garbage files (none of them live: the manifest lists them as garbage), then forgets them. */
    async #deleteGarbage(measurement: Pick<PartitionRef, "database" | "measurement">, doomed: ReadonlySet<string>): Promise<void> {
        const key = manifestKey(measurement.database, measurement.measurement);
        await this.#store.deleteMany([...doomed]);
        await updateManifest(this.#store, key, this.#identity(measurement), (manifest) => {
            const left = manifest.garbage.filter((garbage) => !doomed.has(garbage.key));
            return { write: left.length === manifest.garbage.length ? undefined : { ...manifest, garbage: left }, result: undefined };
        });
    }

    /**
     * Uploads a staged file to its key with a create-only write; true when the key holds it
     * (now or from an earlier attempt), false when its staged file is gone and the key is empty.
     */
    async #upload(file: StagedFile, key: string): Promise<boolean> {
        let body: Buffer;
        try {
            body = await this.#options.fs.readFile(join(this.#options.tempDir, file.temp));
        } catch (error) {
            if (errorCode(error) !== "ENOENT") throw error;
            return (await this.#store.head(key)) !== undefined;
        }
        if ((await this.#store.putIfAbsent(key, body)).created) return true;
        if ((await this.#store.head(key))?.etag === this.#store.expectedEtag(body)) return true;
        const stored = await this.#store.get(key);
        if (stored !== undefined && Buffer.from(stored.body).equals(body)) return true;
        throw new LakeKeyConflictError(
            `${this.location}${key} already holds other bytes: another data directory writes as ${this.#tag} (a copied data directory?); give it its own node.json`,
        );
    }

    async #removeTemps(files: readonly StagedFile[]): Promise<void> {
        await mapLimit(files, IO_CONCURRENCY, (file) => this.#options.fs.remove(join(this.#options.tempDir, file.temp)));
    }

    async *#measurements(filter: { readonly database?: string; readonly measurement?: string }): AsyncGenerator<MeasurementManifest> {
        for await (const databasePrefix of this.#store.listPrefixes("")) {
            if (databasePrefix === CONTROL_PREFIX) continue;
            if (filter.database !== undefined && decodeDirectoryName(databasePrefix.slice(0, -1)) !== filter.database) continue;
            for await (const prefix of this.#store.listPrefixes(databasePrefix)) {
                const stored = await this.#store.get(prefix + MANIFEST_NAME);
                if (stored === undefined) continue;
                const manifest = decodeManifest(prefix + MANIFEST_NAME, stored.body);
                if (filter.measurement !== undefined && manifest.measurement !== filter.measurement) continue;
                yield manifest;
            }
        }
    }

    async *partitions(filter: { readonly database?: string; readonly measurement?: string } = {}): AsyncGenerator<PartitionRef> {
        for await (const manifest of this.#measurements(filter)) {
            for (const name of new Set(manifest.files.map((file) => file.partition))) {
                const [date = "", hour = ""] = name.split("/");
                yield { database: manifest.database, measurement: manifest.measurement, date, hour };
            }
        }
    }

    async files(partition: PartitionRef): Promise<LakeFile[]> {
        const manifest = await readManifest(this.#store, manifestKey(partition.database, partition.measurement), partition.database, partition.measurement);
        const name = partitionName(partition);
        return manifest.files
            .filter((file) => file.partition === name)
            .map((file) => ({ name: baseName(file.key), location: file.key, bytes: file.bytes, writtenMs: file.rank, rank: file.rank }));
    }

    describe(partition: PartitionRef): string {
        return this.location + partitionPrefix(partition);
    }

    async localCopies(files: readonly LakeFile[]): Promise<LocalCopies> {
        const fs = this.#options.fs;
        await ensureDurableDirectory(fs, this.#options.downloadDir);
        const paths = files.map(() => join(this.#options.downloadDir, `${randomBytes(8).toString("hex")}.parquet`));
        const release = async () => {
            await mapLimit(paths, IO_CONCURRENCY, (path) => fs.remove(path));
        };
        try {
            await mapLimit(files, 4, async (file, i) => {
                const stored = await this.#store.get(file.location);
                if (stored === undefined)
                    throw new PartitionChangedError(
                        this.location,
                        { operation: "get", key: file.location, status: 404, reason: "NoSuchKey" },
                        "compacted or dropped by another ingester meanwhile",
                    );
                const handle = await fs.open(paths[i]!, "create");
                try {
                    await writeFully(handle, [stored.body], 0);
                } finally {
                    await handle.close();
                }
            });
        } catch (error) {
            await release();
            throw error;
        }
        return { paths, release };
    }

    async exclusive<T>(partition: PartitionRef, step: () => Promise<T>): Promise<T | undefined> {
        const { leaseTtlMs, clock } = this.#options;
        const outcome = await Lease.acquire(this.#store, compactionLeaseKey(partition.database, partition.measurement), this.#tag, leaseTtlMs, clock);
        if (!outcome.held) return undefined;
        const { lease } = outcome;
        const renewal = setInterval(() => void lease.renew().catch(() => undefined), Math.max(1, Math.floor(leaseTtlMs / 3)));
        renewal.unref();
        try {
            return await step();
        } finally {
            clearInterval(renewal);
            await lease.release().catch(() => undefined);
        }
    }

    /** Deletes every measurement's garbage older than the grace period (its mover died before deleting it). */
    async sweep(): Promise<number> {
        // Garbage older than two lease lifetimes is deleted by any ingester (its mover died before deleting it).
        const cutoff = this.#options.clock.now() - 2 * this.#options.leaseTtlMs;
        let removed = 0;
        for await (const manifest of this.#measurements({})) {
            if (manifest.garbage.some((garbage) => garbage.since < cutoff)) removed += await this.#collect(manifest, (_key, since) => since < cutoff);
        }
        return removed;
    }

    async close(): Promise<void> {
        if (this.#renewal !== undefined) clearInterval(this.#renewal);
        await this.#nodeLease?.release().catch(() => undefined);
    }
}

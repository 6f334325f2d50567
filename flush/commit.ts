/**
 * The commit protocol (DESIGN.md §3 invariants 2 and 7), the one path by which anything enters
 * or leaves the lake: flushes, compaction and retention all commit a `LakeChange` here.
 *
 *   1. stage: every new file is written to `<data>/flush/tmp` and fsynced (`stage`);
 *   2. record: the temp directory is fsynced, the change is appended to the manifest and
 *      fdatasynced; from here on it is committed (a flush's WAL entries may be purged);
 *   3. apply: files are moved into their partitions, partitions swapped or dropped, each step
 *      made durable (directory fsyncs), by the lake's `LakeApplier`.
 *
 * Changes are committed one at a time, each applied before the next is recorded, so after a
 * crash only the last record can be half applied: opening the manifest applies it again (every
 * step is idempotent) and deletes temp files no record names (their rows are still in the WAL).
 *
 * Fail-stop: if the manifest cannot be brought back to a known state (an append that failed and
 * could not be undone, a rewrite whose directory sync failed, a record that could not be applied),
 * no further change is committed until `repair()` succeeds; flushes fail meanwhile, their rows
 * stay in the buffers and the WAL, and writes get 503 once the buffers fill.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { messageOf, SluiceError } from "../src/errors.js";
import { ensureDurableDirectory, writeNewFileDurably } from "../src/fs/durable.js";
import type { FileSystem } from "../src/fs/file-system.js";
import type { Clock } from "../src/clock.js";
import type { Logger } from "../src/log.js";
import { crashPoint } from "./crash-points.js";
import { type FlushedThrough, FlushedSequences } from "./manifest/flushed.js";
import { LogAppendError, ManifestLog, readLog } from "./manifest/log.js";
import {
    type AddFiles,
    type ChangeRecord,
    type FlushedRange,
    type LegacyCommitRecord,
    type ManifestRecord,
    type PartitionRef,
    type ReplaceFiles,
    tempsOf,
} from "./manifest/records.js";

/** One step of the lake, as a caller asks for it. */
export interface LakeChange {
    readonly flushed: readonly FlushedRange[];
    readonly adds: readonly AddFiles[];
    readonly replaces: readonly ReplaceFiles[];
    readonly drops: readonly PartitionRef[];
}

export const NO_CHANGE: LakeChange = { flushed: [], adds: [], replaces: [], drops: [] };

/** How a change reaches the files readers see (local disk, or an object store). */
export interface LakeApplier {
    /** Creates what applying the change needs (directories) before its record, so that applying is only moves. */
    prepare(change: ChangeRecord): Promise<void>;
    /** Drops, then replaces, then adds; every step idempotent: applying a change again after a crash finishes it. */
    apply(change: ChangeRecord): Promise<Applied>;
    /** A change of Sluice 0.1 (a file moved to a path relative to the lake's root). */
    legacy(record: LegacyCommitRecord): Promise<Applied>;
    /** Removes what applied changes left behind (every change is applied when this is called). */
    cleanup(): Promise<void>;
}

/** What applying a step did: whether it changed anything (it was not applied before), and the committed files it found missing. */
export interface Applied {
    readonly changed: boolean;
    readonly missing: readonly string[];
}

export abstract class CommitError extends SluiceError {}

/** Nothing of the change is committed: its staged files may go and its rows be flushed again. */
export class CommitNotRecordedError extends CommitError {
    readonly code = "commit-not-recorded";
    override readonly retryable = true;
}

/** The manifest refuses changes until it is repaired (fail-stop); nothing of this one is committed. */
export class CommitBlockedError extends CommitError {
    readonly code = "commit-blocked";
    override readonly retryable = true;
}

/**
 * The change may or may not be durable (its append failed and could not be undone). Its staged
 * files must stay and its rows stay pinned until `settled` resolves: then it is known not to be
 * committed (the manifest was rewritten without it). A restart meanwhile decides by what the
 * manifest holds.
 */
export class CommitUncertainError extends CommitError {
    readonly code = "commit-uncertain";
    constructor(
        message: string,
        readonly settled: Promise<void>,
        options: { cause: unknown },
    ) {
        super(message, options);
    }
}

/** What opening the manifest did to bring the lake to a committed state. */
export interface CommitRecovery {
    /** Records applied again (a crash came while they were applied). */
    readonly finishedCommits: number;
    /** Temp files of changes that never committed, deleted (their rows are replayed from the WAL). */
    readonly discardedTemps: number;
    /** A damaged line, where the manifest was cut (later records were never acknowledged). */
    readonly damagedAt?: number;
}

export interface CommitProtocolOptions {
    readonly fileSystem: FileSystem;
    readonly log: Logger;
    /** `<data>/flush/manifest.log` */
    readonly path: string;
    /** `<data>/flush/tmp` */
    readonly tempDir: string;
    readonly applier: LakeApplier;
    /** The lowest WAL sequence a WAL file still holds: older flushed-through marks are dropped from snapshots. */
    readonly walFloor: () => Promise<number>;
    /** Paces background repairs (`repair`) while they keep failing. */
    readonly clock: Clock;
}

/** Background repairs back off from this to `MAX_REPAIR_BACKOFF_MS` while they keep failing. */
const MIN_REPAIR_BACKOFF_MS = 250;
const MAX_REPAIR_BACKOFF_MS = 30_000;

/** Rewrite the manifest as one snapshot once it holds this many records or bytes. */
const REWRITE_AFTER_RECORDS = 1000;
const REWRITE_AFTER_BYTES = 8 * 1024 * 1024;

/** Why the manifest refuses changes, and what `repair` does about it. */
type Blocked =
    | { readonly kind: "uncertain"; readonly reason: string; readonly settle: () => void }
    | { readonly kind: "unapplied"; readonly reason: string; readonly record: ChangeRecord }
    | { readonly kind: "directory"; readonly reason: string };

export class CommitProtocol {
    readonly #options: CommitProtocolOptions;
    readonly #fs: FileSystem;
    readonly #flushed: FlushedSequences;
    readonly #log: ManifestLog;
    #nextId: number;
    #blocked: Blocked | undefined;
    /** When a background repair may be tried next, and the wait after the next failure. */
    #repairAt = 0;
    #repairBackoffMs = MIN_REPAIR_BACKOFF_MS;
    /** Serialises record-and-apply steps (and rewrites): at most one change is in flight. */
    #lane: Promise<void> = Promise.resolve();
    #tempCounter = 0;
    readonly #tempPrefix = `${process.pid}-${randomBytes(4).toString("hex")}`;

    private constructor(options: CommitProtocolOptions, log: ManifestLog, flushed: FlushedSequences, nextId: number) {
        this.#options = options;
        this.#fs = options.fileSystem;
        this.#log = log;
        this.#flushed = flushed;
        this.#nextId = nextId;
    }

    /**
     * Opens the manifest and brings the lake to a committed state: applies again the records a
     * crash may have left half applied and deletes temp files no record names. Needs no free
     * space unless a record is still to be applied.
     */
    static async open(options: CommitProtocolOptions): Promise<{ commit: CommitProtocol; recovery: CommitRecovery }> {
        const fs = options.fileSystem;
        await ensureDurableDirectory(fs, options.tempDir);
        const read = await readLog(fs, options.path);
        if (read.damagedAt !== undefined && read.length > read.goodLength + 1) {
            options.log.error(`${options.path} line ${read.damagedAt} is damaged: ignoring it and every later record; their rows will be replayed from the WAL`);
        }
        const flushed = new FlushedSequences();
        let nextId = 1;
        const sinceSnapshot: ManifestRecord[] = [];
        for (const record of read.records) {
            flushed.noteRecord(record);
            if (record.type === "snapshot") {
                nextId = Math.max(nextId, record.nextId ?? 1);
                sinceSnapshot.length = 0;
            } else {
                if (record.type === "change") nextId = Math.max(nextId, record.id + 1);
                sinceSnapshot.push(record);
            }
        }
        const temps = new Set(await fs.readdir(options.tempDir).then((entries) => entries.map((entry) => entry.name)));
        let finishedCommits = 0;
        for (const [index, record] of sinceSnapshot.entries()) {
            // Only the last record can be half applied; an older one whose temps are still there
            // was written by Sluice 0.1 (which went on past failed renames).
            const last = index === sinceSnapshot.length - 1;
            if (!last && !tempsOf(record).some((temp) => temps.has(temp))) continue;
            if (await applyRecord(options.applier, record, options.log)) finishedCommits++;
        }
        await options.applier.cleanup();
        const referenced = new Set(sinceSnapshot.flatMap(tempsOf));
        let discardedTemps = 0;
        for (const name of await fs.readdir(options.tempDir).then((entries) => entries.map((entry) => entry.name))) {
            if (referenced.has(name)) continue;
            await fs.remove(join(options.tempDir, name));
            discardedTemps++;
        }
        const log = await ManifestLog.open(fs, options.path, read);
        const commit = new CommitProtocol(options, log, flushed, nextId);
        return { commit, recovery: { finishedCommits, discardedTemps, ...(read.damagedAt === undefined ? {} : { damagedAt: read.damagedAt }) } };
    }

    /** The highest WAL sequence of (database, measurement) already in Parquet, or -1. */
    readonly flushedThrough: FlushedThrough = (database, measurement) => this.#flushed.get(database, measurement);

    /** The highest flushed-through sequence of all (-1 when nothing was flushed). */
    highestFlushed(): number {
        return this.#flushed.highest();
    }

    /** Why changes are refused now (fail-stop), if they are. */
    get failure(): string | undefined {
        return this.#blocked?.reason;
    }

    tempPath(name: string): string {
        return join(this.#options.tempDir, name);
    }

    // Invariant kept: when this resolves the temp file holds `data` on stable storage (its
    // directory entry is made durable before any record names it).
    async stage(data: readonly Uint8Array[] | Uint8Array): Promise<string> {
        const temp = `${this.#tempPrefix}-${++this.#tempCounter}.parquet.tmp`;
        await writeNewFileDurably(this.#fs, this.tempPath(temp), data, { syncDirectory: false });
        return temp;
    }

    /** Deletes staged files of a change that was not committed. */
    async discard(temps: readonly string[]): Promise<void> {
        for (const temp of temps) await this.#fs.remove(this.tempPath(temp)).catch(() => undefined);
    }

    /**
     * Commits a change: when this resolves it is durable (and applied, unless applying failed:
     * then it is applied by `repair` or the next start, and no other change is committed before).
     * Rejects with CommitNotRecordedError or CommitBlockedError when nothing of it is committed,
     * and with CommitUncertainError when that is not known yet.
     */
    commit(change: LakeChange): Promise<void> {
        return this.#exclusive(async () => {
            if (this.#blocked !== undefined) await this.#repair();
            if (this.#blocked !== undefined) throw new CommitBlockedError(`the flush manifest refuses changes until it is repaired: ${this.#blocked.reason}`);
            const record: ChangeRecord = { type: "change", id: this.#nextId, ...change };
            try {
                await this.#options.applier.prepare(record);
                await this.#fs.syncDirectory(this.#options.tempDir);
            } catch (error) {
                throw new CommitNotRecordedError(`preparing the change failed: ${messageOf(error)}`, { cause: error });
            }
            crashPoint("before-commit-record");
            try {
                await this.#log.append([record]);
            } catch (error) {
                if (error instanceof LogAppendError && !error.undone) {
                    let settle: () => void = () => undefined;
                    const settled = new Promise<void>((resolve) => (settle = resolve));
                    this.#blocked = { kind: "uncertain", reason: error.message, settle };
                    throw new CommitUncertainError(error.message, settled, { cause: error });
                }
                throw new CommitNotRecordedError(messageOf(error), { cause: error });
            }
            this.#nextId++;
            this.#flushed.noteRanges(change.flushed);
            crashPoint("after-commit-record");
            try {
                await applyRecord(this.#options.applier, record, this.#options.log);
            } catch (error) {
                this.#blocked = { kind: "unapplied", reason: `change ${record.id} is durable but could not be applied: ${messageOf(error)}`, record };
                this.#options.log.error("a committed change could not be applied yet; no other change is committed until it is", { id: record.id, error: messageOf(error) });
                return;
            }
            crashPoint("after-rename");
            await this.#rewriteIfLarge();
        });
    }

    /** Tries to leave the fail-stop state (a flush tick calls it, backing off while it fails); resolves either way. */
    repair(): Promise<void> {
        if (this.#blocked === undefined || this.#options.clock.now() < this.#repairAt) return Promise.resolve();
        return this.#exclusive(() => this.#repair());
    }

    async #repair(): Promise<void> {
        const blocked = this.#blocked;
        if (blocked === undefined) return;
        try {
            switch (blocked.kind) {
                case "uncertain":
                    // A fresh manifest without the uncertain record settles it: not committed.
                    await this.#rewrite();
                    blocked.settle();
                    break;
                case "unapplied":
                    await applyRecord(this.#options.applier, blocked.record, this.#options.log);
                    break;
                case "directory":
                    await this.#log.syncDirectory();
                    break;
            }
        } catch (error) {
            this.#options.log.warn("the flush manifest is still refusing changes", { reason: blocked.reason, retry_error: messageOf(error), next_try_ms: this.#repairBackoffMs });
            this.#repairAt = this.#options.clock.now() + this.#repairBackoffMs;
            this.#repairBackoffMs = Math.min(MAX_REPAIR_BACKOFF_MS, this.#repairBackoffMs * 2);
            return;
        }
        this.#repairAt = 0;
        this.#repairBackoffMs = MIN_REPAIR_BACKOFF_MS;
        this.#blocked = undefined;
        this.#options.log.info("the flush manifest takes changes again", { after: blocked.reason });
    }

    async #rewriteIfLarge(): Promise<void> {
        if (this.#log.records < REWRITE_AFTER_RECORDS && this.#log.bytes < REWRITE_AFTER_BYTES) return;
        try {
            await this.#rewrite();
        } catch (error) {
            this.#options.log.error("rewriting the flush manifest failed; it is tried again after the next change", { error: messageOf(error) });
        }
    }

    /** Rewrites the manifest as one snapshot (only ever with every recorded change applied). */
    async #rewrite(): Promise<void> {
        const snapshot = this.#flushed.snapshot(await this.#options.walFloor(), this.#nextId);
        await this.#log.rewrite([snapshot]);
        try {
            await this.#log.syncDirectory();
        } catch (error) {
            // Renamed, but a power cut could bring the old manifest back: appends wait until the rename is durable.
            this.#blocked = { kind: "directory", reason: `syncing the manifest's directory after rewriting it failed: ${messageOf(error)}` };
            throw error;
        }
    }

    #exclusive<T>(step: () => Promise<T>): Promise<T> {
        const run = this.#lane.then(step);
        this.#lane = run.then(
            () => undefined,
            () => undefined,
        );
        return run;
    }

    async close(): Promise<void> {
        await this.#lane;
        await this.#log.close();
    }
}

/** Applies a record's steps in order; true when that changed anything (it was not applied before). */
async function applyRecord(applier: LakeApplier, record: ManifestRecord, log: Logger): Promise<boolean> {
    if (record.type === "snapshot") return false;
    const applied = record.type === "commit" ? await applier.legacy(record) : await applier.apply(record);
    if (applied.missing.length > 0) log.error("committed files are missing (neither they nor their temp files exist)", { files: applied.missing.join(", ") });
    return applied.changed;
}

/** The flushed-through sequences a manifest records, read without changing anything (offline tools). */
export async function readFlushedThrough(fs: FileSystem, path: string): Promise<FlushedThrough> {
    const flushed = new FlushedSequences();
    for (const record of (await readLog(fs, path)).records) flushed.noteRecord(record);
    return flushed.get;
}

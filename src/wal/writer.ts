/**
 * The WAL writer: appends entries to the active file with group commit. Every append returns a
 * promise that settles only after the write (and, in the durable sync modes, the fdatasync or
 * fsync) that covers it; appends that arrive while a group is being written share the next
 * write and the next sync.
 *
 * A request's batches are one unit: their entries are written together, marked so that a reader
 * passes them on only if the last one is there (DESIGN.md §3 invariant 7). After a failed write
 * or sync the file is never written again (its bytes past the last acknowledged entry are cut
 * off, by truncation or, if that fails too, by a durable limit file); the next group goes to a
 * new file. Without a file (none could be created: a full disk) appends are refused until one
 * can be, retried at most once a second.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Clock } from "../clock.js";
import type { ColumnarBatch } from "../columnar/batch.js";
import { ensureDurableDirectory, writeFully } from "../fs/durable.js";
import { type FileHandle, type FileSystem, errorCode } from "../fs/file-system.js";
import { errorOf } from "../errors.js";
import { WalClosedError, WalEntryTooLargeError, WalFailedError, WalIOError, WalUnavailableError } from "./errors.js";
import { LIMIT_SUFFIX, writeLimit } from "./files.js";
import { EntryWriter } from "./entry-writer.js";
import { ENTRY_HEADER_SIZE, FILE_HEADER_SIZE, MAX_PAYLOAD_BYTES, encodeEntryHeader, encodeFileHeader, walFileName } from "./format.js";
import { nextFreeSequence } from "./inspect.js";
import { encodePayload } from "./payload.js";

export const SYNC_MODES = ["fdatasync", "fsync", "async", "off"] as const;
/**
 * `fdatasync`/`fsync`: an append resolves once its entry is on stable storage. `async`: once it
 * is written (survives a process crash), synced every `syncIntervalMs`. `off`: never synced.
 */
export type SyncMode = (typeof SYNC_MODES)[number];

export function isSyncMode(value: unknown): value is SyncMode {
    return typeof value === "string" && (SYNC_MODES as readonly string[]).includes(value);
}

/** The most bytes one group commit writes before it syncs. */
export const MAX_GROUP_BYTES = 16 * 1024 * 1024;
/** How long the writer waits before trying again to create a file, or to cut off a failed write. */
const RETRY_MS = 1000;

/** Resolved options (defaults live in the config schema, src/config/schema.ts). */
export interface WalWriterOptions {
    /** Directory of the WAL files (created when missing). */
    readonly dir: string;
    /** How an append becomes durable before it resolves. */
    readonly syncMode: SyncMode;
    /** In `async` mode, how often written entries are synced. */
    readonly syncIntervalMs: number;
    /** Rotate to a new file before an entry would take the active file past this size. */
    readonly maxFileBytes: number;
    /** Rotate a file with entries once it is this old (checked on every group and on a timer). */
    readonly maxFileAgeMs: number;
    /**
     * The lowest sequence the new file may take: the caller's knowledge of sequences used
     * before (the flush manifest's highest flushed-through sequence + 1), in case WAL files that
     * held them are gone (purged, lost to a power cut in `async` mode).
     */
    readonly minSequence: number;
    readonly fileSystem: FileSystem;
    readonly clock: Clock;
    /** The most bytes one group commit writes (MAX_GROUP_BYTES unless a benchmark says otherwise). */
    readonly maxGroupBytes?: number;
}

/** Where an acknowledged entry lives. */
export interface AppendResult {
    readonly sequence: number;
    readonly file: string;
}

export interface WalWriterStats {
    entries: number;
    bytes: number;
    syncs: number;
    groups: number;
    largestGroup: number;
    rotations: number;
    filesCreated: number;
    failedGroups: number;
}

/** Told of each group commit and each sync, for metrics: called on the writer's path, so it must be cheap and must not throw. */
export interface WalObserver {
    /** A group was written (and synced, in the durable modes): the appends that shared it and its bytes. */
    group(appends: number, bytes: number): void;
    /** An fdatasync/fsync of a WAL file took this long. */
    synced(seconds: number): void;
}

const UNOBSERVED: WalObserver = { group: () => undefined, synced: () => undefined };

/** One batch to append, and the database it belongs to. */
export interface WalItem {
    readonly database: string;
    readonly batch: ColumnarBatch;
}

export interface AppendOptions {
    /**
     * Called synchronously once the entries are durable, before the promise resolves, in
     * sequence order across all appends: what it does (e.g. fill the buffers) happens in the
     * order of the WAL. It must not throw.
     */
    readonly onDurable?: ((results: readonly AppendResult[]) => void) | undefined;
}

/** One `appendAll` call waiting for its group: its entries' bytes, written together. */
interface PendingUnit {
    readonly parts: Buffer[];
    readonly bytes: number;
    readonly count: number;
    readonly onDurable: AppendOptions["onDurable"];
    resolve(results: AppendResult[]): void;
    reject(error: Error): void;
}

interface ActiveFile {
    readonly name: string;
    readonly path: string;
    readonly firstSequence: number;
    readonly handle: FileHandle;
    readonly openedAt: number;
    /** Bytes known to be in the file: the header plus every acknowledged entry. */
    size: number;
    entries: number;
}

/** A file whose failed write could not be cut off yet: appends wait until it is. */
interface UnsealedFile {
    readonly path: string;
    readonly size: number;
}

type State =
    | { readonly kind: "open" }
    | { readonly kind: "sealing"; readonly file: UnsealedFile; readonly error: WalFailedError }
    | { readonly kind: "failed"; readonly error: WalFailedError }
    | { readonly kind: "closing" }
    | { readonly kind: "closed" };

const EMPTY_STATS: WalWriterStats = {
    entries: 0,
    bytes: 0,
    syncs: 0,
    groups: 0,
    largestGroup: 0,
    rotations: 0,
    filesCreated: 0,
    failedGroups: 0,
};

export class WalWriter {
    readonly dir: string;
    readonly syncMode: SyncMode;
    readonly #options: Required<WalWriterOptions>;
    readonly #fs: FileSystem;
    readonly #clock: Clock;
    readonly #stats: WalWriterStats = { ...EMPTY_STATS };
    #observer: WalObserver = UNOBSERVED;
    #state: State = { kind: "open" };
    /** The file appends go to; undefined until one could be created (after a failure, or at start). */
    #file: ActiveFile | undefined;
    /** The sequence the next entry takes. */
    #next: number;
    /** Why no file could be created, and when to try again. */
    #fileError: WalIOError | undefined;
    #fileRetryAt = 0;
    #queue: PendingUnit[] = [];
    #draining = false;
    /** Serialises every operation on the files: group writes, rotations, timed syncs. */
    #lane: Promise<void> = Promise.resolve();
    #unsynced = false;
    #lastSyncMs: number;
    /** After a failed rotation, an aged file is not rotated again before this time. */
    #rotationRetryAt = 0;
    readonly #rotationWaiters: { resolve(): void; reject(error: Error): void }[] = [];
    readonly #timers: NodeJS.Timeout[] = [];

    private constructor(options: Required<WalWriterOptions>, next: number) {
        this.dir = options.dir;
        this.#options = options;
        this.syncMode = options.syncMode;
        this.#fs = options.fileSystem;
        this.#clock = options.clock;
        this.#next = next;
        this.#lastSyncMs = options.clock.now();
    }

    /**
     * Opens the WAL in `options.dir` and starts a new active file whose first sequence follows
     * every sequence used before (by the files present and by the persisted floor). If the file
     * cannot be created (a full disk), the writer opens without one and refuses appends until it can.
     */
    static async open(options: WalWriterOptions): Promise<WalWriter> {
        const resolved = { ...options, maxGroupBytes: options.maxGroupBytes ?? MAX_GROUP_BYTES };
        await ensureDurableDirectory(options.fileSystem, options.dir);
        const writer = new WalWriter(resolved, await nextFreeSequence(options.dir, options.minSequence, options.fileSystem));
        await writer.#openFile();
        writer.#startTimers();
        return writer;
    }

    /** The sequence the next entry will take. */
    get nextSequence(): number {
        return this.#next;
    }

    /** The active file's name (never purged while this writer has it open), if there is one. */
    get activeFile(): string | undefined {
        return this.#file?.name;
    }

    /** Why appends are refused now, if they are: for good (until restart), or until a file can be made. */
    get failure(): WalFailedError | WalIOError | undefined {
        if (this.#state.kind === "failed" || this.#state.kind === "sealing") return this.#state.error;
        return this.#file === undefined ? this.#fileError : undefined;
    }

    get stats(): Readonly<WalWriterStats> {
        return { ...this.#stats };
    }

    /** Tells `observer` of every group commit and sync from now on. */
    observe(observer: WalObserver): void {
        this.#observer = observer;
    }

    /** Resolves once the batch is in the WAL under the sync mode; rejects if it never will be. */
    async append(database: string, batch: ColumnarBatch): Promise<AppendResult> {
        const [result] = await this.appendAll([{ database, batch }]);
        return result!;
    }

    /**
     * Appends several batches as one unit: they land in the same write and the same sync, and a
     * reader replays them only all together, so either all of them are acknowledged and kept
     * or none is (a request's batches are all-or-nothing, also across a crash mid-write).
     * Results come in the order given, with consecutive sequences.
     */
    appendAll(items: readonly WalItem[], options: AppendOptions = {}): Promise<AppendResult[]> {
        const refusal = this.#refusal();
        if (refusal !== undefined) return Promise.reject(refusal);
        if (items.length === 0) return Promise.resolve([]);
        const parts: Buffer[] = [];
        let bytes = 0;
        const appendTimeUs = BigInt(this.appendTimeUs());
        try {
            items.forEach(({ database, batch }, index) => {
                const payload = encodePayload(database, batch, items.length - 1 - index);
                const payloadBytes = payload[0].length + payload[1].length;
                if (payloadBytes > MAX_PAYLOAD_BYTES) throw new WalEntryTooLargeError(payloadBytes, MAX_PAYLOAD_BYTES);
                parts.push(encodeEntryHeader(payload, appendTimeUs), ...payload);
                bytes += ENTRY_HEADER_SIZE + payloadBytes;
            });
        } catch (error) {
            return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
        return this.#enqueue(parts, bytes, items.length, options);
    }

    /** The append time the entries of an append made now carry (µs since the epoch, the writer's clock). */
    appendTimeUs(): number {
        return this.#clock.now() * 1000;
    }

    /**
     * Appends entries written by an EntryWriter (each a request's entry, `u` marking all but the
     * last, DESIGN.md §2) as one unit, like `appendAll`.
     */
    appendEncoded(entries: EntryWriter, options: AppendOptions = {}): Promise<AppendResult[]> {
        const refusal = this.#refusal();
        if (refusal !== undefined) return Promise.reject(refusal);
        if (entries.entries === 0) return Promise.resolve([]);
        const bytes = entries.finish();
        return this.#enqueue([bytes], bytes.length, entries.entries, options);
    }

    #enqueue(parts: Buffer[], bytes: number, count: number, options: AppendOptions): Promise<AppendResult[]> {
        return new Promise<AppendResult[]>((resolve, reject) => {
            this.#queue.push({ parts, bytes, count, onDurable: options.onDurable, resolve, reject });
            this.#kick();
        });
    }

    /**
     * Starts a new active file before the next group (used by `purgeAll`, so every older file
     * becomes inactive); a no-op while the active file holds no entry or there is none.
     */
    rotate(): Promise<void> {
        const refusal = this.#refusal();
        if (refusal !== undefined) return Promise.reject(refusal);
        return new Promise<void>((resolve, reject) => {
            this.#rotationWaiters.push({ resolve, reject });
            this.#kick();
        });
    }

    /** Waits for every pending append, syncs, and closes the active file. Idempotent. */
    async close(): Promise<void> {
        if (this.#state.kind === "closed") return;
        if (this.#state.kind === "open") this.#state = { kind: "closing" };
        for (const timer of this.#timers) clearInterval(timer);
        await this.#schedule(async () => {
            const file = this.#file;
            this.#file = undefined;
            if (file === undefined) return;
            try {
                if (this.#unsynced && this.syncMode !== "off") await file.handle.datasync();
            } finally {
                await file.handle.close();
            }
        });
        if (this.#state.kind === "closing") this.#state = { kind: "closed" };
    }

    #refusal(): Error | undefined {
        switch (this.#state.kind) {
            case "open":
                return undefined;
            case "failed":
            case "sealing":
                return this.#state.error;
            default:
                return new WalClosedError();
        }
    }

    #schedule(operation: () => Promise<void>): Promise<void> {
        const run = this.#lane.then(operation);
        this.#lane = run.catch(() => undefined);
        return run;
    }

    /** Starts the work loop unless it runs: it picks up everything queued or due. */
    #kick(): void {
        if (this.#draining) return;
        this.#draining = true;
        this.#schedule(() => this.#work()).catch(() => undefined);
    }

    #startTimers(): void {
        const interval = Math.max(10, Math.min(this.#options.maxFileAgeMs, this.syncMode === "async" ? this.#options.syncIntervalMs : RETRY_MS));
        const timer = setInterval(() => {
            if (this.#state.kind === "sealing") this.#schedule(() => this.#retrySeal()).catch(() => undefined);
            else if (this.#state.kind === "open" && (this.#rotationDue() || this.#syncDue())) this.#kick();
        }, interval);
        timer.unref();
        this.#timers.push(timer);
    }

    #rotationDue(): boolean {
        const file = this.#file;
        if (file === undefined || file.entries === 0) return false;
        const now = this.#clock.now();
        const aged = now - file.openedAt >= this.#options.maxFileAgeMs && now >= this.#rotationRetryAt;
        return this.#rotationWaiters.length > 0 || aged;
    }

    #syncDue(): boolean {
        return this.syncMode === "async" && this.#unsynced && this.#clock.now() - this.#lastSyncMs >= this.#options.syncIntervalMs;
    }

    async #timedSync(): Promise<void> {
        this.#unsynced = false;
        this.#lastSyncMs = this.#clock.now();
        try {
            const started = performance.now();
            await this.#file?.handle.datasync();
            this.#observer.synced((performance.now() - started) / 1000);
            this.#stats.syncs++;
        } catch (error) {
            // Entries were already acknowledged in async mode: stop taking more rather than
            // pretend later ones are safer.
            this.#state = { kind: "failed", error: new WalFailedError(new WalIOError("sync", error)) };
        }
    }

    /** Creates the active file if there is none (at most once per RETRY_MS); false when there still is none. */
    async #openFile(): Promise<boolean> {
        if (this.#file !== undefined) return true;
        if (this.#clock.now() < this.#fileRetryAt) return false;
        try {
            this.#file = await this.#createFile(this.#next);
            this.#fileError = undefined;
            return true;
        } catch (error) {
            this.#fileError = error as WalIOError;
            this.#fileRetryAt = this.#clock.now() + RETRY_MS;
            return false;
        }
    }

    /** Rotates, telling whoever asked for it; a failed rotation fails them and the queued appends. */
    async #rotateNow(): Promise<void> {
        const waiters = this.#rotationWaiters.splice(0);
        try {
            await this.#rotate();
        } catch (error) {
            this.#rotationRetryAt = this.#clock.now() + RETRY_MS;
            for (const waiter of waiters) waiter.reject(errorOf(error));
            this.#rejectAll(this.#queue.splice(0), error);
            return;
        }
        for (const waiter of waiters) waiter.resolve();
    }

    // Invariant kept: entries take sequences in queue order, and entry k of a file has sequence
    // firstSequence + k, because rotation happens only between groups. Rotations and timed syncs
    // are taken between groups, so a steady stream of appends cannot starve them.
    async #work(): Promise<void> {
        try {
            for (;;) {
                const refusal = this.#refusal();
                if (refusal !== undefined && this.#state.kind !== "closing") {
                    this.#rejectAll(this.#queue.splice(0), refusal);
                    for (const waiter of this.#rotationWaiters.splice(0)) waiter.reject(refusal);
                    break;
                }
                if (this.#syncDue()) await this.#timedSync();
                if (this.#file === undefined) {
                    // No file: nothing to rotate; appends wait for one, or are refused until it can be made.
                    for (const waiter of this.#rotationWaiters.splice(0)) waiter.resolve();
                    if (this.#queue.length === 0) break;
                    if (!(await this.#openFile())) {
                        this.#rejectAll(this.#queue.splice(0), new WalUnavailableError(this.#fileError));
                        break;
                    }
                }
                const file = this.#file!;
                const next = this.#queue[0];
                const tooBig = next !== undefined && file.entries > 0 && file.size + next.bytes > this.#options.maxFileBytes;
                if (this.#rotationDue() || tooBig) {
                    await this.#rotateNow();
                    continue;
                }
                for (const waiter of this.#rotationWaiters.splice(0)) waiter.resolve();
                if (this.#queue.length === 0) break;
                await this.#writeGroup(file, this.#takeGroup(file));
            }
        } catch (error) {
            this.#rejectAll(this.#queue.splice(0), error);
        } finally {
            this.#draining = false;
        }
    }

    #takeGroup(file: ActiveFile): PendingUnit[] {
        const room = Math.min(this.#options.maxGroupBytes, Math.max(0, this.#options.maxFileBytes - file.size));
        let bytes = this.#queue[0]!.bytes;
        let count = 1;
        while (count < this.#queue.length && bytes + this.#queue[count]!.bytes <= room) bytes += this.#queue[count++]!.bytes;
        return this.#queue.splice(0, count);
    }

    async #writeGroup(file: ActiveFile, group: PendingUnit[]): Promise<void> {
        const buffers = group.flatMap((unit) => unit.parts);
        const bytes = group.reduce((sum, unit) => sum + unit.bytes, 0);
        const entries = group.reduce((sum, unit) => sum + unit.count, 0);
        let syncStarted = 0;
        try {
            await writeFully(file.handle, buffers, file.size);
            syncStarted = performance.now();
            if (this.syncMode === "fdatasync") await file.handle.datasync();
            else if (this.syncMode === "fsync") await file.handle.sync();
        } catch (error) {
            this.#stats.failedGroups++;
            // The fsyncgate lesson: after a failed write or sync, this file is never written again.
            this.#file = undefined;
            await this.#seal(file, error);
            this.#rejectAll(group, error);
            return;
        }
        const durable = this.syncMode === "fdatasync" || this.syncMode === "fsync";
        const syncSeconds = (performance.now() - syncStarted) / 1000;
        if (durable) this.#stats.syncs++;
        else this.#unsynced = true;
        let sequence = file.firstSequence + file.entries;
        file.entries += entries;
        file.size += bytes;
        this.#next = file.firstSequence + file.entries;
        this.#stats.entries += entries;
        this.#stats.bytes += bytes;
        this.#stats.groups++;
        this.#stats.largestGroup = Math.max(this.#stats.largestGroup, entries);
        for (const unit of group) {
            const results: AppendResult[] = [];
            for (let i = 0; i < unit.count; i++) results.push({ sequence: sequence++, file: file.name });
            try {
                unit.onDurable?.(results);
            } catch (error) {
                // The entries are durable but whatever had to follow did not happen: go no further
                // and let the process die, so a restart replays them (kill -9 semantics).
                this.#state = { kind: "failed", error: new WalFailedError(error) };
                unit.reject(this.#state.error);
                setImmediate(() => {
                    throw error;
                });
                continue;
            }
            unit.resolve(results);
        }
        if (durable) this.#observer.synced(syncSeconds);
        this.#observer.group(group.length, bytes);
    }

    #rejectAll(group: PendingUnit[], cause: unknown): void {
        const error = cause instanceof WalFailedError || cause instanceof WalUnavailableError ? cause : new WalIOError("write", cause);
        for (const unit of group) unit.reject(error);
    }

    // Invariant kept: after a failed group no reader ever reads past the file's acknowledged
    // entries, so nothing whose append was rejected can be replayed: the file is truncated back,
    // or, if that fails, a durable limit file says where it ends; until one of them succeeded
    // the writer refuses appends.
    async #seal(file: ActiveFile, cause: unknown): Promise<void> {
        try {
            if (file.entries === 0) {
                // Nothing in it was ever acknowledged: it goes (and its name is free for the next file).
                await file.handle.close().catch(() => undefined);
                await this.#fs.unlink(file.path);
                await this.#fs.syncDirectory(this.dir);
                return;
            }
            await file.handle.truncate(file.size);
            if (this.syncMode !== "off") await file.handle.sync();
        } catch {
            const unsealed = { path: file.path, size: file.size };
            try {
                await writeLimit(this.#fs, file.path, file.size);
            } catch (limitError) {
                const error = new WalFailedError(
                    new AggregateError([cause, limitError], `a failed write to ${file.name} could not be cut off (truncate and limit file both failed); retrying`),
                );
                this.#state = { kind: "sealing", file: unsealed, error };
            }
        } finally {
            await file.handle.close().catch(() => undefined);
        }
    }

    /** Tries again to write the limit of a file whose failed write could not be cut off. */
    async #retrySeal(): Promise<void> {
        if (this.#state.kind !== "sealing") return;
        const { file } = this.#state;
        try {
            await writeLimit(this.#fs, file.path, file.size);
        } catch {
            return;
        }
        this.#state = { kind: "open" };
    }

    async #rotate(): Promise<void> {
        const old = this.#file!;
        this.#file = await this.#createFile(old.firstSequence + old.entries);
        this.#stats.rotations++;
        try {
            if (this.#unsynced && this.syncMode !== "off") {
                const started = performance.now();
                await old.handle.datasync();
                this.#observer.synced((performance.now() - started) / 1000);
                this.#stats.syncs++;
            }
        } catch (error) {
            // Acknowledged async-mode entries may not be on disk: same policy as a failed timed sync.
            this.#state = { kind: "failed", error: new WalFailedError(new WalIOError("sync", error)) };
        } finally {
            this.#unsynced = false;
            await old.handle.close().catch(() => undefined);
        }
    }

    // Invariant kept: the returned file exists with a complete header and, in the durable modes,
    // both it and its directory entry are on stable storage.
    async #createFile(firstSequence: number): Promise<ActiveFile> {
        const name = walFileName(firstSequence);
        const path = join(this.dir, name);
        let handle: FileHandle | undefined;
        try {
            handle = await this.#createReplacingEmpty(path);
            await writeFully(handle, [encodeFileHeader()], 0);
            if (this.syncMode === "fdatasync" || this.syncMode === "fsync") {
                await handle.sync();
                await this.#fs.syncDirectory(this.dir);
            }
        } catch (error) {
            await handle?.close().catch(() => undefined);
            throw new WalIOError(`creating ${name}`, error);
        }
        this.#stats.filesCreated++;
        return { name, path, firstSequence, handle, openedAt: this.#clock.now(), size: FILE_HEADER_SIZE, entries: 0 };
    }

    /**
     * A file of that name can only exist with no entry in it: the next sequence is past every
     * entry on disk. It is what a crash (or a failed rotation) left behind, so it is replaced.
     */
    async #createReplacingEmpty(path: string): Promise<FileHandle> {
        // A limit left for an earlier file of this name must never cut the new one short.
        await this.#fs.remove(`${path}${LIMIT_SUFFIX}`);
        try {
            return await this.#fs.open(path, "create");
        } catch (error) {
            if (errorCode(error) !== "EEXIST") throw error;
            const { size } = await this.#fs.lstat(path);
            if (size > FILE_HEADER_SIZE) throw error;
            await this.#fs.unlink(path);
            return this.#fs.open(path, "create");
        }
    }
}

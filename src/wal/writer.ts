/**
 * The WAL writer: appends entries to the active file with group commit. Every append returns a
 * promise that settles only after the write (and, in the durable sync modes, the fdatasync or
 * fsync) that covers it; appends that arrive while a group is being written share the next
 * write and the next sync.
 */
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ColumnarBatch } from "../columnar/batch.js";
import { WalClosedError, WalEntryTooLargeError, WalFailedError, WalIOError } from "./errors.js";
import { MAX_PAYLOAD_BYTES, ENTRY_HEADER_SIZE, FILE_HEADER_SIZE, encodeEntryHeader, encodeFileHeader, nowMicros, walFileName } from "./format.js";
import { type WalFileHandle, type WalFileSystem, ensureDurableDirectory, nodeWalFileSystem } from "./fs.js";
import { encodePayload } from "./payload.js";
import { nextFreeSequence } from "./inspect.js";

export const SYNC_MODES = ["fdatasync", "fsync", "async", "off"] as const;
/**
 * `fdatasync`/`fsync`: an append resolves once its entry is on stable storage. `async`: once it
 * is written (survives a process crash), synced every `syncIntervalMs`. `off`: never synced.
 */
export type SyncMode = (typeof SYNC_MODES)[number];

export function isSyncMode(value: unknown): value is SyncMode {
    return typeof value === "string" && (SYNC_MODES as readonly string[]).includes(value);
}

export interface WalWriterOptions {
    /** Directory of the WAL files (created when missing). */
    readonly dir: string;
    /** How an append becomes durable before it resolves. */
    readonly syncMode?: SyncMode;
    /** In `async` mode, how often written entries are synced. */
    readonly syncIntervalMs?: number;
    /** Rotate to a new file before an entry would take the active file past this size. */
    readonly maxFileBytes?: number;
    /** Rotate a file with entries once it is this old (checked on every group and on a timer). */
    readonly maxFileAgeMs?: number;
    /** The most bytes one group commit writes before it syncs. */
    readonly maxGroupBytes?: number;
    /** The file system seam (fault injection in tests). */
    readonly fileSystem?: WalFileSystem;
    /**
     * The lowest sequence the new file may take: the caller's knowledge of sequences used
     * before (the flush manifest's highest flushed-through sequence + 1), in case WAL files that
     * held them are gone (purged, lost to a power cut in `async` mode).
     */
    readonly minSequence?: number;
}

export const WAL_WRITER_DEFAULTS = {
    syncMode: "fdatasync",
    syncIntervalMs: 100,
    maxFileBytes: 64 * 1024 * 1024,
    maxFileAgeMs: 10 * 60 * 1000,
    maxGroupBytes: 16 * 1024 * 1024,
    fileSystem: nodeWalFileSystem,
    minSequence: 0,
} as const satisfies { [K in keyof Required<Omit<WalWriterOptions, "dir">>]: WalWriterOptions[K] };

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
    readonly firstSequence: number;
    readonly handle: WalFileHandle;
    readonly openedAt: number;
    /** Bytes known to be in the file: the header plus every acknowledged entry. */
    size: number;
    entries: number;
}

type State = { kind: "open" } | { kind: "closing" } | { kind: "closed" } | { kind: "failed"; error: WalFailedError };

/** How long an aged file waits before another rotation attempt after one failed (e.g. ENOSPC). */
const ROTATION_RETRY_MS = 1000;

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
    readonly #options: Required<Omit<WalWriterOptions, "dir">>;
    readonly #stats: WalWriterStats = { ...EMPTY_STATS };
    #state: State = { kind: "open" };
    #file: ActiveFile;
    #queue: PendingUnit[] = [];
    #draining = false;
    /** Serialises every operation on the active file: group writes, rotations, timed syncs. */
    #lane: Promise<void> = Promise.resolve();
    #unsynced = false;
    #lastSyncMs = Date.now();
    /** After a failed rotation, an aged file is not rotated again before this time. */
    #rotationRetryAtMs = 0;
    readonly #rotationWaiters: { resolve(): void; reject(error: Error): void }[] = [];
    readonly #timers: NodeJS.Timeout[] = [];

    private constructor(dir: string, options: Required<Omit<WalWriterOptions, "dir">>, file: ActiveFile) {
        this.dir = dir;
        this.#options = options;
        this.syncMode = options.syncMode;
        this.#file = file;
    }

    /**
     * Opens the WAL in `options.dir` and starts a new active file whose first sequence follows
     * every sequence used before (by the files present and by the persisted floor).
     */
    static async open(options: WalWriterOptions): Promise<WalWriter> {
        const resolved = {
            syncMode: options.syncMode ?? WAL_WRITER_DEFAULTS.syncMode,
            syncIntervalMs: options.syncIntervalMs ?? WAL_WRITER_DEFAULTS.syncIntervalMs,
            maxFileBytes: options.maxFileBytes ?? WAL_WRITER_DEFAULTS.maxFileBytes,
            maxFileAgeMs: options.maxFileAgeMs ?? WAL_WRITER_DEFAULTS.maxFileAgeMs,
            maxGroupBytes: options.maxGroupBytes ?? WAL_WRITER_DEFAULTS.maxGroupBytes,
            fileSystem: options.fileSystem ?? WAL_WRITER_DEFAULTS.fileSystem,
            minSequence: options.minSequence ?? WAL_WRITER_DEFAULTS.minSequence,
        };
        await ensureDurableDirectory(options.dir, 0o700);
        const next = await nextFreeSequence(options.dir, resolved.minSequence);
        const stats = { ...EMPTY_STATS };
        const file = await createFile(options.dir, next, resolved.fileSystem, resolved.syncMode, stats);
        const writer = new WalWriter(options.dir, resolved, file);
        Object.assign(writer.#stats, stats);
        writer.#startTimers();
        return writer;
    }

    /** The sequence the next entry will take. */
    get nextSequence(): number {
        return this.#file.firstSequence + this.#file.entries;
    }

    /** The active file's name (never purged while this writer has it open). */
    get activeFile(): string {
        return this.#file.name;
    }

    /** Why the writer refuses appends for good (until reopened), if it does. */
    get failure(): WalFailedError | undefined {
        return this.#state.kind === "failed" ? this.#state.error : undefined;
    }

    get stats(): Readonly<WalWriterStats> {
        return { ...this.#stats };
    }

    /** Resolves once the batch is in the WAL under the sync mode; rejects if it never will be. */
    async append(database: string, batch: ColumnarBatch): Promise<AppendResult> {
        const [result] = await this.appendAll([{ database, batch }]);
        return result!;
    }

    /**
     * Appends several batches as one unit: they land in the same write and the same sync, so
     * either all of them are acknowledged or none is (a request's batches are all-or-nothing).
     * Results come in the order given, with consecutive sequences.
     */
    appendAll(items: readonly WalItem[], options: AppendOptions = {}): Promise<AppendResult[]> {
        const refusal = this.#refusal();
        if (refusal !== undefined) return Promise.reject(refusal);
        if (items.length === 0) return Promise.resolve([]);
        const parts: Buffer[] = [];
        let bytes = 0;
        try {
            for (const { database, batch } of items) {
                const payload = encodePayload(database, batch);
                const payloadBytes = payload[0].length + payload[1].length;
                if (payloadBytes > MAX_PAYLOAD_BYTES) throw new WalEntryTooLargeError(payloadBytes, MAX_PAYLOAD_BYTES);
                parts.push(encodeEntryHeader(payload, nowMicros()), ...payload);
                bytes += ENTRY_HEADER_SIZE + payloadBytes;
            }
        } catch (error) {
            return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
        return new Promise<AppendResult[]>((resolve, reject) => {
            this.#queue.push({ parts, bytes, count: items.length, onDurable: options.onDurable, resolve, reject });
            this.#kick();
        });
    }

    /**
     * Starts a new active file before the next group (used by `purgeAll`, so every older file
     * becomes inactive); a no-op while the active file holds no entry.
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
            if (this.#unsynced && this.syncMode !== "off") await this.#file.handle.datasync();
            await this.#file.handle.close();
        });
        if (this.#state.kind === "closing") this.#state = { kind: "closed" };
    }

    #refusal(): Error | undefined {
        switch (this.#state.kind) {
            case "open":
                return undefined;
            case "failed":
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
        const interval = Math.max(10, Math.min(this.#options.maxFileAgeMs, this.syncMode === "async" ? this.#options.syncIntervalMs : 1000));
        const timer = setInterval(() => {
            if (this.#state.kind === "open" && (this.#rotationDue() || this.#syncDue())) this.#kick();
        }, interval);
        timer.unref();
        this.#timers.push(timer);
    }

    #rotationDue(): boolean {
        const file = this.#file;
        if (file.entries === 0) return false;
        const aged = Date.now() - file.openedAt >= this.#options.maxFileAgeMs && Date.now() >= this.#rotationRetryAtMs;
        return this.#rotationWaiters.length > 0 || aged;
    }

    #syncDue(): boolean {
        return this.syncMode === "async" && this.#unsynced && Date.now() - this.#lastSyncMs >= this.#options.syncIntervalMs;
    }

    async #timedSync(): Promise<void> {
        this.#unsynced = false;
        this.#lastSyncMs = Date.now();
        try {
            await this.#file.handle.datasync();
            this.#stats.syncs++;
        } catch (error) {
            // Entries were already acknowledged in async mode: stop taking more rather than
            // pretend later ones are safer.
            this.#state = { kind: "failed", error: new WalFailedError(new WalIOError("sync", error)) };
        }
    }

    /** Rotates, telling whoever asked for it; a failed rotation fails them and the queued appends. */
    async #rotateNow(): Promise<void> {
        const waiters = this.#rotationWaiters.splice(0);
        try {
            await this.#rotate();
        } catch (error) {
            this.#rotationRetryAtMs = Date.now() + ROTATION_RETRY_MS;
            for (const waiter of waiters) waiter.reject(error as Error);
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
                if (this.#state.kind === "failed") {
                    this.#rejectAll(this.#queue.splice(0), this.#state.error);
                    for (const waiter of this.#rotationWaiters.splice(0)) waiter.reject(this.#state.error);
                    break;
                }
                if (this.#syncDue()) await this.#timedSync();
                const next = this.#queue[0];
                const tooBig = next !== undefined && this.#file.entries > 0 && this.#file.size + next.bytes > this.#options.maxFileBytes;
                if (this.#rotationDue() || tooBig) {
                    await this.#rotateNow();
                    continue;
                }
                for (const waiter of this.#rotationWaiters.splice(0)) waiter.resolve();
                if (this.#queue.length === 0) break;
                await this.#writeGroup(this.#takeGroup());
            }
        } catch (error) {
            this.#rejectAll(this.#queue.splice(0), error);
        } finally {
            this.#draining = false;
        }
    }

    #takeGroup(): PendingUnit[] {
        const room = Math.min(this.#options.maxGroupBytes, Math.max(0, this.#options.maxFileBytes - this.#file.size));
        let bytes = this.#queue[0]!.bytes;
        let count = 1;
        while (count < this.#queue.length && bytes + this.#queue[count]!.bytes <= room) bytes += this.#queue[count++]!.bytes;
        return this.#queue.splice(0, count);
    }

    async #writeGroup(group: PendingUnit[]): Promise<void> {
        const file = this.#file;
        const buffers = group.flatMap((unit) => unit.parts);
        const bytes = group.reduce((sum, unit) => sum + unit.bytes, 0);
        const entries = group.reduce((sum, unit) => sum + unit.count, 0);
        try {
            await writeFully(file.handle, buffers, file.size);
            if (this.syncMode === "fdatasync") await file.handle.datasync();
            else if (this.syncMode === "fsync") await file.handle.sync();
        } catch (error) {
            this.#stats.failedGroups++;
            await this.#undoPartialWrite(file, error);
            this.#rejectAll(group, error);
            return;
        }
        if (this.syncMode === "fdatasync" || this.syncMode === "fsync") this.#stats.syncs++;
        else this.#unsynced = true;
        let sequence = file.firstSequence + file.entries;
        file.entries += entries;
        file.size += bytes;
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
    }

    #rejectAll(group: PendingUnit[], cause: unknown): void {
        const error = this.#state.kind === "failed" ? this.#state.error : new WalIOError("write", cause);
        for (const unit of group) unit.reject(error);
    }

    // Invariant kept: after a failed group, the file holds exactly its acknowledged entries, so
    // no entry whose append was rejected can be replayed later; if that cannot be ensured, the
    // writer stops taking appends.
    async #undoPartialWrite(file: ActiveFile, cause: unknown): Promise<void> {
        try {
            await file.handle.truncate(file.size);
            if (this.syncMode !== "off") await file.handle.sync();
        } catch (error) {
            this.#state = { kind: "failed", error: new WalFailedError(new AggregateError([cause, error], "write and truncate both failed")) };
        }
    }

    async #rotate(): Promise<void> {
        const old = this.#file;
        this.#file = await createFile(this.dir, old.firstSequence + old.entries, this.#options.fileSystem, this.syncMode, this.#stats);
        this.#stats.rotations++;
        try {
            if (this.#unsynced && this.syncMode !== "off") {
                await old.handle.datasync();
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
}

// Invariant kept: the returned file exists with a complete header and, in the durable modes,
// both it and its directory entry are on stable storage.
async function createFile(dir: string, firstSequence: number, fs: WalFileSystem, syncMode: SyncMode, stats: WalWriterStats): Promise<ActiveFile> {
    const name = walFileName(firstSequence);
    const path = join(dir, name);
    let handle: WalFileHandle | undefined;
    try {
        handle = await createReplacingEmpty(fs, path);
        await writeFully(handle, [encodeFileHeader()], 0);
        if (syncMode === "fdatasync" || syncMode === "fsync") {
            await handle.sync();
            await fs.syncDirectory(dir);
        }
    } catch (error) {
        await handle?.close().catch(() => undefined);
        throw new WalIOError(`creating ${name}`, error);
    }
    stats.filesCreated++;
    return { name, firstSequence, handle, openedAt: Date.now(), size: FILE_HEADER_SIZE, entries: 0 };
}

/**
 * A file of that name can only exist with no entry in it: the next sequence is past every
 * entry on disk. It is what a crash (or a failed rotation) left behind, so it is replaced.
 */
async function createReplacingEmpty(fs: WalFileSystem, path: string): Promise<WalFileHandle> {
    try {
        return await fs.create(path);
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        const { size } = await stat(path);
        if (size > FILE_HEADER_SIZE) throw error;
        await rm(path);
        return fs.create(path);
    }
}

/** Writes every byte of `buffers` at `position`, continuing after short writes. */
async function writeFully(handle: WalFileHandle, buffers: Buffer[], position: number): Promise<void> {
    let remaining = buffers;
    while (remaining.length > 0) {
        const { bytesWritten } = await handle.writev(remaining, position);
        if (bytesWritten <= 0) throw new Error("write made no progress");
        position += bytesWritten;
        remaining = skipBytes(remaining, bytesWritten);
    }
}

function skipBytes(buffers: Buffer[], count: number): Buffer[] {
    let index = 0;
    while (index < buffers.length && count >= buffers[index]!.length) count -= buffers[index++]!.length;
    if (index === buffers.length) return [];
    return [buffers[index]!.subarray(count), ...buffers.slice(index + 1)];
}

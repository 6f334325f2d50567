/**
 * The schema on disk: the registry's declarations and the database catalog (databases made with
 * CREATE DATABASE, and their retention durations). Changes are appended to `<data>/schema.log`,
 * one JSON line each, shortly after they happen and on `flush()` (which the WAL purge awaits):
 * a change costs its own line, not a rewrite of everything (a schema of 100,000 measurements
 * was rewritten whole, 7.7 MB, at every new declaration). When the log grows past its snapshot,
 * `<data>/schema.json` is rewritten atomically and the log emptied. A crash before a change is
 * durable loses nothing: the WAL entries that brought a declaration replay it, and CREATE
 * DATABASE is answered only once its line is durable.
 */
import { join } from "node:path";
import { readIfExists, replaceFileAtomically, writeFully } from "../src/fs/durable.js";
import type { FileHandle, FileSystem } from "../src/fs/file-system.js";
import { messageOf } from "../src/errors.js";
import type { Logger } from "../src/log.js";
import { type DeclarationKind, type SchemaLimits, type SchemaSnapshot, SchemaRegistry, isFieldType } from "./schema.js";

const SNAPSHOT = "schema.json";
const LOG = "schema.log";
/** The log is folded into the snapshot once it is this large and larger than the snapshot. */
const FOLD_AFTER_BYTES = 1024 * 1024;

/** A database of the catalog: made with CREATE DATABASE (a retention duration, if one was given) or written to. */
export interface DatabaseEntry {
    readonly name: string;
    /** `WITH DURATION`, in ms; undefined: none given (the configuration decides). */
    readonly durationMs?: number;
}

interface StoredSchema {
    readonly version: 1 | 2;
    /** Version 1: names only. */
    readonly databases: readonly (string | DatabaseEntry)[];
    readonly measurements: SchemaSnapshot;
}

/** A line of the log: a declaration, or a database made or changed. */
type Change = { readonly d: string; readonly m: string; readonly c: string; readonly k: DeclarationKind } | { readonly db: string; readonly duration_ms?: number };

function parseChange(line: string): Change | undefined {
    try {
        const value = JSON.parse(line) as Record<string, unknown>;
        if (typeof value.db === "string" && (value.duration_ms === undefined || typeof value.duration_ms === "number")) return value as Change;
        if (typeof value.d === "string" && typeof value.m === "string" && typeof value.c === "string" && (value.k === "tag" || isFieldType(value.k))) return value as Change;
    } catch {
        // A torn last line (a crash while appending): not a change.
    }
    return undefined;
}

export class SchemaStore {
    readonly #databases = new Map<string, DatabaseEntry>();
    #pending: string[] = [];
    #timer: NodeJS.Timeout | undefined;
    #saving: Promise<void> = Promise.resolve();
    #log: FileHandle | undefined;
    #logBytes: number;
    #snapshotBytes: number;

    private constructor(
        readonly fs: FileSystem,
        readonly dataDir: string,
        readonly registry: SchemaRegistry,
        databases: readonly DatabaseEntry[],
        readonly log: Logger,
        readonly delayMs: number,
        sizes: { log: number; snapshot: number },
    ) {
        for (const database of databases) this.#databases.set(database.name, database);
        this.#logBytes = sizes.log;
        this.#snapshotBytes = sizes.snapshot;
        registry.onDeclare = (database, measurement, column, kind) => {
            this.#queue({ d: database, m: measurement, c: column, k: kind });
        };
    }

    static async open(fs: FileSystem, dataDir: string, log: Logger, limits: SchemaLimits, delayMs = 200): Promise<SchemaStore> {
        const snapshotPath = join(dataDir, SNAPSHOT);
        let stored: StoredSchema = { version: 2, databases: [], measurements: [] };
        const snapshot = await readIfExists(fs, snapshotPath);
        try {
            if (snapshot !== undefined) stored = JSON.parse(snapshot.toString("utf8")) as StoredSchema;
        } catch (error) {
            throw new Error(`${snapshotPath} is unreadable: ${messageOf(error)}`, { cause: error });
        }
        const registry = SchemaRegistry.fromSnapshot(stored.measurements, limits);
        const databases = new Map(stored.databases.map((entry) => (typeof entry === "string" ? [entry, { name: entry }] : [entry.name, entry])));
        const logText = (await readIfExists(fs, join(dataDir, LOG)))?.toString("utf8") ?? "";
        let good = 0;
        for (const line of logText.split("\n").slice(0, -1)) {
            const change = parseChange(line);
            if (change === undefined) break;
            good += Buffer.byteLength(line) + 1;
            if ("db" in change) databases.set(change.db, change.duration_ms === undefined ? { name: change.db } : { name: change.db, durationMs: change.duration_ms });
            else if (change.k === "tag") registry.declareTag(change.d, change.m, change.c);
            else registry.declareField(change.d, change.m, change.c, change.k);
        }
        const store = new SchemaStore(fs, dataDir, registry, [...databases.values()], log, delayMs, { log: good, snapshot: snapshot?.length ?? 0 });
        if (good < Buffer.byteLength(logText)) {
            // A torn tail: cut it off so the next append starts on a clean line.
            const handle = await fs.open(join(dataDir, LOG), "update");
            try {
                await handle.truncate(good);
            } finally {
                await handle.close();
            }
        }
        return store;
    }

    /** The databases of the catalog and every database written to, by name. */
    databases(): DatabaseEntry[] {
        const all = new Map(this.#databases);
        for (const { database } of this.registry.snapshot()) if (!all.has(database)) all.set(database, { name: database });
        return [...all.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }

    /** The retention duration CREATE DATABASE gave the database, if it gave one. */
    durationOf(database: string): number | undefined {
        return this.#databases.get(database)?.durationMs;
    }

    /**
     * CREATE DATABASE: adds the database (or sets its duration) and resolves once that is
     * durable. Without a duration an existing database keeps the one it has (InfluxDB 1.x).
     */
    async createDatabase(name: string, durationMs?: number): Promise<void> {
        const existing = this.#databases.get(name);
        if (existing !== undefined && (durationMs === undefined || existing.durationMs === durationMs)) return;
        const entry: DatabaseEntry = durationMs === undefined ? { name } : { name, durationMs };
        this.#databases.set(name, entry);
        this.#queue(durationMs === undefined ? { db: name } : { db: name, duration_ms: durationMs });
        await this.flush();
    }

    #queue(change: Change): void {
        this.#pending.push(`${JSON.stringify(change)}\n`);
        this.#timer ??= setTimeout(() => {
            this.#timer = undefined;
            this.flush().catch((error: unknown) => {
                this.log.error(`saving schema changes failed; will retry on the next change`, { error: messageOf(error) });
            });
        }, this.delayMs);
    }

    /** Makes every change so far durable; resolves once it is. */
    flush(): Promise<void> {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#saving = this.#saving.catch(() => undefined).then(() => this.#save());
        return this.#saving;
    }

    // Invariant kept: when this resolves every change made before the call is on stable storage
    // (a line of the log, or the snapshot); a failed save keeps the changes queued.
    async #save(): Promise<void> {
        if (this.#pending.length === 0) return;
        const lines = this.#pending;
        this.#pending = [];
        try {
            if (this.#logBytes > FOLD_AFTER_BYTES && this.#logBytes > this.#snapshotBytes) await this.#fold();
            else await this.#append(Buffer.from(lines.join(""), "utf8"));
        } catch (error) {
            this.#pending = [...lines, ...this.#pending];
            throw error;
        }
    }

    async #append(bytes: Buffer): Promise<void> {
        const path = join(this.dataDir, LOG);
        if (this.#log === undefined) {
            try {
                this.#log = await this.fs.open(path, "update");
            } catch {
                this.#log = await this.fs.open(path, "create");
                await this.fs.syncDirectory(this.dataDir);
            }
        }
        try {
            await writeFully(this.#log, [bytes], this.#logBytes);
            await this.#log.datasync();
        } catch (error) {
            // What was written may or may not be there: the next append starts from the known end.
            await this.#log.truncate(this.#logBytes).catch(() => undefined);
            throw error;
        }
        this.#logBytes += bytes.length;
    }

    /** Rewrites the snapshot with everything (temp, fsync, rename), then empties the log. */
    async #fold(): Promise<void> {
        const stored: StoredSchema = { version: 2, databases: [...this.#databases.values()], measurements: this.registry.snapshot() };
        const text = JSON.stringify(stored);
        await replaceFileAtomically(this.fs, join(this.dataDir, SNAPSHOT), text);
        this.#snapshotBytes = Buffer.byteLength(text);
        // A crash before this truncate replays the log over the snapshot: every change in it is already there.
        if (this.#log !== undefined) {
            await this.#log.truncate(0);
            await this.#log.datasync();
        } else await this.fs.remove(join(this.dataDir, LOG));
        this.#logBytes = 0;
    }

    async close(): Promise<void> {
        await this.flush().catch(() => undefined);
        await this.#log?.close();
        this.#log = undefined;
    }
}

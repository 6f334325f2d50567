/**
 * The schema registry on disk (`<data>/schema.json`): loaded at start, saved atomically (temp,
 * fsync, rename, directory fsync) shortly after each new declaration and on `flush()`. A crash
 * before a save loses nothing: the WAL entries that brought the declaration replay it.
 */
import { join } from "node:path";
import { readIfExists, replaceFileAtomically } from "../src/fs/durable.js";
import type { FileSystem } from "../src/fs/file-system.js";
import type { Logger } from "../src/log.js";
import { type SchemaLimits, type SchemaSnapshot, SchemaRegistry } from "./schema.js";

const FILE = "schema.json";

interface StoredSchema {
    readonly version: 1;
    readonly databases: readonly string[];
    readonly measurements: SchemaSnapshot;
}

export class SchemaStore {
    #dirty = false;
    #timer: NodeJS.Timeout | undefined;
    #saving: Promise<void> = Promise.resolve();

    private constructor(
        readonly fs: FileSystem,
        readonly dataDir: string,
        readonly registry: SchemaRegistry,
        readonly databases: Set<string>,
        readonly log: Logger,
        readonly delayMs: number,
    ) {
        registry.onDeclare = () => {
            this.markDirty();
        };
    }

    static async open(fs: FileSystem, dataDir: string, log: Logger, limits: SchemaLimits, delayMs = 200): Promise<SchemaStore> {
        let stored: StoredSchema = { version: 1, databases: [], measurements: [] };
        try {
            const bytes = await readIfExists(fs, join(dataDir, FILE));
            if (bytes !== undefined) stored = JSON.parse(bytes.toString("utf8")) as StoredSchema;
        } catch (error) {
            throw new Error(`${join(dataDir, FILE)} is unreadable: ${(error as Error).message}`, { cause: error });
        }
        return new SchemaStore(fs, dataDir, SchemaRegistry.fromSnapshot(stored.measurements, limits), new Set(stored.databases), log, delayMs);
    }

    /** Schedules a save (the set of created databases changed, or a declaration was made). */
    markDirty(): void {
        this.#dirty = true;
        this.#timer ??= setTimeout(() => {
            this.#timer = undefined;
            this.flush().catch((error: unknown) => {
                this.log.error(`saving ${FILE} failed; will retry on the next change`, { error: (error as Error).message });
            });
        }, this.delayMs);
    }

    /** Saves now if anything changed; resolves once it is durable. */
    flush(): Promise<void> {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#saving = this.#saving.catch(() => undefined).then(() => this.#save());
        return this.#saving;
    }

    async #save(): Promise<void> {
        if (!this.#dirty) return;
        this.#dirty = false;
        const stored: StoredSchema = { version: 1, databases: [...this.databases], measurements: this.registry.snapshot() };
        try {
            await replaceFileAtomically(this.fs, join(this.dataDir, FILE), JSON.stringify(stored));
        } catch (error) {
            this.#dirty = true;
            throw error;
        }
    }
}

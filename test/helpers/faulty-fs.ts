import { type WalFileHandle, type WalFileSystem, nodeWalFileSystem } from "../../src/wal/fs.js";

export type Operation = "create" | "writev" | "datasync" | "sync" | "truncate";

/**
 * The real file system, observed and with faults on demand: `failNext("writev", "ENOSPC")` makes
 * the next write fail after writing `partialBytes` of it (a short write, as a full disk does).
 */
export class FaultyFileSystem implements WalFileSystem {
    readonly calls: Operation[] = [];
    bytesWritten = 0;
    bytesSynced = 0;
    syncDelayMs = 0;
    partialBytes = 0;
    readonly #faults = new Map<Operation, string[]>();

    failNext(operation: Operation, code: string, times = 1): void {
        this.#faults.set(operation, [...(this.#faults.get(operation) ?? []), ...Array<string>(times).fill(code)]);
    }

    count(operation: Operation): number {
        return this.calls.filter((call) => call === operation).length;
    }

    #fault(operation: Operation): NodeJS.ErrnoException | undefined {
        this.calls.push(operation);
        const code = this.#faults.get(operation)?.shift();
        if (code === undefined) return undefined;
        return Object.assign(new Error(`${code}: injected ${operation} failure`), { code });
    }

    async create(path: string): Promise<WalFileHandle> {
        const fault = this.#fault("create");
        if (fault) throw fault;
        const handle = await nodeWalFileSystem.create(path);
        return {
            writev: async (buffers, position) => {
                const fault = this.#fault("writev");
                if (fault) {
                    if (this.partialBytes > 0) {
                        const bytes = Buffer.concat(buffers).subarray(0, this.partialBytes);
                        await handle.writev([bytes], position);
                    }
                    throw fault;
                }
                const result = await handle.writev(buffers, position);
                this.bytesWritten += result.bytesWritten;
                return result;
            },
            datasync: () => this.#sync(handle, "datasync"),
            sync: () => this.#sync(handle, "sync"),
            truncate: async (length) => {
                const fault = this.#fault("truncate");
                if (fault) throw fault;
                await handle.truncate(length);
            },
            close: () => handle.close(),
        };
    }

    async #sync(handle: WalFileHandle, operation: "datasync" | "sync"): Promise<void> {
        const fault = this.#fault(operation);
        if (fault) throw fault;
        const covered = this.bytesWritten;
        if (this.syncDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.syncDelayMs));
        await handle[operation]();
        this.bytesSynced = Math.max(this.bytesSynced, covered);
    }

    syncDirectory(path: string): Promise<void> {
        return nodeWalFileSystem.syncDirectory(path);
    }
}

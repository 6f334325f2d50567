import { type EntryInfo, type FileHandle, type FileInfo, type FileSystem, type OpenMode, nodeFileSystem } from "../../src/fs/file-system.js";

/** Every call a test can watch or make fail. `create` is an open in mode "create"; `open` any other open. */
export type Operation =
    | "create"
    | "open"
    | "writev"
    | "read"
    | "datasync"
    | "sync"
    | "truncate"
    | "readFile"
    | "readdir"
    | "mkdir"
    | "rename"
    | "link"
    | "symlink"
    | "unlink"
    | "remove"
    | "exchange"
    | "syncDirectory";

interface Fault {
    readonly code: string;
    /** Only calls on a path this matches (any path when absent). */
    readonly path?: RegExp;
}

/**
 * The real file system, observed and with faults on demand: `failNext("writev", "ENOSPC")` makes
 * the next write fail after writing `partialBytes` of it (a short write, as a full disk does);
 * `failAlways("create", "ENOSPC", /wal/)` keeps failing until `heal()`.
 */
export class FaultyFileSystem implements FileSystem {
    readonly calls: Operation[] = [];
    /** Paths of the calls, in the same order as `calls` (handles report their file's path). */
    readonly paths: string[] = [];
    bytesWritten = 0;
    bytesSynced = 0;
    syncDelayMs = 0;
    partialBytes = 0;
    readonly #once = new Map<Operation, Fault[]>();
    readonly #always = new Map<Operation, Fault[]>();

    constructor(readonly base: FileSystem = nodeFileSystem) {}

    failNext(operation: Operation, code: string, times = 1, path?: RegExp): void {
        const faults = Array.from({ length: times }, () => ({ code, ...(path === undefined ? {} : { path }) }));
        this.#once.set(operation, [...(this.#once.get(operation) ?? []), ...faults]);
    }

    /** Fails every matching call until `heal()` (a full disk, a dead device). */
    failAlways(operation: Operation, code: string, path?: RegExp): void {
        this.#always.set(operation, [...(this.#always.get(operation) ?? []), { code, ...(path === undefined ? {} : { path }) }]);
    }

    heal(): void {
        this.#once.clear();
        this.#always.clear();
    }

    count(operation: Operation, path?: RegExp): number {
        return this.calls.filter((call, i) => call === operation && (path === undefined || path.test(this.paths[i]!))).length;
    }

    #fault(operation: Operation, path: string): NodeJS.ErrnoException | undefined {
        this.calls.push(operation);
        this.paths.push(path);
        const matches = (fault: Fault) => fault.path === undefined || fault.path.test(path);
        const once = this.#once.get(operation) ?? [];
        const index = once.findIndex(matches);
        const fault = index >= 0 ? once.splice(index, 1)[0] : this.#always.get(operation)?.find(matches);
        if (fault === undefined) return undefined;
        return Object.assign(new Error(`${fault.code}: injected ${operation} failure on ${path}`), { code: fault.code });
    }

    #check(operation: Operation, path: string): void {
        const fault = this.#fault(operation, path);
        if (fault) throw fault;
    }

    async open(path: string, mode: OpenMode): Promise<FileHandle> {
        this.#check(mode === "create" ? "create" : "open", path);
        const handle = await this.base.open(path, mode);
        return {
            fd: handle.fd,
            writev: async (buffers, position) => {
                const fault = this.#fault("writev", path);
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
            read: async (buffer, offset, length, position) => {
                this.#check("read", path);
                return handle.read(buffer, offset, length, position);
            },
            datasync: () => this.#sync(handle, "datasync", path),
            sync: () => this.#sync(handle, "sync", path),
            truncate: async (length) => {
                this.#check("truncate", path);
                await handle.truncate(length);
            },
            size: () => handle.size(),
            close: () => handle.close(),
        };
    }

    async #sync(handle: FileHandle, operation: "datasync" | "sync", path: string): Promise<void> {
        this.#check(operation, path);
        const covered = this.bytesWritten;
        if (this.syncDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.syncDelayMs));
        await handle[operation]();
        this.bytesSynced = Math.max(this.bytesSynced, covered);
    }

    async readFile(path: string): Promise<Buffer> {
        this.#check("readFile", path);
        return this.base.readFile(path);
    }

    async readdir(path: string): Promise<EntryInfo[]> {
        this.#check("readdir", path);
        return this.base.readdir(path);
    }

    lstat(path: string): Promise<FileInfo> {
        return this.base.lstat(path);
    }

    async mkdir(path: string): Promise<string | undefined> {
        // Like mkdir -p: a directory that exists needs no space, so no fault applies to it.
        if (
            await this.base.lstat(path).then(
                () => true,
                () => false,
            )
        )
            return undefined;
        this.#check("mkdir", path);
        return this.base.mkdir(path);
    }

    async rename(from: string, to: string): Promise<void> {
        this.#check("rename", to);
        return this.base.rename(from, to);
    }

    async link(existing: string, path: string): Promise<void> {
        this.#check("link", path);
        return this.base.link(existing, path);
    }

    async symlink(target: string, path: string): Promise<void> {
        this.#check("symlink", path);
        return this.base.symlink(target, path);
    }

    readlink(path: string): Promise<string> {
        return this.base.readlink(path);
    }

    async unlink(path: string): Promise<void> {
        this.#check("unlink", path);
        return this.base.unlink(path);
    }

    async remove(path: string): Promise<void> {
        this.#check("remove", path);
        return this.base.remove(path);
    }

    async exchange(a: string, b: string): Promise<void> {
        this.#check("exchange", b);
        return this.base.exchange(a, b);
    }

    async syncDirectory(path: string): Promise<void> {
        this.#check("syncDirectory", path);
        return this.base.syncDirectory(path);
    }
}

/** The lake of one data directory on local disk: its commit protocol over the local layout. */
import type { Clock } from "../../src/clock.js";
import type { FileSystem } from "../../src/fs/file-system.js";
import { parquetRootOf, stageDirOf, tempDirOf } from "../layout.js";
import type { PartitionRef } from "../manifest/records.js";
import type { Lake, LakeFile, LocalCopies } from "./lake.js";
import { LocalLayout } from "./local-layout.js";

export function localLayout(fs: FileSystem, dataDir: string, clock: Clock): LocalLayout {
    return new LocalLayout(fs, parquetRootOf(dataDir), tempDirOf(dataDir), stageDirOf(dataDir), clock);
}

/** One process owns a local lake (the data-directory lock): nothing to lease; the sweep deletes old files retired from the lake. */
export class LocalLake implements Lake {
    readonly location: string;

    constructor(readonly applier: LocalLayout) {
        this.location = applier.root;
    }

    partitions(filter?: { readonly database?: string; readonly measurement?: string }): AsyncIterable<PartitionRef> {
        return this.applier.partitions(filter);
    }

    async files(partition: PartitionRef): Promise<LakeFile[]> {
        return (await this.applier.files(partition)).map((file) => ({ name: file.name, location: file.path, bytes: file.bytes, writtenMs: file.mtimeMs }));
    }

    describe(partition: PartitionRef): string {
        return this.applier.partitionDir(partition);
    }

    async localCopies(files: readonly LakeFile[]): Promise<LocalCopies> {
        return { paths: files.map((file) => file.location), release: async () => undefined };
    }

    exclusive<T>(_partition: PartitionRef, step: () => Promise<T>): Promise<T | undefined> {
        return step();
    }

    sweep(): Promise<number> {
        return this.applier.removeRetired();
    }

    async close(): Promise<void> {
        return undefined;
    }
}

/** The lake of one data directory on local disk: its commit protocol over the local layout. */
import type { FileSystem } from "../../src/fs/file-system.js";
import type { Logger } from "../../src/log.js";
import { type CommitRecovery, CommitProtocol } from "../commit.js";
import { manifestPathOf, parquetRootOf, stageDirOf, tempDirOf } from "../layout.js";
import { LocalLayout } from "./local-layout.js";

export function localLayout(fs: FileSystem, dataDir: string): LocalLayout {
    return new LocalLayout(fs, parquetRootOf(dataDir), tempDirOf(dataDir), stageDirOf(dataDir));
}

/** `walFloor`: the lowest sequence a WAL file of this data directory still holds. */
export function openLocalLake(fs: FileSystem, dataDir: string, log: Logger, walFloor: () => Promise<number>): Promise<{ commit: CommitProtocol; recovery: CommitRecovery }> {
    return CommitProtocol.open({ fileSystem: fs, log, path: manifestPathOf(dataDir), tempDir: tempDirOf(dataDir), applier: localLayout(fs, dataDir), walFloor });
}

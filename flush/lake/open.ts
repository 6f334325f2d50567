/** Opens the lake a configuration names, with its commit protocol: local disk, or a bucket shared by several ingesters. */
import { join } from "node:path";
import type { Clock } from "../../src/clock.js";
import type { FileSystem } from "../../src/fs/file-system.js";
import type { Logger } from "../../src/log.js";
import { type CommitRecovery, CommitProtocol } from "../commit.js";
import { flushDirOf, manifestPathOf, tempDirOf } from "../layout.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { Lake } from "./lake.js";
import { LocalLake, localLayout } from "./local.js";
import { loadNodeIdentity } from "./node-identity.js";
import { S3Lake } from "./s3-lake.js";

export type LakeSettings =
    | { readonly backend: "local" }
    | {
          readonly backend: "s3";
          readonly store: ObjectStore;
          /** Configured `node_id` ("": the one the data directory has, else the host name). */
          readonly nodeId: string;
          readonly leaseTtlMs: number;
      };

export interface OpenedLake {
    readonly commit: CommitProtocol;
    readonly recovery: CommitRecovery;
    readonly lake: Lake;
}

/** `walFloor`: the lowest sequence a WAL file of this data directory still holds. */
export async function openLake(
    settings: LakeSettings,
    deps: { readonly fs: FileSystem; readonly dataDir: string; readonly log: Logger; readonly clock: Clock; readonly walFloor: () => Promise<number> },
): Promise<OpenedLake> {
    const { fs, dataDir, log, clock, walFloor } = deps;
    const lake: Lake =
        settings.backend === "local"
            ? new LocalLake(localLayout(fs, dataDir, clock))
            : await S3Lake.open({
                  store: settings.store,
                  fs,
                  identity: await loadNodeIdentity(fs, dataDir, settings.nodeId),
                  tempDir: tempDirOf(dataDir),
                  downloadDir: join(flushDirOf(dataDir), "download"),
                  clock,
                  log,
                  leaseTtlMs: settings.leaseTtlMs,
              });
    try {
        const opened = await CommitProtocol.open({ fileSystem: fs, log, path: manifestPathOf(dataDir), tempDir: tempDirOf(dataDir), applier: lake.applier, walFloor, clock });
        return { ...opened, lake };
    } catch (error) {
        await lake.close();
        throw error;
    }
}

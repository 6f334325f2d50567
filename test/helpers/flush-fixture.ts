/**
 * The flusher's surroundings for the tests of one describe block: before each test a fresh data
 * directory, a WAL writer in it (sync off) and its local lake's commit protocol; after it, all
 * closed and removed.
 */
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import type { CommitProtocol } from "../../flush/commit.js";
import { type BatchEncoder, Flusher, type FlusherOptions } from "../../flush/flusher.js";
import { openLake } from "../../flush/lake/open.js";
import type { Buffers } from "../../ingest/buffer/buffers.js";
import { systemClock } from "../../src/clock.js";
import { flusherOptions } from "../../src/config/components.js";
import { loadConfig } from "../../src/config/load.js";
import { nodeFileSystem } from "../../src/fs/file-system.js";
import { type Logger, silentLogger } from "../../src/log.js";
import { readBack } from "../../src/wal/index.js";
import { WalWriter } from "../../src/wal/writer.js";
import { tempDir } from "./batches.js";
import { walOptions } from "./wal.js";

export interface FlushFixture {
    readonly data: string;
    readonly writer: WalWriter;
    readonly commit: CommitProtocol;
    /** A flusher of `buffers` over this test's WAL and lake, with the configuration's tuning and these options. */
    flusherOf(buffers: Buffers, encoder: BatchEncoder, options?: Partial<FlusherOptions> & { onCommitted?: () => Promise<void>; log?: Logger }): Flusher;
}

export function useFlushFixture(): FlushFixture {
    let opened: { data: string; cleanup: () => Promise<void>; writer: WalWriter; commit: CommitProtocol } | undefined;
    const current = () => {
        if (opened === undefined) throw new Error("the flush fixture is used outside a test");
        return opened;
    };
    beforeEach(async () => {
        const { path: data, cleanup } = await tempDir();
        const writer = await WalWriter.open(walOptions({ dir: join(data, "wal"), syncMode: "off" }));
        const { commit } = await openLake({ backend: "local" }, { fs: nodeFileSystem, dataDir: data, log: silentLogger, clock: systemClock, walFloor: async () => 0 });
        opened = { data, cleanup, writer, commit };
    });
    afterEach(async () => {
        const { writer, commit, cleanup } = current();
        opened = undefined;
        await writer.close();
        await commit.close();
        await cleanup();
    });
    return {
        get data() {
            return current().data;
        },
        get writer() {
            return current().writer;
        },
        get commit() {
            return current().commit;
        },
        flusherOf(buffers, encoder, options = {}) {
            const { onCommitted, log, ...overrides } = options;
            const { writer, commit } = current();
            return new Flusher(
                {
                    source: buffers,
                    encoder,
                    commit,
                    readBack: (drained) => readBack(writer.dir, nodeFileSystem, drained),
                    onCommitted: onCommitted ?? (async () => undefined),
                    log: log ?? silentLogger,
                    clock: systemClock,
                },
                { ...flusherOptions(loadConfig({ env: {} })), ...overrides },
            );
        },
    };
}

/**
 * The server wiring: lock the data directory, open the WAL, listen. `close()` undoes it in
 * reverse order and is what SIGTERM/SIGINT run.
 */
import { createApp } from "../ingest/app.js";
import type { ListeningServer } from "../ingest/http/exchange.js";
import { listenNode } from "../ingest/http/node-adapter.js";
import type { Config } from "./config/schema.js";
import { lockDataDir, walDirOf } from "./data-dir.js";
import type { Logger } from "./log.js";
import { WalWriter } from "./wal/index.js";

export interface RunningServer {
    readonly url: string;
    close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
    const lock = await lockDataDir(config.data_dir);
    const cleanups: (() => Promise<void>)[] = [() => lock.release()];
    const undo = async () => {
        for (const cleanup of cleanups.reverse()) await cleanup();
    };
    try {
        const writer = await WalWriter.open({
            dir: walDirOf(config.data_dir),
            syncMode: config.wal.sync_mode,
            syncIntervalMs: config.wal.sync_interval_ms,
            maxFileBytes: config.wal.max_file_bytes,
            maxFileAgeMs: config.wal.max_file_age_ms,
        });
        cleanups.push(() => writer.close());
        const server: ListeningServer = await listenNode(createApp({ writer }), {
            host: config.http.host,
            port: config.http.port,
            maxBodyBytes: config.http.max_body_bytes,
        });
        cleanups.push(() => server.close());
        const host = server.host.includes(":") ? `[${server.host}]` : server.host;
        const url = `http://${host}:${server.port}`;
        log.info(`listening on ${url}`);
        return { url, close: undo };
    } catch (error) {
        await undo();
        throw error;
    }
}

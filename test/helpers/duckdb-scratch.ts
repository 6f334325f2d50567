/**
 * One DuckDB connection and one scratch directory for the tests of a file that encode Parquet
 * bytes and read them back: opened before its tests, closed and removed after them.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll } from "vitest";
import { tempDir } from "./batches.js";

export interface DuckDBScratch {
    /** The connection (only inside tests: it opens in `beforeAll`). */
    readonly connection: DuckDBConnection;
    /** A new file name in the scratch directory, starting with `name`. */
    pathFor(name: string): string;
    /** Writes `bytes` to a new file of the scratch directory; its path. */
    save(bytes: Uint8Array): Promise<string>;
}

/** Call at the top level of a test file: registers the hooks that open and close the scratch. */
export function duckdbScratch(prefix: string): DuckDBScratch {
    let instance: DuckDBInstance | undefined;
    let connection: DuckDBConnection | undefined;
    let dir: { path: string; cleanup: () => Promise<void> } | undefined;
    let counter = 0;
    beforeAll(async () => {
        instance = await DuckDBInstance.create(":memory:");
        connection = await instance.connect();
        dir = await tempDir(prefix);
    });
    afterAll(async () => {
        connection?.closeSync();
        instance?.closeSync();
        await dir?.cleanup();
    });
    const pathFor = (name: string): string => {
        if (dir === undefined) throw new Error("the DuckDB scratch opens in beforeAll: use it inside tests");
        return join(dir.path, `${name}-${counter++}.parquet`);
    };
    return {
        get connection(): DuckDBConnection {
            if (connection === undefined) throw new Error("the DuckDB scratch opens in beforeAll: use it inside tests");
            return connection;
        },
        pathFor,
        async save(bytes: Uint8Array): Promise<string> {
            const path = pathFor("f");
            await writeFile(path, bytes);
            return path;
        },
    };
}

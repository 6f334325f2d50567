/** The Parquet files under a lake directory: how many, how big, and a snapshot of them that later changes cannot touch. */
import { link, mkdir, readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface LakeSize {
    readonly files: number;
    readonly bytes: number;
    /** Partition directories (`…/date=…/hour=…`) holding at least one file. */
    readonly partitions: number;
}

async function parquetPaths(root: string): Promise<string[]> {
    const names = await readdir(root, { recursive: true }).catch(() => [] as string[]);
    return names.filter((name) => name.endsWith(".parquet")).sort();
}

export async function lakeSize(root: string): Promise<LakeSize> {
    const paths = await parquetPaths(root);
    let bytes = 0;
    for (const path of paths) bytes += (await stat(join(root, path))).size;
    return { files: paths.length, bytes, partitions: new Set(paths.map((path) => dirname(path))).size };
}

/**
 * Hard links to every Parquet file under `root`, at the same relative paths under `into`: the
 * lake as it is now, kept readable after compaction deletes its files (a file is never changed
 * once written, so a link is a copy).
 */
export async function linkSnapshot(root: string, into: string): Promise<number> {
    const paths = await parquetPaths(root);
    for (const path of paths) {
        await mkdir(join(into, dirname(path)), { recursive: true });
        await link(join(root, path), join(into, path));
    }
    return paths.length;
}

import { mkdir, mkdtemp, readdir, rm, rmdir } from "node:fs/promises";
import { join, resolve } from "node:path";

/**
 * A fresh directory for one benchmark run: under `<parent>/` (default `<cwd>/bench-tmp/`, on
 * the same disk as the working directory). `remove()` deletes it, and `bench-tmp` too when it
 * created that and it is empty; a `--dir` parent itself is never deleted.
 */
export async function scratchDirectory(parent: string | undefined, prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
    const base = resolve(parent ?? join(process.cwd(), "bench-tmp"));
    await mkdir(base, { recursive: true });
    const path = await mkdtemp(join(base, `${prefix}-`));
    return {
        path,
        async remove() {
            await rm(path, { recursive: true, force: true });
            if (parent === undefined) {
                const left = await readdir(base).catch(() => ["?"]);
                if (left.length === 0) await rmdir(base).catch(() => undefined);
            }
        },
    };
}

/**
 * A copy of the built server for a long benchmark run, and what it was built from (the commit,
 * uncommitted changes, a hash of the build), so a report says which code it measured.
 */
import { createHash } from "node:crypto";
import { cp, readFile, readdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCommand } from "../../test/helpers/processes.js";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));

/** The commit, and which files under src/, ingest/ and flush/ differ from it. */
export async function gitDescription(): Promise<string> {
    const head = await runCommand("git", ["-C", REPO, "rev-parse", "--short", "HEAD"]).catch(() => undefined);
    if (head === undefined || head.code !== 0) return "commit unknown";
    const status = await runCommand("git", ["-C", REPO, "status", "--porcelain", "--", "src", "ingest", "flush"]).catch(() => undefined);
    const dirty = status?.stdout.split("\n").filter((line) => line.trim() !== "") ?? [];
    return `commit ${head.stdout.trim()}${dirty.length > 0 ? ` with uncommitted changes in ${dirty.map((l) => l.slice(3)).join(", ")}` : " (src/, ingest/, flush/ clean)"}`;
}

/** A short hash of the built server code under `root` (its src/, ingest/ and flush/ .js files). */
async function buildFingerprint(root: string): Promise<string> {
    const hash = createHash("sha256");
    for (const folder of ["src", "ingest", "flush"]) {
        const names = (await readdir(join(root, folder), { recursive: true }).catch(() => [] as string[])).filter((name) => name.endsWith(".js")).sort();
        for (const name of names) hash.update(name).update(await readFile(join(root, folder, name)));
    }
    return hash.digest("hex").slice(0, 12);
}

export interface BuildSnapshot {
    /** The snapshot's CLI entry point. */
    readonly cli: string;
    /** The commit and working-tree state when the snapshot was taken, and the build's hash. */
    readonly description: string;
}

/**
 * Copies the built server (dist/src, dist/ingest, dist/flush) under `scratch`, so that a rebuild
 * of the checkout during a long run (another `npm run build`, `npm test`) cannot change the code
 * under test halfway: every server of the run starts from this copy. It gets the checkout's
 * package.json (`"type": "module"`, the version) and a link to its node_modules.
 */
export async function snapshotBuild(scratch: string): Promise<BuildSnapshot> {
    const description = await gitDescription();
    const root = join(scratch, "sluice-build");
    for (const folder of ["src", "ingest", "flush"]) await cp(join(REPO, "dist", folder), join(root, "dist", folder), { recursive: true });
    await cp(join(REPO, "package.json"), join(root, "package.json"));
    await symlink(join(REPO, "node_modules"), join(root, "node_modules"), "dir");
    const copied = await buildFingerprint(join(root, "dist"));
    const live = await buildFingerprint(join(REPO, "dist"));
    return {
        cli: join(root, "dist", "src", "cli", "main.js"),
        description: `${description}; build sha256 ${copied}${copied === live ? "" : " (dist/ changed while it was copied: rerun)"}, copied before the first run`,
    };
}

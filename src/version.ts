import { existsSync, readFileSync } from "node:fs";

/** Sluice's package.json: one level above src/ when run from sources, two above dist/src/. */
function packageJson(): URL {
    const candidates = [new URL("../package.json", import.meta.url), new URL("../../package.json", import.meta.url)];
    const found = candidates.find((url) => existsSync(url));
    if (found === undefined) throw new Error("package.json not found next to src/ or dist/");
    return found;
}

/** The package version, read once. */
export const SLUICE_VERSION: string = (JSON.parse(readFileSync(packageJson(), "utf8")) as { version: string }).version;

/**
 * `npm run e2e -- NAME [ARGS]`: the opt-in end-to-end checks that need root, Debian packages or
 * minutes (never part of `npm test`). Each lives in `test/e2e/<name>.e2e.ts` and exports `run`,
 * which installs what it needs, says so, and resolves with the process exit code.
 */
import { readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export interface EndToEnd {
    /** One line: what it checks and what it installs. */
    readonly about: string;
    run(args: readonly string[]): Promise<number>;
}

const SUFFIX = ".e2e.js";

async function available(): Promise<string[]> {
    const here = fileURLToPath(new URL(".", import.meta.url));
    return (await readdir(here)).filter((name) => name.endsWith(SUFFIX)).map((name) => name.slice(0, -SUFFIX.length));
}

async function main(argv: readonly string[]): Promise<number> {
    const [name, ...args] = argv;
    const names = await available();
    if (name === undefined || !names.includes(name)) {
        process.stderr.write(`usage: npm run e2e -- NAME [ARGS]\n`);
        for (const known of names) {
            const { check } = (await import(`./${known}${SUFFIX}`)) as { check: EndToEnd };
            process.stderr.write(`  ${known.padEnd(12)} ${check.about}\n`);
        }
        return 2;
    }
    const { check } = (await import(`./${name}${SUFFIX}`)) as { check: EndToEnd };
    return check.run(args);
}

process.exitCode = await main(process.argv.slice(2));

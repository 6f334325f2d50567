/**
 * What a benchmark is to `bench/run.ts`: its extra options, their help, and `run`; what the
 * runner hands it (the common options parsed); and where progress goes.
 */
import type { ParseArgsConfig } from "node:util";

export type BenchOptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** What `bench/run.ts` parsed for a benchmark. */
export interface BenchOptions {
    /** `--seconds N`: how long each measured cell runs (the benchmark's default when absent). */
    readonly seconds: number | undefined;
    /** `--json`: one JSON object on stdout instead of the table. */
    readonly json: boolean;
    /** `--dir PATH`: the parent of the scratch directory (default `<cwd>/bench-tmp`). */
    readonly dir: string | undefined;
    /** The benchmark's own options, as `node:util` parseArgs returned them. */
    readonly values: Readonly<Record<string, string | boolean | undefined>>;
}

export interface Benchmark {
    /** Extra options (beyond --seconds, --json, --dir) and their one-line help. */
    readonly options?: BenchOptionSpec;
    readonly optionHelp?: readonly string[];
    /** Runs the benchmark; resolves to the process exit code. */
    run(options: BenchOptions): Promise<number>;
}

/** Progress and warnings go to stderr, so `--json` keeps stdout to the one object. */
export function progress(message: string): void {
    process.stderr.write(`${message}\n`);
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}

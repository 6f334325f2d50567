/**
 * The load generator as a command: `node dist/bench/load.js URL [--seconds S] [--warmup S]
 * [--connections C] [--batch N] [--gzip] [--pid PID] [--seed N]`, one JSON object on stdout
 * (`LoadResult`, see bench/lib/http-load.ts; the lines it sends: bench/lib/line-source.ts).
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { runLoad } from "./lib/http-load.js";
import { jsonLine } from "./lib/output.js";

async function cli(argv: readonly string[]): Promise<number> {
    const { values, positionals } = parseArgs({
        args: [...argv],
        allowPositionals: true,
        options: {
            seconds: { type: "string", default: "10" },
            warmup: { type: "string", default: "0" },
            connections: { type: "string", default: "16" },
            batch: { type: "string", default: "5000" },
            gzip: { type: "boolean", default: false },
            pid: { type: "string" },
            seed: { type: "string" },
        },
    });
    const target = positionals[0];
    if (target === undefined) {
        process.stderr.write("usage: node dist/bench/load.js URL [--seconds S] [--warmup S] [--connections C] [--batch N] [--gzip] [--pid PID] [--seed N]\n");
        return 2;
    }
    const result = await runLoad({
        url: target,
        seconds: Number(values.seconds),
        warmupSeconds: Number(values.warmup),
        connections: Number(values.connections),
        batchLines: Number(values.batch),
        gzip: values.gzip,
        ...(values.pid === undefined ? {} : { serverPid: Number(values.pid) }),
        ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
    });
    process.stdout.write(jsonLine(result, "omit"));
    return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
    cli(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (error: unknown) => {
            process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
            process.exit(1);
        },
    );
}

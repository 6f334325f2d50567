/**
 * `npm run e2e -- powercut`: after a power cut at any instant, do `sluice recover` and `sluice
 * serve` start with no hand on the data directory, and is every acknowledged request there
 * exactly once?
 *
 * A user-space dm-log-writes (powercut/blocklog.py: a FUSE file under a loop device under ext4)
 * records every block write and flush barrier while `sluice serve` takes writes, rotates its WAL,
 * flushes, purges and is killed -9 and restarted. Then, for each of --cuts barriers, the disk is
 * rebuilt as a power cut there would leave it (sometimes with a random part of the unflushed
 * writes that followed), mounted, and checked (powercut/check-cut.ts). Needs root, /dev/fuse and
 * loop devices; installs python3-fusepy (and e2fsprogs/util-linux/coreutils if missing).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { seededRandom } from "../helpers/random.js";
import { seedFromEnv } from "../helpers/load.js";
import type { EndToEnd } from "./run.js";
import { type CutResult, checkCut, problemsAfterLockRemoved } from "./powercut/check-cut.js";
import { CutImages } from "./powercut/cut-images.js";
import { type PlannedCut, cutAt, planCuts } from "./powercut/cut-plan.js";
import { SYSTEM_PYTHON } from "./powercut/logged-disk.js";
import { type RecordOptions, type Recording, loadRecording, record } from "./powercut/record.js";
import { failureClasses, hiddenClasses, printClasses, tableHeader, tableRow } from "./powercut/report.js";
import { Teardown, ensureDebianPackages, requireRoot, run, say } from "./powercut/system.js";

const USAGE = `npm run e2e -- powercut [--cuts N] [--seconds S] [--lives L] [--seed N] [--disk-mib M] [--keep]
npm run e2e -- powercut --replay DIR [--seed N [--cuts N]] [--at BARRIER:CUTSEED,...]
  --cuts N       cut points to check (default 48)
  --seconds S    seconds of write load over the recorded run (default 54: each life is long enough
                 for the manifest's 1,000-commit rewrite under load)
  --lives L      server processes in the run, each killed -9 (default 3: two restarts are recorded)
  --seed N       the PRNG seed (default: SLUICE_CRASH_SEED or a fresh one; printed). The same seed
                 draws the same load, and on the same recording the same cuts and variants
  --disk-mib M   size of the ext4 disk (default 256)
  --keep         keep the work directory (kept anyway when a cut fails)
  --replay DIR   check cuts of a kept recording again instead of recording a new one
  --at LIST      with --replay: just these cuts, each BARRIER:CUTSEED as a failure report prints it
SLUICE_* variables in the environment override the recorded server's settings, e.g.
SLUICE_WAL_SYNC_MODE=off (the check must then fail: acknowledged writes are not durable).`;

/** Aggressive settings: WAL rotation, flushes, purges, compactions and manifest commits all happen many times. */
const SETTINGS: Record<string, string> = {
    SLUICE_WAL_MAX_FILE_BYTES: "65536",
    SLUICE_WAL_MAX_FILE_AGE_MS: "1000",
    SLUICE_FLUSH_MAX_AGE_MS: "50",
    SLUICE_FLUSH_MAX_ROWS: "3000",
    SLUICE_COMPACTION_INTERVAL_MS: "200",
    SLUICE_COMPACTION_MIN_FILES: "2",
    SLUICE_COMPACTION_MAX_DELAY_MS: "0",
};

/** SLUICE_* settings from our environment (not the data directory, which is the harness's, nor the seed). */
function callerSettings(): Record<string, string> {
    return Object.fromEntries(
        Object.entries(process.env).filter(
            (entry): entry is [string, string] => entry[0].startsWith("SLUICE_") && !["SLUICE_DATA_DIR", "SLUICE_CRASH_SEED"].includes(entry[0]) && entry[1] !== undefined,
        ),
    );
}

interface Options {
    readonly cuts: number;
    readonly seconds: number;
    readonly lives: number;
    readonly seed: number;
    readonly diskMiB: number;
    /** The recorded server's environment: SETTINGS, then SLUICE_* from ours. */
    readonly settings: Record<string, string>;
    readonly keep: boolean;
    readonly replay: string | undefined;
    readonly at: readonly { readonly barrier: number; readonly seed: number }[] | undefined;
}

function parse(args: readonly string[]): Options {
    const { values } = parseArgs({
        args: [...args],
        options: {
            cuts: { type: "string" },
            seconds: { type: "string" },
            lives: { type: "string" },
            seed: { type: "string" },
            "disk-mib": { type: "string" },
            keep: { type: "boolean" },
            replay: { type: "string" },
            at: { type: "string" },
        },
    });
    const integer = (name: string, value: string | undefined, fallback: number, min: number): number => {
        if (value === undefined) return fallback;
        const parsed = Number(value);
        if (!Number.isSafeInteger(parsed) || parsed < min) throw new Error(`--${name} wants an integer >= ${min}, got "${value}"\n${USAGE}`);
        return parsed;
    };
    return {
        cuts: integer("cuts", values.cuts, 48, 1),
        seconds: integer("seconds", values.seconds, 54, 1),
        lives: integer("lives", values.lives, 3, 1),
        seed: values.seed === undefined ? seedFromEnv() : integer("seed", values.seed, 0, 0) >>> 0,
        diskMiB: integer("disk-mib", values["disk-mib"], 256, 64),
        settings: { ...SETTINGS, ...callerSettings() },
        keep: values.keep ?? false,
        replay: values.replay,
        at: values.at?.split(",").map((item) => {
            const [barrier, seed] = item.split(":");
            return { barrier: integer("at", barrier, 0, 1), seed: integer("at", seed, 0, 0) };
        }),
    };
}

async function installNeeds(): Promise<void> {
    requireRoot("powercut");
    await ensureDebianPackages([
        { debian: "python3-fusepy", probe: [SYSTEM_PYTHON, "-c", "import fusepy"] },
        { debian: "e2fsprogs", probe: ["mkfs.ext4", "-V"] },
        { debian: "util-linux", probe: ["losetup", "--version"] },
        { debian: "coreutils", probe: ["cp", "--version"] },
    ]);
    const fuse = await run("test", ["-c", "/dev/fuse"], { allowFailure: true });
    if (fuse.code !== 0) throw new Error("/dev/fuse is missing: this check needs FUSE (and loop devices)");
}

/** Checks every planned cut of a recording, printing each row as it is done. */
async function checkCuts(recording: Recording, plan: readonly PlannedCut[], dir: string, teardown: Teardown): Promise<CutResult[]> {
    const images = await CutImages.open(recording.log, recording.initialImage, dir);
    const results: CutResult[] = [];
    try {
        say(tableHeader());
        for (const [index, cut] of plan.entries()) {
            const keep = cut.unflushedKept;
            const image = await images.build({ barrier: cut.barrier, ...(keep === undefined ? {} : { unflushedKept: { probability: keep, random: cut.random } }) }, "cut.img");
            const result = await checkCut(index + 1, cut, image, recording, dir, teardown);
            results.push(result);
            say(tableRow(result, recording.log.barriers));
        }
        // The harness's own check: the whole log replayed onto the initial image is the disk.
        const replayed = await images.replayAll();
        const same = await run("cmp", ["-s", replayed, recording.finalImage], { allowFailure: true });
        if (same.code !== 0)
            throw new Error(`the write log replayed onto the initial image differs from the disk it recorded (${replayed} vs ${recording.finalImage}): the harness is wrong`);
    } finally {
        await images.close();
    }
    return results;
}

function plan(recording: Recording, options: Options): PlannedCut[] {
    if (options.at !== undefined) return options.at.map(({ barrier, seed }) => cutAt(barrier, "asked", seed)).sort((a, b) => a.barrier - b.barrier);
    const random = seededRandom((options.seed ^ 0x5bd1e995) >>> 0);
    return planCuts({ barriers: recording.log.barriers, count: options.cuts, lives: recording.lives, perRestart: Math.min(3, Math.floor(options.cuts / 12)), random });
}

function summarize(recording: Recording, results: readonly CutResult[], dir: string): number {
    const ledger = recording.ledger;
    say("");
    say(`requests: ${JSON.stringify(ledger.requests)}; points: ${JSON.stringify(ledger.counts)}`);
    const failed = results.filter((result) => result.problems.length > 0);
    const harness: string[] = [];
    if (ledger.requests.acked === 0) harness.push("no request was acknowledged: nothing was tested");
    if (ledger.requests.rejected > 0) harness.push(`${ledger.requests.rejected} requests were answered 4xx (the load is well formed: a test or parser bug)`);
    for (const line of harness) say(`HARNESS: ${line}`);
    printClasses(`failure classes (${failed.length} of ${results.length} cuts failed):`, failureClasses(results), say);
    const hidden = results.filter((result) => result.afterLockRemoved !== undefined);
    if (hidden.length > 0) {
        const clean = hidden.filter((result) => problemsAfterLockRemoved(result)?.length === 0).length;
        say(`after deleting sluice.lock by hand and running recover again: ${clean} of ${hidden.length} such cuts were then complete`);
        printClasses("what the lock failure hid:", hiddenClasses(results), say);
    }
    for (const result of failed.slice(0, 8)) {
        const { barrier, why, order, seed } = result.cut;
        say(`cut ${result.index} (barrier ${barrier}, ${why}, ${order}; again: npm run e2e -- powercut --replay ${dir} --at ${barrier}:${seed}):`);
        for (const problem of result.problems) say(`    ${problem.slice(0, 600)}`);
    }
    return failed.length > 0 || harness.length > 0 ? 1 : 0;
}

async function powercut(args: readonly string[]): Promise<number> {
    if (args.includes("--help")) {
        say(USAGE);
        return 0;
    }
    const options = parse(args);
    await installNeeds();
    const started = Date.now();
    const dir = options.replay ?? (await mkdtemp(join(tmpdir(), "sluice-powercut-")));
    say(
        options.replay === undefined
            ? `powercut: seed ${options.seed}, ${options.cuts} cuts, ${options.seconds} s of load over ${options.lives} server lives, settings ${JSON.stringify(options.settings)}; work directory ${dir}`
            : `powercut: checking cuts of the recording in ${dir} again (seed ${options.seed})`,
    );
    const teardown = new Teardown();
    let keep = options.keep || options.replay !== undefined;
    // Registered first, so it runs last: after a failure, or Ctrl-C, the mounts are gone by then.
    teardown.add(`remove ${dir}`, async () => {
        if (keep) say(`kept ${dir} (initial.img, writes.log, disk.img, recording.json): --replay ${dir} checks its cuts again; rm -r it when done`);
        else await rm(dir, { recursive: true, force: true });
    });
    return teardown.around(async () => {
        try {
            const recording = options.replay === undefined ? await record(recordOptions(options, dir), teardown) : await loadRecording(dir);
            const cuts = plan(recording, options);
            say(`${options.replay === undefined ? "recorded" : "loaded"} in ${((Date.now() - started) / 1000).toFixed(0)} s; checking ${cuts.length} cuts`);
            const results = await checkCuts(recording, cuts, dir, teardown);
            const code = summarize(recording, results, dir);
            if (options.replay === undefined) {
                say(
                    `seed ${options.seed}: ${Object.entries(callerSettings())
                        .map(([key, value]) => `${key}=${value} `)
                        .join(
                            "",
                        )}npm run e2e -- powercut --seed ${options.seed} --cuts ${options.cuts} --seconds ${options.seconds} --lives ${options.lives} draws the same load and cut choices`,
                );
            }
            keep ||= code !== 0;
            say(`powercut took ${((Date.now() - started) / 1000).toFixed(0)} s`);
            return code;
        } catch (error) {
            keep = true;
            throw error;
        }
    });
}

function recordOptions(options: Options, dir: string): RecordOptions {
    return {
        dir,
        diskBytes: options.diskMiB * 2 ** 20,
        seconds: options.seconds,
        lives: options.lives,
        seed: options.seed,
        settings: options.settings,
        load: { writers: 3, databases: ["power", "cut"], measurements: ["cpu", "mem", "disk", "net"], batchPoints: [1, 24], pauseMs: 10 },
    };
}

export const check: EndToEnd = {
    about: "power cuts at many barriers (FUSE block log + loop + ext4), then recover/serve unaided; root; installs python3-fusepy",
    run: powercut,
};

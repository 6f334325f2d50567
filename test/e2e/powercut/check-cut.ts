/**
 * One cut, checked as an operator would live it after the power came back: the disk mounted
 * (ext4 replays its journal) and checked with e2fsck, then, with no hand on the data directory,
 * `sluice recover --json` and `sluice serve` (listens, answers /health, stops on SIGTERM with exit
 * 0), in the planned order; then every Parquet file read with DuckDB: each request acknowledged
 * at or before the cut's barrier present exactly once, no point twice, nothing never sent.
 *
 * When recover or serve fails on the leftover `sluice.lock`, the same image is tried once more
 * after deleting that file by hand, to show what the lock failure hides.
 */
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { SentBatch } from "../../helpers/load.js";
import { type VerifyReport, problemsOf } from "../../helpers/load.js";
import { readParquet } from "../../helpers/parquet.js";
import type { BuiltImage } from "./cut-images.js";
import type { PlannedCut } from "./cut-plan.js";
import { type FsckResult, attachLoop, fsck, mountExt4 } from "./loop-mount.js";
import type { Recording } from "./record.js";
import { type Exit, describeExit, isServing, recover, serve } from "./sluice.js";
import type { Teardown } from "./system.js";

/** What happened to `serve`: it listened, /health answered, SIGTERM stopped it with this exit. */
export interface ServeOutcome {
    readonly listened: boolean;
    readonly health: number | undefined;
    readonly exit: Exit | undefined;
    readonly tail: string;
}

export interface RecoverOutcome {
    readonly exit: Exit | undefined;
    readonly recoveredEntries: number | undefined;
    readonly tail: string;
}

export interface Accounting {
    /** Points acknowledged at or before the cut's barrier: each must be stored exactly once. */
    readonly required: number;
    readonly requiredFound: number;
    /** Distinct points stored (the required ones and any acknowledged later or never answered). */
    readonly stored: number;
    readonly report: VerifyReport;
    readonly duplicateKeysByDuckDB: number;
    /** Requests not acknowledged by the cut's barrier of which some points but not all are stored. */
    readonly partiallyStored: readonly string[];
}

export interface CutResult {
    readonly index: number;
    readonly cut: PlannedCut;
    readonly image: Omit<BuiltImage, "path">;
    readonly fsck: FsckResult;
    /** `sluice.lock` as the cut left it: absent, empty, or what it holds. */
    readonly lock: string;
    readonly recover: RecoverOutcome;
    readonly serve: ServeOutcome;
    readonly accounting: Accounting;
    /** After deleting sluice.lock by hand and running recover again (only when recover or serve failed). */
    readonly afterLockRemoved: { readonly recover: RecoverOutcome; readonly accounting: Accounting } | undefined;
    readonly problems: readonly string[];
    /** Wall time of the whole check, image mount to unmount. */
    readonly seconds: number;
}

const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 120_000;
const RECOVER_TIMEOUT_MS = 180_000;

async function lockState(dataDir: string): Promise<string> {
    const path = join(dataDir, "sluice.lock");
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) return "absent";
    if (info.size === 0) return "empty";
    const text = (await readFile(path, "utf8")).trim();
    return /^\d+$/.test(text) ? `pid ${text}` : `${info.size} B`;
}

async function runServe(env: Record<string, string>, teardown: Teardown): Promise<ServeOutcome> {
    const started = await serve(env, teardown, START_TIMEOUT_MS);
    if (!isServing(started)) return { listened: false, health: undefined, exit: started.exit, tail: started.process.tail() };
    const health = await fetch(`${started.url}/health`, { signal: AbortSignal.timeout(30_000) }).then(
        (response) => response.status,
        () => undefined,
    );
    await started.process.kill("SIGTERM");
    const exit = await started.process.exitWithin(STOP_TIMEOUT_MS);
    return { listened: true, health, exit, tail: started.process.tail() };
}

async function runRecover(env: Record<string, string>, teardown: Teardown): Promise<RecoverOutcome> {
    const result = await recover(env, teardown, RECOVER_TIMEOUT_MS);
    return { exit: result.exit, recoveredEntries: result.report?.recoveredEntries, tail: result.process.tail() };
}

async function account(dataDir: string, recording: Recording, barrier: number): Promise<Accounting> {
    const { points, duplicateKeys } = await readParquet(dataDir);
    const ledger = recording.ledger;
    const isRequired = (batch: SentBatch) => {
        const acked = recording.ackBarrier.get(batch);
        return acked !== undefined && acked <= barrier;
    };
    const report = ledger.verify(points, isRequired);
    const required = ledger.batches.filter(isRequired).reduce((sum, batch) => sum + batch.count, 0);
    // Invariant 7: a request the cut did not see acknowledged is stored wholly or not at all.
    const storedPerBatch = new Map<SentBatch, Set<bigint>>();
    for (const point of points) {
        const batch = /^w\d+$/.test(point.writer) ? ledger.find(Number(point.writer.slice(1)), Number(point.seq)) : undefined;
        if (batch === undefined || isRequired(batch)) continue;
        let seqs = storedPerBatch.get(batch);
        if (seqs === undefined) storedPerBatch.set(batch, (seqs = new Set()));
        seqs.add(point.seq);
    }
    const partial = [...storedPerBatch]
        .filter(([batch, seqs]) => seqs.size < batch.count)
        .map(([batch, seqs]) => `w${batch.writer}:${batch.firstSeq}+${batch.count} (${seqs.size} stored)`);
    return {
        required,
        requiredFound: required - report.missing.length,
        stored: report.counts.stored,
        report,
        duplicateKeysByDuckDB: duplicateKeys.length,
        partiallyStored: partial,
    };
}

const exitedCleanly = (exit: Exit | undefined) => exit?.code === 0;

function problemsIn(recovered: RecoverOutcome, served: ServeOutcome | undefined, accounting: Accounting): string[] {
    const problems: string[] = [];
    if (!exitedCleanly(recovered.exit)) problems.push(`recover exit ${describeExit(recovered.exit)}: ${recovered.tail}`);
    if (served !== undefined) {
        if (!served.listened) problems.push(`serve did not start (exit ${describeExit(served.exit)}): ${served.tail}`);
        else if (served.health !== 200) problems.push(`serve: /health answered ${served.health ?? "nothing"}`);
        else if (!exitedCleanly(served.exit)) problems.push(`serve: SIGTERM exit ${describeExit(served.exit)}: ${served.tail}`);
    }
    // Points still in the WAL of a directory nothing could open are a consequence, not a class of their own.
    const nothingRan = !exitedCleanly(recovered.exit) && served?.listened !== true;
    for (const [kind, detail] of Object.entries(problemsOf(accounting.report)))
        problems.push(`${kind}${kind === "missing" && nothingRan ? " (nothing could replay the WAL)" : ""} ${detail}`);
    if (accounting.partiallyStored.length > 0) {
        problems.push(
            `partly stored ${accounting.partiallyStored.length} requests not acknowledged by the cut (invariant 7): ${accounting.partiallyStored.slice(0, 5).join("; ")}`,
        );
    }
    if (accounting.duplicateKeysByDuckDB > 0 && accounting.report.duplicated.length === 0) problems.push(`DuckDB finds ${accounting.duplicateKeysByDuckDB} duplicated keys`);
    return problems;
}

export async function checkCut(index: number, cut: PlannedCut, image: BuiltImage, recording: Recording, scratch: string, teardown: Teardown): Promise<CutResult> {
    const started = Date.now();
    const { path, ...imageInfo } = image;
    const loop = await attachLoop(path, teardown);
    try {
        const mountDir = join(scratch, "cut");
        // The first mount replays the journal (as a boot would); e2fsck then sees the file system
        // sluice will see. A dirty result means the harness's model of the disk is wrong, not sluice.
        await (await mountExt4(loop.device, mountDir, teardown)).unmount();
        const checked = await fsck(loop.device);
        const mount = await mountExt4(loop.device, mountDir, teardown);
        try {
            const dataDir = join(mount.dir, recording.dataPath);
            const env = { ...recording.settings, SLUICE_DATA_DIR: dataDir };
            const lock = await lockState(dataDir);
            let recovered: RecoverOutcome;
            let served: ServeOutcome;
            if (cut.order === "recover, then serve") {
                recovered = await runRecover(env, teardown);
                served = await runServe(env, teardown);
            } else {
                served = await runServe(env, teardown);
                recovered = await runRecover(env, teardown);
            }
            const accounting = await account(dataDir, recording, cut.barrier);
            const problems = problemsIn(recovered, served, accounting);
            if (checked.code !== 0) problems.unshift(`e2fsck -fn exit ${checked.code}: ${checked.summary}`);
            let afterLockRemoved: CutResult["afterLockRemoved"];
            const failedToStart = !exitedCleanly(recovered.exit) || !served.listened;
            if (failedToStart && lock !== "absent") {
                await rm(join(dataDir, "sluice.lock"), { force: true });
                const again = await runRecover(env, teardown);
                afterLockRemoved = { recover: again, accounting: await account(dataDir, recording, cut.barrier) };
            }
            const seconds = (Date.now() - started) / 1000;
            return { index, cut, image: imageInfo, fsck: checked, lock, recover: recovered, serve: served, accounting, afterLockRemoved, problems, seconds };
        } finally {
            await mount.unmount();
        }
    } finally {
        await loop.detach();
        await rm(path, { force: true });
    }
}

/** The problems left once the lock was removed by hand (what the lock failure hid). */
export function problemsAfterLockRemoved(result: CutResult): string[] | undefined {
    const after = result.afterLockRemoved;
    return after === undefined ? undefined : problemsIn(after.recover, undefined, after.accounting);
}

/**
 * The recorded run: `sluice serve` on ext4 on the logged disk, under write load, killed -9 and
 * restarted a few times ("lives"), then the disk unmounted. Every acknowledged request is noted
 * with the barrier count read just after its 2xx arrived: it is durable in every cut at that
 * barrier or later.
 */
import { open, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Endpoint, Ledger, LoadGenerator, type LoadOptions, type Outcome, type SentBatch, sleep } from "../../helpers/load.js";
import { type BlockLog, type LoggedDisk, makeExt4Image, readBlockLog, startLoggedDisk } from "./logged-disk.js";
import { attachLoop, mountExt4 } from "./loop-mount.js";
import { type Exit, isServing, serve } from "./sluice.js";
import { type Teardown, run, say } from "./system.js";

export interface RecordOptions {
    readonly dir: string;
    readonly diskBytes: number;
    readonly seconds: number;
    readonly lives: number;
    readonly seed: number;
    /** The environment of every `sluice` process, except SLUICE_DATA_DIR. */
    readonly settings: Record<string, string>;
    readonly load: Omit<LoadOptions, "seed" | "onSettle" | "ledger">;
}

/** One server process of the run, with the barrier count at its milestones. */
export interface Life {
    readonly spawnedAt: number;
    readonly listeningAt: number | undefined;
    readonly killedAt: number;
    readonly exit: Exit | undefined;
}

export interface Recording {
    /** The ext4 image before the log's first write. */
    readonly initialImage: string;
    /** The image as the daemon left it (the log replayed onto the initial image must equal it). */
    readonly finalImage: string;
    readonly log: BlockLog;
    readonly ledger: Ledger;
    /** Per acknowledged request: the barrier count read right after its answer. */
    readonly ackBarrier: ReadonlyMap<SentBatch, number>;
    readonly lives: readonly Life[];
    /** The data directory's path inside the file system. */
    readonly dataPath: string;
    /** The environment of every sluice process, except SLUICE_DATA_DIR. */
    readonly settings: Record<string, string>;
}

export const DATA_PATH = "data";

/** How many barriers one fdatasync of a new file on the mount causes (0: flushes do not reach the log). */
async function barriersPerSync(mount: string, disk: LoggedDisk): Promise<number> {
    const before = disk.barriers();
    const handle = await open(join(mount, "barrier-probe"), "w");
    try {
        await handle.write("probe");
        await handle.datasync();
    } finally {
        await handle.close();
    }
    return disk.barriers() - before;
}

/** What the sampler saw a life do (lower bounds: it looks every 100 ms). */
export interface Activity {
    /** Inode changes of flush/manifest.log seen after the first look: the manifest rewritten (temp, rename). */
    manifestRewrites: number;
    walFilesCreated: number;
    walFilesPurged: number;
}

/** Samples the live data directory until stopped: manifest rewrites, WAL rotations and purges. */
function watchActivity(dataDir: string): { stop(): Promise<Activity> } {
    const activity: Activity = { manifestRewrites: 0, walFilesCreated: 0, walFilesPurged: 0 };
    let manifestInode: number | undefined;
    let walFiles = new Set<string>();
    const stopped = new AbortController();
    const loop = (async () => {
        while (!stopped.signal.aborted) {
            const inode = (await stat(join(dataDir, "flush", "manifest.log")).catch(() => undefined))?.ino;
            if (inode !== undefined && manifestInode !== undefined && inode !== manifestInode) activity.manifestRewrites++;
            manifestInode = inode ?? manifestInode;
            const names = new Set((await readdir(join(dataDir, "wal")).catch(() => [] as string[])).filter((name) => name.endsWith(".wal")));
            for (const name of names) if (!walFiles.has(name)) activity.walFilesCreated++;
            for (const name of walFiles) if (!names.has(name)) activity.walFilesPurged++;
            walFiles = names;
            await sleep(100);
        }
    })();
    return {
        stop: async () => {
            stopped.abort();
            await loop;
            return activity;
        },
    };
}

export async function record(options: RecordOptions, teardown: Teardown): Promise<Recording> {
    const initialImage = join(options.dir, "initial.img");
    const finalImage = join(options.dir, "disk.img");
    await makeExt4Image(initialImage, options.diskBytes);
    await run("cp", ["--sparse=always", initialImage, finalImage]);
    const disk = await startLoggedDisk(options.dir, finalImage, teardown);
    const loop = await attachLoop(disk.file, teardown);
    const mount = await mountExt4(loop.device, join(options.dir, "live"), teardown);
    const perSync = await barriersPerSync(mount.dir, disk);
    if (perSync === 0) throw new Error("an fdatasync on the mount reached the FUSE file as no fsync: the log would not show barriers, so cuts cannot be placed");
    say(`logged disk: ${options.diskBytes >> 20} MiB ext4 on ${loop.device} over ${disk.file}; one fdatasync = ${perSync} barriers`);

    const ackBarrier = new Map<SentBatch, number>();
    const generator = new LoadGenerator({
        ...options.load,
        seed: options.seed,
        onSettle: (batch) => {
            if (batch.outcome === "acked") ackBarrier.set(batch, disk.barriers());
        },
    });
    const env = { ...options.settings, SLUICE_DATA_DIR: join(mount.dir, DATA_PATH) };
    const lives: Life[] = [];
    generator.start();
    try {
        for (let life = 0; life < options.lives; life++) {
            const spawnedAt = disk.barriers();
            const started = await serve(env, teardown, 120_000);
            if (!isServing(started)) {
                throw new Error(`sluice serve (life ${life + 1}) did not start on the live disk: exit ${JSON.stringify(started.exit)}: ${started.process.tail(5)}`);
            }
            const listeningAt = disk.barriers();
            const watch = watchActivity(env.SLUICE_DATA_DIR);
            generator.setTarget(started.url);
            await sleep((options.seconds * 1000) / options.lives);
            const killedAt = disk.barriers();
            const exit = await started.process.kill("SIGKILL");
            generator.setTarget(undefined);
            const seen = await watch.stop();
            lives.push({ spawnedAt, listeningAt, killedAt, exit });
            say(
                `life ${life + 1}: started at barrier ${spawnedAt}, listening at ${listeningAt}, killed -9 at ${killedAt}; ` +
                    `seen at least ${seen.walFilesCreated} WAL files created, ${seen.walFilesPurged} purged, ${seen.manifestRewrites} manifest rewrites; ` +
                    `requests so far ${JSON.stringify(generator.ledger.requests)}`,
            );
        }
    } finally {
        generator.setTarget(undefined);
        await generator.stop();
    }
    await mount.unmount();
    await loop.detach();
    await disk.close();
    const log = await readBlockLog(disk.log);
    say(`recorded ${log.writes} writes and ${log.barriers} barriers (${((await stat(disk.log)).size / 2 ** 20).toFixed(0)} MiB of log)`);
    const recording = { initialImage, finalImage, log, ledger: generator.ledger, ackBarrier, lives, dataPath: DATA_PATH, settings: options.settings };
    await saveRecording(options.dir, recording);
    return recording;
}

// ---------------------------------------------------------------------------------------------
// A recording kept on disk (--keep), to check any cut of it again (--replay DIR).

const RECORDING_FILE = "recording.json";

type SavedBatch = [
    writer: number,
    firstSeq: number,
    count: number,
    database: string,
    measurement: string,
    endpoint: Endpoint,
    outcome: Outcome,
    detail: string,
    ackBarrier: number | null,
];

interface SavedRecording {
    readonly version: 1;
    readonly dataPath: string;
    readonly settings: Record<string, string>;
    readonly lives: readonly Life[];
    readonly batches: readonly SavedBatch[];
}

async function saveRecording(dir: string, recording: Recording): Promise<void> {
    const saved: SavedRecording = {
        version: 1,
        dataPath: recording.dataPath,
        settings: recording.settings,
        lives: recording.lives,
        batches: recording.ledger.batches.map((b) => [
            b.writer,
            b.firstSeq,
            b.count,
            b.database,
            b.measurement,
            b.endpoint,
            b.outcome,
            b.detail,
            recording.ackBarrier.get(b) ?? null,
        ]),
    };
    await writeFile(join(dir, RECORDING_FILE), JSON.stringify(saved));
}

// Invariant kept: the ledger comes back as it was: batches re-sent in their original order get
// the same first seqs (checked), and each is settled as it was.
export async function loadRecording(dir: string): Promise<Recording> {
    const saved = JSON.parse(await readFile(join(dir, RECORDING_FILE), "utf8")) as Omit<SavedRecording, "version"> & { readonly version: unknown };
    if (saved.version !== 1) throw new Error(`${dir}/${RECORDING_FILE}: unknown version ${String(saved.version)}`);
    const ledger = new Ledger();
    const ackBarrier = new Map<SentBatch, number>();
    for (const [writer, firstSeq, count, database, measurement, endpoint, outcome, detail, acked] of saved.batches) {
        const batch = ledger.sent({ writer, count, database, measurement, endpoint });
        if (batch.firstSeq !== firstSeq) throw new Error(`${dir}/${RECORDING_FILE}: writer ${writer}'s batches are out of order`);
        if (outcome !== "pending") ledger.settle(batch, outcome, detail);
        if (acked !== null) ackBarrier.set(batch, acked);
    }
    const log = await readBlockLog(join(dir, "writes.log"));
    return {
        initialImage: join(dir, "initial.img"),
        finalImage: join(dir, "disk.img"),
        log,
        ledger,
        ackBarrier,
        lives: saved.lives,
        dataPath: saved.dataPath,
        settings: saved.settings,
    };
}

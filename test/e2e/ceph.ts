/**
 * A throwaway one-machine Ceph cluster that speaks S3, for the e2e checks: one monitor, one OSD
 * on the `memstore` object store (data in RAM), no authentication inside the cluster (cephx
 * off), and radosgw (Ceph 16.2's S3 gateway) on 127.0.0.1 and a free port.
 *
 *     const ceph = await startCeph();
 *     try {
 *         const bucket = await ceph.bucket("lake");
 *         new S3ObjectStore({ endpoint: ceph.endpoint, region: ceph.region, bucket, forcePathStyle: true,
 *                             credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
 *     } finally {
 *         await ceph.stop();
 *     }
 *
 * - Installs `radosgw ceph-mon ceph-osd ceph-common` from Debian when missing (root; runs
 *   `apt-get update` first and says so; ~75 s measured). `timings.installMs` is 0 otherwise.
 * - Everything lives in one temp dir (`sluice-ceph-*`): config, monitor store, sockets, logs.
 *   `stop()` kills the daemons and removes it, also after a failed start. Each daemon runs under a
 *   small shell watchdog that kills it when this process's end of its stdin pipe closes, so a
 *   crashed or killed test leaves no daemon behind; a temp dir left by a killed test is removed
 *   by the next `startCeph`.
 * - Start takes ~10–15 s and ~1.5 GB of memory. Clients must use path-style addressing
 *   (`force_path_style = true`): there is no DNS name for virtual-hosted buckets.
 * - Known radosgw 16.2 behaviour (see `npm run e2e -- s3-store`): `If-None-Match: *` and
 *   `If-Match` are enforced on PUT, `If-Match` only with an unquoted ETag, racing `If-Match`
 *   losers may get 500; CompleteMultipartUpload ignores `If-None-Match`; DELETE ignores `If-Match`.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";

const run = promisify(execFile);

export const CEPH_PACKAGES = ["radosgw", "ceph-mon", "ceph-osd", "ceph-common"] as const;

export interface CephOptions {
    /** Progress lines (install, start, stop); default: stderr. */
    readonly log?: (line: string) => void;
    /** What the OSD may hold in RAM, in bytes (writes beyond it fail as a full disk). */
    readonly memstoreBytes?: number;
    /** Give up starting after this long, in ms (the install is not counted). */
    readonly startTimeoutMs?: number;
    /** Where the temp dir goes; default the OS temp dir. */
    readonly parentDir?: string;
}

export const cephDefaults = {
    log: (line: string) => void process.stderr.write(`ceph: ${line}\n`),
    memstoreBytes: 4 * 1024 ** 3,
    startTimeoutMs: 180_000,
    parentDir: tmpdir(),
} as const satisfies { [K in keyof Required<CephOptions>]: CephOptions[K] };

export type CephDaemon = "mon" | "osd" | "rgw";

export interface CephCluster {
    /** `http://127.0.0.1:PORT`: radosgw's S3 endpoint. */
    readonly endpoint: string;
    readonly region: string;
    /** An S3 user made for this cluster (random keys). */
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    /** The temp dir holding config, state and `log/`. */
    readonly dir: string;
    readonly timings: { readonly installMs: number; readonly startMs: number };
    /** Creates the bucket (idempotent) and resolves with its name. */
    bucket(name: string): Promise<string>;
    /** The last lines of a daemon's log, for a failure report. */
    logTail(daemon: CephDaemon, lines?: number): Promise<string>;
    /** Kills every daemon and removes the temp dir; idempotent. */
    stop(): Promise<void>;
}

export class CephStartError extends Error {}

const DIR_PREFIX = "sluice-ceph-";
const LOG_NAMES: Record<CephDaemon, string> = { mon: "mon.a.log", osd: "osd.0.log", rgw: "client.rgw.sluice.log" };

/** Installs Ceph when missing; resolves with the ms it took (0 when it was there). */
export async function ensureCephInstalled(log: (line: string) => void = cephDefaults.log): Promise<number> {
    if (await cephInstalled()) return 0;
    if (process.getuid?.() !== 0) throw new CephStartError(`Ceph is not installed and installing it needs root: apt-get install ${CEPH_PACKAGES.join(" ")}`);
    const started = performance.now();
    log(`installing Ceph from Debian: apt-get update, then apt-get install ${CEPH_PACKAGES.join(" ")} (about 75 s)`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const lock = ["-o", "DPkg::Lock::Timeout=600"];
    try {
        await run("apt-get", [...lock, "update", "-qq"], { env, maxBuffer: 64 * 1024 * 1024 });
        await run("apt-get", [...lock, "install", "-y", "-qq", "--no-install-recommends", ...CEPH_PACKAGES], { env, maxBuffer: 64 * 1024 * 1024 });
    } catch (error) {
        const output = error as { stderr?: string; stdout?: string };
        throw new CephStartError(`apt-get failed: ${(output.stderr ?? output.stdout ?? String(error)).slice(-2000)}`);
    }
    if (!(await cephInstalled())) throw new CephStartError(`apt-get succeeded but ${CEPH_PACKAGES.join(" ")} are still not all installed`);
    const ms = performance.now() - started;
    log(`installed in ${(ms / 1000).toFixed(1)} s`);
    return ms;
}

async function cephInstalled(): Promise<boolean> {
    try {
        const { stdout } = await run("dpkg-query", ["-W", "-f=${db:Status-Abbrev}\n", ...CEPH_PACKAGES]);
        return stdout.split("\n").filter((line) => line.startsWith("ii")).length === CEPH_PACKAGES.length;
    } catch {
        return false;
    }
}

export async function startCeph(options: CephOptions = {}): Promise<CephCluster> {
    const log = options.log ?? cephDefaults.log;
    const parentDir = options.parentDir ?? cephDefaults.parentDir;
    const installMs = await ensureCephInstalled(log);
    await removeAbandonedDirs(parentDir, log);
    const started = performance.now();
    const dir = await mkdtemp(join(parentDir, DIR_PREFIX));
    const cluster = new Cluster(dir, log);
    try {
        await cluster.start(options.memstoreBytes ?? cephDefaults.memstoreBytes, started + (options.startTimeoutMs ?? cephDefaults.startTimeoutMs));
    } catch (error) {
        const tails = await Promise.all((["mon", "osd", "rgw"] as const).map(async (daemon) => `--- ${daemon} ---\n${await cluster.logTail(daemon, 15)}`));
        await cluster.stop();
        throw new CephStartError(`Ceph did not start: ${(error as Error).message}\n${tails.join("\n")}`, { cause: error });
    }
    const startMs = performance.now() - started;
    log(`radosgw answers at ${cluster.endpoint} after ${(startMs / 1000).toFixed(1)} s (dir ${dir})`);
    return Object.assign(cluster, { timings: { installMs, startMs } });
}

/** Temp dirs of clusters whose test was killed before `stop()`: their owner PID is gone. */
async function removeAbandonedDirs(parentDir: string, log: (line: string) => void): Promise<void> {
    for (const name of await readdir(parentDir)) {
        if (!name.startsWith(DIR_PREFIX)) continue;
        const dir = join(parentDir, name);
        const owner = Number.parseInt(await readFile(join(dir, "owner.pid"), "utf8").catch(() => "0"), 10);
        if (owner > 0 && processAlive(owner)) continue;
        // A dir without an owner yet may be another run's, between mkdtemp and writing owner.pid.
        if (owner === 0 && Date.now() - (await stat(dir)).mtimeMs < 10 * 60_000) continue;
        await stopAbandonedDaemons(dir);
        await rm(dir, { recursive: true, force: true });
        log(`removed ${dir}, left by an earlier run`);
    }
}

async function stopAbandonedDaemons(dir: string): Promise<void> {
    const pids = await readdir(join(dir, "run")).catch(() => [] as string[]);
    for (const file of pids.filter((name) => name.endsWith(".daemon-pid"))) {
        const pid = Number.parseInt(await readFile(join(dir, "run", file), "utf8"), 10);
        if (pid > 0 && processAlive(pid)) process.kill(pid, "SIGKILL");
    }
}

function processAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (error) {
        return (error as NodeJS.ErrnoException).code === "EPERM";
    }
}

async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
    const address = server.address();
    await new Promise((resolve) => server.close(resolve));
    if (address === null || typeof address === "string") throw new CephStartError("no free port");
    return address.port;
}

/**
 * Runs `"$@"` and kills it with SIGKILL as soon as stdin (a pipe from this process) reaches end
 * of file: when `stop()` closes it or when this process dies in any way. (A background job of a
 * non-interactive shell reads /dev/null unless redirected, hence the copy on fd 3.)
 */
const WATCHDOG = `exec 3<&0
"$@" </dev/null 3<&- & daemon=$!
echo "$daemon" > "$SLUICE_CEPH_PIDFILE"
(cat <&3 >/dev/null; kill -9 "$daemon" 2>/dev/null) &
wait "$daemon"`;

class Cluster implements Omit<CephCluster, "timings"> {
    readonly region = "us-east-1";
    readonly accessKeyId = `SLUICE${randomBytes(7).toString("hex").toUpperCase()}`;
    readonly secretAccessKey = randomBytes(24).toString("base64url");
    endpoint = "";
    readonly #conf: string;
    readonly #daemons: { readonly name: CephDaemon; readonly child: ChildProcess; readonly exited: Promise<void> }[] = [];
    #client: S3Client | undefined;
    #stopping: Promise<void> | undefined;
    readonly #onExit = (): void => {
        this.#killNow();
    };

    constructor(
        readonly dir: string,
        readonly log: (line: string) => void,
    ) {
        this.#conf = join(dir, "ceph.conf");
        process.once("exit", this.#onExit);
    }

    async start(memstoreBytes: number, deadline: number): Promise<void> {
        const dir = this.dir;
        await writeFile(join(dir, "owner.pid"), String(process.pid));
        await Promise.all(["run", "log", "mon", "osd/osd.0"].map((sub) => mkdir(join(dir, sub), { recursive: true })));
        const [monPort, rgwPort] = [await freePort(), await freePort()];
        const fsid = randomUUID();
        this.endpoint = `http://127.0.0.1:${rgwPort}`;
        await writeFile(this.#conf, cephConf({ dir, fsid, monPort, rgwPort, memstoreBytes }));

        await run("monmaptool", ["--create", "--clobber", "--fsid", fsid, "--addv", "a", `[v2:127.0.0.1:${monPort}]`, join(dir, "monmap")]);
        await run("ceph-authtool", ["--create-keyring", join(dir, "keyring"), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"]);
        await run("ceph-mon", ["-c", this.#conf, "--mkfs", "-i", "a", "--monmap", join(dir, "monmap")]);
        this.#spawn("mon", "ceph-mon", ["-c", this.#conf, "-i", "a", "-f"]);
        await this.#until(deadline, "the monitor to answer", async () => (await this.#ceph("mon", "stat")) !== undefined);

        const osdUuid = randomUUID();
        const id = (await this.#ceph("osd", "new", osdUuid))?.trim();
        if (id !== "0") throw new CephStartError(`ceph osd new answered ${JSON.stringify(id)}, expected 0`);
        await run("ceph-osd", ["-c", this.#conf, "-i", "0", "--mkfs", "--osd-uuid", osdUuid]);
        this.#spawn("osd", "ceph-osd", ["-c", this.#conf, "-i", "0", "-f"]);
        await this.#until(deadline, "the OSD to be up", async () => {
            const stat = await this.#ceph("osd", "stat", "-f", "json");
            return stat !== undefined && (JSON.parse(stat) as { num_up_osds?: number }).num_up_osds === 1;
        });

        this.#spawn("rgw", "radosgw", ["-c", this.#conf, "-n", "client.rgw.sluice", "-f"]);
        await this.#until(deadline, "radosgw to answer HTTP", async () => {
            const response = await fetch(this.endpoint, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
            return response?.status === 200;
        });
        await run("radosgw-admin", [
            "-c",
            this.#conf,
            "user",
            "create",
            "--uid",
            "sluice",
            "--display-name",
            "sluice e2e",
            "--access-key",
            this.accessKeyId,
            "--secret",
            this.secretAccessKey,
        ]);
    }

    async bucket(name: string): Promise<string> {
        this.#client ??= new S3Client({
            endpoint: this.endpoint,
            region: this.region,
            forcePathStyle: true,
            credentials: { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey },
        });
        try {
            await this.#client.send(new CreateBucketCommand({ Bucket: name }));
        } catch (error) {
            if ((error as { name?: string }).name !== "BucketAlreadyOwnedByYou") throw error;
        }
        return name;
    }

    /** The last lines of the daemon's log file and of its stdout/stderr. */
    async logTail(daemon: CephDaemon, lines = 40): Promise<string> {
        const tail = async (file: string): Promise<string> => {
            const text = await readFile(join(this.dir, "log", file), "utf8").catch(() => "");
            return text.trimEnd().split("\n").slice(-lines).join("\n");
        };
        return `${await tail(LOG_NAMES[daemon])}\n(stdout/stderr)\n${await tail(`${daemon}.out`)}`;
    }

    stop(): Promise<void> {
        this.#stopping ??= this.#stop();
        return this.#stopping;
    }

    async #stop(): Promise<void> {
        this.#client?.destroy();
        for (const daemon of [...this.#daemons].reverse()) daemon.child.stdin?.end();
        const all = Promise.all(this.#daemons.map((daemon) => daemon.exited));
        if (!(await Promise.race([all.then(() => true), sleep(15_000, false)]))) this.#killNow();
        await all;
        process.removeListener("exit", this.#onExit);
        await rm(this.dir, { recursive: true, force: true });
        this.log(`stopped; removed ${this.dir}`);
    }

    /** Synchronous last resort (process exit, a stuck watchdog): SIGKILL every daemon, remove the dir. */
    #killNow(): void {
        for (const daemon of this.#daemons) {
            const pid = Number.parseInt(readFileSyncQuiet(join(this.dir, "run", `${daemon.name}.daemon-pid`)), 10);
            if (pid > 0 && processAlive(pid)) process.kill(pid, "SIGKILL");
            if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill("SIGKILL");
        }
        if (this.#stopping === undefined) rmSync(this.dir, { recursive: true, force: true });
    }

    #spawn(name: CephDaemon, binary: string, args: readonly string[]): void {
        const out = openSync(join(this.dir, "log", `${name}.out`), "a");
        const child = spawn("sh", ["-c", WATCHDOG, "sh", binary, ...args], {
            stdio: ["pipe", out, out],
            env: { ...process.env, SLUICE_CEPH_PIDFILE: join(this.dir, "run", `${name}.daemon-pid`) },
        });
        closeSync(out);
        const exited = new Promise<void>((resolve) => {
            child.once("exit", () => {
                resolve();
            });
        });
        this.#daemons.push({ name, child, exited });
    }

    /** A `ceph` CLI call; undefined when the cluster did not answer. */
    async #ceph(...args: string[]): Promise<string | undefined> {
        try {
            return (await run("ceph", ["-c", this.#conf, "--connect-timeout", "10", ...args], { timeout: 30_000 })).stdout;
        } catch {
            return undefined;
        }
    }

    async #until(deadline: number, what: string, ready: () => Promise<boolean>): Promise<void> {
        for (;;) {
            const dead = this.#daemons.find((daemon) => daemon.child.exitCode !== null || daemon.child.signalCode !== null);
            if (dead !== undefined) throw new CephStartError(`${dead.name} exited while waiting for ${what}`);
            if (await ready()) return;
            if (performance.now() > deadline) throw new CephStartError(`timed out waiting for ${what}`);
            await sleep(250);
        }
    }
}

function readFileSyncQuiet(path: string): string {
    try {
        return readFileSync(path, "utf8");
    } catch {
        return "";
    }
}

function cephConf(settings: { dir: string; fsid: string; monPort: number; rgwPort: number; memstoreBytes: number }): string {
    const { dir } = settings;
    return `[global]
fsid = ${settings.fsid}
mon host = v2:127.0.0.1:${settings.monPort}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
mon data = ${dir}/mon/$name
osd data = ${dir}/osd/$name
# Without it radosgw waits 300 s for the monitor (measured).
ms mon client mode = crc
ms bind ipv6 = false
osd objectstore = memstore
memstore device bytes = ${settings.memstoreBytes}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false

[client.rgw.sluice]
rgw frontends = beast endpoint=127.0.0.1:${settings.rgwPort}
rgw enable usage log = false
# Deleted objects' data is reclaimed by rgw's garbage collector: soon, since memstore holds it in RAM.
rgw gc obj min wait = 60
rgw gc processor period = 60
`;
}

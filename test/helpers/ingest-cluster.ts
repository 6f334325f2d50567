/**
 * Several real `sluice serve` processes on one bucket, a load balancer's worth of clients, and
 * kill -9 at random instants (issue 16's "must show"): for the CI test against the in-process S3
 * server and for `npm run e2e -- s3-cluster` against Ceph radosgw.
 *
 * The load: writers each send batches of points that exist once (tag `writer`, a time unique to
 * (writer, sequence)), to a random live node; a failed request (refused, reset, 5xx) is retried on
 * another node, as a load balancer would; and now and then a batch that was acknowledged is sent
 * again to another node (a client that timed out and retried): point identity must merge it.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DuckDBInstance } from "@duckdb/node-api";
import { decodeManifest } from "../../flush/lake/s3-manifest.js";
import { MANIFEST_NAME } from "../../flush/lake/s3-keys.js";
import { S3ObjectStore } from "../../flush/storage/s3-store.js";
import { tempDir } from "./batches.js";
import { type ServerProcess, startServe } from "./cli.js";

export interface BucketAccess {
    readonly endpoint: string;
    readonly bucket: string;
    readonly prefix: string;
    readonly region: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
}

export interface ClusterNode {
    readonly nodeId: string;
    readonly dataDir: string;
    server: ServerProcess | undefined;
    /** Output of every process this node ran, for a failure report. */
    log: string;
}

/** Aggressive settings: flushes, compactions and sweeps happen many times in a short run. */
export const CHAOS_SETTINGS: Readonly<Record<string, string>> = {
    "flush.max_age_ms": "300",
    "compaction.interval_ms": "300",
    "compaction.min_files": "2",
    "compaction.max_delay_ms": "0",
    "retention.check_interval_ms": "1000",
    "s3.lease_ttl_ms": "2000",
    "wal.sync_mode": "fdatasync",
};

export class IngestCluster {
    readonly nodes: ClusterNode[];
    readonly #cleanups: (() => Promise<void>)[] = [];

    private constructor(
        readonly access: BucketAccess,
        readonly settings: Readonly<Record<string, string>>,
        nodes: ClusterNode[],
    ) {
        this.nodes = nodes;
    }

    static async start(access: BucketAccess, count: number, settings: Readonly<Record<string, string>> = CHAOS_SETTINGS): Promise<IngestCluster> {
        const nodes: ClusterNode[] = [];
        const cleanups: (() => Promise<void>)[] = [];
        for (let i = 0; i < count; i++) {
            const dir = await tempDir(`sluice-node${i}-`);
            cleanups.push(dir.cleanup);
            nodes.push({ nodeId: `node-${i}`, dataDir: dir.path, server: undefined, log: "" });
        }
        const cluster = new IngestCluster(access, settings, nodes);
        cluster.#cleanups.push(...cleanups);
        try {
            for (const node of nodes) await cluster.restart(node);
        } catch (error) {
            await cluster.destroy();
            throw error;
        }
        return cluster;
    }

    /** URLs of the nodes running now. */
    live(): string[] {
        return this.nodes.flatMap((node) => (node.server === undefined ? [] : [node.server.url]));
    }

    async restart(node: ClusterNode): Promise<void> {
        const { access } = this;
        const sets = {
            "storage.backend": "s3",
            node_id: node.nodeId,
            "s3.endpoint": access.endpoint,
            "s3.bucket": access.bucket,
            "s3.prefix": access.prefix,
            "s3.region": access.region,
            "s3.force_path_style": "true",
            ...this.settings,
        };
        const args = ["--data-dir", node.dataDir, ...Object.entries(sets).flatMap(([key, value]) => ["--set", `${key}=${value}`])];
        const env = { AWS_ACCESS_KEY_ID: access.accessKeyId, AWS_SECRET_ACCESS_KEY: access.secretAccessKey, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
        try {
            node.server = await startServe(args, env);
        } catch (error) {
            node.log += String(error);
            throw error;
        }
    }

    /** kill -9: no flush, no cleanup, leases left to expire or be taken back. */
    async kill(node: ClusterNode): Promise<void> {
        const server = node.server;
        if (server === undefined) return;
        node.server = undefined;
        await server.stop("SIGKILL");
        node.log += server.output();
    }

    /** SIGTERM to every node: each flushes and exits 0; the exit codes. */
    async stopAll(): Promise<(number | null)[]> {
        const codes: (number | null)[] = [];
        for (const node of this.nodes) {
            const server = node.server;
            if (server === undefined) continue;
            node.server = undefined;
            codes.push(await server.stop("SIGTERM"));
            node.log += server.output();
        }
        return codes;
    }

    async destroy(): Promise<void> {
        for (const node of this.nodes) await this.kill(node).catch(() => undefined);
        for (const cleanup of this.#cleanups.splice(0)) await cleanup();
    }

    /** Every "swapped on the bucket" log line's listing overlap, in ms. */
    listingOverlaps(): number[] {
        const all = this.nodes.map((node) => node.log + (node.server?.output() ?? "")).join("\n");
        return all
            .split("\n")
            .filter((line) => line.includes("swapped on the bucket"))
            .flatMap((line) => {
                const overlap = /listing_overlap_ms[=":]+(\d+)/.exec(line);
                return overlap === null ? [] : [Number(overlap[1])];
            });
    }
}

export interface LoadOptions {
    readonly seconds: number;
    readonly writers: number;
    readonly pointsPerBatch: number;
    /** Chance that an acknowledged batch is sent again to another node. */
    readonly resendChance: number;
    /** Mean interval between kills (0: none); a killed node restarts after 0.2–1 s. */
    readonly killEveryMs: number;
    readonly measurements: number;
}

export interface LoadResult {
    /** `writer:timeNs` of every acknowledged point. */
    readonly acknowledged: Set<string>;
    readonly requests: number;
    readonly retries: number;
    readonly resends: number;
    readonly kills: number;
}

/** A time in the recent past, whole hour, so several hours' partitions fill. */
const BASE_NS = (BigInt(Date.now() - 6 * 3_600_000) / 3_600_000n) * 3_600_000n * 1_000_000n;
/** One point per 50 ms of each writer's sequence: a run covers hours. */
const STEP_NS = 50_000_000n;

function batchBody(writer: number, first: number, count: number, measurements: number): { body: string; keys: string[] } {
    const lines: string[] = [];
    const keys: string[] = [];
    for (let seq = first; seq < first + count; seq++) {
        const time = BASE_NS + BigInt(seq) * STEP_NS + BigInt(writer);
        lines.push(`m${seq % measurements},writer=w${writer} seq=${seq}i,v=${(seq * 0.5).toFixed(1)} ${time}`);
        keys.push(`w${writer}:${time}`);
    }
    return { body: lines.join("\n"), keys };
}

async function post(url: string, body: string): Promise<number> {
    try {
        const response = await fetch(`${url}/write?db=chaos`, { method: "POST", body, signal: AbortSignal.timeout(30_000) });
        await response.arrayBuffer();
        return response.status;
    } catch {
        return 0;
    }
}

function pick<T>(items: readonly T[], not?: T): T | undefined {
    const choices = items.filter((item) => item !== not);
    return choices.length === 0 ? items[0] : choices[Math.floor(Math.random() * choices.length)];
}

/** Runs the load (and the kills) for `seconds`; every node is running again when it resolves. */
export async function runLoad(cluster: IngestCluster, options: LoadOptions): Promise<LoadResult> {
    const acknowledged = new Set<string>();
    let requests = 0;
    let retries = 0;
    let resends = 0;
    let kills = 0;
    const deadline = Date.now() + options.seconds * 1000;
    const writer = async (index: number) => {
        for (let seq = 0; Date.now() < deadline; seq += options.pointsPerBatch) {
            const { body, keys } = batchBody(index, seq, options.pointsPerBatch, options.measurements);
            let url: string | undefined;
            for (;;) {
                url = pick(cluster.live(), url);
                requests++;
                const status = url === undefined ? 0 : await post(url, body);
                if (status === 204) break;
                if (status >= 400 && status < 500) throw new Error(`${url} answered ${status} to a valid batch`);
                retries++;
                await sleep(50);
            }
            for (const key of keys) acknowledged.add(key);
            if (Math.random() < options.resendChance) {
                const other = pick(cluster.live(), url);
                if (other !== undefined) {
                    resends++;
                    await post(other, body);
                }
            }
        }
    };
    const chaos = async () => {
        if (options.killEveryMs <= 0) return;
        while (Date.now() < deadline - options.killEveryMs) {
            await sleep(options.killEveryMs * (0.5 + Math.random()));
            const victim = pick(cluster.nodes.filter((node) => node.server !== undefined));
            if (victim === undefined) continue;
            await cluster.kill(victim);
            kills++;
            await sleep(200 + Math.random() * 800);
            await cluster.restart(victim);
        }
    };
    await Promise.all([...Array.from({ length: options.writers }, (_, i) => writer(i)), chaos()]);
    for (const node of cluster.nodes) if (node.server === undefined) await cluster.restart(node);
    return { acknowledged, requests, retries, resends, kills };
}

/** Flushes every node, compacts on each in turn, lets garbage age past its grace and sweeps it. */
export async function settle(cluster: IngestCluster, sweepAfterMs: number): Promise<void> {
    for (const url of cluster.live()) {
        for (let attempt = 0; (await fetch(`${url}/api/v1/flush`, { method: "POST" })).status !== 200; attempt++) {
            if (attempt > 100) throw new Error(`${url} could not flush`);
            await sleep(200);
        }
    }
    for (let round = 0; round < 2; round++) {
        for (const url of cluster.live()) {
            const response = await fetch(`${url}/api/v1/compact`, { method: "POST" });
            if (response.status !== 200) throw new Error(`${url} compact: ${response.status} ${await response.text()}`);
        }
    }
    await sleep(sweepAfterMs);
    for (const url of cluster.live()) await fetch(`${url}/api/v1/retention`, { method: "POST" });
}

export interface BucketCheck {
    /** Acknowledged points found exactly once. */
    readonly once: number;
    readonly missing: string[];
    /** Points stored more than once: `key×count`. */
    readonly duplicated: string[];
    readonly files: number;
    /** Manifest problems: a listed key that does not exist, a file no manifest lists, garbage left. */
    readonly manifestProblems: string[];
}

/** Reads every object of the bucket back (a reader that lists keys) and checks it against the acknowledged points and the manifests. */
export async function checkBucket(access: BucketAccess, acknowledged: ReadonlySet<string>): Promise<BucketCheck> {
    const store = new S3ObjectStore({
        endpoint: access.endpoint,
        bucket: access.bucket,
        prefix: access.prefix,
        region: access.region,
        forcePathStyle: true,
        credentials: { accessKeyId: access.accessKeyId, secretAccessKey: access.secretAccessKey },
    });
    const keys: string[] = [];
    for await (const info of store.list("")) keys.push(info.key);
    const parquet = new Set(keys.filter((key) => key.endsWith(".parquet")));
    const listed = new Set<string>();
    const manifestProblems: string[] = [];
    for (const key of keys.filter((candidate) => candidate.endsWith(`/${MANIFEST_NAME}`))) {
        const manifest = decodeManifest(key, (await store.get(key))!.body);
        for (const file of manifest.files) {
            listed.add(file.key);
            if (!parquet.has(file.key)) manifestProblems.push(`${key} lists ${file.key}, which does not exist`);
        }
        if (manifest.garbage.length > 0) manifestProblems.push(`${key} still has ${manifest.garbage.length} garbage entries`);
    }
    for (const key of parquet) if (!listed.has(key)) manifestProblems.push(`${key} is in no manifest`);
    const dir = await tempDir("sluice-bucket-check-");
    try {
        for (const key of parquet) {
            const path = join(dir.path, key);
            await mkdir(dirname(path), { recursive: true });
            await writeFile(path, (await store.get(key))!.body);
        }
        const counts = new Map<string, number>();
        if (parquet.size > 0) {
            const instance = await DuckDBInstance.create(":memory:");
            const connection = await instance.connect();
            try {
                const rows = (
                    await connection.runAndReadAll(
                        `select writer, epoch_ns(time)::VARCHAR as t, count(*)::INTEGER as n from read_parquet('${dir.path}/**/*.parquet', union_by_name = true, hive_partitioning = false) group by all`,
                    )
                ).getRowObjects();
                for (const row of rows) counts.set(`${String(row.writer)}:${String(row.t)}`, Number(row.n));
            } finally {
                connection.closeSync();
                instance.closeSync();
            }
        }
        const missing = [...acknowledged].filter((key) => !counts.has(key));
        const duplicated = [...counts].filter(([, n]) => n > 1).map(([key, n]) => `${key}×${n}`);
        const once = [...acknowledged].filter((key) => counts.get(key) === 1).length;
        return { once, missing, duplicated, files: parquet.size, manifestProblems };
    } finally {
        store.destroy();
        await dir.cleanup();
    }
}

/**
 * `npm run e2e -- s3-cluster [--seconds N] [--nodes N]`: issue 16's proof on a real S3 server.
 * Three `sluice serve` ingesters share one bucket on Ceph radosgw 16.2 (started by `startCeph`),
 * with aggressive flush and compaction settings; writers spread batches over them, retry a failed
 * request on another node and now and then resend an acknowledged batch elsewhere (a client's
 * retry); random ingesters are killed -9 and restarted. Then every node flushes and compacts, and
 * every object of the bucket is read back with DuckDB: every acknowledged point exactly once, and
 * the manifest objects list exactly the live files. Prints the listing overlap of compaction swaps
 * (how long a reader that lists keys sees inputs and outputs together).
 */
import { parseArgs } from "node:util";
import { CHAOS_SETTINGS, IngestCluster, checkBucket, runLoad, settle } from "../helpers/ingest-cluster.js";
import { startCeph } from "./ceph.js";
import type { EndToEnd } from "./run.js";

const say = (line: string): void => void process.stdout.write(`${line}\n`);

function percentile(values: readonly number[], p: number): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const check: EndToEnd = {
    about: "three ingesters on one Ceph radosgw bucket, kill -9 at random under load with retries across nodes: every acknowledged point exactly once (installs Ceph)",
    async run(args) {
        const { values } = parseArgs({ args: [...args], options: { seconds: { type: "string", default: "60" }, nodes: { type: "string", default: "3" } } });
        process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
        const ceph = await startCeph();
        let cluster: IngestCluster | undefined;
        try {
            const access = {
                endpoint: ceph.endpoint,
                bucket: await ceph.bucket("sluice-cluster"),
                prefix: "lake",
                region: ceph.region,
                accessKeyId: ceph.accessKeyId,
                secretAccessKey: ceph.secretAccessKey,
            };
            cluster = await IngestCluster.start(access, Number(values.nodes));
            say(`${values.nodes} ingesters on ${access.endpoint}/${access.bucket}/${access.prefix}; load for ${values.seconds} s with kills`);
            const load = await runLoad(cluster, { seconds: Number(values.seconds), writers: 6, pointsPerBatch: 200, resendChance: 0.1, killEveryMs: 3000, measurements: 4 });
            say(
                `  ${load.acknowledged.size} points acknowledged in ${load.requests} requests (${load.retries} retried on another node, ${load.resends} acknowledged batches resent elsewhere), ${load.kills} kills`,
            );
            await settle(cluster, 2 * 2 * Number(CHAOS_SETTINGS["s3.lease_ttl_ms"]));
            const overlaps = cluster.listingOverlaps();
            const codes = await cluster.stopAll();
            const result = await checkBucket(access, load.acknowledged);
            say(`  ${result.files} Parquet objects; ${result.once} of ${load.acknowledged.size} acknowledged points exactly once`);
            say(
                `  compaction swaps: ${overlaps.length}; listing overlap p50 ${percentile(overlaps, 50)} ms, p99 ${percentile(overlaps, 99)} ms, max ${Math.max(0, ...overlaps)} ms`,
            );
            const failures = [
                ...(codes.every((code) => code === 0) ? [] : [`graceful stops exited ${codes.join(", ")}`]),
                ...(result.missing.length === 0 ? [] : [`${result.missing.length} acknowledged points missing, e.g. ${result.missing.slice(0, 5).join(", ")}`]),
                ...(result.duplicated.length === 0 ? [] : [`${result.duplicated.length} points stored more than once, e.g. ${result.duplicated.slice(0, 5).join(", ")}`]),
                ...result.manifestProblems.slice(0, 10),
            ];
            for (const failure of failures) say(`FAIL  ${failure}`);
            if (failures.length === 0) say("ok    every acknowledged point exactly once; the manifests list exactly the live files");
            return failures.length === 0 ? 0 : 1;
        } finally {
            await cluster?.destroy();
            await ceph.stop();
        }
    },
};

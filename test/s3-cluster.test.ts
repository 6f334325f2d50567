/**
 * Issue 16's proof at CI size: three real `sluice serve` processes share one bucket (the
 * in-process S3 server, the real AWS SDK in each), writers spread batches over them, retry failed
 * requests on another node and resend some acknowledged batches elsewhere, while random
 * ingesters are killed -9 and restarted. Afterwards every object is read back: every acknowledged
 * point exactly once, and the manifests list exactly the live files. (`npm run e2e --
 * s3-cluster` runs the same against Ceph radosgw, longer.)
 */
import { afterEach, describe, expect, it } from "vitest";
import { MemoryBucket } from "../flush/storage/memory-store.js";
import { CHAOS_SETTINGS, IngestCluster, checkBucket, runLoad, settle } from "./helpers/ingest-cluster.js";
import { S3Server } from "./helpers/s3-server.js";

describe("three ingesters on one bucket", () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
        for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it("store every acknowledged point exactly once through kill -9 and retries across nodes", { timeout: 240_000 }, async () => {
        const s3 = await S3Server.start({ bucket: new MemoryBucket("lake") });
        cleanups.push(() => s3.close());
        const access = { endpoint: s3.endpoint, bucket: s3.bucket.name, prefix: "shared", region: s3.region, ...s3.credentials };
        const cluster = await IngestCluster.start(access, 3);
        cleanups.push(() => cluster.destroy());
        const load = await runLoad(cluster, { seconds: 12, writers: 4, pointsPerBatch: 100, resendChance: 0.2, killEveryMs: 2500, measurements: 3 });
        expect(load.kills).toBeGreaterThan(0);
        expect(load.resends).toBeGreaterThan(0);
        expect(load.acknowledged.size).toBeGreaterThan(0);
        await settle(cluster, 2 * 2 * Number(CHAOS_SETTINGS["s3.lease_ttl_ms"]));
        const overlaps = cluster.listingOverlaps();
        expect(await cluster.stopAll()).toEqual([0, 0, 0]);
        const result = await checkBucket(access, load.acknowledged);
        expect(result.missing.slice(0, 10)).toEqual([]);
        expect(result.duplicated.slice(0, 10)).toEqual([]);
        expect(result.once).toBe(load.acknowledged.size);
        expect(result.manifestProblems).toEqual([]);
        expect(overlaps.length).toBeGreaterThan(0);
    });
});

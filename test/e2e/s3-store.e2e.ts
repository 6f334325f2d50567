/**
 * `npm run e2e -- s3-store`: the object-store conformance suite (test/helpers) against
 * `S3ObjectStore` on a real S3 server, Ceph radosgw 16.2 started by `startCeph`, then what this
 * radosgw does with conditional requests, measured through the SDK directly. Prints timings.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { S3ObjectStore, type S3ObjectStoreOptions } from "../../flush/storage/s3-store.js";
import { type ConformanceFixture, conformanceCases } from "../helpers/object-store-conformance.js";
import { type CephCluster, startCeph } from "./ceph.js";
import type { EndToEnd } from "./run.js";

const MiB = 1024 * 1024;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const say = (line: string): void => void process.stdout.write(`${line}\n`);

function fixtureFor(ceph: CephCluster, bucket: string, closedPort: number): ConformanceFixture {
    const credentials = { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey };
    const base: S3ObjectStoreOptions = {
        endpoint: ceph.endpoint,
        region: ceph.region,
        bucket,
        forcePathStyle: true,
        credentials,
        // S3's minimum part size, so the large case goes through three parts.
        multipartThresholdBytes: 5 * MiB,
        multipartPartBytes: 5 * MiB,
    };
    let cases = 0;
    const secrets = [credentials.secretAccessKey, credentials.accessKeyId];
    return {
        store: async () => new S3ObjectStore({ ...base, prefix: `conformance/${cases++}-${randomBytes(4).toString("hex")}` }),
        broken: async (kind) => {
            switch (kind) {
                case "missing-bucket":
                    return { store: new S3ObjectStore({ ...base, bucket: `${bucket}-missing` }), secrets };
                case "denied": {
                    const wrong = { accessKeyId: credentials.accessKeyId, secretAccessKey: randomBytes(24).toString("base64url") };
                    return { store: new S3ObjectStore({ ...base, credentials: wrong }), secrets: [...secrets, wrong.secretAccessKey] };
                }
                case "unreachable":
                    return { store: new S3ObjectStore({ ...base, endpoint: `http://127.0.0.1:${closedPort}`, maxAttempts: 1 }), secrets };
            }
        },
        largeBodyBytes: 12 * MiB + 123,
    };
}

async function closedPort(): Promise<number> {
    const { createServer } = await import("node:net");
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    await new Promise((resolve) => server.close(resolve));
    return typeof address === "object" && address !== null ? address.port : 1;
}

async function status(send: Promise<unknown>): Promise<string> {
    try {
        await send;
        return "200";
    } catch (error) {
        const { $metadata, name } = error as { $metadata?: { httpStatusCode?: number }; name?: string };
        return `${$metadata?.httpStatusCode ?? "no response"} ${name ?? ""}`.trim();
    }
}

/** What this radosgw does with the conditional requests the seam depends on (SDK calls, no retries). */
async function observeRadosgw(ceph: CephCluster, bucket: string): Promise<void> {
    const client = new S3Client({
        endpoint: ceph.endpoint,
        region: ceph.region,
        forcePathStyle: true,
        maxAttempts: 1,
        credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
    });
    const put = (Key: string, Body: string, extra: { IfMatch?: string; IfNoneMatch?: string } = {}) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body, ...extra }));
    try {
        const created = await put("observe/quoting", "v1");
        const quoted = created.ETag ?? "";
        say(`  If-Match with the quoted ETag ${quoted}: ${await status(put("observe/quoting", "v2", { IfMatch: quoted }))}`);
        say(`  If-Match with the same ETag unquoted: ${await status(put("observe/quoting", "v2", { IfMatch: quoted.replaceAll('"', "") }))}`);
        say(`  If-None-Match: * on an existing key: ${await status(put("observe/quoting", "v3", { IfNoneMatch: "*" }))}`);
        say(`  If-Match on a missing key: ${await status(put("observe/absent", "v1", { IfMatch: quoted.replaceAll('"', "") }))}`);

        const tally = new Map<string, number>();
        for (let round = 0; round < 5; round++) {
            const base = (await put(`observe/cas-${round}`, "base")).ETag?.replaceAll('"', "") ?? "";
            const outcomes = await Promise.all(Array.from({ length: 10 }, (_, writer) => status(put(`observe/cas-${round}`, `writer ${writer}`, { IfMatch: base }))));
            for (const outcome of outcomes) tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
        }
        say(`  10 racing If-Match writers x 5 rounds, no retries: ${[...tally].map(([outcome, count]) => `${count}x ${outcome}`).join(", ")}`);

        const upload = (Body: Uint8Array) =>
            new Upload({ client, params: { Bucket: bucket, Key: "observe/multipart", Body, IfNoneMatch: "*" }, partSize: 5 * MiB, queueSize: 2 }).done();
        const first = await upload(randomBytes(11 * MiB));
        const second = await status(upload(randomBytes(11 * MiB)));
        say(`  multipart upload ETag in CompleteMultipartUpload's answer: ${JSON.stringify(first.ETag)}`);
        say(`  a second multipart upload with If-None-Match: * to that key: ${second === "200" ? "200 (replaced: not enforced)" : second}`);

        const doomed = await put("observe/delete", "x");
        const wrong = (doomed.ETag ?? "").replaceAll('"', "").replace(/^./, (c) => (c === "0" ? "1" : "0"));
        const deleted = await status(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "observe/delete", IfMatch: wrong })));
        const after = await status(client.send(new HeadObjectCommand({ Bucket: bucket, Key: "observe/delete" })));
        say(`  DELETE with a wrong If-Match: ${deleted}, then HEAD: ${after}${after.startsWith("404") ? " (deleted: If-Match ignored)" : ""}`);
    } finally {
        client.destroy();
    }
}

/**
 * Racing create-only writers of 11 MiB bodies: through multipart (a 5 MiB threshold) radosgw lets
 * more than one be told `created` (observed, printed); through the default single conditional
 * PUT exactly one must win in every round (checked: the run fails otherwise).
 */
async function raceLargeBodies(ceph: CephCluster, bucket: string): Promise<boolean> {
    const open = (prefix: string, threshold?: number): S3ObjectStore =>
        new S3ObjectStore({
            endpoint: ceph.endpoint,
            region: ceph.region,
            bucket,
            prefix,
            forcePathStyle: true,
            credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
            ...(threshold === undefined ? {} : { multipartThresholdBytes: threshold, multipartPartBytes: threshold }),
        });
    const rounds = 5;
    const race = async (store: S3ObjectStore): Promise<number[]> => {
        const winners: number[] = [];
        for (let round = 0; round < rounds; round++) {
            const bodies = Array.from({ length: 4 }, () => randomBytes(11 * MiB));
            const results = await Promise.all(bodies.map((body) => store.putIfAbsent(`big-${round}`, body)));
            winners.push(results.filter((result) => result.created).length);
        }
        store.destroy();
        return winners;
    };
    const multipart = await race(open("observe/racing-multipart", 5 * MiB));
    say(`  4 racing putIfAbsent of 11 MiB through multipart, ${rounds} rounds: told created ${multipart.join(", ")}`);
    const single = await race(open("observe/racing-single-put"));
    const safe = single.every((count) => count === 1);
    say(`${safe ? "ok  " : "FAIL"}  4 racing putIfAbsent of 11 MiB through the default single PUT, ${rounds} rounds: told created ${single.join(", ")}`);
    return safe;
}

export const check: EndToEnd = {
    about: "object-store conformance suite against Ceph radosgw 16.2 (installs radosgw ceph-mon ceph-osd ceph-common)",
    async run() {
        process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
        const ceph = await startCeph();
        let failures = 0;
        try {
            const version = (await promisify(execFile)("ceph", ["--version"])).stdout.trim();
            say(`${version}: install ${seconds(ceph.timings.installMs)}, start ${seconds(ceph.timings.startMs)}`);
            const bucket = await ceph.bucket("sluice-conformance");
            const fixture = fixtureFor(ceph, bucket, await closedPort());
            const suiteStarted = performance.now();
            for (const conformance of conformanceCases) {
                const started = performance.now();
                try {
                    const note = await conformance.run(fixture);
                    say(`ok    ${seconds(performance.now() - started).padStart(7)}  ${conformance.name}${note === undefined ? "" : `\n        ${note}`}`);
                } catch (error) {
                    failures++;
                    say(`FAIL  ${seconds(performance.now() - started).padStart(7)}  ${conformance.name}\n        ${String((error as Error).stack ?? error)}`);
                }
            }
            say(`suite: ${conformanceCases.length - failures} passed, ${failures} failed in ${seconds(performance.now() - suiteStarted)}`);
            say("radosgw, observed:");
            await observeRadosgw(ceph, bucket);
            if (!(await raceLargeBodies(ceph, bucket))) failures++;
        } catch (error) {
            failures++;
            say(`error: ${String((error as Error).stack ?? error)}\n--- rgw log ---\n${await ceph.logTail("rgw")}`);
        } finally {
            const stopping = performance.now();
            await ceph.stop();
            say(`stop: ${seconds(performance.now() - stopping)}`);
        }
        return failures === 0 ? 0 : 1;
    },
};

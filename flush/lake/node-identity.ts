/**
 * Who an ingester is on a shared bucket: its `node_id` (configured, unique per ingester) and the
 * incarnation of its data directory (random, made at the directory's first start, kept in
 * `<data>/node.json`). Object names carry both, so ingesters never write one key, and a data
 * directory started afresh under an old `node_id` never takes an earlier one's names or its
 * "applied" marks in the manifests.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { hostname } from "node:os";
import { messageOf, SluiceError } from "../../src/errors.js";
import { readIfExists, replaceFileAtomically } from "../../src/fs/durable.js";
import type { FileSystem } from "../../src/fs/file-system.js";

export interface NodeIdentity {
    readonly nodeId: string;
    readonly incarnation: string;
}

/** `node_id/incarnation`: the holder of leases and the key of `applied` marks. */
export function nodeTag(identity: NodeIdentity): string {
    return `${identity.nodeId}/${identity.incarnation}`;
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export class NodeIdentityError extends SluiceError {
    readonly code = "node-identity";
}

/** Why `nodeId` cannot name an ingester, or undefined. */
export function nodeIdProblem(nodeId: string): string | undefined {
    return NODE_ID.test(nodeId) ? undefined : `node_id "${nodeId}" must be 1 to 63 letters, digits, '-' or '_', starting with a letter or digit`;
}

/** The machine's host name as a node_id (the default when none is configured). */
export function hostNodeId(): string {
    const cleaned = hostname()
        .replace(/[^A-Za-z0-9_-]/g, "-")
        .replace(/^[^A-Za-z0-9]+/, "")
        .slice(0, 63);
    return cleaned === "" ? "sluice" : cleaned;
}

/**
 * The data directory's identity: created on its first start (with `configured`, or the host name
 * when that is empty), then the same at every start. A configured node_id that differs from the
 * one the directory was created with stops the start: its half-done steps would land under
 * another name.
 */
export async function loadNodeIdentity(fs: FileSystem, dataDir: string, configured: string): Promise<NodeIdentity> {
    const path = join(dataDir, "node.json");
    const stored = await readIfExists(fs, path);
    if (stored !== undefined) {
        let identity: Partial<NodeIdentity>;
        try {
            identity = JSON.parse(stored.toString("utf8")) as Partial<NodeIdentity>;
        } catch (error) {
            throw new NodeIdentityError(`${path} is not JSON (${messageOf(error)}); restore it, or delete it only if this directory has nothing left to flush`);
        }
        if (typeof identity.nodeId !== "string" || typeof identity.incarnation !== "string") throw new NodeIdentityError(`${path} lacks nodeId or incarnation`);
        if (configured !== "" && configured !== identity.nodeId) {
            throw new NodeIdentityError(
                `node_id is "${configured}" but ${dataDir} belongs to node "${identity.nodeId}": configure node_id = "${identity.nodeId}", or give this node another data directory`,
            );
        }
        return { nodeId: identity.nodeId, incarnation: identity.incarnation };
    }
    const nodeId = configured === "" ? hostNodeId() : configured;
    const problem = nodeIdProblem(nodeId);
    if (problem !== undefined) throw new NodeIdentityError(problem);
    const identity = { nodeId, incarnation: randomBytes(4).toString("hex") };
    await replaceFileAtomically(fs, path, `${JSON.stringify(identity)}\n`);
    return identity;
}

/**
 * The HTTP limits, checked together before Sluice listens: body budget against body size,
 * header against request timeout, and connections against the file-descriptor limit
 * (RLIMIT_NOFILE), which must also leave descriptors for the WAL, the manifest, flush files and
 * what the process holds open already. A configuration that does not fit is refused, saying why.
 */
import { readFile, readdir } from "node:fs/promises";
import type { Config } from "../../src/config/schema.js";
import { SluiceError } from "../../src/errors.js";

/** Descriptors kept free beyond those open at start: WAL rotation, manifest, flush temp files, directory fsyncs, schema saves. */
export const DESCRIPTOR_RESERVE = 128;
/**
 * `http.max_connections = 0` takes the most that fit, at most this many: a connection whose body
 * is pending holds node's 64 KiB read buffer and its objects, about 110 KiB measured (bench
 * hostile), so 1,024 of them stay near 110 MiB.
 */
export const AUTO_MAX_CONNECTIONS = 1024;
/** Fewer connections than this is no server: refuse to start. */
const MIN_CONNECTIONS = 16;

export class HttpLimitError extends SluiceError {
    readonly code = "http-limits";
}

export interface Descriptors {
    /** The soft RLIMIT_NOFILE, when known (Linux: /proc/self/limits). */
    readonly limit: number | undefined;
    /** Descriptors open now, when known (Linux: /proc/self/fd). */
    readonly open: number | undefined;
}

/** This process's descriptor limit and count (both undefined where /proc is missing). */
export async function processDescriptors(proc = "/proc/self"): Promise<Descriptors> {
    const [limits, fds] = await Promise.all([readFile(`${proc}/limits`, "utf8").catch(() => undefined), readdir(`${proc}/fd`).catch(() => undefined)]);
    const soft = limits === undefined ? undefined : /^Max open files\s+(\d+|unlimited)\s/m.exec(limits)?.[1];
    return { limit: soft === undefined || soft === "unlimited" ? undefined : Number(soft), open: fds?.length };
}

/**
 * The connection limit: `configured`, or with 0 the most that fit (at most
 * `AUTO_MAX_CONNECTIONS`); refused when it would not leave `DESCRIPTOR_RESERVE` free.
 */
export function connectionLimit(configured: number, descriptors: Descriptors): number {
    const { limit, open } = descriptors;
    if (limit === undefined) return configured === 0 ? AUTO_MAX_CONNECTIONS : configured;
    const held = open ?? 0;
    const fit = limit - held - DESCRIPTOR_RESERVE;
    const raise = "raise the limit (ulimit -n, systemd LimitNOFILE=, docker run --ulimit nofile=N:N)";
    const why = `the file-descriptor limit (RLIMIT_NOFILE) is ${limit}, ${held} are open and ${DESCRIPTOR_RESERVE} are kept for the WAL, the manifest and flush files`;
    if (fit < MIN_CONNECTIONS) throw new HttpLimitError(`too few file descriptors to serve: ${why}, which leaves ${Math.max(0, fit)} for connections; ${raise}`);
    if (configured === 0) return Math.min(fit, AUTO_MAX_CONNECTIONS);
    if (configured > fit) {
        throw new HttpLimitError(`http.max_connections = ${configured} does not fit: ${why}, so at most ${fit} connections fit. Lower it (0 takes the most that fit) or ${raise}`);
    }
    return configured;
}

/** The checks across HTTP keys that one key's range cannot express. */
export function checkHttpKeys(config: Config): void {
    const { http } = config;
    if (http.max_inflight_body_bytes < http.max_body_bytes) {
        throw new HttpLimitError(
            `http.max_inflight_body_bytes (${http.max_inflight_body_bytes}) is below http.max_body_bytes (${http.max_body_bytes}): a body of the largest allowed size could never be read. Raise it or lower http.max_body_bytes`,
        );
    }
    if (http.headers_timeout_ms > http.request_timeout_ms) {
        throw new HttpLimitError(
            `http.headers_timeout_ms (${http.headers_timeout_ms}) is above http.request_timeout_ms (${http.request_timeout_ms}): the request timeout covers the headers too`,
        );
    }
}

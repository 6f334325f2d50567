/**
 * The per-request metrics, `sluice_http_requests_total` and `sluice_http_request_duration_seconds`
 * by path and status, kept in plain arrays and written out as Prometheus text when /metrics is
 * scraped. prom-client would validate and hash the labels on every call (1-2 µs a request,
 * measured); this costs two map lookups and a short scan of the bucket bounds.
 */

/** Upper bounds of the duration buckets, in seconds (then +Inf). */
export const REQUEST_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

interface Cell {
    readonly labels: string;
    /** Requests per bucket, not cumulative; the last one is +Inf. */
    readonly buckets: Float64Array;
    count: number;
    sum: number;
}

/** A label value as the text format writes it. */
function labelValue(value: string): string {
    return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

export class RequestMetrics {
    readonly #byPath = new Map<string, Map<number, Cell>>();

    // Invariant kept: counts only grow, so the counter and the histogram never go down.
    record(path: string, status: number, seconds: number): void {
        let byStatus = this.#byPath.get(path);
        if (byStatus === undefined) this.#byPath.set(path, (byStatus = new Map<number, Cell>()));
        let cell = byStatus.get(status);
        if (cell === undefined) {
            cell = { labels: `path="${labelValue(path)}",status="${status}"`, buckets: new Float64Array(REQUEST_SECONDS.length + 1), count: 0, sum: 0 };
            byStatus.set(status, cell);
        }
        let bucket = 0;
        while (bucket < REQUEST_SECONDS.length && seconds > REQUEST_SECONDS[bucket]!) bucket++;
        cell.buckets[bucket]!++;
        cell.count++;
        cell.sum += seconds;
    }

    /** Both families in the Prometheus text format, each line ending in "\n". */
    exposition(): string {
        const cells = [...this.#byPath.values()].flatMap((byStatus) => [...byStatus.values()]);
        const lines = [
            "# HELP sluice_http_requests_total HTTP requests by path and status",
            "# TYPE sluice_http_requests_total counter",
            ...cells.map((cell) => `sluice_http_requests_total{${cell.labels}} ${cell.count}`),
            "# HELP sluice_http_request_duration_seconds HTTP requests by path and status: from their headers to their reply (body read, decoding and WAL sync included)",
            "# TYPE sluice_http_request_duration_seconds histogram",
        ];
        for (const cell of cells) {
            let cumulative = 0;
            cell.buckets.forEach((count, bucket) => {
                cumulative += count;
                const le = bucket < REQUEST_SECONDS.length ? String(REQUEST_SECONDS[bucket]) : "+Inf";
                lines.push(`sluice_http_request_duration_seconds_bucket{${cell.labels},le="${le}"} ${cumulative}`);
            });
            lines.push(`sluice_http_request_duration_seconds_sum{${cell.labels}} ${cell.sum}`, `sluice_http_request_duration_seconds_count{${cell.labels}} ${cell.count}`);
        }
        return `${lines.join("\n")}\n`;
    }
}

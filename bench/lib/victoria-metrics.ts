/** Debian's VictoriaMetrics as the peer benchmarks run it: installed when missing, on 127.0.0.1 and a free port. */
import { ensurePackage } from "../../test/helpers/debian.js";
import { type ServiceProcess, freePort, startService } from "../../test/helpers/processes.js";

/** The `victoria-metrics` binary (apt-get installs it when missing): its path and version. */
export function findVictoriaMetrics(): Promise<{ path: string; version: string }> {
    return ensurePackage("victoria-metrics", "victoria-metrics");
}

/** `victoria-metrics` keeping its data in `dir`, with more flags; resolves once `/health` answers. */
export async function startVictoriaMetrics(binary: string, dir: string, flags: readonly string[] = []): Promise<{ service: ServiceProcess; base: string }> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const { service } = await startService(
        "victoria-metrics",
        binary,
        ["-httpListenAddr", `127.0.0.1:${port}`, "-storageDataPath", dir, "-retentionPeriod", "1y", ...flags],
        async () => {
            const response = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) });
            await response.arrayBuffer();
            return response.ok;
        },
    );
    return { service, base };
}

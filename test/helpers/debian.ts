/**
 * Debian packages that end-to-end checks and benchmarks run against (Prometheus,
 * VictoriaMetrics, InfluxDB): installed with apt-get when missing, as root.
 */
import { runCommand } from "./processes.js";

let aptUpdated: Promise<void> | undefined;

function say(message: string): void {
    process.stderr.write(`${message}\n`);
}

async function commandPath(name: string): Promise<string | undefined> {
    const { code, stdout } = await runCommand("sh", ["-c", `command -v ${name}`]);
    return code === 0 && stdout.trim() !== "" ? stdout.trim() : undefined;
}

/** The binary of a Debian package, installed with apt-get when missing (root only). */
export async function ensurePackage(pkg: string, binary: string): Promise<{ path: string; version: string }> {
    let path = await commandPath(binary);
    if (path === undefined) {
        if (process.getuid?.() !== 0) throw new Error(`${binary} is not installed and this is not root: run \`apt-get install -y ${pkg}\` first`);
        aptUpdated ??= (async () => {
            say("apt-get update...");
            const update = await runCommand("apt-get", ["update"]);
            if (update.code !== 0) say(`apt-get update failed (exit ${update.code}), trying the install anyway: ${update.stderr.trim().split("\n").slice(-3).join(" | ")}`);
        })();
        await aptUpdated;
        say(`apt-get install -y ${pkg}...`);
        const install = await runCommand("apt-get", ["install", "-y", pkg]);
        if (install.code !== 0) throw new Error(`apt-get install -y ${pkg} failed (exit ${install.code}): ${install.stderr.trim().split("\n").slice(-3).join(" | ")}`);
        path = await commandPath(binary);
        if (path === undefined) throw new Error(`apt-get installed ${pkg} but there is no ${binary} on PATH`);
    }
    const query = await runCommand("dpkg-query", ["-W", "-f=${Version}", pkg]);
    return { path, version: query.code === 0 ? `${pkg} ${query.stdout.trim()}` : `${binary} (version unknown)` };
}

/**
 * `npm run e2e -- deployment`: `systemd-analyze verify` on config/sluice.service (Debian's
 * `systemd`, installed with apt-get when missing). It parses every directive as systemd will and
 * checks that ExecStart's program exists; vitest's test/deployment.test.ts runs the ExecStart.
 * A directive systemd cannot parse is only a warning to it (exit 0), so any output fails here.
 */
import { fileURLToPath } from "node:url";
import { ensurePackage } from "../helpers/debian.js";
import { runCommand } from "../helpers/processes.js";
import type { EndToEnd } from "./run.js";

const UNIT = fileURLToPath(new URL("../../../config/sluice.service", import.meta.url));

export const check: EndToEnd = {
    about: "systemd-analyze verify on config/sluice.service (installs Debian's systemd when missing)",
    async run() {
        const { path, version } = await ensurePackage("systemd", "systemd-analyze");
        process.stdout.write(`${version}: ${path} verify ${UNIT}\n`);
        const result = await runCommand(path, ["verify", UNIT]);
        const output = `${result.stdout}${result.stderr}`.trim();
        if (result.code !== 0 || output !== "") {
            process.stdout.write(`FAIL (exit ${result.code}):\n${output}\n`);
            return 1;
        }
        process.stdout.write("ok: systemd parses every directive and finds ExecStart's program\n");
        return 0;
    },
};

/** Loop devices and ext4 mounts, each registered with the teardown the moment it exists. */
import { mkdir } from "node:fs/promises";
import { sleep } from "../../helpers/load.js";
import { CommandFailedError, type Teardown, run } from "./system.js";

export interface LoopDevice {
    readonly device: string;
    detach(): Promise<void>;
}

export async function attachLoop(file: string, teardown: Teardown): Promise<LoopDevice> {
    const device = (await run("losetup", ["--find", "--show", file])).stdout.trim();
    const detach = teardown.add(`losetup -d ${device}`, () => run("losetup", ["-d", device]));
    return { device, detach };
}

export interface Mount {
    readonly dir: string;
    unmount(): Promise<void>;
}

/** Mounts ext4 (replaying its journal); unmounting retries while the file system is busy. */
export async function mountExt4(device: string, dir: string, teardown: Teardown): Promise<Mount> {
    await mkdir(dir, { recursive: true });
    await run("mount", ["-t", "ext4", device, dir]);
    const unmount = teardown.add(`umount ${dir}`, async () => {
        for (let attempt = 1; ; attempt++) {
            const result = await run("umount", [dir], { allowFailure: true });
            if (result.code === 0) return;
            if (attempt >= 50) throw new CommandFailedError(`umount ${dir}`, result);
            await sleep(100);
        }
    });
    return { dir, unmount };
}

export interface FsckResult {
    /** e2fsck's exit code: 0 clean; 4 errors left uncorrected (with -n); 8 and up, it could not check. */
    readonly code: number | null;
    readonly summary: string;
}

/** `e2fsck -fn`: a forced, read-only check of an unmounted file system. */
export async function fsck(device: string): Promise<FsckResult> {
    const result = await run("e2fsck", ["-fn", device], { allowFailure: true });
    const lines = `${result.stdout}\n${result.stderr}`.split("\n").filter((line) => line.trim() !== "");
    return { code: result.code, summary: result.code === 0 ? "clean" : lines.slice(-6).join(" | ") };
}

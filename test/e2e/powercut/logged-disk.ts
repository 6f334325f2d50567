/**
 * The logged disk: an ext4 image whose every later block write and flush barrier is recorded by
 * `blocklog.py` (a FUSE file a loop device sits on), and the log read back: which writes came
 * before which barrier, so any cut point can be rebuilt (see cut-images.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { join } from "node:path";
import { SluiceError } from "../../../src/errors.js";
import { sleep } from "../../helpers/load.js";
import { type Finished, type Teardown, finished, repoRoot, run, within } from "./system.js";

const DAEMON = join(repoRoot(), "test", "e2e", "powercut", "blocklog.py");
/** Debian's python3-fusepy is installed for the system interpreter, not for a pyenv one on PATH. */
export const SYSTEM_PYTHON = "/usr/bin/python3";

/** Record header: kind (1 byte), u64 LE, u32 LE (blocklog.py's RECORD). */
const HEADER_BYTES = 13;
const WRITE = 0x57; // "W"
const BARRIER = 0x42; // "B"
const END = 0x45; // "E"

export class BlockLogError extends SluiceError {
    readonly code = "block-log";
}

/** A fresh ext4 file system in a sparse file: the disk's content before the log starts. */
export async function makeExt4Image(path: string, bytes: number): Promise<void> {
    await run("truncate", ["-s", String(bytes), path]);
    // Inode tables and journal are written now, into the plain file: nothing the kernel would
    // otherwise zero in the background (ext4lazyinit) pollutes the log.
    // 4 KiB blocks as on any disk of today's size (mke2fs picks 1 KiB for a "small" file system).
    await run("mkfs.ext4", ["-q", "-F", "-b", "4096", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", path]);
}

export interface LoggedDisk {
    /** The FUSE file to put a loop device on. */
    readonly file: string;
    readonly log: string;
    /** Barriers (flushes) recorded so far; a write durable before this call is before barrier `barriers()`. */
    barriers(): number;
    /** Unmounts the FUSE file system (the loop device must be gone) and waits for the daemon: the log is then complete. */
    close(): Promise<void>;
}

/**
 * Serves `image` (changed in place) as `<dir>/fuse/disk` and logs to `<dir>/writes.log`. The
 * daemon is stopped by the teardown if `close` is never reached.
 */
export async function startLoggedDisk(dir: string, image: string, teardown: Teardown): Promise<LoggedDisk> {
    const mountpoint = join(dir, "fuse");
    const log = join(dir, "writes.log");
    const counter = join(dir, "barriers");
    await run("mkdir", ["-p", mountpoint]);
    const daemon: ChildProcess = spawn(SYSTEM_PYTHON, [DAEMON, mountpoint, image, log, counter], { stdio: ["ignore", "pipe", "pipe"] });
    const exited: Promise<Finished> = finished(daemon);
    const unmount = async () => {
        await run("umount", [mountpoint], { allowFailure: true });
        const done = await within(exited, 10_000);
        if (done === undefined) {
            daemon.kill("SIGKILL");
            await exited;
            await run("umount", ["-l", mountpoint], { allowFailure: true });
        }
    };
    const undo = teardown.add(`unmount the logged disk ${mountpoint}`, unmount);
    const file = join(mountpoint, "disk");
    const size = (await stat(image)).size;
    for (let waited = 0; ; waited += 50) {
        const info = await stat(file).catch(() => undefined);
        if (info?.size === size) break;
        if (daemon.exitCode !== null || waited > 20_000) {
            await undo();
            const result = await exited;
            throw new BlockLogError(`blocklog.py did not serve ${file}: ${result.stderr.trim() || `exit ${result.code}`}`);
        }
        await sleep(50);
    }
    const counterFd = openSync(counter, "r");
    const word = Buffer.alloc(8);
    return {
        file,
        log,
        barriers: () => {
            readSync(counterFd, word, 0, 8, 0);
            return Number(word.readBigUInt64LE(0));
        },
        close: async () => {
            closeSync(counterFd);
            await undo();
            const result = await exited;
            if (result.code !== 0) throw new BlockLogError(`blocklog.py exited ${result.code ?? result.signal}: ${result.stderr.trim()}`);
        },
    };
}

/** A recorded run: every write in order, and how many writes precede each barrier. */
export interface BlockLog {
    readonly path: string;
    readonly writes: number;
    readonly barriers: number;
    /** Per write: where its bytes start in the log file. */
    readonly logOffsets: Float64Array;
    /** Per write: where it goes on the disk. */
    readonly diskOffsets: Float64Array;
    readonly lengths: Uint32Array;
    /** `writesBefore[k]`: the writes recorded before barrier k (k = 1..barriers); `[0]` = 0. */
    readonly writesBefore: Uint32Array;
}

/** A growable Float64Array/Uint32Array pair of columns (a run logs up to a few million writes). */
class Column<T extends Float64Array | Uint32Array> {
    length = 0;
    constructor(
        public values: T,
        readonly make: (size: number) => T,
    ) {}
    push(value: number): void {
        if (this.length === this.values.length) {
            const grown = this.make(this.values.length * 2);
            grown.set(this.values);
            this.values = grown;
        }
        this.values[this.length++] = value;
    }
    done(): T {
        return this.values.slice(0, this.length) as T;
    }
}

/** Reads a file front to back through one buffer, refilling it only when a header crosses its end. */
class Scanner {
    readonly #chunk = Buffer.alloc(8 << 20);
    #start = 0;
    #filled = 0;
    constructor(readonly handle: FileHandle) {}

    /** The `bytes` bytes at `position` (valid until the next call), or undefined past the end. */
    async at(position: number, bytes: number): Promise<Buffer | undefined> {
        if (position < this.#start || position + bytes > this.#start + this.#filled) {
            this.#start = position;
            this.#filled = (await this.handle.read(this.#chunk, 0, this.#chunk.length, position)).bytesRead;
            if (this.#filled < bytes) return undefined;
        }
        return this.#chunk.subarray(position - this.#start, position - this.#start + bytes);
    }
}

// Invariant kept: a log is accepted only whole: every record complete, barriers numbered 1, 2, …
// without a gap, and the end record present with the number of writes seen.
export async function readBlockLog(path: string): Promise<BlockLog> {
    const handle = await open(path, "r");
    const logOffsets = new Column(new Float64Array(1 << 16), (n) => new Float64Array(n));
    const diskOffsets = new Column(new Float64Array(1 << 16), (n) => new Float64Array(n));
    const lengths = new Column(new Uint32Array(1 << 16), (n) => new Uint32Array(n));
    const writesBefore = new Column(new Uint32Array(1 << 12), (n) => new Uint32Array(n));
    writesBefore.push(0);
    try {
        const { size } = await handle.stat();
        const scanner = new Scanner(handle);
        for (let position = 0; ;) {
            const header = await scanner.at(position, HEADER_BYTES);
            if (header === undefined) throw new BlockLogError(`${path}: ends at byte ${position} without its end record`);
            const kind = header[0];
            const number = Number(header.readBigUInt64LE(1));
            const length = header.readUInt32LE(9);
            position += HEADER_BYTES;
            if (kind === WRITE) {
                if (position + length > size) throw new BlockLogError(`${path}: write ${lengths.length} is cut short`);
                logOffsets.push(position);
                diskOffsets.push(number);
                lengths.push(length);
                position += length;
            } else if (kind === BARRIER) {
                if (number !== writesBefore.length) throw new BlockLogError(`${path}: barrier ${number} where ${writesBefore.length} was due`);
                writesBefore.push(lengths.length);
            } else if (kind === END) {
                if (number !== lengths.length) throw new BlockLogError(`${path}: the end record counts ${number} writes, the log holds ${lengths.length}`);
                break;
            } else throw new BlockLogError(`${path}: unknown record kind ${kind} at byte ${position - HEADER_BYTES}`);
        }
    } finally {
        await handle.close();
    }
    return {
        path,
        writes: lengths.length,
        barriers: writesBefore.length - 1,
        logOffsets: logOffsets.done(),
        diskOffsets: diskOffsets.done(),
        lengths: lengths.done(),
        writesBefore: writesBefore.done(),
    };
}

/**
 * Disk images as a power cut would leave them. A cut at barrier k holds the initial image and
 * every write recorded before barrier k (all of them completed before a flush that completed);
 * a drive may also have persisted any part of what was written after that flush and not yet
 * flushed, so a cut may add a random subset of the 4 KiB blocks the writes of the next epoch
 * (between barrier k and k+1) touched, each applied in log order.
 */
import { type FileHandle, open, rm } from "node:fs/promises";
import { join } from "node:path";
import type { BlockLog } from "./logged-disk.js";
import { run } from "./system.js";

/** A drive persists whole sectors; ext4 writes whole 4 KiB blocks. */
export const BLOCK_BYTES = 4096;

export interface Cut {
    /** The barrier the cut follows (1..log.barriers). */
    readonly barrier: number;
    /** When set: each block written in the next epoch is also kept with this probability. */
    readonly unflushedKept?: { readonly probability: number; readonly random: () => number };
}

export interface BuiltImage {
    readonly path: string;
    /** Blocks written in the epoch after the barrier (what was not yet flushed). */
    readonly unflushedBlocks: number;
    /** How many of them this image holds. */
    readonly keptBlocks: number;
}

/**
 * Builds cut images from one log, in ascending barrier order: a prefix image is brought forward
 * write by write, and each cut is a sparse copy of it plus its share of the next epoch.
 */
export class CutImages {
    #applied = 0;
    readonly #data = Buffer.alloc(1 << 20);

    private constructor(
        readonly log: BlockLog,
        readonly dir: string,
        readonly logFile: FileHandle,
        readonly prefix: FileHandle,
        readonly prefixPath: string,
    ) {}

    static async open(log: BlockLog, initialImage: string, dir: string): Promise<CutImages> {
        const prefixPath = join(dir, "prefix.img");
        await run("cp", ["--sparse=always", initialImage, prefixPath]);
        const logFile = await open(log.path, "r");
        return new CutImages(log, dir, logFile, await open(prefixPath, "r+"), prefixPath);
    }

    // Invariant kept: the prefix image holds the initial image plus writes [0, #applied) of the
    // log, so a cut never goes backwards (callers build in ascending barrier order).
    async build(cut: Cut, name: string): Promise<BuiltImage> {
        const { writesBefore, writes } = this.log;
        const end = writesBefore[cut.barrier];
        if (end === undefined) throw new RangeError(`barrier ${cut.barrier} is not in the log (it has ${this.log.barriers})`);
        if (end < this.#applied) throw new RangeError(`cuts must come in ascending order: barrier ${cut.barrier} is behind the prefix image`);
        for (; this.#applied < end; this.#applied++) await this.#apply(this.#applied, this.prefix);
        const path = join(this.dir, name);
        await run("cp", ["--sparse=always", this.prefixPath, path]);
        const epochEnd = writesBefore[cut.barrier + 1] ?? writes;
        let unflushedBlocks = 0;
        let keptBlocks = 0;
        const image = await open(path, "r+");
        try {
            for (let index = end; index < epochEnd; index++) {
                const blocks = Math.ceil(this.log.lengths[index]! / BLOCK_BYTES);
                unflushedBlocks += blocks;
                const keep = cut.unflushedKept;
                if (keep === undefined) continue;
                for (let block = 0; block < blocks; block++) {
                    if (keep.random() >= keep.probability) continue;
                    keptBlocks++;
                    await this.#apply(index, image, block);
                }
            }
        } finally {
            await image.close();
        }
        return { path, unflushedBlocks, keptBlocks };
    }

    /** Writes log write `index` into `target` (only its `block`-th 4 KiB block when given). */
    async #apply(index: number, target: FileHandle, block?: number): Promise<void> {
        const length = this.log.lengths[index]!;
        const from = block === undefined ? 0 : block * BLOCK_BYTES;
        const bytes = block === undefined ? length : Math.min(BLOCK_BYTES, length - from);
        const data = bytes <= this.#data.length ? this.#data.subarray(0, bytes) : Buffer.alloc(bytes);
        const { bytesRead } = await this.logFile.read(data, 0, bytes, this.log.logOffsets[index]! + from);
        if (bytesRead !== bytes) throw new Error(`${this.log.path}: write ${index} reads short`);
        await target.write(data, 0, bytes, this.log.diskOffsets[index]! + from);
    }

    /** Applies every write left to the prefix image and returns its path: the whole log replayed. */
    async replayAll(): Promise<string> {
        for (; this.#applied < this.log.writes; this.#applied++) await this.#apply(this.#applied, this.prefix);
        return this.prefixPath;
    }

    async close(): Promise<void> {
        await this.prefix.close();
        await this.logFile.close();
        await rm(this.prefixPath, { force: true });
    }
}

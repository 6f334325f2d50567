/**
 * Streams the entries of one WAL file without loading it whole, applying DESIGN.md §2's policy:
 * a short or torn tail ends the file cleanly, a CRC mismatch skips that entry (alignment kept)
 * and is counted, a bad file header skips the file and is reported.
 */
import { type FileHandle, type FileSystem, nodeFileSystem } from "../fs/file-system.js";
import { ENTRY_HEADER_SIZE, FILE_HEADER_SIZE, MAX_PAYLOAD_BYTES, decodeEntryHeader, encodeFileHeader, fileHeaderProblem, payloadMatchesCrc } from "./format.js";
import type { WalFileRef } from "./files.js";

const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

export interface WalEntry {
    readonly kind: "entry";
    readonly sequence: number;
    readonly offset: number;
    readonly appendTimeUs: bigint;
    /** The payload bytes; valid only until the iterator advances (the reader reuses its buffer). */
    readonly payload: Buffer;
    readonly payloadLength: number;
}

export interface WalCorruptEntry {
    readonly kind: "corrupt";
    readonly sequence: number;
    readonly offset: number;
    readonly reason: string;
}

export type WalRecord = WalEntry | WalCorruptEntry;

/** What reading one file found; complete once its records have been iterated to the end. */
export interface WalFileScan {
    readonly file: WalFileRef;
    /** Entries whose bytes are complete, corrupt ones included: each took a sequence number. */
    entries: number;
    corrupted: number;
    /** Bytes of the file. */
    bytes: number;
    /** Where the readable entries end. */
    endOffset: number;
    /** Set when the file ends inside an entry (a torn write): the offset where that entry began. */
    tornTailOffset: number | undefined;
    /** Set when the file is skipped because its header is missing or wrong. */
    badHeader: string | undefined;
    /** Set when reading stopped at an entry whose length cannot be trusted. */
    stoppedBy: string | undefined;
}

export interface ReadOptions {
    /** Read and check payloads (true), or only walk the headers to count and size entries. */
    readonly payloads?: boolean;
    readonly chunkBytes?: number;
    readonly fileSystem?: FileSystem;
}

/** The sequence one past the file's last entry. */
export function nextSequenceAfter(scan: WalFileScan): number {
    return scan.file.firstSequence + scan.entries;
}

/** Reads one WAL file front to back; `scan` holds the totals once `records()` is exhausted. */
export class WalFileReader {
    readonly scan: WalFileScan;
    readonly #payloads: boolean;
    readonly #chunkBytes: number;
    readonly #fs: FileSystem;

    constructor(file: WalFileRef, options: ReadOptions = {}) {
        this.scan = {
            file,
            entries: 0,
            corrupted: 0,
            bytes: 0,
            endOffset: 0,
            tornTailOffset: undefined,
            badHeader: undefined,
            stoppedBy: undefined,
        };
        this.#payloads = options.payloads ?? true;
        this.#chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
        this.#fs = options.fileSystem ?? nodeFileSystem;
    }

    async *records(): AsyncGenerator<WalRecord> {
        const handle = await this.#fs.open(this.scan.file.path, "read");
        try {
            // A limit file cuts the file short: what lies past it was never acknowledged.
            const size = Math.min(await handle.size(), this.scan.file.limit ?? Number.POSITIVE_INFINITY);
            yield* this.#walk(new ChunkedFile(handle, size, this.#chunkBytes));
        } catch (error) {
            // Bytes past the last acknowledged entry were truncated while read: a torn tail.
            if (!(error instanceof FileShrankError)) throw error;
            this.scan.tornTailOffset = this.scan.endOffset;
        } finally {
            await handle.close();
        }
    }

    /** Iterates to the end and returns the scan. */
    async scanToEnd(): Promise<WalFileScan> {
        const records = this.records();
        while (!(await records.next()).done);
        return this.scan;
    }

    async *#walk(file: ChunkedFile): AsyncGenerator<WalRecord> {
        const scan = this.scan;
        scan.bytes = file.size;
        const header = await file.read(0, Math.min(FILE_HEADER_SIZE, file.size));
        if (header.length < FILE_HEADER_SIZE && encodeFileHeader().subarray(0, header.length).equals(header)) {
            // A crash while the file was being created: no entry was ever in it.
            scan.tornTailOffset = 0;
            return;
        }
        const problem = fileHeaderProblem(header);
        if (problem !== undefined) {
            scan.badHeader = problem;
            return;
        }
        let offset = FILE_HEADER_SIZE;
        scan.endOffset = offset;
        while (offset < file.size) {
            if (offset + ENTRY_HEADER_SIZE > file.size) {
                scan.tornTailOffset = offset;
                return;
            }
            const header = decodeEntryHeader(await file.read(offset, ENTRY_HEADER_SIZE));
            if (header.payloadLength === 0) {
                // Our writer never writes an empty payload: zeros here are space the file system
                // allocated for a write that never landed.
                scan.tornTailOffset = offset;
                return;
            }
            if (header.payloadLength > MAX_PAYLOAD_BYTES) {
                scan.corrupted++;
                scan.stoppedBy = `entry at offset ${offset} claims ${header.payloadLength} bytes, above the ${MAX_PAYLOAD_BYTES}-byte limit`;
                return;
            }
            const end = offset + ENTRY_HEADER_SIZE + header.payloadLength;
            if (end > file.size) {
                scan.tornTailOffset = offset;
                return;
            }
            const sequence = scan.file.firstSequence + scan.entries;
            const payload = this.#payloads ? await file.read(offset + ENTRY_HEADER_SIZE, header.payloadLength) : undefined;
            scan.entries++;
            scan.endOffset = end;
            if (payload !== undefined) {
                if (payloadMatchesCrc(payload, header.crc)) {
                    yield { kind: "entry", sequence, offset, appendTimeUs: header.appendTimeUs, payload, payloadLength: header.payloadLength };
                } else {
                    scan.corrupted++;
                    yield { kind: "corrupt", sequence, offset, reason: "CRC32 mismatch" };
                }
            }
            offset = end;
        }
    }
}

/** The file got shorter while it was read: a failed group truncated away by the writer. */
class FileShrankError extends Error {}

/** Positional reads served from one reusable chunk; larger reads get their own buffer. */
class ChunkedFile {
    #chunk: Buffer;
    #chunkStart = 0;
    #chunkLength = 0;

    constructor(
        readonly handle: FileHandle,
        readonly size: number,
        readonly chunkBytes: number,
    ) {
        this.#chunk = Buffer.allocUnsafe(chunkBytes);
    }

    // Invariant kept: the result holds exactly the file's bytes [position, position + length).
    async read(position: number, length: number): Promise<Buffer> {
        const start = position - this.#chunkStart;
        if (start >= 0 && start + length <= this.#chunkLength) return this.#chunk.subarray(start, start + length);
        if (length > this.chunkBytes) return this.#readFully(Buffer.allocUnsafe(length), position, length);
        this.#chunkStart = position;
        this.#chunkLength = Math.min(this.chunkBytes, this.size - position);
        await this.#readFully(this.#chunk, position, this.#chunkLength);
        return this.#chunk.subarray(0, length);
    }

    async #readFully(target: Buffer, position: number, length: number): Promise<Buffer> {
        let done = 0;
        while (done < length) {
            const { bytesRead } = await this.handle.read(target, done, length - done, position + done);
            if (bytesRead === 0) throw new FileShrankError();
            done += bytesRead;
        }
        return target.subarray(0, length);
    }
}

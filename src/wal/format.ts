/**
 * The WAL's byte format (DESIGN.md §2, compatible with Arc's): pure functions, no I/O.
 *
 * File:  "ARCW" | u16 version = 1 | u8 checksum type = 1 (CRC32-IEEE)
 * Entry: u32 payload length | u64 append time (µs) | u32 CRC32(payload) | payload
 * All integers big-endian.
 */
import { crc32 } from "node:zlib";

export const FILE_MAGIC = Buffer.from("ARCW", "ascii");
export const FILE_VERSION = 1;
export const CHECKSUM_CRC32 = 1;
export const FILE_HEADER_SIZE = 7;
export const ENTRY_HEADER_SIZE = 16;
/** The largest payload an entry may carry (Arc's `MaxWALPayloadSize`). */
export const MAX_PAYLOAD_BYTES = 100 * 1024 * 1024;
export const WAL_FILE_SUFFIX = ".wal";
const SEQUENCE_DIGITS = 20;

export function encodeFileHeader(): Buffer {
    const header = Buffer.alloc(FILE_HEADER_SIZE);
    FILE_MAGIC.copy(header, 0);
    header.writeUInt16BE(FILE_VERSION, 4);
    header.writeUInt8(CHECKSUM_CRC32, 6);
    return header;
}

/** Why a file header is unusable, or undefined when it is a valid version-1 CRC32 header. */
export function fileHeaderProblem(header: Buffer): string | undefined {
    if (header.length < FILE_HEADER_SIZE) return `header is ${header.length} bytes, expected ${FILE_HEADER_SIZE}`;
    if (!header.subarray(0, 4).equals(FILE_MAGIC)) return `magic is 0x${header.subarray(0, 4).toString("hex")}, expected "ARCW"`;
    const version = header.readUInt16BE(4);
    if (version !== FILE_VERSION) return `version ${version}, expected ${FILE_VERSION}`;
    const checksum = header.readUInt8(6);
    if (checksum !== CHECKSUM_CRC32) return `checksum type ${checksum}, expected ${CHECKSUM_CRC32} (CRC32)`;
    return undefined;
}

export interface EntryHeader {
    readonly payloadLength: number;
    readonly appendTimeUs: bigint;
    readonly crc: number;
}

/** The 16-byte header for `payload` (given as its parts, so nothing is concatenated). */
export function encodeEntryHeader(parts: readonly Uint8Array[], appendTimeUs: bigint): Buffer {
    let length = 0;
    let crc = 0;
    for (const part of parts) {
        length += part.length;
        crc = crc32(part, crc);
    }
    const header = Buffer.allocUnsafe(ENTRY_HEADER_SIZE);
    header.writeUInt32BE(length, 0);
    header.writeBigUInt64BE(appendTimeUs, 4);
    header.writeUInt32BE(crc, 12);
    return header;
}

export function decodeEntryHeader(bytes: Buffer, offset = 0): EntryHeader {
    return {
        payloadLength: bytes.readUInt32BE(offset),
        appendTimeUs: bytes.readBigUInt64BE(offset + 4),
        crc: bytes.readUInt32BE(offset + 12),
    };
}

export function payloadMatchesCrc(payload: Uint8Array, crc: number): boolean {
    return crc32(payload) === crc;
}

/** The wall clock in microseconds since the epoch, as the entry header stores it. */
export function nowMicros(): bigint {
    return BigInt(Date.now()) * 1000n;
}

/** `<first sequence, 20 digits>.wal` */
export function walFileName(firstSequence: number): string {
    return `${String(firstSequence).padStart(SEQUENCE_DIGITS, "0")}${WAL_FILE_SUFFIX}`;
}

/** The first sequence a WAL file name encodes, or undefined for any other name. */
export function parseWalFileName(name: string): number | undefined {
    if (name.length !== SEQUENCE_DIGITS + WAL_FILE_SUFFIX.length || !name.endsWith(WAL_FILE_SUFFIX)) return undefined;
    const digits = name.slice(0, SEQUENCE_DIGITS);
    if (!/^[0-9]+$/.test(digits)) return undefined;
    const value = Number(digits);
    return Number.isSafeInteger(value) ? value : undefined;
}

/** The WAL's public surface: one module per role behind it (DESIGN.md §2). */
export {
    type AppendOptions,
    type AppendResult,
    type WalItem,
    type SyncMode,
    type WalWriterOptions,
    type WalWriterStats,
    SYNC_MODES,
    WAL_WRITER_DEFAULTS,
    WalWriter,
    isSyncMode,
} from "./writer.js";
export { type WalEntry, type WalFileScan, type WalRecord, WalFileReader, nextSequenceAfter } from "./reader.js";
export { type LocatedRecord, WalDirectoryReader } from "./directory-reader.js";
export { type FlushedThrough, type RecoveryOptions, type RecoveryStats, NOTHING_FLUSHED, recoverWal } from "./recovery.js";
export { type PurgeReport, type PurgeTarget, purgeAll, purgeInactive, purgeOlderThan } from "./purge.js";
export { nextFreeSequence, offlinePurgeTarget, unflushedLowWaterMark } from "./inspect.js";
export { type DecodedPayload, DEFAULT_DATABASE, decodePayload, encodePayload } from "./payload.js";
export { type WalFileRef, listWalFiles } from "./files.js";
export * from "./errors.js";

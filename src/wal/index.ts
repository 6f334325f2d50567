/** The WAL's public surface: what the rest of Sluice uses of it (DESIGN.md §2). */
export { type AppendResult, type SyncMode, type WalObserver, type WalWriterOptions, type WalWriterStats, SYNC_MODES, WalWriter, isSyncMode } from "./writer.js";
export { type RecoveryStats, recoverWal } from "./recovery.js";
export { type PurgeReport, type PurgeTarget, purgeAll, purgeInactive, purgeOlderThan } from "./purge.js";
export { nextFreeSequence, offlinePurgeTarget } from "./inspect.js";
export { type SequencedBatch, readBack } from "./read-back.js";
export { type WalStats, type WalVerification, readWalEntries, verifyWal, walStats } from "./report.js";
export { WalEntryTooLargeError, WalError } from "./errors.js";

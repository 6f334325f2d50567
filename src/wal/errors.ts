import { SluiceError } from "../errors.js";

export abstract class WalError extends SluiceError {}

/** An append whose payload exceeds the format's 100 MiB entry cap. */
export class WalEntryTooLargeError extends WalError {
    readonly code = "wal-entry-too-large";
    constructor(
        readonly bytes: number,
        readonly limit: number,
    ) {
        super(`WAL entry payload of ${bytes} bytes exceeds the ${limit}-byte limit`);
    }
}

/** An append after `close()` began. */
export class WalClosedError extends WalError {
    readonly code = "wal-closed";
    constructor() {
        super("WAL writer is closed");
    }
}

/**
 * A write, sync, truncate or rotation failed (ENOSPC, EIO, …). The entries of the failed group
 * are not acknowledged and not left readable; the writer retries on a fresh file next time.
 */
export class WalIOError extends WalError {
    readonly code = "wal-io";
    override readonly retryable = true;
    readonly errno: string | undefined;
    constructor(operation: string, cause: unknown) {
        const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
        super(`WAL ${operation} failed: ${(cause as Error | undefined)?.message ?? String(cause)}`, { cause });
        this.errno = errno;
    }
}

/**
 * The writer could not undo a failed write (truncate failed too), so the active file may hold
 * entries that were never acknowledged. It refuses further appends until it is reopened.
 */
export class WalFailedError extends WalError {
    readonly code = "wal-failed";
    constructor(cause: unknown) {
        super(`WAL writer stopped after an unrecoverable I/O error: ${(cause as Error | undefined)?.message ?? String(cause)}`, {
            cause,
        });
    }
}

/** A payload that is not a valid WAL entry body (bad envelope, bad msgpack, bad columns). */
export class WalDecodeError extends WalError {
    readonly code = "wal-decode";
}

/** A WAL file whose 7-byte header is missing or wrong. */
export class WalHeaderError extends WalError {
    readonly code = "wal-bad-header";
    constructor(
        readonly file: string,
        reason: string,
    ) {
        super(`${file}: not a WAL file (${reason})`);
    }
}

/** A purge that would delete entries not yet in Parquet. */
export class WalPurgeRefusedError extends WalError {
    readonly code = "wal-purge-refused";
}

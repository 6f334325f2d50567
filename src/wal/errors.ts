import { SluiceError, messageOf } from "../errors.js";

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
        super(`WAL ${operation} failed: ${messageOf(cause)}`, { cause });
        this.errno = errno;
    }
}

/**
 * The writer could not keep its promises: a failed write could not be cut off yet (it retries),
 * an async-mode sync of acknowledged entries failed, or what follows a durable append failed.
 * It refuses appends (until the cut-off succeeds, or until restart).
 */
export class WalFailedError extends WalError {
    readonly code = "wal-failed";
    constructor(cause: unknown) {
        super(`WAL writer stopped after an unrecoverable I/O error: ${messageOf(cause)}`, {
            cause,
        });
    }
}

/** A payload that is not a valid WAL entry body (bad envelope, bad msgpack, bad columns). */
export class WalDecodeError extends WalError {
    readonly code = "wal-decode";
}

/** No WAL file could be created (e.g. ENOSPC at start): appends are refused until one can be. */
export class WalUnavailableError extends WalError {
    readonly code = "wal-unavailable";
    override readonly retryable = true;
    constructor(cause: WalIOError | undefined) {
        super(`no WAL file to write to: ${cause?.message ?? "not created yet"}; retrying`, { cause });
    }
}

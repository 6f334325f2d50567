import { SluiceError } from "../../src/errors.js";

/** Every failure of batch → Parquet encoding, in the worker or in the client that drives it. */
export abstract class EncodeError extends SluiceError {}

/** A batch or options the encoder cannot take (bad shape, bad sequence range, bad option). */
export class EncodeInputError extends EncodeError {
    readonly code = "encode-bad-input";
}

/** Arrow, parquet-wasm or hyparquet-writer failed on a valid input (a wasm panic or allocation failure). */
export class EncodeFailedError extends EncodeError {
    readonly code = "encode-failed";
    override readonly retryable = true;
}

/** The worker thread exited or crashed while it held a job; the next job gets a fresh worker. */
export class EncodeWorkerDiedError extends EncodeError {
    readonly code = "encode-worker-died";
    override readonly retryable = true;
}

/** A job given to (or still queued in) an `EncodeWorker` after `close()` began. */
export class EncodeWorkerClosedError extends EncodeError {
    readonly code = "encode-worker-closed";
    constructor() {
        super("encode worker is closed");
    }
}

/** An error as it crosses the worker boundary: plain data, rebuilt by `encodeErrorFromWire`. */
export interface WireError {
    readonly code: string;
    readonly message: string;
    readonly stack?: string | undefined;
}

export function encodeErrorToWire(error: unknown): WireError {
    if (error instanceof EncodeError) return { code: error.code, message: error.message, stack: error.stack };
    const message = error instanceof Error ? error.message : String(error);
    return { code: "encode-failed", message, stack: error instanceof Error ? error.stack : undefined };
}

export function encodeErrorFromWire(wire: WireError): EncodeError {
    const error =
        wire.code === "encode-bad-input"
            ? new EncodeInputError(wire.message)
            : wire.code === "encode-worker-died"
              ? new EncodeWorkerDiedError(wire.message)
              : new EncodeFailedError(wire.message);
    if (wire.stack !== undefined) error.stack = `${error.stack ?? ""}\n    --- in the encode worker ---\n${wire.stack}`;
    return error;
}

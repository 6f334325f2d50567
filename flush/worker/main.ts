/**
 * The encode worker thread's program (DESIGN.md §1: heavy work never runs on the event loop):
 * started by `EncodeWorker` with its `workerData`, it loads Arrow and parquet-wasm and answers
 * jobs one at a time: encode a flush's rows, merge a partition's files, read files' footers.
 */
import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { encodeErrorToWire } from "../encode/errors.js";
import { type Job, type JobResult, type ReadyMessage, type ReplyMessage, type WorkerData, WORKER_KIND, isJobMessage } from "./messages.js";
import { resultTransfer } from "./transfer.js";

/** A `WebAssembly.RuntimeError` (a Rust panic or trap): the instance may be left inconsistent. */
export function isWasmTrap(error: unknown): boolean {
    // A stack overflow inside wasm surfaces as a RangeError and may leave its heap as corrupt as a trap does.
    return error instanceof Error && (error.name === "RuntimeError" || (error instanceof RangeError && error.message.includes("call stack")));
}

/**
 * Gives the calling thread a lower CPU priority, never a higher one. On Linux a thread's id works
 * as a pid for setpriority(2), and only that thread changes. Nothing changes where that id
 * cannot be trusted: no /proc/thread-self (not Linux), or a /proc of another pid namespace (its
 * `<pid>/task/<tid>` does not name this process), rather than renicing some other process.
 */
function lowerThreadPriority(nice: number): void {
    let tid: number;
    try {
        const match = /^(\d+)\/task\/(\d+)$/.exec(readlinkSync("/proc/thread-self"));
        if (match === null || Number(match[1]) !== process.pid) return;
        tid = Number(match[2]);
    } catch {
        return;
    }
    try {
        if (nice > getPriority(tid)) setPriority(tid, nice);
    } catch {
        // EACCES/EPERM in a locked-down sandbox: encoding still works, at normal priority.
    }
}

async function serve({ nice }: WorkerData): Promise<void> {
    if (nice > 0) lowerThreadPriority(nice);
    const port = parentPort!;
    const { encodeParquet } = await import("../encode/parquet.js");
    const { mergeParquetFiles } = await import("../encode/merge.js");
    const { describeParquet } = await import("../encode/read-parquet.js");
    const { emptyTimings } = await import("../encode/types.js");
    const run = async (job: Job): Promise<JobResult> => {
        switch (job.kind) {
            case "encode": {
                const timings = emptyTimings();
                return { files: encodeParquet(job.input, job.options, timings), timings };
            }
            case "encodeMany": {
                const timings = emptyTimings();
                const outcomes = job.inputs.map((input) => {
                    try {
                        return { files: encodeParquet(input, job.options, timings) };
                    } catch (error) {
                        // A trap may leave the wasm instance corrupt: the whole job fails and the worker is replaced.
                        if (isWasmTrap(error) || isWasmTrap((error as { cause?: unknown } | null)?.cause)) throw error;
                        return { error: encodeErrorToWire(error) };
                    }
                });
                return { outcomes, timings };
            }
            case "merge":
                return mergeParquetFiles(job.request, job.options);
            case "describe":
                return Promise.all(job.paths.map((path) => describeParquet(path)));
        }
    };
    // Jobs run one at a time, in order: the client sends the next only after the reply.
    port.on("message", (message: unknown) => {
        if (!isJobMessage(message)) return;
        run(message.job).then(
            (result) => {
                const reply: ReplyMessage = { kind: "done", id: message.id, result };
                port.postMessage(reply, resultTransfer(result));
            },
            (error: unknown) => {
                const fatal = isWasmTrap(error) || isWasmTrap((error as { cause?: unknown } | null)?.cause);
                const reply: ReplyMessage = { kind: "failed", id: message.id, error: encodeErrorToWire(error), fatal };
                port.postMessage(reply);
            },
        );
    });
    const ready: ReadyMessage = { kind: "ready" };
    port.postMessage(ready);
}

if (!isMainThread && (workerData as { kind?: unknown } | null)?.kind === WORKER_KIND) {
    serve(workerData as WorkerData).catch((error: unknown) => {
        // Could not load the encoder (e.g. the wasm module): die loudly, the client reports it.
        setImmediate(() => {
            throw error;
        });
    });
}

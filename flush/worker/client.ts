/**
 * The encode worker's client, on the main thread: one job at a time per worker, the rest
 * queued; a worker that dies mid-job fails that job and is replaced for the next one. The main
 * thread never loads Arrow or the wasm module. A job's typed arrays are transferred, not copied:
 * after `encode()` the caller's segments are detached (their arrays read as empty); the encoded
 * files come back the same way.
 */
import { type ResourceLimits, Worker } from "node:worker_threads";
import { type EncodeError, EncodeInputError, EncodeWorkerClosedError, EncodeWorkerDiedError, encodeErrorFromWire } from "../encode/errors.js";
import { messageOf } from "../../src/errors.js";
import type { MergeRequest, MergeResult } from "../encode/merge.js";
import type { ParquetFacts } from "../encode/read-parquet.js";
import type { EncodeInput, EncodeOptions, EncodedFile } from "../encode/types.js";
import { type EncodeOutcome, type Job, type JobMessage, type JobResult, type JobResults, type WorkerData, WORKER_KIND, isReady, isReply } from "./messages.js";
import { transferableJob } from "./transfer.js";

/** The nice values a thread may be given (setpriority(2)); the config schema takes its range from here. */
export const NICE_RANGE = { min: 0, max: 19 } as const;

/**
 * The compiled worker program. From `dist/` that is the sibling `main.js`. Under a TypeScript
 * loader (vitest runs `flush/worker/client.ts`), Node 20 cannot start a `.ts` file as a worker,
 * so the compiled twin in `dist/flush/worker/` is used (`npm test` builds first).
 */
export function defaultWorkerUrl(): URL {
    const here = import.meta.url;
    return here.endsWith(".ts") ? new URL("../../dist/flush/worker/main.js", here) : new URL("./main.js", here);
}

export interface EncodeWorkerOptions {
    /** The worker module to start (see `defaultWorkerUrl`). */
    readonly workerUrl?: URL;
    /** V8 heap limits of the worker thread (parquet-wasm's linear memory is outside them). */
    readonly resourceLimits?: ResourceLimits;
    /**
     * Nice value of the worker's thread, 0-19 (Linux): encoding yields the CPU to ingest when
     * both want it, and still takes any CPU left over. 0 leaves the process's priority.
     */
    readonly nice?: number;
}

export const ENCODE_WORKER_DEFAULTS = {
    workerUrl: defaultWorkerUrl(),
    resourceLimits: {},
    nice: 0,
} as const satisfies { [K in keyof Required<EncodeWorkerOptions>]: EncodeWorkerOptions[K] };

export interface EncodeResult {
    readonly files: EncodedFile[];
    readonly timings: JobResults["encode"]["timings"];
}

interface Pending {
    readonly id: number;
    readonly job: Job;
    resolve(result: JobResult): void;
    reject(error: Error): void;
}

export interface EncodeWorkerStats {
    jobs: number;
    failedJobs: number;
    /** Workers started, the first one included. */
    workersStarted: number;
    /** Workers that exited or were replaced while holding a job. */
    workerDeaths: number;
    /** A worker runs and has loaded its encoder. */
    ready: boolean;
}

function isDataCloneError(error: unknown): boolean {
    return (error as { name?: unknown } | null)?.name === "DataCloneError";
}

export class EncodeWorker {
    readonly #options: Required<EncodeWorkerOptions>;
    readonly #queue: Pending[] = [];
    readonly #stats: Omit<EncodeWorkerStats, "ready"> = { jobs: 0, failedJobs: 0, workersStarted: 0, workerDeaths: 0 };
    #worker: Worker | undefined;
    /** The last worker that reported ready. */
    #readyWorker: Worker | undefined;
    #current: Pending | undefined;
    /** The last 'error' event of the current worker: the reason given when it exits. */
    #lastError: Error | undefined;
    #nextId = 1;
    #closing: Promise<void> | undefined;
    #drained: (() => void) | undefined;

    constructor(options: EncodeWorkerOptions = {}) {
        this.#options = {
            workerUrl: options.workerUrl ?? ENCODE_WORKER_DEFAULTS.workerUrl,
            resourceLimits: options.resourceLimits ?? ENCODE_WORKER_DEFAULTS.resourceLimits,
            nice: options.nice ?? ENCODE_WORKER_DEFAULTS.nice,
        };
        const { nice } = this.#options;
        if (!Number.isInteger(nice) || nice < NICE_RANGE.min || nice > NICE_RANGE.max) {
            throw new RangeError(`nice must be an integer from ${NICE_RANGE.min} to ${NICE_RANGE.max}, got ${nice}`);
        }
    }

    get stats(): Readonly<EncodeWorkerStats> {
        return { ...this.#stats, ready: this.#worker !== undefined && this.#readyWorker === this.#worker };
    }

    /** The worker thread's id while one runs (for tests and diagnostics). */
    get threadId(): number | undefined {
        return this.#worker?.threadId;
    }

    /**
     * Starts the worker now if none runs, so that its start (a V8 isolate, Arrow, compiling
     * parquet-wasm: ~0.2 s of CPU on several threads) happens before the first job instead of
     * during the first flush. It does not keep the process alive while it has no job.
     */
    start(): void {
        if (this.#closing !== undefined || this.#worker !== undefined) return;
        let worker: Worker;
        try {
            worker = this.#start();
        } catch {
            // The first job starts it again and reports why it cannot.
            return;
        }
        if (this.#current === undefined) worker.unref();
    }

    /** Encodes in the worker; the input's typed arrays are transferred (detached here). */
    async encode(input: EncodeInput, options: EncodeOptions): Promise<EncodedFile[]> {
        return (await this.encodeWithTimings(input, options)).files;
    }

    /** `encode`, plus where the worker spent the time. */
    encodeWithTimings(input: EncodeInput, options: EncodeOptions): Promise<EncodeResult> {
        return this.#run({ kind: "encode", input, options }) as Promise<EncodeResult>;
    }

    /**
     * Encodes many inputs in one round trip (many small flushes): one outcome per input, in
     * order; an input the encoder refuses fails alone, a worker that dies fails them all.
     */
    async encodeMany(inputs: readonly EncodeInput[], options: EncodeOptions): Promise<EncodeOutcome<EncodeError>[]> {
        if (inputs.length === 0) return [];
        const result = (await this.#run({ kind: "encodeMany", inputs, options })) as JobResults["encodeMany"];
        return result.outcomes.map((outcome) => ("error" in outcome ? { error: encodeErrorFromWire(outcome.error) } : outcome));
    }

    /** Merges Parquet files of one partition into as few as `request.targetRows` allows (compaction). */
    merge(request: MergeRequest, options: EncodeOptions): Promise<MergeResult> {
        return this.#run({ kind: "merge", request, options }) as Promise<MergeResult>;
    }

    /** What the footers of Parquet files say (rows, time range, WAL sequences, tags). */
    describe(paths: readonly string[]): Promise<ParquetFacts[]> {
        return this.#run({ kind: "describe", paths }) as Promise<ParquetFacts[]>;
    }

    #run(job: Job): Promise<JobResult> {
        if (this.#closing !== undefined) return Promise.reject(new EncodeWorkerClosedError());
        return new Promise<JobResult>((resolve, reject) => {
            this.#queue.push({ id: this.#nextId++, job, resolve, reject });
            this.#pump();
        });
    }

    /**
     * Refuses new jobs, lets the running and queued ones finish, then stops the worker.
     * Idempotent.
     */
    close(): Promise<void> {
        this.#closing ??= (async () => {
            if (this.#current !== undefined || this.#queue.length > 0) {
                await new Promise<void>((resolve) => (this.#drained = resolve));
            }
            const worker = this.#worker;
            this.#worker = undefined;
            if (worker !== undefined) await worker.terminate();
        })();
        return this.#closing;
    }

    // Invariant kept: a running or queued job keeps its thread; an idle thread is stopped and the next job starts a new one.
    /** Stops the thread if it is idle, giving its memory back (parquet-wasm's memory only grows); the next job starts a fresh one. */
    async release(): Promise<void> {
        const worker = this.#worker;
        if (worker === undefined || this.#current !== undefined || this.#queue.length > 0) return;
        this.#worker = undefined;
        await worker.terminate();
    }

    // Invariant kept: once this resolves, every job given to this worker has settled and its thread is gone.
    /**
     * Refuses new jobs, fails the running and queued ones with EncodeWorkerClosedError, and
     * stops the thread now rather than after them (a merge of minutes at shutdown). Idempotent;
     * after `close()` began it waits for that close instead.
     */
    abort(): Promise<void> {
        this.#closing ??= (async () => {
            const closed = new EncodeWorkerClosedError();
            for (const pending of this.#queue.splice(0)) pending.reject(closed);
            if (this.#current !== undefined) this.#finish(this.#current, closed);
            const worker = this.#worker;
            this.#worker = undefined;
            if (worker !== undefined) await worker.terminate();
        })();
        return this.#closing;
    }

    #pump(): void {
        if (this.#current !== undefined) return;
        const pending = this.#queue.shift();
        if (pending === undefined) {
            this.#worker?.unref();
            this.#drained?.();
            return;
        }
        this.#current = pending;
        this.#stats.jobs++;
        let worker: Worker;
        try {
            worker = this.#worker ?? this.#start();
        } catch (error) {
            this.#finish(pending, new EncodeWorkerDiedError(`could not start the encode worker: ${messageOf(error)}`, { cause: error }));
            return;
        }
        worker.ref();
        const { job, transfer } = transferableJob(pending.job);
        const message: JobMessage = { kind: "job", id: pending.id, job };
        try {
            try {
                worker.postMessage(message, transfer);
            } catch (error) {
                // Some buffer cannot be transferred (e.g. marked untransferable): copy instead.
                if (!isDataCloneError(error)) throw error;
                worker.postMessage(message);
            }
        } catch (error) {
            this.#finish(pending, new EncodeInputError(`the job cannot be sent to the encode worker: ${messageOf(error)}`, { cause: error }));
        }
    }

    #start(): Worker {
        const workerData: WorkerData = { kind: WORKER_KIND, nice: this.#options.nice };
        const worker = new Worker(this.#options.workerUrl, { workerData, resourceLimits: this.#options.resourceLimits });
        this.#stats.workersStarted++;
        this.#worker = worker;
        this.#lastError = undefined;
        worker.on("message", (message: unknown) => {
            this.#onMessage(worker, message);
        });
        worker.on("error", (error: Error) => {
            if (this.#worker === worker) this.#lastError = error;
        });
        worker.on("messageerror", (error: Error) => {
            if (this.#worker === worker && this.#current !== undefined) {
                this.#finish(this.#current, new EncodeWorkerDiedError(`the encode worker's answer could not be read: ${error.message}`, { cause: error }));
            }
        });
        worker.on("exit", (code: number) => {
            this.#onExit(worker, code);
        });
        return worker;
    }

    #onMessage(worker: Worker, message: unknown): void {
        if (worker === this.#worker && isReady(message)) {
            this.#readyWorker = worker;
            return;
        }
        const pending = this.#current;
        if (worker !== this.#worker || pending === undefined || !isReply(message) || message.id !== pending.id) return;
        if (message.kind === "done") {
            this.#finish(pending, undefined, message.result);
            return;
        }
        if (message.fatal) this.#retire(worker);
        this.#finish(pending, encodeErrorFromWire(message.error));
    }

    /** Drops a worker whose wasm state may be corrupt; the next job starts a fresh one. */
    #retire(worker: Worker): void {
        if (this.#worker === worker) this.#worker = undefined;
        void worker.terminate();
    }

    #onExit(worker: Worker, code: number): void {
        if (this.#worker !== worker) return;
        this.#worker = undefined;
        const pending = this.#current;
        if (pending === undefined) return;
        this.#stats.workerDeaths++;
        const reason = this.#lastError === undefined ? "" : `: ${this.#lastError.message}`;
        this.#finish(pending, new EncodeWorkerDiedError(`the encode worker exited with code ${code} during a job${reason}`, { cause: this.#lastError }));
    }

    #finish(pending: Pending, error: EncodeError | undefined, result?: JobResult): void {
        if (this.#current !== pending) return;
        this.#current = undefined;
        if (error === undefined) {
            pending.resolve(result!);
        } else {
            this.#stats.failedJobs++;
            pending.reject(error);
        }
        this.#pump();
    }
}

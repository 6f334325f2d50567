/**
 * Transfer lists: typed arrays move between the threads instead of being copied. A job's
 * segments give up their memory (detached afterwards); arrays that are views into a larger
 * buffer (an open segment's spare capacity, Node's Buffer pool) are copied to exact-size
 * buffers first, so a transfer never takes memory that is not the segments'.
 */
import type { Column, ColumnarBatch } from "../../src/columnar/batch.js";
import type { Job, JobResult } from "./messages.js";

type TypedArray = BigInt64Array | BigUint64Array | Float64Array | Uint32Array | Uint8Array;

function typedArrays(column: Column): TypedArray[] {
    const arrays: TypedArray[] = column.type === "s" ? [column.codes] : [column.values];
    if (column.type !== "t" && column.valid !== undefined) arrays.push(column.valid);
    return arrays;
}

function coversBuffer(array: TypedArray): boolean {
    return array.byteOffset === 0 && array.byteLength === array.buffer.byteLength;
}

/**
 * The segments as they are posted, and the buffers to transfer with them: every buffer some
 * array covers exactly, once (posting a buffer twice throws); arrays that are views into a
 * larger buffer nobody transfers are replaced by exact copies, which are transferred.
 */
export function transferableSegments(segments: readonly ColumnarBatch[]): { segments: ColumnarBatch[]; transfer: ArrayBuffer[] } {
    const whole = new Set<ArrayBuffer>();
    for (const segment of segments) {
        for (const column of segment.columns.values()) {
            for (const array of typedArrays(column)) {
                if (array.buffer instanceof ArrayBuffer && coversBuffer(array)) whole.add(array.buffer);
            }
        }
    }
    const exact = <T extends TypedArray>(array: T): T => {
        if (!(array.buffer instanceof ArrayBuffer) || whole.has(array.buffer)) return array;
        const copy = array.slice() as T;
        whole.add(copy.buffer as ArrayBuffer);
        return copy;
    };
    return { segments: segments.map((segment) => withColumns(segment, exact)), transfer: [...whole] };
}

/** The batch with every typed array passed through `exact`. */
function withColumns(batch: ColumnarBatch, exact: <T extends TypedArray>(array: T) => T): ColumnarBatch {
    const columns = new Map<string, Column>();
    for (const [name, column] of batch.columns) {
        const validity = column.type !== "t" && column.valid !== undefined ? { valid: exact(column.valid) } : {};
        switch (column.type) {
            case "t":
                columns.set(name, { type: "t", values: exact(column.values) });
                break;
            case "s":
                columns.set(name, { type: "s", dict: column.dict, codes: exact(column.codes), ...validity });
                break;
            case "f":
                columns.set(name, { type: "f", values: exact(column.values), ...validity });
                break;
            case "i":
                columns.set(name, { type: "i", values: exact(column.values), ...validity });
                break;
            case "u":
                columns.set(name, { type: "u", values: exact(column.values), ...validity });
                break;
            case "b":
                columns.set(name, { type: "b", values: exact(column.values), ...validity });
                break;
        }
    }
    return { measurement: batch.measurement, rows: batch.rows, tags: [...batch.tags], columns };
}

/** A job as posted, and what to transfer with it (only encode jobs carry arrays). */
export function transferableJob(job: Job): { job: Job; transfer: ArrayBuffer[] } {
    switch (job.kind) {
        case "encode": {
            const { segments, transfer } = transferableSegments(job.input.segments);
            return { job: { ...job, input: { ...job.input, segments } }, transfer };
        }
        case "encodeMany": {
            // All inputs at once: a buffer two inputs share is listed once.
            const { segments, transfer } = transferableSegments(job.inputs.flatMap((input) => input.segments));
            let next = 0;
            const inputs = job.inputs.map((input) => ({ ...input, segments: segments.slice(next, (next += input.segments.length)) }));
            return { job: { ...job, inputs }, transfer };
        }
        default:
            return { job, transfer: [] };
    }
}

/** The Parquet bytes a result carries, each buffer once. */
export function resultTransfer(result: JobResult): ArrayBuffer[] {
    const files = "files" in result ? result.files : "outcomes" in result ? result.outcomes.flatMap((outcome) => ("files" in outcome ? outcome.files : [])) : [];
    return [...new Set(files.map((file) => file.bytes.buffer as ArrayBuffer))];
}

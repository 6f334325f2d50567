/**
 * One batch built from whole batches of the same measurement appended in order. The buffers
 * build their segments with it; the flush worker joins a flush's segments with it.
 */
import { type Accumulator, accumulatorFor } from "./accumulator.js";
import { type Column, type ColumnarBatch, TIME_COLUMN } from "./batch.js";

export class BatchBuilder {
    readonly #columns = new Map<string, Accumulator>();
    readonly #tags = new Set<string>();
    #rows = 0;

    /** `capacityRows`: allocate every column for exactly that many rows (0: grow from a few). */
    constructor(
        readonly measurement: string,
        private readonly capacityRows = 0,
    ) {}

    get rows(): number {
        return this.#rows;
    }

    /** The bytes allocated for the rows (capacity included). */
    get bytes(): number {
        let bytes = 0;
        for (const column of this.#columns.values()) bytes += column.bytes;
        return bytes;
    }

    // Invariant kept: every column holds exactly `rows` rows; a column absent from a batch gets
    // nulls for its rows, a column new in a batch gets nulls for the rows before it.
    append(batch: ColumnarBatch): void {
        if (batch.rows === 0) return;
        for (const [name, column] of batch.columns) {
            if (!this.#columns.has(name)) this.#columns.set(name, accumulatorFor(column.type, this.#rows, this.capacityRows));
        }
        for (const [name, accumulator] of this.#columns) accumulator.append(batch.columns.get(name), batch.rows);
        for (const tag of batch.tags) this.#tags.add(tag);
        this.#rows += batch.rows;
    }

    /** The rows as one batch (time first, then tags, then fields); append nothing afterwards. */
    take(): ColumnarBatch {
        const columns = new Map<string, Column>();
        const time = this.#columns.get(TIME_COLUMN);
        if (time !== undefined) columns.set(TIME_COLUMN, time.take());
        for (const tag of this.#tags) columns.set(tag, this.#columns.get(tag)!.take());
        for (const [name, accumulator] of this.#columns) if (!columns.has(name)) columns.set(name, accumulator.take());
        return { measurement: this.measurement, rows: this.#rows, tags: [...this.#tags], columns };
    }
}

/** The batches' rows, in order, as one batch with storage of exactly that size. */
export function joinBatches(batches: readonly ColumnarBatch[]): ColumnarBatch {
    if (batches.length === 1) return batches[0]!;
    const builder = new BatchBuilder(
        batches[0]?.measurement ?? "",
        batches.reduce((sum, batch) => sum + batch.rows, 0),
    );
    for (const batch of batches) builder.append(batch);
    return builder.take();
}

/**
 * The batches' size budget (LP_LIMITS): every column of a batch spans every row of it, so the
 * bytes of one body's batches are, per measurement, rows × the bytes of one row. A line is
 * accepted only while that stays within a budget that grows with the body.
 */
import type { MeasurementBuilder } from "./measurement.js";
import { LP_LIMITS } from "./limits.js";

/** The batch budget of one body. */
export class BatchBudget {
    readonly #limit: number;
    readonly #bodyBytes: number;
    /** Bytes of the batches so far: over the body's builders, the sum of rows × rowBytes. */
    #used = 0;

    constructor(bodyBytes: number) {
        this.#bodyBytes = bodyBytes;
        this.#limit = LP_LIMITS.batchBytesBase + LP_LIMITS.batchBytesPerBodyByte * bodyBytes;
    }

    /** Whether `builder` may take its pending row with columns of `addedWidth` bytes per row joining it (they span its earlier rows too, as nulls). */
    fits(builder: MeasurementBuilder, addedWidth: number): boolean {
        return this.#used + (builder.rows + 1) * addedWidth + builder.rowBytes <= this.#limit;
    }

    /** Counts `builder`'s pending row, with columns of `addedWidth` bytes per row joining it (before `rows` moves past it). */
    // Invariant kept: `#used` is, over the body's builders, the sum of rows × rowBytes.
    add(builder: MeasurementBuilder, addedWidth: number): void {
        builder.rowBytes += addedWidth;
        this.#used += builder.rows * addedWidth + builder.rowBytes;
    }

    /** Why a line that does not fit is rejected. */
    reason(): string {
        return `the batches would take more than ${this.#limit} bytes for a ${this.#bodyBytes}-byte body (every column spans every row): send sparse, wide data in smaller requests`;
    }
}

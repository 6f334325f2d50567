/**
 * Latency samples in a preallocated Float64Array. Once full it keeps a uniform reservoir sample
 * (Algorithm R, xorshift32 index), so recording never allocates.
 */
export class LatencyReservoir {
    readonly samples: Float64Array;
    /** Samples held (≤ capacity). */
    count = 0;
    /** Samples offered since the last reset. */
    seen = 0;
    #rng = 0x9e3779b9;

    constructor(capacity: number) {
        this.samples = new Float64Array(capacity);
    }

    reset(): void {
        this.count = 0;
        this.seen = 0;
        this.#rng = 0x9e3779b9;
    }

    record(value: number): void {
        const seen = this.seen++;
        if (this.count < this.samples.length) {
            this.samples[this.count++] = value;
            return;
        }
        let x = this.#rng;
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        this.#rng = x >>> 0;
        const slot = Math.floor((this.#rng / 4294967296) * (seen + 1));
        if (slot < this.samples.length) this.samples[slot] = value;
    }

    /** Sorts the held samples in place; call once, then `percentile`. */
    sort(): void {
        this.samples.subarray(0, this.count).sort();
    }

    /** Nearest-rank percentile of the sorted samples (NaN when there are none). */
    percentile(p: number): number {
        if (this.count === 0) return Number.NaN;
        const rank = Math.min(this.count, Math.max(1, Math.ceil((p / 100) * this.count)));
        return this.samples[rank - 1]!;
    }

    max(): number {
        return this.count === 0 ? Number.NaN : this.samples[this.count - 1]!;
    }
}

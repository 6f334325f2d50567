/**
 * The clock seam: every trigger that depends on wall-clock time (flush age, retry backoff, WAL
 * rotation age, compaction and retention cut-offs) reads a `Clock`, so tests can move time.
 */
export interface Clock {
    /** Milliseconds since the epoch. */
    now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to (tests). */
export class ManualClock implements Clock {
    constructor(private ms: number = Date.UTC(2026, 0, 1)) {}

    now(): number {
        return this.ms;
    }

    advance(ms: number): void {
        this.ms += ms;
    }

    set(ms: number): void {
        this.ms = ms;
    }
}

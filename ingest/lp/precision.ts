/**
 * Timestamp precisions: the units a request's timestamps are in, and how each becomes
 * nanoseconds. `auto` guesses the unit of each timestamp from its magnitude, as InfluxDB 3 does
 * (line-protocol.md §A4).
 */

export const PRECISIONS = ["ns", "us", "ms", "s", "m", "h", "auto"] as const;
export type Precision = (typeof PRECISIONS)[number];

export function isPrecision(value: unknown): value is Precision {
    return typeof value === "string" && (PRECISIONS as readonly string[]).includes(value);
}

/** Nanoseconds per unit (`auto`: per nanosecond, for the server clock's default). */
export const NANOS_PER_UNIT = {
    ns: 1n,
    us: 1_000n,
    ms: 1_000_000n,
    s: 1_000_000_000n,
    m: 60_000_000_000n,
    h: 3_600_000_000_000n,
    auto: 1n,
} as const satisfies { [P in Precision]: bigint };

/**
 * Decimal zeros that turn a timestamp in this unit into nanoseconds: scaling is appending
 * digits, which the integer reader does without BigInt. `m` and `h` are not powers of ten
 * (null: BigInt path); `auto` is decided per timestamp (-1).
 */
export const PRECISION_ZEROS = {
    ns: 0,
    us: 3,
    ms: 6,
    s: 9,
    m: null,
    h: null,
    auto: -1,
} as const satisfies { [P in Precision]: number | null };

/**
 * `auto`: the zeros for a timestamp of magnitude `magnitude` (InfluxDB 3's guess_precision:
 * below 5e9 seconds, below 5e12 milliseconds, below 5e15 microseconds, else nanoseconds).
 */
export function guessZeros(magnitude: number): number {
    if (magnitude < 5e9) return 9;
    if (magnitude < 5e12) return 6;
    if (magnitude < 5e15) return 3;
    return 0;
}

/** The server clock for entries without a timestamp: `nowNs` truncated to the request's unit. */
export function defaultTimestamp(nowNs: bigint, precision: Precision): bigint {
    const unit = NANOS_PER_UNIT[precision];
    const remainder = ((nowNs % unit) + unit) % unit;
    return nowNs - remainder;
}

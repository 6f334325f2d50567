/** Nanoseconds per unit, and Arc's rule for guessing a timestamp's unit from its magnitude. */

export const NANOS_PER = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n } as const;

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** Arc's guess from a timestamp: < 1e10 seconds, < 1e13 ms, < 1e16 µs, else ns. Returns ns per unit. */
export function arcTimeScale(timestamp: bigint): bigint {
    const magnitude = timestamp < 0n ? -timestamp : timestamp;
    if (magnitude < 10_000_000_000n) return NANOS_PER.s;
    if (magnitude < 10_000_000_000_000n) return NANOS_PER.ms;
    if (magnitude < 10_000_000_000_000_000n) return NANOS_PER.us;
    return NANOS_PER.ns;
}

/** Units a msgpack `time` column may be in; `auto` guesses per payload with `arcTimeScale`. */
export const ARC_TIME_UNITS = ["ns", "us", "ms", "s", "auto"] as const;
export type ArcTimeUnit = (typeof ARC_TIME_UNITS)[number];

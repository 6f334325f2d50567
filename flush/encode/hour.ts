/**
 * UTC hour partitions of nanosecond timestamps: hour n covers [n·1h, (n+1)·1h) since the epoch,
 * by floor division, so times before 1970 land in negative hours (−1 ns → 1969-12-31 hour 23).
 */

export const NANOS_PER_HOUR = 3_600_000_000_000;
const NANOS_PER_HOUR_BIG = 3_600_000_000_000n;
/**
 * The fast path reads a time as a double (error ≤ 1024 ns at 2^63) and divides; within this
 * distance of an hour boundary it redoes the division exactly with BigInt.
 */
const EXACT_MARGIN_NS = 1_000_000;

/** The hour holding `time` (exact floor division). */
export function hourOf(time: bigint): number {
    const quotient = time / NANOS_PER_HOUR_BIG;
    return Number(time % NANOS_PER_HOUR_BIG < 0n ? quotient - 1n : quotient);
}

/** The `date=YYYY-MM-DD` and `hour=HH` partition values of an hour. */
export function hourLabels(hour: number): { date: string; hour: string } {
    const at = new Date(hour * 3_600_000);
    const pad = (value: number, width: number) => String(value).padStart(width, "0");
    return {
        date: `${pad(at.getUTCFullYear(), 4)}-${pad(at.getUTCMonth() + 1, 2)}-${pad(at.getUTCDate(), 2)}`,
        hour: pad(at.getUTCHours(), 2),
    };
}

/** The 32-bit words of a BigInt64Array (little-endian: word 2i is the low half of value i). */
export function int64Words(values: BigInt64Array | BigUint64Array | Float64Array): Int32Array {
    return new Int32Array(values.buffer, values.byteOffset, values.length * 2);
}

export interface HourSplit {
    /** The hours touched, ascending. */
    readonly hours: readonly number[];
    /** Per row, the index of its hour in `hours`. */
    readonly index: Uint32Array;
}

// Invariant kept: a row's hour is floor(time / 1h) exactly, also near a boundary and for any int64.
export function splitByHour(time: BigInt64Array, rows: number): HourSplit {
    const words = int64Words(time);
    const index = new Uint32Array(rows);
    const idOf = new Map<number, number>();
    const found: number[] = [];
    let lastHour = Number.NaN;
    let lastId = 0;
    for (let i = 0; i < rows; i++) {
        const approx = words[2 * i + 1]! * 4294967296 + (words[2 * i]! >>> 0);
        let hour = Math.floor(approx / NANOS_PER_HOUR);
        const rest = approx - hour * NANOS_PER_HOUR;
        if (rest < EXACT_MARGIN_NS || rest > NANOS_PER_HOUR - EXACT_MARGIN_NS) hour = hourOf(time[i]!);
        if (hour !== lastHour) {
            let id = idOf.get(hour);
            if (id === undefined) {
                id = found.length;
                idOf.set(hour, id);
                found.push(hour);
            }
            lastHour = hour;
            lastId = id;
        }
        index[i] = lastId;
    }
    if (found.length <= 1) return { hours: found, index };
    const hours = [...found].sort((a, b) => a - b);
    const rankOfHour = new Map(hours.map((hour, rank) => [hour, rank]));
    const rankOf = Uint32Array.from(found, (hour) => rankOfHour.get(hour)!);
    for (let i = 0; i < rows; i++) index[i] = rankOf[index[i]!]!;
    return { hours, index };
}

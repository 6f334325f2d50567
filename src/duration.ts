/** Durations as operators write them: "500ms", "30s", "15m", "2h", "7d", "2w" (a bare number: milliseconds). */
import { SluiceError } from "./errors.js";

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

export class DurationError extends SluiceError {
    readonly code = "bad-duration";
}

/** The duration in milliseconds; throws DurationError for anything else. */
export function parseDuration(text: string): number {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(text.trim());
    if (match === null) throw new DurationError(`"${text}" is not a duration like 500ms, 30s, 15m, 2h, 7d or 2w`);
    return Math.round(Number(match[1]) * UNIT_MS[(match[2] ?? "ms") as keyof typeof UNIT_MS]);
}

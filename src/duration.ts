import { InvalidArgumentError } from "commander";

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "500ms", "30s", "15m", "2h", "7d" (or a bare number of milliseconds) in milliseconds. */
export function parseDuration(text: string): number {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
    if (match === null) throw new InvalidArgumentError(`"${text}" is not a duration like 500ms, 30s, 15m, 2h or 7d`);
    return Math.round(Number(match[1]) * UNIT_MS[(match[2] ?? "ms") as keyof typeof UNIT_MS]);
}

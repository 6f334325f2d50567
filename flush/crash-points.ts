/**
 * Named steps of the commit protocol and of recovery where a test can make the process die
 * (SIGKILL, nothing flushed or cleaned up) by setting `SLUICE_TEST_CRASH_AT=<step>`. Unset, a
 * crash point costs one comparison.
 */
export const CRASH_POINTS = [
    "after-temp-fsync",
    "before-commit-record",
    "after-commit-record",
    "after-rename",
    "before-purge",
    "after-purge",
    "during-recovery",
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const target = process.env.SLUICE_TEST_CRASH_AT;

export function crashPoint(step: CrashPoint): void {
    if (target === step) process.kill(process.pid, "SIGKILL");
}

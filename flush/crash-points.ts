/**
 * Named steps of the commit protocol and of recovery where a test can make the process die
 * (SIGKILL, nothing flushed or cleaned up) by setting `SLUICE_TEST_CRASH_AT=<step>`, or
 * `<step>:<n>` to die at the n-th time the step is reached (e.g. a running server's second
 * purge rather than the one that ends startup). Unset, a crash point costs one comparison.
 */
export const CRASH_POINTS = [
    "after-temp-fsync",
    "before-commit-record",
    "after-commit-record",
    "after-rename",
    "before-exchange",
    "after-exchange",
    "after-drop",
    "before-purge",
    "after-purge",
    "during-recovery",
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const [targetStep, targetCount] = (process.env.SLUICE_TEST_CRASH_AT ?? "").split(":");
const dieAt = Number(targetCount ?? 1);
let reached = 0;

export function crashPoint(step: CrashPoint): void {
    if (targetStep === step && ++reached >= dieAt) process.kill(process.pid, "SIGKILL");
}

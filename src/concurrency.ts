/** Bounded concurrency for independent I/O (directory fsyncs, temp files, uploads). */

/** How many file-system calls run at once: libuv's default thread pool has 4 threads. */
export const IO_CONCURRENCY = 16;

// Invariant kept: at most `limit` calls of `step` are pending at any time; the results keep the
// order of `items`; the first rejection rejects the whole after the calls under way settle.
export async function mapLimit<T, R>(items: readonly T[], limit: number, step: (item: T, index: number) => Promise<R>): Promise<R[]> {
    const results = new Array<R>(items.length);
    let next = 0;
    let failed: { error: unknown } | undefined;
    const worker = async () => {
        while (failed === undefined && next < items.length) {
            const index = next++;
            try {
                results[index] = await step(items[index]!, index);
            } catch (error) {
                failed ??= { error };
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    if (failed !== undefined) throw failed.error;
    return results;
}

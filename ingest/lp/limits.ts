/**
 * The decoder's own limits. A string field value and a series key as written: line-protocol.md
 * §A6. (Columns per measurement and measurements per database are the schema's limits, from the
 * configuration.) The batches' size (columns × rows × bytes per value): lines stop being accepted
 * past a budget that grows with the body, because every column of a batch spans every row of it,
 * so a body of sparse, very wide rows would otherwise make batches far larger than itself.
 */
export const LP_LIMITS = {
    maxStringBytes: 1024 * 1024,
    maxSeriesKeyBytes: 65_535,
    batchBytesPerBodyByte: 8,
    batchBytesBase: 32 * 1024 * 1024,
} as const satisfies Record<string, number>;

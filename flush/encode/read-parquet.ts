/**
 * Reading Parquet files back (compaction, inside the worker): a file's footer facts without
 * reading its data, and its rows as a stream of columnar batches of bounded size, read from disk
 * as they are needed (parquet-wasm over a file-backed Blob), so a file never sits in memory whole.
 */
import { openAsBlob } from "node:fs";
import { tableFromIPC } from "apache-arrow";
import { ParquetFile, type RecordBatch as WasmRecordBatch } from "parquet-wasm/node";
import { type ColumnarBatch, TIME_COLUMN } from "../../src/columnar/batch.js";
import { columnarFromArrow, timeNanosOf } from "./from-arrow.js";
import { FOOTER_KEYS } from "./footer.js";

/** What a file's footer says (Sluice writes every key; a foreign file may lack them). */
export interface ParquetFacts {
    readonly rows: number;
    readonly measurement: string | undefined;
    readonly tags: readonly string[];
    /** `sluice:wal_seq` */
    readonly minSequence: number | undefined;
    readonly maxSequence: number | undefined;
    /** `sluice:time_nanos`: in a file whose `time` is in µs, the column of the nanoseconds past each microsecond. */
    readonly timeNanosColumn: string | undefined;
    /** `sluice:time_range`, or found by reading the time column when the footer lacks it. */
    readonly minTimeNs: bigint;
    readonly maxTimeNs: bigint;
}

function range(text: string | undefined): [string, string] | undefined {
    const match = /^(-?\d+)-(-?\d+)$/.exec(text ?? "");
    return match === null ? undefined : [match[1]!, match[2]!];
}

async function open(path: string): Promise<ParquetFile> {
    return ParquetFile.fromFile(await openAsBlob(path));
}

/** The footer facts of a Parquet file (reads only its footer, and its time column if the footer has no time range). */
export async function describeParquet(path: string): Promise<ParquetFacts> {
    const file = await open(path);
    try {
        const metadata = file.metadata().fileMetadata();
        const kv = metadata.keyValueMetadata() as Map<string, string>;
        const tagsText = kv.get(FOOTER_KEYS.tags);
        const tags = tagsText === undefined ? [] : (JSON.parse(tagsText) as string[]);
        const sequences = range(kv.get(FOOTER_KEYS.walSequence));
        const timeNanosColumn = kv.get(FOOTER_KEYS.timeNanos);
        let times = range(kv.get(FOOTER_KEYS.timeRange))?.map(BigInt);
        if (times === undefined) {
            let min: bigint | undefined;
            let max: bigint | undefined;
            for await (const batch of readTimes(file, timeNanosColumn)) {
                for (const time of batch) {
                    if (min === undefined || time < min) min = time;
                    if (max === undefined || time > max) max = time;
                }
            }
            times = [min ?? 0n, max ?? 0n];
        }
        return {
            rows: metadata.numRows(),
            measurement: kv.get(FOOTER_KEYS.measurement),
            tags,
            minSequence: sequences === undefined ? undefined : Number(sequences[0]),
            maxSequence: sequences === undefined ? undefined : Number(sequences[1]),
            timeNanosColumn,
            minTimeNs: times[0]!,
            maxTimeNs: times[1]!,
        };
    } finally {
        file.free();
    }
}

/** The file's times in nanoseconds, a batch at a time (only its time columns are read). */
async function* readTimes(file: ParquetFile, timeNanosColumn: string | undefined): AsyncGenerator<BigInt64Array> {
    const columns = timeNanosColumn === undefined ? [TIME_COLUMN] : [TIME_COLUMN, timeNanosColumn];
    const reader = (await file.stream({ batchSize: 65_536, columns })).getReader() as ReadableStreamDefaultReader<WasmRecordBatch>;
    for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        const table = tableFromIPC(value.intoIPCStream());
        if (table.numRows > 0) yield timeNanosOf(table, timeNanosColumn);
    }
}

/**
 * The rows of a Parquet file in file order, at most `batchRows` per batch, decoded as they are
 * read, times in nanoseconds. `facts` (from its footer) name what the file holds.
 */
export async function* readParquetBatches(
    path: string,
    measurement: string,
    facts: Pick<ParquetFacts, "tags" | "timeNanosColumn">,
    batchRows: number,
): AsyncGenerator<ColumnarBatch> {
    const file = await open(path);
    try {
        const reader = (await file.stream({ batchSize: batchRows })).getReader() as ReadableStreamDefaultReader<WasmRecordBatch>;
        for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            const table = tableFromIPC(value.intoIPCStream());
            const batch = columnarFromArrow(table, measurement, facts.tags, facts.timeNanosColumn);
            if (batch.rows > 0) yield batch;
        }
    } finally {
        file.free();
    }
}

/**
 * Reading Parquet files back (compaction, inside the worker): a file's footer facts without
 * reading its data, and its rows as a stream of columnar batches of bounded size, read from disk
 * as they are needed (parquet-wasm over a file-backed Blob), so a file never sits in memory whole.
 */
import { openAsBlob } from "node:fs";
import { tableFromIPC } from "apache-arrow";
import { ParquetFile, type RecordBatch as WasmRecordBatch } from "parquet-wasm/node";
import { type ColumnarBatch, TIME_COLUMN } from "../../src/columnar/batch.js";
import { columnarFromArrow } from "./from-arrow.js";
import { FOOTER_KEYS } from "./footer.js";

/** What a file's footer says (Sluice writes every key; a foreign file may lack them). */
export interface ParquetFacts {
    readonly rows: number;
    readonly measurement: string | undefined;
    readonly tags: readonly string[];
    /** `sluice:wal_seq` */
    readonly minSequence: number | undefined;
    readonly maxSequence: number | undefined;
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
        let times = range(kv.get(FOOTER_KEYS.timeRange))?.map(BigInt);
        if (times === undefined) {
            let min: bigint | undefined;
            let max: bigint | undefined;
            for await (const batch of readTimes(file)) {
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
            minTimeNs: times[0]!,
            maxTimeNs: times[1]!,
        };
    } finally {
        file.free();
    }
}

async function* readTimes(file: ParquetFile): AsyncGenerator<BigInt64Array> {
    const reader = (await file.stream({ batchSize: 65_536, columns: [TIME_COLUMN] })).getReader() as ReadableStreamDefaultReader<WasmRecordBatch>;
    for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        const table = tableFromIPC(value.intoIPCStream());
        const data = table.getChild(TIME_COLUMN)?.data[0];
        if (data !== undefined) yield (data.values as BigInt64Array).subarray(data.offset, data.offset + data.length);
    }
}

/**
 * The rows of a Parquet file in file order, at most `batchRows` per batch, decoded as they are
 * read. `measurement` and `tags` name what the file holds (from its footer).
 */
export async function* readParquetBatches(path: string, measurement: string, tags: readonly string[], batchRows: number): AsyncGenerator<ColumnarBatch> {
    const file = await open(path);
    try {
        const reader = (await file.stream({ batchSize: batchRows })).getReader() as ReadableStreamDefaultReader<WasmRecordBatch>;
        for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            const table = tableFromIPC(value.intoIPCStream());
            const batch = columnarFromArrow(table, measurement, tags);
            if (batch.rows > 0) yield batch;
        }
    } finally {
        file.free();
    }
}

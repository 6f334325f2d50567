/**
 * Batch → Parquet bytes (DESIGN.md §4), pure and synchronous: it runs inside the flush worker
 * and never touches the file system. One file per UTC hour the batch's rows touch, rows sorted
 * by (tags, time), written by parquet-wasm (arrow-rs) from an Arrow table passed over IPC.
 */
import { performance } from "node:perf_hooks";
import { tableToIPC } from "apache-arrow";
import { EnabledStatistics, Encoding, Table as WasmTable, WriterPropertiesBuilder, type WriterProperties, wasmMemory, writeParquet } from "parquet-wasm/node";
import { BatchShapeError, type ColumnType, type ColumnarBatch, TIME_COLUMN, assertBatchShape } from "../../src/columnar/batch.js";
import { joinBatches } from "../../src/columnar/batch-builder.js";
import { type ArrowRows, buildArrowTable } from "./arrow.js";
import type { ColumnSettings, WriterTuning } from "./column-settings.js";
import { EncodeError, EncodeFailedError, EncodeInputError } from "./errors.js";
import { fieldEncodings, wasmCodec } from "./field-encodings.js";
import { hourLabels } from "./hour.js";
import { mergeDuplicates } from "./dedup.js";
import { columnsWithNaN, withoutStatistics } from "./nan-statistics.js";
import { writeSmallParquet } from "./small-parquet.js";
import { footerMetadata, withTimeRange } from "./footer.js";
import { compareCodePoints, orderRows } from "./sort.js";
import { timeLayout } from "./time-unit.js";
import {
    type EncodeInput,
    type EncodeOptions,
    type EncodeTimings,
    type EncodedFile,
    type ResolvedEncodeOptions,
    ENCODE_DEFAULTS,
    TIME_ENCODINGS,
    TIME_UNITS,
    isCompression,
} from "./types.js";

export function resolveEncodeOptions(options: EncodeOptions): ResolvedEncodeOptions {
    const resolved = {
        compression: options.compression ?? ENCODE_DEFAULTS.compression,
        maxRowGroupRows: options.maxRowGroupRows ?? ENCODE_DEFAULTS.maxRowGroupRows,
        timeEncoding: options.timeEncoding ?? ENCODE_DEFAULTS.timeEncoding,
        dedup: options.dedup ?? ENCODE_DEFAULTS.dedup,
        timeUnit: options.timeUnit ?? ENCODE_DEFAULTS.timeUnit,
        smallFileRows: options.smallFileRows ?? ENCODE_DEFAULTS.smallFileRows,
        sluiceVersion: options.sluiceVersion,
    };
    if (!isCompression(resolved.compression)) throw new EncodeInputError(`compression "${String(resolved.compression)}" is not one of zstd, snappy, none`);
    if (!Number.isSafeInteger(resolved.maxRowGroupRows) || resolved.maxRowGroupRows < 1) {
        throw new EncodeInputError(`maxRowGroupRows must be a positive integer, got ${resolved.maxRowGroupRows}`);
    }
    if (!(TIME_ENCODINGS as readonly string[]).includes(resolved.timeEncoding)) {
        throw new EncodeInputError(`timeEncoding "${resolved.timeEncoding}" is not one of ${TIME_ENCODINGS.join(", ")}`);
    }
    if (!(TIME_UNITS as readonly string[]).includes(resolved.timeUnit)) {
        throw new EncodeInputError(`timeUnit "${resolved.timeUnit}" is not one of ${TIME_UNITS.join(", ")}`);
    }
    if (!Number.isSafeInteger(resolved.smallFileRows) || resolved.smallFileRows < 0) {
        throw new EncodeInputError(`smallFileRows must be a non-negative integer, got ${resolved.smallFileRows}`);
    }
    if (typeof resolved.sluiceVersion !== "string" || resolved.sluiceVersion.length === 0) throw new EncodeInputError("sluiceVersion is missing");
    return resolved;
}

// Invariant kept: whatever reaches Arrow is one well-formed batch with a sane sequence range.
function checkedBatch(input: EncodeInput): ColumnarBatch {
    if (typeof input.database !== "string" || input.database.length === 0) throw new EncodeInputError("database name is empty");
    const { minSequence, maxSequence, segments } = input;
    if (!Number.isSafeInteger(minSequence) || !Number.isSafeInteger(maxSequence) || minSequence < 0 || minSequence > maxSequence) {
        throw new EncodeInputError(`WAL sequence range ${minSequence}-${maxSequence} is not 0 ≤ min ≤ max`);
    }
    if (segments.length === 0) throw new EncodeInputError("no segments to encode");
    const measurement = segments[0]!.measurement;
    const types = new Map<string, ColumnType>();
    for (const segment of segments) {
        try {
            assertBatchShape(segment);
        } catch (error) {
            if (error instanceof BatchShapeError) throw new EncodeInputError(`measurement "${segment.measurement}": ${error.message}`, { cause: error });
            throw error;
        }
        if (segment.measurement !== measurement) throw new EncodeInputError(`segments of measurements "${measurement}" and "${segment.measurement}" cannot share a file`);
        for (const [name, column] of segment.columns) {
            if ((types.get(name) ?? column.type) !== column.type)
                throw new EncodeInputError(`measurement "${measurement}": column "${name}" is ${types.get(name)} in one segment and ${column.type} in another`);
            types.set(name, column.type);
        }
    }
    const joined = joinBatches(segments);
    // Tags in name order (code points): every file of a measurement is sorted the same way.
    const batch = { ...joined, tags: [...joined.tags].sort(compareCodePoints) };
    const tags = batch.tags;
    if (tags.includes(TIME_COLUMN)) throw new EncodeInputError(`"${TIME_COLUMN}" cannot be a tag`);
    if (new Set(tags).size !== tags.length) throw new EncodeInputError(`tag list ${JSON.stringify(tags)} names a column twice`);
    return batch;
}

/**
 * parquet-wasm writer properties (consumed by `writeParquet`, so built once per file):
 * dictionary encoding on (tags and strings), page statistics, for `time` no dictionary and
 * DELTA_BINARY_PACKED; then `settings`, in order (the fields' encodings, field-encodings.ts; no
 * statistics on float columns holding NaN, nan-statistics.ts; a caller's tuning).
 */
function writerProperties(options: ResolvedEncodeOptions, metadata: Map<string, string>, settings: readonly ColumnSettings[]): WriterProperties {
    const builder = new WriterPropertiesBuilder()
        .setCompression(wasmCodec(options.compression))
        .setDictionaryEnabled(true)
        .setStatisticsEnabled(EnabledStatistics.Page)
        .setMaxRowGroupSize(options.maxRowGroupRows)
        .setKeyValueMetadata(metadata)
        .setColumnDictionaryEnabled(TIME_COLUMN, false)
        .setColumnEncoding(TIME_COLUMN, options.timeEncoding === "delta" ? Encoding.DELTA_BINARY_PACKED : Encoding.PLAIN);
    return settings.reduce((tuned, apply) => apply(tuned), builder).build();
}

/** An hour's rows as Arrow IPC bytes, and the facts of its table (which is unreachable once this returns). */
function arrowIpc(build: () => ArrowRows, lap: (stage: "arrowMs" | "ipcMs") => void): Omit<ArrowRows, "table"> & { readonly ipc: Uint8Array } {
    const { table, ...facts } = build();
    lap("arrowMs");
    return { ...facts, ipc: tableToIPC(table, "stream") };
}

/**
 * An hour's rows as a parquet-wasm table, built by `build`. Held to the end of the file, the
 * Arrow table and its IPC bytes raised one 1M-row encode's peak by ~60 MB.
 */
// Invariant kept: neither the Arrow table nor, once copied into wasm, its IPC bytes stay reachable.
function wasmTable(build: () => ArrowRows, lap: (stage: "arrowMs" | "ipcMs") => void): Omit<ArrowRows, "table"> & { readonly table: WasmTable } {
    const { ipc, ...facts } = arrowIpc(build, lap);
    const table = WasmTable.fromIPCStream(ipc);
    lap("ipcMs");
    return { ...facts, table };
}

/** One hour's Parquet file by parquet-wasm, from the rows `build` makes, with the properties `properties` gives for them. */
function wasmFile(
    build: () => ArrowRows,
    lap: (stage: "arrowMs" | "ipcMs") => void,
    properties: (facts: Omit<ArrowRows, "table">) => WriterProperties,
): Omit<ArrowRows, "table"> & { readonly bytes: Uint8Array } {
    const { table, ...facts } = wasmTable(build, lap);
    return { ...facts, bytes: writeParquet(table, properties(facts)) };
}

/** parquet-wasm's linear memory (its .d.ts names WebAssembly.Memory, a type outside this project's libs). */
function wasmHeapBytes(): number {
    return (wasmMemory() as unknown as { readonly buffer: ArrayBuffer }).buffer.byteLength;
}

/**
 * Encodes the input's rows as one Parquet file per UTC hour touched, hours ascending. Pure: no I/O.
 * Pass `timings` to have the time spent per stage added to it, `tuning` to change the writer properties.
 */
export function encodeParquet(input: EncodeInput, options: EncodeOptions, timings?: EncodeTimings, tuning?: WriterTuning): EncodedFile[] {
    const resolved = resolveEncodeOptions(options);
    let mark = performance.now();
    const lap = (stage: Exclude<keyof EncodeTimings, "wasmMemoryBytes">) => {
        const now = performance.now();
        if (timings !== undefined) timings[stage] += now - mark;
        mark = now;
    };
    const batch = checkedBatch(input);
    lap("joinMs");
    if (batch.rows === 0) return [];
    const layout = timeLayout(resolved.timeUnit, batch.columns);
    const metadata = footerMetadata(input, batch, resolved, layout);
    try {
        const order = orderRows(batch);
        const merged = resolved.dedup ? mergeDuplicates(batch, order) : undefined;
        const permutation = merged?.permutation ?? order.permutation;
        lap("sortMs");
        // Decided once from all rows, for every file of the batch.
        const withNaN = columnsWithNaN(batch);
        const settings = [fieldEncodings(batch), withoutStatistics(withNaN), ...(tuning === undefined ? [] : [tuning(batch)])];
        const files: EncodedFile[] = [];
        for (const [index, range] of (merged?.hours ?? order.hours).entries()) {
            const rowsInOrder = permutation?.subarray(range.start, range.end);
            const fieldOrders = merged === undefined ? undefined : new Map([...merged.fieldOrders].map(([name, rows]) => [name, rows.subarray(range.start, range.end)]));
            // Compaction's tuned files are always parquet-wasm's; a flush's tiny ones are not worth its set-up.
            const hour =
                tuning === undefined && range.end - range.start <= resolved.smallFileRows
                    ? writeSmallParquet(batch, order.tags, rowsInOrder, layout, fieldOrders, resolved, metadata, withNaN)
                    : wasmFile(
                          () => buildArrowTable(batch, order.tags, rowsInOrder, layout, fieldOrders),
                          lap,
                          (facts) => writerProperties(resolved, withTimeRange(metadata, facts.minTimeNs, facts.maxTimeNs), settings),
                      );
            lap("parquetMs");
            const before = order.hours[index]!;
            files.push({
                ...hourLabels(range.hour),
                rows: hour.rows,
                bytes: hour.bytes,
                minTimeNs: hour.minTimeNs,
                maxTimeNs: hour.maxTimeNs,
                merged: before.end - before.start - hour.rows,
            });
        }
        if (timings !== undefined) timings.wasmMemoryBytes = wasmHeapBytes();
        return files;
    } catch (error) {
        if (error instanceof EncodeError) throw error;
        const message = error instanceof Error ? error.message : String(error);
        throw new EncodeFailedError(`encoding "${batch.measurement}" (${batch.rows} rows) to Parquet failed: ${message}`, { cause: error });
    }
}

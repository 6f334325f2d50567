/**
 * A decoded remote-write request as the write path takes it (ingest/write-path.ts `WriteUnit`):
 * its WAL entries written from its grouped rows (ingest/prom/entries.ts), its rows staged in the
 * buffers (ingest/prom/staged-rows.ts), and only what its new series need reserved in the schema.
 *
 * A series is settled in a database once a request that reserved all its columns (its tags and
 * `value` as a float) is durable: the registry then holds them committed, for good. A settled
 * series needs no reservation and no check against the buffers: any buffered column of the same
 * name was declared the same way, or the registry would have refused it.
 */
import { type Column, type ColumnarBatch, TIME_COLUMN } from "../../src/columnar/batch.js";
import { EntryWriter } from "../../src/wal/entry-writer.js";
import type { AppendResult, WalWriter } from "../../src/wal/index.js";
import type { Buffers } from "../buffer/buffers.js";
import { BatchesUnit, MAX_ENTRY_BYTES, type WriteUnit } from "../write-path.js";
import { type GroupedRows, rowBytes } from "./batches.js";
import type { RemoteWriteResult } from "./decode.js";
import { writeEntries } from "./entries.js";
import { VALUE_FIELD } from "./schema.js";
import type { PromSeries } from "./series-cache.js";
import { STAGED_ROW_BYTES, STAGED_SERIES_BYTES, peekStagedRows, stagedRowsOf } from "./staged-rows.js";

const NO_TIME: Column = { type: "t", values: new BigInt64Array(0) };
const NO_VALUE: Column = { type: "f", values: new Float64Array(0) };
const NO_TAG: Column = { type: "s", dict: [], codes: new Uint32Array(0) };

/**
 * Bytes a row took in the last request's entries: the next request's writer is sized from it,
 * so it is allocated once instead of doubled and copied (sizing it exactly beforehand cost more
 * than the copy: profiled).
 */
let entryBytesPerRow = 160;

/** The unit of a decoded request: its own (the batches' when one metric's entry would be too large to write as one). */
export function promWriteUnit(result: RemoteWriteResult): WriteUnit {
    const rows = result.rows;
    if (rows === undefined) return new BatchesUnit([]);
    for (let k = 0; k < rows.metrics.length; k++) {
        if ((rows.starts[k + 1]! - rows.starts[k]!) * rowBytes(rows.layouts[k]!.keys.length) > MAX_ENTRY_BYTES) return new BatchesUnit(result.batches);
    }
    return new PromWriteUnit(result, rows);
}

class PromWriteUnit implements WriteUnit {
    readonly rows: number;
    readonly declares: ColumnarBatch[] = [];
    /** Bytes the staged rows take: their rows and their series' slots. */
    readonly #stagedBytes: number;
    readonly #grouped: GroupedRows;
    readonly #database: string;
    readonly #registry: object;
    /** Series not settled in the database yet: their columns are in `declares`. */
    readonly #unsettled: PromSeries[] = [];

    constructor(result: RemoteWriteResult, rows: GroupedRows) {
        this.#grouped = rows;
        this.#database = result.database;
        this.#registry = result.schema;
        this.rows = rows.rows;
        let series = 0;
        for (let k = 0; k < rows.metrics.length; k++) {
            const list = rows.series[k]!;
            series += list.length;
            let tags: Set<string> | undefined;
            for (const one of list) {
                if (one.settledIn === this.#database && one.settledBy === this.#registry) continue;
                this.#unsettled.push(one);
                tags ??= new Set();
                for (const key of one.tagKeys) tags.add(key);
            }
            if (tags !== undefined) this.declares.push(declaration(rows.metrics[k]!.name, [...tags]));
        }
        this.#stagedBytes = STAGED_ROW_BYTES * rows.rows + STAGED_SERIES_BYTES * series;
    }

    bufferBytes(buffers: Buffers, database: string): number {
        let bytes = this.#stagedBytes;
        for (const metric of this.#grouped.metrics) {
            const buffer = buffers.get(database, metric.name);
            if (buffer !== undefined) bytes += buffer.stageGrowth(peekStagedRows(buffer));
        }
        return bytes;
    }

    conflict(buffers: Buffers, database: string): string | undefined {
        return this.declares.find((batch) => !buffers.accepts(database, batch))?.measurement;
    }

    append(writer: WalWriter, database: string, onDurable: (results: readonly AppendResult[]) => void): Promise<unknown> {
        const rows = this.#grouped;
        const entries = new EntryWriter(Math.ceil(1.125 * entryBytesPerRow * rows.rows) + 4096);
        writeEntries(entries, database, rows, writer.appendTimeUs());
        if (rows.rows > 0) entryBytesPerRow = entries.length / rows.rows;
        return writer.appendEncoded(entries, { onDurable });
    }

    buffer(buffers: Buffers, database: string, results: readonly AppendResult[], nowMs: number): void {
        const rows = this.#grouped;
        for (let k = 0; k < rows.metrics.length; k++) {
            const name = rows.metrics[k]!.name;
            const buffer = buffers.open(database, name);
            const staged = stagedRowsOf(buffer, name);
            buffer.stage(staged, staged.append(rows, k), results[k]!.sequence, nowMs);
        }
    }

    declared(): void {
        for (const series of this.#unsettled) {
            series.settledIn = this.#database;
            series.settledBy = this.#registry;
        }
    }
}

/** A batch without rows naming a metric's columns: its tags, and `value` as a float field. */
function declaration(measurement: string, tags: readonly string[]): ColumnarBatch {
    const columns = new Map<string, Column>([[TIME_COLUMN, NO_TIME]]);
    for (const tag of tags) columns.set(tag, NO_TAG);
    columns.set(VALUE_FIELD, NO_VALUE);
    return { measurement, rows: 0, tags, columns };
}

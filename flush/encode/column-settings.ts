/** Column settings: changes to the writer properties of a batch's Parquet files (encodings, statistics). */
import type { WriterPropertiesBuilder } from "parquet-wasm/node";
import type { ColumnarBatch } from "../../src/columnar/batch.js";

/** Changes to a file's writer properties, decided once from all rows of a batch and made to each of its files. */
export type ColumnSettings = (builder: WriterPropertiesBuilder) => WriterPropertiesBuilder;

/**
 * A caller's column settings for the rows of a call (compaction's own column encodings; a
 * merge's rows: one hour of one measurement), made after the defaults, so its settings win.
 */
export type WriterTuning = (batch: ColumnarBatch) => ColumnSettings;

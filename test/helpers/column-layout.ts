/**
 * How a Parquet file's columns are stored, as DuckDB's parquet_metadata() reports it: per column
 * (top-level name), the encodings and codecs of its chunks over all row groups, and the number of
 * row groups. Tests use it to check that the encodings Sluice chooses are the ones written.
 */
import { queryDuckDB } from "./parquet.js";

export interface ColumnLayout {
    readonly rowGroups: number;
    readonly encodings: ReadonlyMap<string, ReadonlySet<string>>;
    readonly codecs: ReadonlyMap<string, ReadonlySet<string>>;
}

function add(map: Map<string, Set<string>>, column: string, values: readonly string[]): void {
    const set = map.get(column) ?? new Set<string>();
    for (const value of values) set.add(value);
    map.set(column, set);
}

/** The layout of the Parquet file at `path`. */
export async function columnLayout(path: string): Promise<ColumnLayout> {
    const rows = await queryDuckDB(`select row_group_id, path_in_schema, encodings, compression from parquet_metadata('${path.replaceAll("'", "''")}')`);
    const encodings = new Map<string, Set<string>>();
    const codecs = new Map<string, Set<string>>();
    for (const row of rows) {
        const column = String(row.path_in_schema);
        add(
            encodings,
            column,
            String(row.encodings)
                .split(",")
                .map((encoding) => encoding.trim()),
        );
        add(codecs, column, [String(row.compression)]);
    }
    return { rowGroups: new Set(rows.map((row) => row.row_group_id)).size, encodings, codecs };
}

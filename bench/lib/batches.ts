import type { StringColumn } from "../../src/columnar/batch.js";

/**
 * A dictionary column whose row i holds `values[pick(i)]`, its dictionary holding only the
 * values used, in order of first use (as the line-protocol decoder builds it).
 */
export function firstUseDictionaryColumn(values: readonly string[], rows: number, pick: (row: number) => number): StringColumn {
    const codeOf = new Int32Array(values.length).fill(-1);
    const dict: string[] = [];
    const codes = new Uint32Array(rows);
    for (let i = 0; i < rows; i++) {
        const chosen = pick(i);
        let code = codeOf[chosen]!;
        if (code < 0) {
            code = dict.length;
            codeOf[chosen] = code;
            dict.push(values[chosen]!);
        }
        codes[i] = code;
    }
    return { type: "s", dict, codes };
}

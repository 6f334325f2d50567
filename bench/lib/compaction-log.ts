/**
 * What a server's compactions did, from the `compacted …` lines it logs on stdout (one per
 * partition: files_in, files_out, rows_in, rows_out, duplicates_merged, ms).
 */

export interface CompactedPartition {
    readonly partition: string;
    readonly filesIn: number;
    readonly filesOut: number;
    readonly rowsIn: number;
    readonly rowsOut: number;
    readonly ms: number;
}

const COMPACTED_LINE = /^compacted (.*)$/;

function fieldsOf(text: string): Map<string, string> {
    const fields = new Map<string, string>();
    for (const match of text.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) fields.set(match[1]!, match[2]!.startsWith('"') ? (JSON.parse(match[2]!) as string) : match[2]!);
    return fields;
}

export class CompactionLog {
    readonly partitions: CompactedPartition[] = [];
    #partial = "";

    /** Feeds what the server wrote to stdout. */
    onOutput(chunk: Buffer | string): void {
        const lines = (this.#partial + chunk.toString()).split("\n");
        this.#partial = lines.pop()!;
        for (const line of lines) {
            const match = COMPACTED_LINE.exec(line);
            if (match === null) continue;
            const fields = fieldsOf(match[1]!);
            const number = (name: string) => Number(fields.get(name) ?? Number.NaN);
            this.partitions.push({
                partition: fields.get("partition") ?? "?",
                filesIn: number("files_in"),
                filesOut: number("files_out"),
                rowsIn: number("rows_in"),
                rowsOut: number("rows_out"),
                ms: number("ms"),
            });
        }
    }

    totals(): { partitions: number; filesIn: number; filesOut: number; rowsIn: number; ms: number } {
        const sum = (pick: (p: CompactedPartition) => number) => this.partitions.reduce((total, p) => total + pick(p), 0);
        return { partitions: this.partitions.length, filesIn: sum((p) => p.filesIn), filesOut: sum((p) => p.filesOut), rowsIn: sum((p) => p.rowsIn), ms: sum((p) => p.ms) };
    }
}

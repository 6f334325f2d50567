/**
 * What a server's compactions did, from the `{"msg":"compacted",…}` lines it logs on stdout (the
 * default JSON log format; one per partition: files_in, files_out, rows_in, rows_out,
 * duplicates_merged, ms).
 */

export interface CompactedPartition {
    readonly partition: string;
    readonly filesIn: number;
    readonly filesOut: number;
    readonly rowsIn: number;
    readonly rowsOut: number;
    readonly ms: number;
}

function partitionOf(line: string): CompactedPartition | undefined {
    if (!line.startsWith("{")) return undefined;
    const event = JSON.parse(line) as Record<string, unknown>;
    if (event["msg"] !== "compacted") return undefined;
    const number = (name: string) => {
        const value = event[name];
        return typeof value === "number" ? value : Number.NaN;
    };
    const partition = event["partition"];
    return {
        partition: typeof partition === "string" ? partition : "?",
        filesIn: number("files_in"),
        filesOut: number("files_out"),
        rowsIn: number("rows_in"),
        rowsOut: number("rows_out"),
        ms: number("ms"),
    };
}

export class CompactionLog {
    readonly partitions: CompactedPartition[] = [];
    #partial = "";

    /** Feeds what the server wrote to stdout. */
    onOutput(chunk: Buffer | string): void {
        const lines = (this.#partial + chunk.toString()).split("\n");
        this.#partial = lines.pop()!;
        for (const line of lines) {
            const partition = partitionOf(line);
            if (partition !== undefined) this.partitions.push(partition);
        }
    }

    totals(): { partitions: number; filesIn: number; filesOut: number; rowsIn: number; ms: number } {
        const sum = (pick: (p: CompactedPartition) => number) => this.partitions.reduce((total, p) => total + pick(p), 0);
        return { partitions: this.partitions.length, filesIn: sum((p) => p.filesIn), filesOut: sum((p) => p.filesOut), rowsIn: sum((p) => p.rowsIn), ms: sum((p) => p.ms) };
    }
}

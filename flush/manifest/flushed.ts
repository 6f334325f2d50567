/** The flushed-through WAL sequence of each (database, measurement), as the manifest establishes it. */
import type { FlushedRange, ManifestRecord, SnapshotRecord } from "./records.js";

/** The highest sequence of (database, measurement) already in Parquet, or -1 for none. */
export type FlushedThrough = (database: string, measurement: string) => number;

export class FlushedSequences {
    readonly #through = new Map<string, number>();
    #highest = -1;

    #note(database: string, measurement: string, through: number): void {
        const key = `${database}\u0000${measurement}`;
        this.#through.set(key, Math.max(this.#through.get(key) ?? -1, through));
        this.#highest = Math.max(this.#highest, through);
    }

    noteRanges(ranges: readonly FlushedRange[]): void {
        for (const range of ranges) this.#note(range.database, range.measurement, range.through);
    }

    noteRecord(record: ManifestRecord): void {
        switch (record.type) {
            case "snapshot":
                for (const [database, measurement, through] of record.flushed) this.#note(database, measurement, through);
                this.#highest = Math.max(this.#highest, record.highest ?? -1);
                break;
            case "commit":
                this.#note(record.database, record.measurement, record.through);
                break;
            case "change":
                this.noteRanges(record.flushed);
                break;
        }
    }

    get: FlushedThrough = (database, measurement) => this.#through.get(`${database}\u0000${measurement}`) ?? -1;

    /** The highest flushed-through sequence ever recorded (-1 when nothing was flushed). */
    highest(): number {
        return this.#highest;
    }

    /**
     * The state as one record, without the (database, measurement)s flushed only through
     * sequences below `floor` (the lowest sequence any WAL file still holds): recovery reads no
     * entry that old, so they would only make the snapshot grow with every measurement ever seen.
     */
    snapshot(floor: number, nextId: number): SnapshotRecord {
        const flushed: (readonly [string, string, number])[] = [];
        for (const [key, through] of this.#through) {
            if (through < floor) {
                this.#through.delete(key);
                continue;
            }
            const [database, measurement] = key.split("\u0000") as [string, string];
            flushed.push([database, measurement, through]);
        }
        return { type: "snapshot", flushed, highest: this.#highest, nextId };
    }
}

/**
 * Database and measurement names on disk (DESIGN.md §4, issue 10 item 11): Hive's escape set, so
 * no name becomes a phantom Hive column or a glob pattern, and 0.1's narrower encoding still reads.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { decodeDirectoryName, encodeDirectoryName } from "../src/names.js";
import { type TestServer, startTestServer } from "./helpers/server.js";
import { queryDuckDB } from "./helpers/parquet.js";

describe("names on disk", () => {
    let t: TestServer | undefined;
    afterEach(async () => {
        await t?.stop();
        t = undefined;
    });

    it("escapes Hive's set plus < > | and a leading dot, and decodes any %XX (0.1's directories too)", () => {
        expect(encodeDirectoryName("k=v")).toBe("k%3Dv");
        expect(encodeDirectoryName("cpu[0]")).toBe("cpu%5B0%5D");
        expect(encodeDirectoryName(`a"#%'*/:=?\\{[]^<>|b`)).toBe("a%22%23%25%27%2A%2F%3A%3D%3F%5C%7B%5B%5D%5E%3C%3E%7Cb");
        expect(encodeDirectoryName(".hidden.x")).toBe("%2Ehidden.x");
        expect(encodeDirectoryName("tab\there\u007f")).toBe("tab%09here%7F");
        expect(encodeDirectoryName("cpu,host é 日本")).toBe("cpu,host é 日本");
        for (const name of ["k=v", "cpu[0]", ".x", "a/b", "%41", "é=ü"]) expect(decodeDirectoryName(encodeDirectoryName(name))).toBe(name);
        // 0.1 wrote `k=v` and `cpu[0]` as they are: they read back unchanged.
        expect(decodeDirectoryName("k=v")).toBe("k=v");
        expect(decodeDirectoryName("cpu[0]")).toBe("cpu[0]");
    });

    it("stores a database `team=ops` and measurements `k=v` and `cpu[0]` so that DuckDB reads them with no phantom column and finds the glob", async () => {
        t = await startTestServer("node");
        const body = "k=v,host=a f=1 1000\ncpu[0],host=b f=2 2000";
        expect((await fetch(`${t.url}/write?db=${encodeURIComponent("team=ops")}`, { method: "POST", body })).status).toBe(204);
        expect((await fetch(`${t.url}/api/v1/flush`, { method: "POST" })).status).toBe(200);
        const root = join(t.dataDir, "parquet", "team%3Dops");
        const kv = await queryDuckDB(`select * exclude (date, hour) from read_parquet('${root}/k%3Dv/**/*.parquet', union_by_name=true)`);
        expect(kv.map((row) => Object.keys(row).sort())).toEqual([["f", "host", "time"]]);
        const cpu = await queryDuckDB(`select host, f from read_parquet('${root}/cpu%5B0%5D/**/*.parquet', union_by_name=true)`);
        expect(cpu).toEqual([{ host: "b", f: 2 }]);
    });
});

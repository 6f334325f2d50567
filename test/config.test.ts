import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "smol-toml";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { ConfigError, loadConfig, resolveConfig } from "../src/config/load.js";
import { CONFIG_ENTRIES, CONFIG_FLAGS, type HttpServer, envVarName } from "../src/config/schema.js";
import { SluiceError } from "../src/errors.js";
import type { SyncMode } from "../src/wal/writer.js";

const DEFAULT_TOML = fileURLToPath(new URL("../config/default.toml", import.meta.url));

let dir: string;
let files = 0;
beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-config-"));
});
afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
});

async function toml(text: string): Promise<string> {
    const path = join(dir, `${files++}.toml`);
    await writeFile(path, text);
    return path;
}

function errorOf(load: () => unknown): ConfigError {
    try {
        load();
    } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return error as ConfigError;
    }
    throw new Error("expected a ConfigError");
}

function envError(env: Record<string, string>): string {
    return errorOf(() => loadConfig({ env })).message;
}

describe("schema", () => {
    it("derives SLUICE_<SECTION>_<KEY> environment names", () => {
        expect(envVarName("data_dir")).toBe("SLUICE_DATA_DIR");
        expect(envVarName("http.port")).toBe("SLUICE_HTTP_PORT");
        expect(envVarName("wal.sync_mode")).toBe("SLUICE_WAL_SYNC_MODE");
        expect(envVarName("flush.max_age_ms")).toBe("SLUICE_FLUSH_MAX_AGE_MS");
        const names = CONFIG_ENTRIES.map(([key]) => envVarName(key));
        expect(new Set(names).size).toBe(names.length);
    });

    it("maps the contract flags to their keys", () => {
        expect(CONFIG_FLAGS).toEqual({ "--data-dir": "data_dir", "--host": "http.host", "--port": "http.port" });
    });
});

describe("loadConfig", () => {
    it("returns the schema defaults as a frozen, typed object", () => {
        const config = loadConfig({ env: {} });
        expect(config).toEqual({
            data_dir: "./data",
            shutdown_timeout_ms: 30_000,
            node_id: "",
            log: { level: "info", format: "json" },
            http: {
                host: "127.0.0.1",
                port: 8086,
                server: "node",
                max_body_bytes: 64 * 1024 ** 2,
                allow_unauthenticated: false,
                max_inflight_body_bytes: 64 * 1024 ** 2,
                max_connections: 0,
                headers_timeout_ms: 10_000,
                request_timeout_ms: 120_000,
                keep_alive_timeout_ms: 65_000,
                tls_cert_file: "",
                tls_key_file: "",
            },
            auth: { tokens: [] },
            wal: { sync_mode: "fdatasync", sync_interval_ms: 100, max_file_bytes: 64 * 1024 ** 2, max_file_age_ms: 600_000 },
            ingest: {
                max_buffered_bytes: 512 * 1024 ** 2,
                max_measurements_per_database: 10_000,
                max_measurements: 100_000,
                max_columns_per_measurement: 1_000,
                msgpack_time_unit: "ns",
            },
            dedup: { enabled: true },
            prometheus: { database: "prometheus" },
            flush: { max_rows: 1_000_000, max_age_ms: 60_000, worker_nice: 0 },
            parquet: { time_unit: "ns", small_file_rows: 64 },
            storage: { backend: "local" },
            s3: { endpoint: "", bucket: "", prefix: "", region: "us-east-1", force_path_style: false, access_key_id: "", secret_access_key: "", lease_ttl_ms: 30_000 },
            compaction: {
                enabled: true,
                interval_ms: 60_000,
                min_files: 8,
                max_delay_ms: 600_000,
                worker_nice: 10,
                max_rows_per_file: 1_000_000,
                row_group_rows: 65_536,
                encodings: "flush",
            },
            retention: { period: 0, check_interval_ms: 60_000, databases: {} },
        });
        expect(Object.isFrozen(config)).toBe(true);
        expect(Object.isFrozen(config.http)).toBe(true);
        expect(Object.isFrozen(config.auth.tokens)).toBe(true);
        expectTypeOf(config.http.port).toEqualTypeOf<number>();
        expectTypeOf(config.http.server).toEqualTypeOf<HttpServer>();
        expectTypeOf(config.wal.sync_mode).toEqualTypeOf<SyncMode>();
        expectTypeOf(config.auth.tokens).toEqualTypeOf<readonly string[]>();
        expectTypeOf(config.http.allow_unauthenticated).toEqualTypeOf<boolean>();
        expectTypeOf(config.parquet.time_unit).toEqualTypeOf<"ns" | "us">();
    });

    it("applies defaults < file < environment < flags, key by key", async () => {
        const file = await toml(`
data_dir = "/from/file"
[http]
port = 1001
host = "file.example"
[wal]
sync_mode = "fsync"
[flush]
max_rows = 10
`);
        const config = loadConfig({
            file,
            env: { SLUICE_HTTP_PORT: "1002", SLUICE_WAL_SYNC_MODE: "async", SLUICE_HTTP_HOST: "env.example", OTHER: "x" },
            flags: { "http.port": 1003, "http.host": undefined, data_dir: "/from/flag" },
        });
        expect(config.flush.max_age_ms).toBe(60_000);
        expect(config.flush.max_rows).toBe(10);
        expect(config.wal.sync_mode).toBe("async");
        expect(config.http.host).toBe("env.example");
        expect(config.http.port).toBe(1003);
        expect(config.data_dir).toBe("/from/flag");
    });

    it("refuses unknown SLUICE_* environment variables, naming the closest key", () => {
        expect(envError({ SLUICE_HTTP_PROT: "9000" })).toBe(
            "unknown environment variable SLUICE_HTTP_PROT (did you mean SLUICE_HTTP_PORT, for http.port?): every SLUICE_ variable must name a configuration key (config/default.toml lists them)",
        );
        expect(envError({ SLUICE_WAL_SYNCMODE: "off", SLUICE_FLUSH_MAX_ROW: "1", SLUICE_HTTP_PORT: "1" })).toBe(
            "unknown environment variables SLUICE_FLUSH_MAX_ROW (did you mean SLUICE_FLUSH_MAX_ROWS, for flush.max_rows?), SLUICE_WAL_SYNCMODE (did you mean SLUICE_WAL_SYNC_MODE, for wal.sync_mode?): every SLUICE_ variable must name a configuration key (config/default.toml lists them)",
        );
        // A variable that is unset is not there.
        expect(loadConfig({ env: { SLUICE_HTTP_PROT: undefined } })).toEqual(loadConfig({ env: {} }));
    });

    it("accepts the SLUICE_* variables the crash tests set, and other software's variables", () => {
        const env = { SLUICE_TEST_CRASH_AT: "after-drop", SLUICE_CRASH_SEED: "42", SLUICEWAY: "x", OTHER: "y", sluice_http_prot: "z" };
        expect(loadConfig({ env })).toEqual(loadConfig({ env: {} }));
    });

    it("reads process.env when no environment is given", () => {
        const saved = process.env.SLUICE_FLUSH_MAX_ROWS;
        process.env.SLUICE_FLUSH_MAX_ROWS = "7";
        try {
            expect(loadConfig().flush.max_rows).toBe(7);
        } finally {
            if (saved === undefined) delete process.env.SLUICE_FLUSH_MAX_ROWS;
            else process.env.SLUICE_FLUSH_MAX_ROWS = saved;
        }
    });
});

describe("validation errors name the key, the source, the value and what is expected", () => {
    it("is a SluiceError with code config", () => {
        const error = errorOf(() => loadConfig({ env: { SLUICE_HTTP_PORT: "abc" } }));
        expect(error).toBeInstanceOf(SluiceError);
        expect(error.code).toBe("config");
    });

    it("integers", async () => {
        expect(envError({ SLUICE_HTTP_PORT: "abc" })).toBe('SLUICE_HTTP_PORT="abc": http.port must be an integer from 0 to 65535');
        expect(envError({ SLUICE_HTTP_PORT: "65536" })).toBe('SLUICE_HTTP_PORT="65536": http.port must be an integer from 0 to 65535');
        expect(envError({ SLUICE_HTTP_PORT: "-1" })).toBe('SLUICE_HTTP_PORT="-1": http.port must be an integer from 0 to 65535');
        expect(envError({ SLUICE_FLUSH_MAX_ROWS: "0" })).toBe('SLUICE_FLUSH_MAX_ROWS="0": flush.max_rows must be an integer of at least 1');
        expect(envError({ SLUICE_COMPACTION_ROW_GROUP_ROWS: "1023" })).toBe(
            'SLUICE_COMPACTION_ROW_GROUP_ROWS="1023": compaction.row_group_rows must be an integer of at least 1024',
        );
        expect(loadConfig({ env: { SLUICE_COMPACTION_ROW_GROUP_ROWS: "131_072" } }).compaction.row_group_rows).toBe(131_072);
        for (const bad of ["1.5", "1__0", "_1", "1_", " 1", "1e3", "0x10", ""]) {
            expect(envError({ SLUICE_FLUSH_MAX_ROWS: bad })).toContain("flush.max_rows must be an integer");
        }
        const file = await toml("[http]\nport = 70000\n");
        expect(errorOf(() => loadConfig({ file, env: {} })).message).toBe(`http.port = 70000 in ${file}: http.port must be an integer from 0 to 65535`);
        for (const value of ["8086.0", '"8086"']) {
            const typed = await toml(`[http]\nport = ${value}\n`);
            expect(errorOf(() => loadConfig({ file: typed, env: {} })).message).toContain(`http.port = ${value} in ${typed}`);
        }
        expect(errorOf(() => loadConfig({ env: {}, flags: { "http.port": "x" }, flagNames: { "http.port": "--port" } })).message).toBe(
            '--port="x": http.port must be an integer from 0 to 65535',
        );
        expect(errorOf(() => loadConfig({ env: {}, flags: { "http.port": "-1" } })).message).toBe('--set http.port="-1": http.port must be an integer from 0 to 65535');
        expect(errorOf(() => loadConfig({ env: {}, flags: { "flush.max_rows": 1.5 } })).message).toBe("--set flush.max_rows=1.5: flush.max_rows must be an integer of at least 1");
    });

    it("accepts integers with _ separators from the environment and flags", () => {
        const config = loadConfig({ env: { SLUICE_HTTP_PORT: "64_000" }, flags: { "flush.max_rows": "1_000_000", "flush.max_age_ms": 25 } });
        expect(config.http.port).toBe(64_000);
        expect(config.flush.max_rows).toBe(1_000_000);
        expect(config.flush.max_age_ms).toBe(25);
    });

    it("enums", async () => {
        expect(envError({ SLUICE_WAL_SYNC_MODE: "sometimes" })).toBe('SLUICE_WAL_SYNC_MODE="sometimes": wal.sync_mode must be one of fdatasync, fsync, async, off');
        const file = await toml('[http]\nserver = "express"\n');
        expect(errorOf(() => loadConfig({ file, env: {} })).message).toBe(`http.server = "express" in ${file}: http.server must be one of node, hyper-express`);
        expect(loadConfig({ env: { SLUICE_HTTP_SERVER: "hyper-express" } }).http.server).toBe("hyper-express");
        expect(envError({ SLUICE_PARQUET_TIME_UNIT: "ms" })).toBe('SLUICE_PARQUET_TIME_UNIT="ms": parquet.time_unit must be one of ns, us');
        expect(loadConfig({ env: { SLUICE_PARQUET_TIME_UNIT: "us" } }).parquet.time_unit).toBe("us");
    });

    it("booleans", async () => {
        expect(envError({ SLUICE_HTTP_ALLOW_UNAUTHENTICATED: "yes" })).toBe('SLUICE_HTTP_ALLOW_UNAUTHENTICATED="yes": http.allow_unauthenticated must be true or false');
        const file = await toml('[http]\nallow_unauthenticated = "true"\n');
        expect(errorOf(() => loadConfig({ file, env: {} })).message).toBe(`http.allow_unauthenticated = "true" in ${file}: http.allow_unauthenticated must be true or false`);
        expect(loadConfig({ env: { SLUICE_HTTP_ALLOW_UNAUTHENTICATED: "true" } }).http.allow_unauthenticated).toBe(true);
        expect(loadConfig({ env: {}, flags: { "http.allow_unauthenticated": true } }).http.allow_unauthenticated).toBe(true);
    });

    it("strings", async () => {
        expect(envError({ SLUICE_DATA_DIR: "" })).toBe(
            "SLUICE_DATA_DIR is empty: data_dir must be a non-empty string (unset the variable to keep the value from the file or the default)",
        );
        const file = await toml("data_dir = 5\n");
        expect(errorOf(() => loadConfig({ file, env: {} })).message).toBe(`data_dir = 5 in ${file}: data_dir must be a non-empty string`);
        expect(errorOf(() => loadConfig({ env: {}, flags: { "http.host": 1 }, flagNames: { "http.host": "--host" } })).message).toBe(
            "--host=1: http.host must be a non-empty string",
        );
    });

    it("durations and tables of durations", async () => {
        expect(loadConfig({ env: { SLUICE_RETENTION_PERIOD: "30d" } }).retention.period).toBe(30 * 86_400_000);
        expect(loadConfig({ env: { SLUICE_RETENTION_PERIOD: "INF" } }).retention.period).toBe(0);
        expect(envError({ SLUICE_RETENTION_PERIOD: "a month" })).toBe(
            'SLUICE_RETENTION_PERIOD="a month": retention.period must be a duration such as "30d", "12h", "15m" or "500ms" ("0": none)',
        );
        expect(loadConfig({ env: { SLUICE_RETENTION_DATABASES: "telegraf=7d, logs=12h" } }).retention.databases).toEqual({ telegraf: 7 * 86_400_000, logs: 12 * 3_600_000 });
        expect(envError({ SLUICE_RETENTION_DATABASES: "telegraf" })).toBe(
            'SLUICE_RETENTION_DATABASES="telegraf": retention.databases must be comma-separated name=duration pairs such as "telegraf=7d,logs=30d"',
        );
        const file = await toml('[retention]\nperiod = "12h"\n[retention.databases]\n"team=ops" = "2d"\n');
        expect(loadConfig({ file, env: {} }).retention).toMatchObject({ period: 12 * 3_600_000, databases: { "team=ops": 2 * 86_400_000 } });
        const bad = await toml("[retention.databases]\nx = 7\n");
        expect(errorOf(() => loadConfig({ file: bad, env: {} })).message).toBe(
            `retention.databases = {"x":7} in ${bad}: retention.databases must be a table of names to durations such as "7d"`,
        );
    });

    it("lists, without echoing secret values", async () => {
        expect(loadConfig({ env: { SLUICE_AUTH_TOKENS: "a, b" } }).auth.tokens).toEqual(["a", "b"]);
        expect(loadConfig({ env: { SLUICE_AUTH_TOKENS: "" } }).auth.tokens).toEqual([]);
        expect(loadConfig({ env: {}, flags: { "auth.tokens": ["x"] } }).auth.tokens).toEqual(["x"]);
        expect(envError({ SLUICE_AUTH_TOKENS: "secret,,other" })).toBe("SLUICE_AUTH_TOKENS=(hidden): auth.tokens must be a comma-separated list of non-empty strings");
        const file = await toml('[auth]\ntokens = ["secret", 1]\n');
        expect(errorOf(() => loadConfig({ file, env: {} })).message).toBe(`auth.tokens = (hidden) in ${file}: auth.tokens must be a list of non-empty strings`);
    });

    it("rejects a flag that is not a key", () => {
        expect(errorOf(() => loadConfig({ env: {}, flags: { "http.prot": 1 } })).message).toBe('--set http.prot: unknown configuration key "http.prot" (did you mean http.port?)');
    });
});

describe("where each value comes from", () => {
    it("names the default, the file, the variable or the flag as given, for every key", async () => {
        const file = await toml('data_dir = "/from/file"\n[http]\nport = 1001\n[wal]\nsync_mode = "fsync"\n');
        const { config, origins } = resolveConfig({
            file,
            env: { SLUICE_HTTP_PORT: "1002", SLUICE_WAL_SYNC_MODE: "async" },
            flags: { "http.port": "1003", "flush.max_rows": "5" },
            flagNames: { "http.port": "--port" },
        });
        expect(config.http.port).toBe(1003);
        expect(Object.fromEntries(origins)).toMatchObject({
            data_dir: { kind: "file", path: file },
            "http.port": { kind: "flag", flag: "--port" },
            "wal.sync_mode": { kind: "env", variable: "SLUICE_WAL_SYNC_MODE" },
            "flush.max_rows": { kind: "flag", flag: "--set flush.max_rows" },
            "http.host": { kind: "default" },
        });
        expect([...origins.keys()]).toEqual(CONFIG_ENTRIES.map(([key]) => key));
    });
});

describe("empty values", () => {
    it("say that the variable or the flag is empty", () => {
        expect(envError({ SLUICE_HTTP_PORT: "" })).toBe(
            "SLUICE_HTTP_PORT is empty: http.port must be an integer from 0 to 65535 (unset the variable to keep the value from the file or the default)",
        );
        expect(envError({ SLUICE_WAL_SYNC_MODE: "" })).toMatch(/^SLUICE_WAL_SYNC_MODE is empty: wal.sync_mode must be one of /);
        expect(errorOf(() => loadConfig({ env: {}, flags: { "http.port": "" } })).message).toBe(
            "--set http.port is empty: http.port must be an integer from 0 to 65535 (leave the flag out to keep the value from the file or the default)",
        );
    });

    it("are a value where the key allows one: no tokens, no TLS files", () => {
        const config = loadConfig({ env: { SLUICE_AUTH_TOKENS: "", SLUICE_HTTP_TLS_CERT_FILE: "", SLUICE_HTTP_TLS_KEY_FILE: "" } });
        expect(config.auth.tokens).toEqual([]);
        expect(config.http.tls_cert_file).toBe("");
        expect(loadConfig({ env: { SLUICE_HTTP_TLS_CERT_FILE: "/etc/sluice/cert.pem" } }).http.tls_cert_file).toBe("/etc/sluice/cert.pem");
    });
});

describe("byte sizes", () => {
    it("accept KiB, MiB and GiB suffixes in every source", async () => {
        const file = await toml('[http]\nmax_body_bytes = "512KiB"\n[wal]\nmax_file_bytes = "1_048_576"\n');
        const config = loadConfig({ file, env: { SLUICE_INGEST_MAX_BUFFERED_BYTES: "2GiB" }, flags: { "wal.max_file_bytes": "4 GiB" } });
        expect(config.http.max_body_bytes).toBe(512 * 1024);
        expect(config.ingest.max_buffered_bytes).toBe(2 * 1024 ** 3);
        expect(config.wal.max_file_bytes).toBe(4 * 1024 ** 3);
        expect(loadConfig({ file, env: {} }).wal.max_file_bytes).toBe(1024 ** 2);
        expect(loadConfig({ env: { SLUICE_WAL_MAX_FILE_BYTES: "64MiB" } }).wal.max_file_bytes).toBe(64 * 1024 ** 2);
    });

    it("check the range after the unit and reject other units", () => {
        expect(envError({ SLUICE_WAL_MAX_FILE_BYTES: "5GiB" })).toBe(
            'SLUICE_WAL_MAX_FILE_BYTES="5GiB": wal.max_file_bytes must be an integer from 4096 to 4294967296, or a size such as "64MiB" (KiB, MiB, GiB)',
        );
        expect(envError({ SLUICE_WAL_MAX_FILE_BYTES: "2KiB" })).toContain("wal.max_file_bytes must be an integer from 4096");
        for (const bad of ["64MB", "64mib", "1.5GiB", "64  MiB", "MiB"]) {
            expect(envError({ SLUICE_HTTP_MAX_BODY_BYTES: bad })).toContain("http.max_body_bytes must be an integer");
        }
    });

    it("are not accepted by other integer keys", () => {
        expect(envError({ SLUICE_FLUSH_MAX_ROWS: "1KiB" })).toBe('SLUICE_FLUSH_MAX_ROWS="1KiB": flush.max_rows must be an integer of at least 1');
    });
});

describe("config files", () => {
    it("reject an unknown key, naming it", async () => {
        const file = await toml("[http]\nprot = 1\n");
        expect(errorOf(() => loadConfig({ file, env: {} })).message).toBe(`${file}: unknown key http.prot (did you mean http.port?)`);
        const top = await toml("data_dri = 1\n");
        expect(errorOf(() => loadConfig({ file: top, env: {} })).message).toBe(`${top}: unknown key data_dri (did you mean data_dir?)`);
        const quoted = await toml('"http.port" = 1\n');
        expect(errorOf(() => loadConfig({ file: quoted, env: {} })).message).toContain(`${quoted}: unknown key "http.port" (did you mean `);
        const nested = await toml("[http.tls]\ncert = 'x'\n");
        expect(errorOf(() => loadConfig({ file: nested, env: {} })).message).toContain(`${nested}: unknown key http.tls (did you mean http.`);
    });

    it("reject an unknown section, and a section that is not a table", async () => {
        const file = await toml("[htp]\nport = 1\n");
        expect(errorOf(() => loadConfig({ file, env: {} })).message).toBe(`${file}: unknown section [htp]`);
        const scalar = await toml("http = 5\n");
        expect(errorOf(() => loadConfig({ file: scalar, env: {} })).message).toBe(`http = 5 in ${scalar}: http must be a section ([http])`);
    });

    it("reject a missing file and invalid TOML", async () => {
        const missing = join(dir, "missing.toml");
        expect(errorOf(() => loadConfig({ file: missing, env: {} })).message).toBe(`config file ${missing}: no such file`);
        const broken = await toml("[http\n");
        expect(errorOf(() => loadConfig({ file: broken, env: {} })).message).toContain(`config file ${broken}: `);
    });

    it("config/default.toml holds exactly every key with its default and its doc", async () => {
        const text = await readFile(DEFAULT_TOML, "utf8");
        const found = new Map<string, unknown>();
        for (const [name, value] of Object.entries(parse(text))) {
            if (typeof value === "object" && !Array.isArray(value)) {
                for (const [sub, subValue] of Object.entries(value)) found.set(`${name}.${sub}`, subValue);
            } else {
                found.set(name, value);
            }
        }
        expect([...found.keys()].sort()).toEqual(CONFIG_ENTRIES.map(([key]) => key).sort());
        for (const [key, spec] of CONFIG_ENTRIES) {
            expect(found.get(key), key).toEqual(spec.default);
            const name = key.slice(key.indexOf(".") + 1);
            expect(text, key).toContain(`# ${spec.doc}\n${name} = `);
        }
    });

    it("config/default.toml loads to the defaults", () => {
        expect(loadConfig({ file: DEFAULT_TOML, env: {} })).toEqual(loadConfig({ env: {} }));
        expect(loadConfig({ file: DEFAULT_TOML })).toEqual(loadConfig({}));
    });
});

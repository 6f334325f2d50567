/**
 * Database and measurement names as directory names (DESIGN.md §4): percent-encoding of Hive's
 * escape set (`" # % ' * / : = ? \ { [ ] ^`, DEL, control bytes) plus `< > |` and a leading `.`,
 * so that every name line protocol allows is stored, none can escape the data directory, and
 * none turns into a phantom Hive column (`k=v`) or a glob pattern (`cpu[0]`). Decoding undoes any
 * `%XX`, so directories written with Sluice 0.1's narrower set (no `# ' = { [ ] ^`) read back too.
 */

/** The longest directory name most file systems take, in bytes. */
export const MAX_DIRECTORY_NAME_BYTES = 255;

const ESCAPED = new Set(Array.from("\"#%'*/:=?\\{[]^<>|", (c) => c.charCodeAt(0)));

export function encodeDirectoryName(name: string): string {
    let out = "";
    for (let i = 0; i < name.length; i++) {
        const code = name.charCodeAt(i);
        const escape = code < 0x20 || code === 0x7f || ESCAPED.has(code) || (i === 0 && code === 0x2e);
        out += escape ? `%${code.toString(16).toUpperCase().padStart(2, "0")}` : name.charAt(i);
    }
    return out;
}

export function decodeDirectoryName(encoded: string): string {
    return encoded.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Why `name` cannot be a database or measurement name, or undefined when it can. */
export function nameProblem(kind: "database" | "measurement", name: string): string | undefined {
    if (name.length === 0) return `${kind} name is empty`;
    const bytes = Buffer.byteLength(encodeDirectoryName(name), "utf8");
    if (bytes > MAX_DIRECTORY_NAME_BYTES) return `${kind} name is ${bytes} bytes once encoded for the file system; the limit is ${MAX_DIRECTORY_NAME_BYTES}`;
    return undefined;
}

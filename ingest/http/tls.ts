/**
 * HTTPS credentials: `http.tls_cert_file` and `http.tls_key_file`, read and checked at start
 * (before recovery, which can take long), so that a missing, unreadable or mismatched file stops
 * the start at once, naming it. Read once: new files take a restart.
 */
import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import { SluiceError } from "../../src/errors.js";

export class TlsConfigError extends SluiceError {
    readonly code = "tls-config";
}

/** A certificate (chain) and its private key, PEM; checked to belong together. */
export interface TlsCredentials {
    readonly cert: Buffer;
    readonly key: Buffer;
}

/** The configured files: both, or neither (plain HTTP). */
export interface TlsFiles {
    readonly tls_cert_file: string;
    readonly tls_key_file: string;
}

/** The seam to the file system: reads a whole file. */
export type ReadWholeFile = (path: string) => Promise<Buffer>;

const REASONS: Readonly<Record<string, string>> = {
    ENOENT: "no such file",
    EACCES: "permission denied (the file must be readable by the user Sluice runs as)",
    EISDIR: "is a directory",
};

async function readNamed(key: string, path: string, read: ReadWholeFile): Promise<Buffer> {
    try {
        return await read(path);
    } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new TlsConfigError(`${key} ${path}: ${(code === undefined ? undefined : REASONS[code]) ?? (error as Error).message}`, { cause: error });
    }
}

/** The credentials of `files`, or undefined when neither is set; a `TlsConfigError` names what is wrong. */
export async function readTlsCredentials(files: TlsFiles, read: ReadWholeFile = readFile): Promise<TlsCredentials | undefined> {
    const { tls_cert_file: certFile, tls_key_file: keyFile } = files;
    if (certFile === "" && keyFile === "") return undefined;
    if (certFile === "" || keyFile === "") {
        const [set, unset] = certFile === "" ? ["http.tls_key_file", "http.tls_cert_file"] : ["http.tls_cert_file", "http.tls_key_file"];
        throw new TlsConfigError(`${set} is set but ${unset} is not: HTTPS needs both http.tls_cert_file and http.tls_key_file (neither: plain HTTP)`);
    }
    const cert = await readNamed("http.tls_cert_file", certFile, read);
    const key = await readNamed("http.tls_key_file", keyFile, read);
    try {
        createSecureContext({ cert, key });
    } catch (error) {
        throw new TlsConfigError(
            `http.tls_cert_file ${certFile} and http.tls_key_file ${keyFile} are not a PEM certificate and its unencrypted private key: ${(error as Error).message}`,
            { cause: error },
        );
    }
    return { cert, key };
}

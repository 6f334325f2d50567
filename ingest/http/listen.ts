/** Starts the configured HTTP adapter; both serve the same `RequestHandler`. */
import type { Config } from "../../src/config/schema.js";
import type { ListenOptions, ListeningServer, RequestHandler } from "./exchange.js";
import { listenNode } from "./node-adapter.js";
import { type ReadWholeFile, type TlsCredentials, TlsConfigError, readTlsCredentials } from "./tls.js";

/** The server to start: node:http, node:https with its credentials, or hyper-express (plain HTTP only). */
export type ServerChoice = { readonly server: "node"; readonly tls: TlsCredentials | undefined } | { readonly server: "hyper-express" };

/**
 * The configured server, its TLS files read and checked; refuses TLS on hyper-express, whose
 * npm build of uWebSockets.js has no TLS.
 */
export async function chooseServer(http: Config["http"], read?: ReadWholeFile): Promise<ServerChoice> {
    if (http.server === "node") return { server: "node", tls: await readTlsCredentials(http, read) };
    if (http.tls_cert_file !== "" || http.tls_key_file !== "") {
        throw new TlsConfigError(
            'http.server = "hyper-express" cannot serve HTTPS (the npm build of uWebSockets.js it runs on has no TLS): use http.server = "node" with http.tls_cert_file and http.tls_key_file, or leave them empty and terminate TLS in a proxy in front of Sluice',
        );
    }
    return { server: "hyper-express" };
}

/** `https` when the chosen server speaks TLS, else `http`. */
export function schemeOf(choice: ServerChoice): "http" | "https" {
    return choice.server === "node" && choice.tls !== undefined ? "https" : "http";
}

export async function listen(choice: ServerChoice, handler: RequestHandler, options: ListenOptions): Promise<ListeningServer> {
    if (choice.server === "node") return listenNode(handler, options, choice.tls);
    // Loaded only when chosen: it brings a native uWebSockets.js binary with it.
    const { listenHyperExpress } = await import("./hyper-express-adapter.js");
    return listenHyperExpress(handler, options);
}

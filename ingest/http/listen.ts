/** Starts the configured HTTP adapter; both serve the same `RequestHandler`. */
import type { HttpServer } from "../../src/config/schema.js";
import type { ListenOptions, ListeningServer, RequestHandler } from "./exchange.js";
import { listenNode } from "./node-adapter.js";

export async function listen(server: HttpServer, handler: RequestHandler, options: ListenOptions): Promise<ListeningServer> {
    if (server === "node") return listenNode(handler, options);
    // Loaded only when chosen: it brings a native uWebSockets.js binary with it.
    const { listenHyperExpress } = await import("./hyper-express-adapter.js");
    return listenHyperExpress(handler, options);
}

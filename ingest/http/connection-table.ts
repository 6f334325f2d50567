/**
 * The open connections of the node adapter and `http.max_connections`. At the cap, a new
 * connection closes the connection that has been idle longest (it sent nothing yet, or its
 * keep-alive is unused), as nginx does with keep-alive connections when it runs out: a flood of
 * idle connections then evicts itself, and a client that sends its request at once gets through.
 * When every connection has a request in flight, the new one is closed instead.
 */

export interface Closable {
    destroy(): void;
}

export class ConnectionTable<C extends Closable> {
    /** Idle connections, the one idle longest first (a Map keeps insertion order). */
    readonly #idle = new Map<C, true>();
    /** Connections with requests in flight, and how many. */
    readonly #busy = new Map<C, number>();

    constructor(readonly max: number) {}

    get size(): number {
        return this.#idle.size + this.#busy.size;
    }

    // Invariant kept: at most `max` connections stay open; only an idle one is ever closed to
    // make room, and the one idle longest.
    /** A connection was accepted; returns the connection closed to make room, if one was. */
    opened(connection: C): C | undefined {
        let closed: C | undefined;
        if (this.size >= this.max) {
            closed = this.#idle.keys().next().value ?? connection;
            this.#idle.delete(closed);
            closed.destroy();
            if (closed === connection) return closed;
        }
        this.#idle.set(connection, true);
        return closed;
    }

    /** A request began on the connection. */
    requestStarted(connection: C): void {
        const busy = this.#busy.get(connection);
        if (busy !== undefined) this.#busy.set(connection, busy + 1);
        else if (this.#idle.delete(connection)) this.#busy.set(connection, 1);
    }

    /** A request on the connection was answered (or abandoned). */
    requestEnded(connection: C): void {
        const busy = this.#busy.get(connection);
        if (busy === undefined) return;
        if (busy > 1) {
            this.#busy.set(connection, busy - 1);
            return;
        }
        this.#busy.delete(connection);
        this.#idle.set(connection, true);
    }

    /** Closes every idle connection (shutdown: node's closeIdleConnections skips those that never sent a byte). */
    closeIdle(): void {
        for (const connection of [...this.#idle.keys()]) {
            this.#idle.delete(connection);
            connection.destroy();
        }
    }

    closed(connection: C): void {
        this.#idle.delete(connection);
        this.#busy.delete(connection);
    }
}

/**
 * The open connections of the node adapter and `http.max_connections`. At the cap, a new
 * connection closes an idle one: first the one waiting longest without having sent a request,
 * then the keep-alive connection idle longest (nginx also reclaims idle keep-alive connections
 * when it runs out). A flood of connections that send nothing then evicts itself, while clients
 * that send their request at once, or have already been served, get through. When every
 * connection has a request in flight, the new one is closed instead.
 */

export interface Closable {
    destroy(): void;
}

export class ConnectionTable<C extends Closable> {
    /** Connections that have not sent a request yet, the oldest first (a Map keeps insertion order). */
    readonly #fresh = new Map<C, true>();
    /** Keep-alive connections between requests, the one idle longest first. */
    readonly #idle = new Map<C, true>();
    /** Connections with requests in flight, and how many. */
    readonly #busy = new Map<C, number>();

    constructor(readonly max: number) {}

    get size(): number {
        return this.#fresh.size + this.#idle.size + this.#busy.size;
    }

    // Invariant kept: at most `max` connections stay open; only one without a request in flight is
    // ever closed to make room, never-used ones before served ones, the longest waiting first.
    /** A connection was accepted; returns the connection closed to make room, if one was. */
    opened(connection: C): C | undefined {
        let closed: C | undefined;
        if (this.size >= this.max) {
            closed = this.#fresh.keys().next().value ?? this.#idle.keys().next().value ?? connection;
            this.#fresh.delete(closed);
            this.#idle.delete(closed);
            closed.destroy();
            if (closed === connection) return closed;
        }
        this.#fresh.set(connection, true);
        return closed;
    }

    /** A request began on the connection. */
    requestStarted(connection: C): void {
        const busy = this.#busy.get(connection);
        if (busy !== undefined) this.#busy.set(connection, busy + 1);
        else if (this.#fresh.delete(connection) || this.#idle.delete(connection)) this.#busy.set(connection, 1);
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

    /** Closes every connection without a request in flight (shutdown: node's closeIdleConnections skips those that never sent a byte). */
    closeIdle(): void {
        for (const connection of [...this.#fresh.keys(), ...this.#idle.keys()]) connection.destroy();
        this.#fresh.clear();
        this.#idle.clear();
    }

    closed(connection: C): void {
        this.#fresh.delete(connection);
        this.#idle.delete(connection);
        this.#busy.delete(connection);
    }
}

/**
 * Token authentication, as InfluxDB clients send it: `Authorization: Token <t>`, `Bearer <t>`,
 * `Basic base64(user:<t>)` (the user name is ignored), `?p=<t>` (v1), or `x-api-key: <t>` (Arc).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "./errors.js";
import type { HttpRequest } from "./http/exchange.js";

function digest(token: string): Buffer {
    return createHash("sha256").update(token, "utf8").digest();
}

/** The token a request presents, if any. */
export function presentedToken(request: Pick<HttpRequest, "headers">, query: ReadonlyMap<string, string>): string | undefined {
    const header = request.headers.get("authorization");
    if (header !== undefined) {
        const space = header.indexOf(" ");
        const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
        const value = space < 0 ? "" : header.slice(space + 1).trim();
        if (scheme === "token" || scheme === "bearer") return value;
        if (scheme === "basic") {
            const decoded = Buffer.from(value, "base64").toString("utf8");
            const colon = decoded.indexOf(":");
            return colon < 0 ? decoded : decoded.slice(colon + 1);
        }
    }
    return request.headers.get("x-api-key") ?? query.get("p");
}

export class TokenAuthenticator {
    #digests: Buffer[];

    constructor(tokens: readonly string[]) {
        this.#digests = tokens.map(digest);
    }

    /** Accepts these tokens from now on (a reload on SIGHUP); requests in flight were checked already. */
    replace(tokens: readonly string[]): void {
        this.#digests = tokens.map(digest);
    }

    get enabled(): boolean {
        return this.#digests.length > 0;
    }

    // Invariant kept: the time taken does not depend on how much of a token matched (digests of
    // equal length compared in constant time, every configured token compared).
    check(request: Pick<HttpRequest, "headers">, query: ReadonlyMap<string, string>): void {
        if (!this.enabled) return;
        const token = presentedToken(request, query);
        if (token === undefined || token === "") throw new UnauthorizedError();
        const presented = digest(token);
        let match = false;
        for (const expected of this.#digests) match = timingSafeEqual(presented, expected) || match;
        if (!match) throw new UnauthorizedError();
    }
}

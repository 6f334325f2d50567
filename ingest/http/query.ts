/** Query strings decoded strictly: a percent-escape that is not valid UTF-8 is a 400, not U+FFFD. */
import { BadRequestError } from "../errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeComponent(text: string, what: string): string {
    const bytes = Buffer.from(text.replaceAll("+", " "), "latin1");
    const out = Buffer.allocUnsafe(bytes.length);
    let length = 0;
    for (let i = 0; i < bytes.length; i++) {
        const byte = bytes[i]!;
        if (byte === 0x25 && i + 2 < bytes.length && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
            out[length++] = Number.parseInt(text.slice(i + 1, i + 3), 16);
            i += 2;
        } else out[length++] = byte;
    }
    try {
        return utf8.decode(out.subarray(0, length));
    } catch {
        throw new BadRequestError(`query parameter ${what} is not valid UTF-8`);
    }
}

/** The parameters of a raw query string (without `?`); a repeated name keeps its first value. */
export function parseQuery(raw: string): ReadonlyMap<string, string> {
    const params = new Map<string, string>();
    if (raw === "") return params;
    for (const pair of raw.split("&")) {
        if (pair === "") continue;
        const at = pair.indexOf("=");
        const name = decodeComponent(at < 0 ? pair : pair.slice(0, at), "name");
        if (!params.has(name)) params.set(name, decodeComponent(at < 0 ? "" : pair.slice(at + 1), `"${name}"`));
    }
    return params;
}

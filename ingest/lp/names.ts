/**
 * Names: the measurement, tag keys, tag values and field keys, with each element's escapes
 * (line-protocol.md §A2). A backslash escapes only the characters listed for its element and is
 * a literal character before anything else. This is the careful path, run once per distinct raw
 * name; repeated names are found by their bytes (byte-table.ts) and never decoded again.
 */
import { BACKSLASH, COMMA, CR, DEL, EQUALS, LF, SPACE, hexByte, isLineEnd, isUtf8Range } from "./bytes.js";

export const MEASUREMENT = 0;
export const TAG_KEY = 1;
export const TAG_VALUE = 2;
export const FIELD_KEY = 3;
export type NameElement = typeof MEASUREMENT | typeof TAG_KEY | typeof TAG_VALUE | typeof FIELD_KEY;

export const ELEMENT_NAMES = ["measurement", "tag key", "tag value", "field key"] as const;

/** A name read: its unescaped value and the index of the byte that ended it. */
export interface Name {
    readonly value: string;
    readonly end: number;
}

/**
 * Reads the name that starts at `pos`, up to the first unescaped terminator of its element
 * (measurement: `,` or space; tag key and field key: `=`, also stopping at `,` and space; tag
 * value: `,` or space) or the end of the line. Returns the name when it is well formed (the
 * caller checks emptiness and what the terminator is), else the reason it is not: a control
 * character, a lone CR, a trailing backslash, a raw `=` in a tag value, invalid UTF-8.
 */
export function readName(bytes: Buffer, pos: number, end: number, element: NameElement, checkUtf8: boolean): Name | string {
    const escapesEquals = element !== MEASUREMENT;
    const what = ELEMENT_NAMES[element];
    let pieces: string[] | null = null;
    let pieceStart = pos;
    let high = false;
    let i = pos;
    for (; i < end; i++) {
        const c = bytes[i]!;
        if (c === BACKSLASH) {
            if (isLineEnd(bytes, i + 1, end)) return `${what} ends with a backslash`;
            const next = bytes[i + 1]!;
            if (next === COMMA || next === SPACE || (next === EQUALS && escapesEquals)) {
                (pieces ??= []).push(bytes.toString("utf8", pieceStart, i));
                pieceStart = i + 1;
                i++;
            }
            continue;
        }
        if (c === COMMA || c === SPACE) break;
        if (c === EQUALS) {
            if (element === TAG_KEY || element === FIELD_KEY) break;
            if (element === TAG_VALUE) return `tag value has an unescaped "=" (write it as \\=)`;
            continue;
        }
        if (c < 0x20 || c === DEL) {
            if (c === LF) break;
            if (c === CR) {
                if (isLineEnd(bytes, i, end)) break;
                return "carriage return not followed by a line feed";
            }
            return `invalid character ${hexByte(c)} in ${what}`;
        }
        if (c >= 0x80) high = true;
    }
    if (high && checkUtf8 && !isUtf8Range(bytes, pos, i)) return `${what} is not valid UTF-8`;
    const tail = bytes.toString("utf8", pieceStart, i);
    return { value: pieces === null ? tail : pieces.join("") + tail, end: i };
}

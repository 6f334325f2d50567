/** Boolean field values: the ten spellings of the grammar's `boolfield`, read as words. */
import { type Scanned, valueTokenEnd } from "./numbers.js";

// The boolean spellings as little-endian words: "true", "True", "TRUE"; "fals", "Fals", "FALS" (+ "e"/"E").
const TRUE_WORDS = [0x65757274, 0x65757254, 0x45555254];
const FALS_WORDS = [0x736c6166, 0x736c6146, 0x534c4146];

/** 1 (true), 0 (false) or -1 (not a boolean) for the token at `start`; `out.end` is set past the token. */
export function booleanValue(view: DataView, bytes: Uint8Array, start: number, end: number, out: Scanned): number {
    const stop = valueTokenEnd(bytes, start, end);
    out.end = stop;
    const length = stop - start;
    if (length === 1) {
        const first = bytes[start]!;
        return first === 0x74 || first === 0x54 ? 1 : 0; // t T / f F
    }
    if (length === 4) {
        const word = view.getInt32(start, true);
        return word === TRUE_WORDS[0] || word === TRUE_WORDS[1] || word === TRUE_WORDS[2] ? 1 : -1;
    }
    if (length === 5) {
        const word = view.getInt32(start, true);
        const last = bytes[start + 4];
        if ((word === FALS_WORDS[0] || word === FALS_WORDS[1]) && last === 0x65) return 0; // false False
        if (word === FALS_WORDS[2] && last === 0x45) return 0; // FALSE
    }
    return -1;
}

/** Why `token` (as quoted for messages) is not a boolean value of field `key`. */
export function booleanProblem(key: string, token: string): string {
    return `invalid boolean ${token} for field "${key}" (use t, T, true, True, TRUE, f, F, false, False or FALSE)`;
}

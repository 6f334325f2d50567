/**
 * The root of Sluice's error tree. Every error carries a stable `code` (kebab-case, safe to
 * match on and to log) and says whether repeating the operation later can succeed.
 */
export abstract class SluiceError extends Error {
    abstract readonly code: string;
    /** True when the same request may succeed later (a 503 with Retry-After, not a 400). */
    readonly retryable: boolean = false;

    constructor(message: string, options?: { cause?: unknown }) {
        super(message, options);
        this.name = new.target.name;
    }
}

/** The message of anything thrown (an Error's message, else its string form). */
export function messageOf(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
}

/** Anything thrown, as an Error (a non-Error wrapped, its string form the message, itself the cause). */
export function errorOf(error: unknown): Error {
    return error instanceof Error ? error : new Error(String(error), { cause: error });
}

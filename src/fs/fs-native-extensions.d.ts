/** The part of `fs-native-extensions` Sluice uses (the package ships no type declarations). */
declare module "fs-native-extensions" {
    /** Takes an exclusive lock on the whole file (an OFD lock on Linux, flock elsewhere); false when another open file holds one. */
    export function tryLock(fd: number): boolean;
    export function unlock(fd: number): void;
    /** Exchanges two paths atomically (renameat2 with RENAME_EXCHANGE on Linux, renamex_np with RENAME_SWAP on macOS). */
    export function swap(from: string, to: string): Promise<void>;
}

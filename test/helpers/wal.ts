import { systemClock } from "../../src/clock.js";
import { walWriterOptions } from "../../src/config/components.js";
import { loadConfig } from "../../src/config/load.js";
import { nodeFileSystem } from "../../src/fs/file-system.js";
import type { WalWriterOptions } from "../../src/wal/writer.js";

/** WAL writer options: the configuration's defaults for `dir`, then `overrides`. */
export function walOptions(overrides: Partial<WalWriterOptions> & { readonly dir: string }): WalWriterOptions {
    const defaults = walWriterOptions(loadConfig({ env: {} }), overrides.dir, 0, { fileSystem: nodeFileSystem, clock: systemClock });
    return { ...defaults, ...overrides };
}

import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { CONFIG_ENTRIES } from "../src/config/schema.js";

const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");

describe("README", () => {
    it("starts with the two commands a newcomer runs", () => {
        const head = readme.split("\n").slice(0, 6).join("\n");
        expect(head).toContain("npm install && npm start");
        expect(head).toContain("npm install && npm test");
    });

    it.each(CONFIG_ENTRIES.map(([key, spec]) => [key, spec.default] as const))("documents %s with its default", (key, value) => {
        const cell = typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value);
        expect(readme).toContain(`| \`${key}\` | \`${cell}\` |`);
    });
});

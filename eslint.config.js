// ESLint: typescript-eslint's strict, type-checked rules over every TypeScript file.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["dist/**", "node_modules/**", "data/**", "bench-tmp/**", "eslint.config.js"] },
    js.configs.recommended,
    ...tseslint.configs.strictTypeChecked,
    {
        languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
        rules: {
            // Counts, sizes, sequences and bigint nanoseconds belong in messages; objects still may not.
            "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
            // Under noUncheckedIndexedAccess every typed-array read in the parser and encoder hot loops is `a[i]!`; a checked read per element costs measured speed.
            "@typescript-eslint/no-non-null-assertion": "off",
            // Routes, purge targets and seams implement async interfaces: they return promises even when nothing inside awaits.
            "@typescript-eslint/require-await": "off",
        },
    },
    {
        files: ["test/**/*.ts"],
        rules: {
            // vitest's asymmetric matchers (expect.any, expect.objectContaining) are typed `any`.
            "@typescript-eslint/no-unsafe-assignment": "off",
            "@typescript-eslint/no-unsafe-argument": "off",
        },
    },
);

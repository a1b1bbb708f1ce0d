// Lint: typescript-eslint's type-aware rules; floating promises are errors because every
// unit of the pipeline is asynchronous and a lost promise is a lost failure.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "bench/results/**"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test's test() returns a promise the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: "package", name: ["test", "it", "describe", "suite"], package: "node:test" },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true },
      ],
    },
  },
  // Plain JavaScript run as shipped (bin/), as a user writes it (examples/) or by the build (scripts/): no
  // type information.
  {
    files: ["eslint.config.js", "bin/**", "examples/**", "scripts/**"],
    ...tseslint.configs.disableTypeChecked,
  },
);

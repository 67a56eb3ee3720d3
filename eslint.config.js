// Type-aware linting: no-floating-promises and no-misused-promises need type information.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "bench/results/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: [
            "*.js",
            "*.ts",
            "scripts/*.mjs",
            "scripts/*.ts",
            "packages/cli/bin/*.mjs",
            "packages/server/bin/*.mjs",
          ],
          // The scripts and bins are a handful of small files; typescript-eslint's default cap of 8 only guards
          // against a glob that sweeps in a whole source tree.
          maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 16,
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-properties": [
        "error",
        {
          object: "Math",
          property: "random",
          message: "Use crypto.getRandomValues via the injected random.",
        },
      ],
    },
  },
  {
    // What comes from a file or the network is read through its schema (core's schemas/, or a zod-free reader of
    // packages/cli/src/fast-readers.ts checked against one), never cast: a cast is a type nobody checked.
    // e2e/unchecked-json.test.ts shows the rule fires, also on a cast spread over several lines.
    files: ["packages/*/src/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector:
            ":matches(TSAsExpression, TSTypeAssertion) > CallExpression[callee.object.name='JSON'][callee.property.name='parse']",
          message:
            "Do not cast what JSON.parse returns: declare it `unknown` and read it with its schema (core's checkSchema, or a fast-readers.ts reader on the hot path).",
        },
      ],
    },
  },
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
  {
    // Plain JavaScript scripts run on Node; TypeScript files get their globals from @types/node instead.
    files: ["**/*.js", "**/*.mjs"],
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        URL: "readonly",
        performance: "readonly",
      },
    },
  },
  {
    files: ["**/*.test.ts", "e2e/**/*.ts", "bench/**", "scripts/**"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
);

import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["source"] },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "e2e/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: process-heavy suites (32 writers, kill -9 trials, keyring daemons) fight each other when
    // every file runs at once, so cap the workers.
    maxWorkers: 2,
  },
});

import { configDefaults, defineConfig } from "vitest/config";
import base from "./vitest.config.js";

// `npm run test:unit`: quick feedback while working. The suites of packages/* that need neither a build (dist/)
// nor a system part: no keychain daemon, no PostgreSQL, no git, no shell beyond sh and bash. Server suites run
// on SQLite only (test/databases.ts). `npm test` runs everything.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    exclude: [
      ...configDefaults.exclude,
      // gnome-keyring and D-Bus.
      "packages/cli/src/keystore/keyring.test.ts",
      "packages/cli/src/keystore/secret-service-keyring.test.ts",
      // git.
      "packages/cli/src/commands/doctor.test.ts",
      "packages/cli/src/commands/setup-git.test.ts",
      // bash, zsh and fish.
      "packages/cli/src/commands/completion.test.ts",
      // PostgreSQL, which these start themselves.
      "packages/server/src/db/postgres.test.ts",
      "packages/server/test/database-matrix.test.ts",
      "packages/server/test/readyz-matrix.test.ts",
      // The built server (packages/server/dist), as processes.
      "packages/server/test/*-processes.test.ts",
      "packages/server/test/writer-thread.test.ts",
      // Load by design, many processes or many thousand requests: the locks, latchkey.json and the sync routes
      // under contention, and a child's whole life under `run`.
      "packages/cli/src/fs/lock.test.ts",
      "packages/cli/src/project/project.test.ts",
      "packages/cli/src/run/child.test.ts",
      "packages/server/test/sync-canary.test.ts",
      "packages/server/test/sync-concurrency.test.ts",
    ],
    env: { ...base.test?.env, LATCHKEY_TEST_SQLITE_ONLY: "1" },
  },
});

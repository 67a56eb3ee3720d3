// The database matrix of the server suites (issue 6 point 8): a suite written once with describeEachDatabase runs
// on SQLite (a file in a temporary data directory) and on PostgreSQL (a throwaway cluster on a loopback port,
// started once per suite file, one fresh database per `fresh()` call), both dropped afterwards.
//
// PostgreSQL comes from the apt package `postgresql`. Where it is missing the PostgreSQL half is skipped with a
// line saying so, except under CI=true: there the half runs and its start-up fails every test, because a skipped
// database is exactly what point 8 forbids. `npm run test:unit` (vitest.unit.config.ts, which sets
// LATCHKEY_TEST_SQLITE_ONLY=1) declares the SQLite half alone: it runs without any system part, and `npm test`
// runs both.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe } from "vitest";
import { postgresAvailable, startPostgres, type PostgresCluster } from "../../../e2e/support/postgres.js";
import type { DatabaseConfig } from "../src/db/index.js";

/** The two databases the server supports. */
export type DatabaseKind = "sqlite" | "postgres";

/** One side of the matrix, handed to the suite. */
export interface DatabaseTarget {
  readonly kind: DatabaseKind;
  /**
   * A config for an empty database of this kind with its own empty data directory (the server keeps its secret
   * there on both databases); everything is removed after the suite. Call it in a test or a beforeEach/beforeAll.
   */
  fresh(): Promise<DatabaseConfig>;
  /** The environment a server process needs for `config`: DATABASE_URL for PostgreSQL, nothing for SQLite. */
  env(config: DatabaseConfig): Record<string, string>;
  /** The PostgreSQL cluster behind `fresh()`; null on SQLite. Valid once the suite's beforeAll has run. */
  cluster(): PostgresCluster | null;
}

const sqliteOnly = process.env.LATCHKEY_TEST_SQLITE_ONLY === "1";
const mustRun = process.env.CI === "true";
const postgres = sqliteOnly ? { ok: false, reason: "SQLite only" } : postgresAvailable();
if (!postgres.ok && !mustRun && !sqliteOnly) {
  console.warn(`skipping the PostgreSQL half of the server suites: ${postgres.reason}`);
}

/**
 * Whether the PostgreSQL half runs here (always under CI=true, where a missing PostgreSQL fails it; never in the
 * SQLite-only run).
 */
export const postgresRuns = !sqliteOnly && (postgres.ok || mustRun);

/** Temporary data directories made for one suite, removed in its afterAll. */
function dataDirs(): { make(): Promise<string>; removeAll(): Promise<void> } {
  const made: string[] = [];
  return {
    make: async () => {
      const dir = await mkdtemp(join(tmpdir(), "lk-server-data-"));
      made.push(dir);
      return dir;
    },
    removeAll: async () => {
      await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}

function sqliteTarget(): DatabaseTarget {
  const dirs = dataDirs();
  afterAll(() => dirs.removeAll());
  return {
    kind: "sqlite",
    fresh: async () => ({ dataDir: await dirs.make() }),
    env: () => ({}),
    cluster: () => null,
  };
}

function postgresTarget(): DatabaseTarget {
  const dirs = dataDirs();
  let cluster: PostgresCluster | null = null;
  beforeAll(async () => {
    cluster = await startPostgres();
  });
  // Registered before any afterAll of the suite body, so it runs after them (vitest runs afterAll hooks in
  // reverse): pools the suite closes in its own afterAll are closed before the cluster stops.
  afterAll(async () => {
    await cluster?.stop();
    await dirs.removeAll();
  });
  return {
    kind: "postgres",
    fresh: async () => {
      if (cluster === null)
        throw new Error("the PostgreSQL cluster is not running (call fresh() from a test or hook)");
      return { databaseUrl: await cluster.createDatabase(), dataDir: await dirs.make() };
    },
    env: (config): Record<string, string> =>
      config.databaseUrl === undefined ? {} : { DATABASE_URL: config.databaseUrl },
    cluster: () => cluster,
  };
}

/**
 * Declares `suite` twice, as `NAME (SQLite)` and `NAME (PostgreSQL)`, each with its own target. The suite body
 * registers tests and hooks as in a `describe` callback.
 */
export function describeEachDatabase(name: string, suite: (target: DatabaseTarget) => void): void {
  describe(`${name} (SQLite)`, () => suite(sqliteTarget()));
  // Not declared at all in the SQLite-only run: under CI=true a skipped test counts as a failure.
  if (!sqliteOnly) describe.skipIf(!postgresRuns)(`${name} (PostgreSQL)`, () => suite(postgresTarget()));
}

// The built `latchkey-server` process on both databases (issue 6 points 1 and 8): it migrates on start, answers
// /readyz, stops with 0 on SIGTERM; a restart finds the schema current; four processes starting at once on one
// fresh database all become ready with every migration applied exactly once (on PostgreSQL, Kysely's advisory
// lock across processes; on SQLite, the migration transaction's BEGIN IMMEDIATE on the file's write lock). On PostgreSQL, a database that is down makes the start
// fail with a non-zero exit and nothing of DATABASE_URL's password on any output.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { afterEach, expect, it } from "vitest";
import { openDatabase } from "../packages/server/src/db/index.js";
import { MIGRATIONS } from "../packages/server/src/db/migrations.js";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import type { DatabaseConfig } from "../packages/server/src/db/index.js";
import { startPostgres } from "./support/postgres.js";

const BIN = fileURLToPath(new URL("../packages/server/bin/latchkey-server.mjs", import.meta.url));
if (!existsSync(fileURLToPath(new URL("../packages/server/dist/main.mjs", import.meta.url)))) {
  throw new Error("packages/server/dist is missing: run `npm run build` first (npm test does).");
}

interface ServerProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the URL from the `server.listening` log line; rejects if the process exits first. */
  readonly listening: Promise<string>;
  readonly exited: Promise<number | null>;
}

function startServer(config: DatabaseConfig, env: Record<string, string>): ServerProcess {
  const child = spawn(process.execPath, [BIN, "--port", "0", "--data-dir", config.dataDir], {
    env: { PATH: process.env.PATH, LANG: "C.UTF-8", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      output += d;
      for (const line of output.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const entry = JSON.parse(line) as { event?: string; url?: string };
          if (entry.event === "server.listening" && entry.url !== undefined) resolve(entry.url);
        } catch {
          // a line still being written
        }
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
    void exited.then((code) =>
      reject(new Error(`latchkey-server exited (${code}) before listening: ${output}`)),
    );
  });
  // Only the tests that expect a start read it; keep a failed start from being an unhandled rejection otherwise.
  listening.catch(() => undefined);
  return { child, output: () => output, listening, exited };
}

const running: ServerProcess[] = [];
afterEach(async () => {
  for (const server of running.splice(0)) {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill("SIGKILL");
      await server.exited;
    }
  }
});

function start(config: DatabaseConfig, env: Record<string, string>): ServerProcess {
  const server = startServer(config, env);
  running.push(server);
  return server;
}

async function stop(server: ServerProcess): Promise<number | null> {
  server.child.kill("SIGTERM");
  return server.exited;
}

async function readyz(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: await response.json() };
}

/** Names in kysely_migration, with repeats: each must appear once. */
async function appliedMigrations(config: DatabaseConfig): Promise<string[]> {
  const database = await openDatabase(config);
  try {
    const result = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
      database.db,
    );
    return result.rows.map((r) => r.name);
  } finally {
    await database.close();
  }
}

const ALL = Object.keys(MIGRATIONS).sort();

/** The migrations a process says it ran, from its `server.starting` log line. */
function migrationsRun(output: string): string[] {
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { event?: string; migrationsRun?: string[] };
    if (entry.event === "server.starting") return entry.migrationsRun ?? [];
  }
  throw new Error(`no server.starting line in: ${output}`);
}

describeEachDatabase("latchkey-server process", (target) => {
  it("migrates on start, is ready, stops with 0, and finds the schema current after a restart", async () => {
    const config = await target.fresh();
    const first = start(config, target.env(config));
    const url = await first.listening;
    expect(await readyz(url)).toEqual({ status: 200, body: { status: "ready" } });
    expect(first.output()).toContain(`"dialect":"${target.kind}"`);
    expect(first.output()).toContain(`"migrationsRun":${JSON.stringify(ALL)}`);
    expect(await stop(first)).toBe(0);

    const second = start(config, target.env(config));
    expect(await readyz(await second.listening)).toEqual({ status: 200, body: { status: "ready" } });
    expect(second.output()).toContain(`"migrationsRun":[]`);
    expect(await stop(second)).toBe(0);
    expect(await appliedMigrations(config)).toEqual(ALL);
  });

  it("lets four processes start at once on a fresh database: all ready, each migration applied once", async () => {
    const config = await target.fresh();
    // The secret is shared through LATCHKEY_SERVER_SECRET, as a deployment of several processes would do.
    const env = { ...target.env(config), LATCHKEY_SERVER_SECRET: "s".repeat(48) };
    const servers = Array.from({ length: 4 }, () => start(config, env));
    const urls = await Promise.all(servers.map((s) => s.listening));
    for (const url of urls) expect(await readyz(url)).toEqual({ status: 200, body: { status: "ready" } });
    // One process ran the whole list; the others waited for the lock and found nothing left to run.
    const ran = servers.map((s) => migrationsRun(s.output()));
    expect(ran.filter((names) => names.length > 0)).toEqual([ALL]);
    expect(await Promise.all(servers.map(stop))).toEqual([0, 0, 0, 0]);
    expect(await appliedMigrations(config)).toEqual(ALL);
  });

  if (target.kind === "postgres") {
    it("fails to start, exit code non-zero, when PostgreSQL is down, without printing the password", async () => {
      const cluster = await startPostgres();
      const url = await cluster.createDatabase();
      await cluster.stop();
      const config = { ...(await target.fresh()), databaseUrl: url };
      const server = start(config, target.env(config));
      const code = await server.exited;
      expect(code).not.toBe(0);
      expect(server.output()).toContain("latchkey-server:");
      expect(server.output()).not.toContain(new URL(url).password);
    });
  }
});

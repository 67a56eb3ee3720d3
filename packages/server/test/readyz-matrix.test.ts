// /healthz and /readyz on both databases (issue 6 points 1 and 8), in-process with app.inject: ready only when
// the database answers and every migration has run; on PostgreSQL, a real outage (the cluster stopped) turns
// /readyz into a 503 while /healthz stays 200, and the same app is ready again once PostgreSQL is back.
import { afterEach, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { createIdentity } from "../src/identity/identity.js";
import { openDatabase, type OpenDatabase } from "../src/db/index.js";
import { migrateToLatest } from "../src/db/migrations.js";
import { startPostgres, type PostgresCluster } from "../../../e2e/support/postgres.js";
import { describeEachDatabase, type DatabaseTarget } from "./databases.js";

async function probe(database: OpenDatabase, path: "/healthz" | "/readyz") {
  const identity = createIdentity({
    db: database.db,
    secret: "readyz-test-secret-0123456789abcdefghij",
    publicUrl: "http://127.0.0.1:8787",
  });
  const app = buildApp({ db: database.db, identity });
  try {
    const response = await app.inject({ method: "GET", url: path });
    return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
  } finally {
    await app.close();
  }
}

describeEachDatabase("readiness", (target: DatabaseTarget) => {
  const opened: OpenDatabase[] = [];
  const clusters: PostgresCluster[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((d) => d.close()));
    await Promise.all(clusters.splice(0).map((c) => c.stop()));
  });
  const open = async (config: Awaited<ReturnType<DatabaseTarget["fresh"]>>) => {
    const database = await openDatabase(config);
    opened.push(database);
    return database;
  };

  it("is ready once the migrations have run, and not before", async () => {
    const database = await open(await target.fresh());
    expect(await probe(database, "/readyz")).toEqual({
      status: 503,
      body: expect.objectContaining({ status: "unavailable", reason: "migrations_pending" }) as unknown,
    });
    expect((await probe(database, "/healthz")).status).toBe(200);
    await migrateToLatest(database.db);
    expect(await probe(database, "/readyz")).toEqual({ status: 200, body: { status: "ready" } });
  });

  if (target.kind === "postgres") {
    it("answers 503 while PostgreSQL is down and is ready again when it is back", async () => {
      // A cluster of its own: stopping the suite's shared one would take the other tests down with it.
      const cluster = await startPostgres();
      clusters.push(cluster);
      const database = await open({ databaseUrl: cluster.url, dataDir: (await target.fresh()).dataDir });
      await migrateToLatest(database.db);
      expect((await probe(database, "/readyz")).status).toBe(200);

      await cluster.stopServer();
      expect(await probe(database, "/readyz")).toEqual({
        status: 503,
        body: expect.objectContaining({ status: "unavailable", reason: "database_unreachable" }) as unknown,
      });
      // Liveness does not depend on the database: an orchestrator must not restart the process for an outage.
      expect(await probe(database, "/healthz")).toEqual({ status: 200, body: { status: "ok" } });

      await cluster.startServer();
      expect(await probe(database, "/readyz")).toEqual({ status: 200, body: { status: "ready" } });
    });
  } else {
    it("answers 503 when the database cannot be queried", async () => {
      const database = await open(await target.fresh());
      await migrateToLatest(database.db);
      // SQLite is embedded, so it has no outage to simulate; a closed handle fails every query the same way.
      await database.close();
      expect(await probe(database, "/readyz")).toEqual({
        status: 503,
        body: expect.objectContaining({ status: "unavailable", reason: "database_unreachable" }) as unknown,
      });
    });
  }
});

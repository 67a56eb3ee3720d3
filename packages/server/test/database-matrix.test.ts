// The database layer on both databases (issue 6 points 1 and 8): openDatabase chosen by the URL, the migrations
// on a fresh database, re-running them as a no-op, migrationsCurrent, concurrent migrators (several server
// processes starting on one database), transactions and constraints — the same assertions on SQLite and on a real
// PostgreSQL cluster.
import { randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { Migration } from "kysely/migration";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database, type OpenDatabase } from "../src/db/index.js";
import { MIGRATIONS, migrateToLatest, migrationsCurrent } from "../src/db/migrations.js";
import { describeEachDatabase, postgresRuns } from "./databases.js";
import { startPostgres } from "../../../e2e/support/postgres.js";

const ALL_MIGRATIONS = Object.keys(MIGRATIONS);

/** The known migrations plus one more, as the next slice will add. */
const WITH_NEXT: Record<string, Migration> = {
  ...MIGRATIONS,
  "9999_next": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("next_table")
        .addColumn("id", "text", (c) => c.primaryKey())
        .execute();
    },
  },
};

const user = (email: string) => ({ id: randomUUID(), email, created_at: new Date().toISOString() });

describeEachDatabase("database layer", (target) => {
  const opened: OpenDatabase[] = [];
  const open = async (config: Awaited<ReturnType<typeof target.fresh>>) => {
    const database = await openDatabase(config);
    opened.push(database);
    return database;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((d) => d.close()));
  });

  it("opens the database the config names", async () => {
    const { dialect } = await open(await target.fresh());
    expect(dialect).toBe(target.kind);
  });

  it("migrates a fresh database to the latest schema, and then reports it current", async () => {
    const { db } = await open(await target.fresh());
    expect(await migrationsCurrent(db)).toBe(false);
    expect(await migrateToLatest(db)).toEqual(ALL_MIGRATIONS);
    expect(await migrationsCurrent(db)).toBe(true);
    const tables = (await db.introspection.getTables()).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(["users", "audit_events", "server_meta"]));
  });

  it("re-running the migrations is a no-op that keeps the data", async () => {
    const config = await target.fresh();
    const first = await open(config);
    await migrateToLatest(first.db);
    const alice = user("alice@example.test");
    await first.db.insertInto("users").values(alice).execute();
    await first.close();

    // A restart: a new connection (pool) to the same database.
    const second = await open(config);
    expect(await migrateToLatest(second.db)).toEqual([]);
    expect(await migrationsCurrent(second.db)).toBe(true);
    expect(await second.db.selectFrom("users").select(["id", "email", "created_at"]).execute()).toEqual([
      alice,
    ]);
  });

  it("reports a database missing a newer migration as not current, then runs only that one", async () => {
    const { db } = await open(await target.fresh());
    await migrateToLatest(db);
    expect(await migrationsCurrent(db, WITH_NEXT)).toBe(false);
    expect(await migrateToLatest(db, WITH_NEXT)).toEqual(["9999_next"]);
    expect(await migrationsCurrent(db, WITH_NEXT)).toBe(true);
  });

  // PostgreSQL only: there several server processes share one database (Kysely serialises migrators with an
  // advisory lock). Several Kysely instances on one SQLite file inside ONE process cannot model that: node:sqlite
  // is synchronous, so a connection waiting out busy_timeout blocks the event loop the lock holder needs, and the
  // waiter fails with "database is locked". Concurrent SQLite processes belong to the server-process suites.
  if (target.kind === "postgres") {
    it("runs each migration once when several servers migrate the same database at once", async () => {
      const config = await target.fresh();
      const servers = await Promise.all([1, 2, 3, 4].map(() => open(config)));
      const ran = await Promise.all(servers.map(({ db }) => migrateToLatest(db)));
      // Exactly one migrator ran each migration; the others found it done.
      expect(ran.flat().sort()).toEqual([...ALL_MIGRATIONS].sort());
      const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(servers[0]!.db);
      expect(rows.rows.map((r) => r.name).sort()).toEqual([...ALL_MIGRATIONS].sort());
    });
  }

  describe("on a migrated database", () => {
    let db: Kysely<Database>;
    const migrated = async () => {
      db = (await open(await target.fresh())).db;
      await migrateToLatest(db);
    };

    it("rolls back every write of a transaction that fails", async () => {
      await migrated();
      const bob = user("bob@example.test");
      await expect(
        db.transaction().execute(async (trx) => {
          await trx.insertInto("users").values(bob).execute();
          await trx
            .insertInto("audit_events")
            .values({ id: randomUUID(), user_id: bob.id, action: "user.create", created_at: bob.created_at })
            .execute();
          throw new Error("fails after both writes");
        }),
      ).rejects.toThrow("fails after both writes");
      expect(await db.selectFrom("users").selectAll().execute()).toEqual([]);
      expect(await db.selectFrom("audit_events").selectAll().execute()).toEqual([]);
    });

    it("commits a transaction's writes together, with the column defaults of the schema", async () => {
      await migrated();
      const carol = user("carol@example.test");
      const eventId = randomUUID();
      await db.transaction().execute(async (trx) => {
        await trx.insertInto("users").values(carol).execute();
        await trx
          .insertInto("audit_events")
          .values({
            id: eventId,
            user_id: carol.id,
            action: "user.create",
            version: 7,
            created_at: carol.created_at,
          })
          .execute();
      });
      const event = await db.selectFrom("audit_events").selectAll().executeTakeFirstOrThrow();
      expect(event).toEqual({
        id: eventId,
        user_id: carol.id,
        action: "user.create",
        vault_id: null,
        version: 7,
        created_at: carol.created_at,
        metadata: "{}",
        count: 1,
        coalesce_key: null,
        org_id: null,
        environment: null,
      });
    });

    it("enforces the unique email and the audit row's user reference", async () => {
      await migrated();
      await db.insertInto("users").values(user("dave@example.test")).execute();
      await expect(db.insertInto("users").values(user("dave@example.test")).execute()).rejects.toThrow(
        /unique/i,
      );
      await expect(
        db
          .insertInto("audit_events")
          .values({
            id: randomUUID(),
            user_id: randomUUID(),
            action: "x",
            created_at: new Date().toISOString(),
          })
          .execute(),
      ).rejects.toThrow(/foreign key/i);
    });

    it("returns counts as numbers, as the services will compare them", async () => {
      await migrated();
      await db
        .insertInto("users")
        .values([user("e1@example.test"), user("e2@example.test")])
        .execute();
      const { n } = await db
        .selectFrom("users")
        .select((eb) => eb.fn.countAll().as("n"))
        .executeTakeFirstOrThrow();
      expect(n).toBe(2);
    });
  });
});

describe.skipIf(!postgresRuns)("PostgreSQL connection handling", () => {
  it("sets the statement and idle-transaction limits and names the application", async () => {
    const cluster = await startPostgres();
    const database = await openDatabase({
      databaseUrl: await cluster.createDatabase(),
      dataDir: "/nonexistent",
    });
    try {
      const settings = await sql<{ name: string; setting: string }>`
        select name, setting from pg_settings
        where name in ('statement_timeout', 'idle_in_transaction_session_timeout', 'lock_timeout')
        order by name`.execute(database.db);
      expect(settings.rows).toEqual([
        { name: "idle_in_transaction_session_timeout", setting: "60000" },
        { name: "lock_timeout", setting: "30000" },
        { name: "statement_timeout", setting: "30000" },
      ]);
      const app = await sql<{ name: string }>`select current_setting('application_name') as name`.execute(
        database.db,
      );
      expect(app.rows).toEqual([{ name: "latchkey-server" }]);
    } finally {
      await database.close();
      await cluster.stop();
    }
  });

  it("survives its database going away: queries fail, the process does not", async () => {
    const cluster = await startPostgres();
    const database = await openDatabase({
      databaseUrl: await cluster.createDatabase(),
      dataDir: "/nonexistent",
    });
    try {
      await migrateToLatest(database.db);
      // An idle pooled connection is now cut by the shutdown: pg reports that on the pool, which must not crash.
      await cluster.stop();
      await expect(migrationsCurrent(database.db)).rejects.toThrow();
    } finally {
      await database.close();
      await cluster.stop();
    }
  });
});

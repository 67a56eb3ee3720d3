// The migrator beside serving processes (docs/operations.md, "Upgrades"): on PostgreSQL each migration is its own
// transaction, waits only lockTimeoutMs for a lock, and rolls back and tries again when that runs out or it is a
// deadlock's victim — so a serving transaction meeting a migration waits instead of failing. SQLite keeps its one
// IMMEDIATE transaction for the whole run.
import { sql, type Kysely } from "kysely";
import type { Migration } from "kysely/migration";
import { afterEach, expect, it } from "vitest";
import { openDatabase, type Database, type OpenDatabase } from "../src/db/index.js";
import { MIGRATIONS, migrateToLatest } from "../src/db/migrations.js";
import { describeEachDatabase } from "./databases.js";

/** An error as pg reports it, with PostgreSQL's code. */
function pgError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

async function tableNames(db: Kysely<Database>): Promise<string[]> {
  return (await db.introspection.getTables()).map((t) => t.name);
}

describeEachDatabase("the migrator gives way", (target) => {
  const opened: OpenDatabase[] = [];
  const open = async (): Promise<OpenDatabase> => {
    const database = await openDatabase(await target.fresh());
    opened.push(database);
    await migrateToLatest(database.db);
    return database;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((d) => d.close()));
  });

  it(
    target.kind === "postgres"
      ? "commits each migration on its own: a serving write to the table one migration changed goes through while the next runs"
      : "runs the pending migrations in one transaction: a failure undoes the ones before it",
    async () => {
      const { db } = await open();
      let served: unknown = "not tried";
      const withA: Record<string, Migration> = {
        ...MIGRATIONS,
        "9997_creates_a": {
          async up(k: Kysely<unknown>): Promise<void> {
            await k.schema.createTable("give_way_a").addColumn("id", "text").execute();
          },
        },
      };
      expect(await migrateToLatest(db, withA)).toEqual(["9997_creates_a"]);
      const later: Record<string, Migration> = {
        ...withA,
        // ALTER TABLE holds the table's ACCESS EXCLUSIVE lock until its transaction ends.
        "9998_changes_a": {
          async up(k: Kysely<unknown>): Promise<void> {
            await k.schema.alterTable("give_way_a").addColumn("note", "text").execute();
          },
        },
        "9999_then_fails": {
          async up(k: Kysely<unknown>): Promise<void> {
            if (target.kind === "postgres") {
              // A serving process writes the table 9998 changed, on a connection of its own: were 9998's
              // transaction still open, this would wait for its lock (here 2 s, then fail with 55P03).
              try {
                await db.transaction().execute(async (trx) => {
                  await sql`set local lock_timeout = '2s'`.execute(trx);
                  await sql`insert into give_way_a (id, note) values ('served', 'x')`.execute(trx);
                });
                served = "ok";
              } catch (err) {
                served = err;
              }
            }
            await k.schema.createTable("give_way_b").addColumn("id", "text").execute();
            throw new Error("this migration is broken");
          },
        },
      };
      await expect(migrateToLatest(db, later)).rejects.toThrow(/9999_then_fails failed/);
      const tables = await tableNames(db);
      expect(tables).not.toContain("give_way_b");
      if (target.kind === "postgres") {
        expect(served).toBe("ok");
        const rows = await sql<{
          name: string;
        }>`select name from kysely_migration where name > '9000'`.execute(db);
        expect(rows.rows.map((r) => r.name)).toEqual(["9997_creates_a", "9998_changes_a"]);
      }
      const a = (await db.introspection.getTables()).find((t) => t.name === "give_way_a");
      expect(a?.columns.map((c) => c.name)).toEqual(target.kind === "postgres" ? ["id", "note"] : ["id"]);
    },
    60_000,
  );

  if (target.kind !== "postgres") return;

  it("waits lockTimeoutMs for a lock a serving transaction holds, then rolls back and tries again", async () => {
    const { db } = await open();
    // A serving transaction that has read server_meta and is still open: ALTER TABLE must wait for it.
    const serving = await db.startTransaction().execute();
    await sql`select count(*) from server_meta`.execute(serving);
    const sleeps: number[] = [];
    const tries: number[] = [];
    const later: Record<string, Migration> = {
      ...MIGRATIONS,
      "9999_alters_meta": {
        async up(k: Kysely<unknown>): Promise<void> {
          tries.push(tries.length + 1);
          await k.schema.createTable("give_way_side").addColumn("id", "text").execute();
          await k.schema.alterTable("server_meta").addColumn("give_way", "text").execute();
        },
      },
    };
    try {
      const ran = await migrateToLatest(db, later, {
        lockTimeoutMs: 100,
        sleep: async (ms) => {
          sleeps.push(ms);
          // The serving transaction ends, as a push's does, while the migrator backs off.
          await serving.commit().execute();
        },
      });
      expect(ran).toEqual(["9999_alters_meta"]);
    } finally {
      if (!serving.isCommitted) await serving.rollback().execute();
    }
    expect(tries).toEqual([1, 2]);
    expect(sleeps).toEqual([250]);
    // The first try's table went with its rollback (else the second try's create would have failed).
    expect(await tableNames(db)).toContain("give_way_side");
    const columns = (await db.introspection.getTables()).find((t) => t.name === "server_meta")?.columns;
    expect(columns?.map((c) => c.name)).toContain("give_way");
    await expectNoAdvisoryLock(db);
  }, 60_000);

  it("tries a deadlock's victim again from the start of its transaction", async () => {
    const { db } = await open();
    let tries = 0;
    const later: Record<string, Migration> = {
      ...MIGRATIONS,
      "9999_victim": {
        async up(k: Kysely<unknown>): Promise<void> {
          tries++;
          await k.schema.createTable("give_way_victim").addColumn("id", "text").execute();
          if (tries === 1) throw pgError("deadlock detected", "40P01");
        },
      },
    };
    const sleeps: number[] = [];
    expect(
      await migrateToLatest(db, later, {
        sleep: (ms) => {
          sleeps.push(ms);
          return Promise.resolve();
        },
      }),
    ).toEqual(["9999_victim"]);
    expect(tries).toBe(2);
    expect(sleeps).toEqual([250]);
    expect(await tableNames(db)).toContain("give_way_victim");
    await expectNoAdvisoryLock(db);
  });

  it("gives up after `attempts` tries, names the migration, and lets go of the migration lock", async () => {
    const { db } = await open();
    const later: Record<string, Migration> = {
      ...MIGRATIONS,
      "9999_never_gets_its_lock": {
        up(): Promise<void> {
          return Promise.reject(pgError("canceling statement due to lock timeout", "55P03"));
        },
      },
    };
    const sleeps: number[] = [];
    await expect(
      migrateToLatest(db, later, {
        attempts: 4,
        sleep: (ms) => {
          sleeps.push(ms);
          return Promise.resolve();
        },
      }),
    ).rejects.toThrow(/9999_never_gets_its_lock failed after giving way to other transactions 4 times/);
    expect(sleeps).toEqual([250, 500, 1000]);
    await expectNoAdvisoryLock(db);
    // Another process can migrate at once: nothing holds the lock.
    expect(await migrateToLatest(db)).toEqual([]);
  });
});

/** No session of this database holds an advisory lock (the migrator's went back with its connection). */
async function expectNoAdvisoryLock(db: Kysely<Database>): Promise<void> {
  const held = await sql<{ n: number }>`
    select count(*)::int as n from pg_locks
    where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())`.execute(
    db,
  );
  expect(held.rows[0]?.n).toBe(0);
}

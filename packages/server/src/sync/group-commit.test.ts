// The writer on real databases: on SQLite concurrent writes share commits (group commit) with per-write
// rollback and settle only once committed; on PostgreSQL each write is its own transaction.
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachDatabase } from "../../test/databases.js";
import { openDatabase, SQLITE_FILE, type DatabaseConfig, type OpenDatabase } from "../db/index.js";
import { migrateToLatest } from "../db/migrations.js";
import { createWriter, type Writer } from "./group-commit.js";

describeEachDatabase("sync writer", (target) => {
  let config: DatabaseConfig;
  let database: OpenDatabase;
  let writer: Writer;

  beforeAll(async () => {
    config = await target.fresh();
    database = await openDatabase(config);
    await migrateToLatest(database.db);
    writer = createWriter(database.db);
  });
  afterAll(async () => database?.close());

  const meta = (key: string) =>
    database.db.selectFrom("server_meta").select("value").where("key", "=", key).executeTakeFirst();

  it("runs concurrent read-modify-write bodies one after another, none lost", async () => {
    await database.db.insertInto("server_meta").values({ key: "counter", value: "0" }).execute();
    const before = writer.commits;
    const n = 60;
    await Promise.all(
      Array.from({ length: n }, () =>
        writer.run(async (trx) => {
          const row = await trx
            .selectFrom("server_meta")
            .select("value")
            .where("key", "=", "counter")
            // PostgreSQL runs these transactions side by side (READ COMMITTED): the row lock serialises them.
            .$if(target.kind === "postgres", (q) => q.forUpdate())
            .executeTakeFirstOrThrow();
          await new Promise((resolve) => setImmediate(resolve));
          await trx
            .updateTable("server_meta")
            .set({ value: String(Number(row.value) + 1) })
            .where("key", "=", "counter")
            .execute();
        }),
      ),
    );
    expect((await meta("counter"))?.value).toBe(String(n));
    const commits = writer.commits - before;
    if (target.kind === "sqlite") {
      // Group commit: the 60 writes shared a handful of transactions.
      expect(commits).toBeLessThan(n / 4);
    } else {
      expect(commits).toBe(n);
    }
  });

  it("rolls back only the write that failed, and rejects only its promise", async () => {
    const results = await Promise.allSettled(
      ["a", "b", "c", "d"].map((k) =>
        writer.run(async (trx) => {
          await trx
            .insertInto("server_meta")
            .values({ key: `rb-${k}`, value: k })
            .execute();
          if (k === "b") throw new Error("refused b");
          return k;
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(new Error("refused b"));
    expect(await meta("rb-a")).toEqual({ value: "a" });
    expect(await meta("rb-b")).toBeUndefined();
    expect(await meta("rb-d")).toEqual({ value: "d" });
  });

  it("settles a write only once it is committed (visible to another connection)", async () => {
    if (target.kind !== "sqlite") return;
    const other = new DatabaseSync(join(config.dataDir, SQLITE_FILE));
    try {
      const seen = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          writer
            .run(async (trx) => {
              await trx
                .insertInto("server_meta")
                .values({ key: `vis-${i}`, value: "x" })
                .execute();
            })
            .then(() => other.prepare("select value from server_meta where key = ?").get(`vis-${i}`)),
        ),
      );
      expect(seen.every((row) => row !== undefined)).toBe(true);
    } finally {
      other.close();
    }
  });

  it("fails every write of a batch whose transaction broke, and keeps none of them", async () => {
    if (target.kind !== "sqlite") return;
    const results = await Promise.allSettled([
      writer.run(async (trx) => {
        await trx.insertInto("server_meta").values({ key: "broken-1", value: "x" }).execute();
      }),
      writer.run(async (trx) => {
        // Ends the shared transaction under the writer's feet: nothing of the batch may survive.
        await sql`rollback`.execute(trx);
        throw new Error("broke it");
      }),
      writer.run(async (trx) => {
        await trx.insertInto("server_meta").values({ key: "broken-3", value: "x" }).execute();
      }),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(await meta("broken-1")).toBeUndefined();
    expect(await meta("broken-3")).toBeUndefined();
    // The writer still works afterwards.
    await writer.run(async (trx) => {
      await trx.insertInto("server_meta").values({ key: "after-broken", value: "x" }).execute();
    });
    expect(await meta("after-broken")).toEqual({ value: "x" });
  });
});

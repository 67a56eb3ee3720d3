// A separate writer process for the concurrency test of the node:sqlite dialect: it opens its own connection
// to the file and runs read-modify-write transactions, several at a time through its one connection.
import { Kysely, sql } from "kysely";
import { openSqliteFile } from "../../src/db/index.js";
import type { Database } from "../../src/db/schema.js";
import { NodeSqliteDialect } from "../../src/db/sqlite-dialect.js";

const [path, name, countArg] = process.argv.slice(2);
if (path === undefined || name === undefined || countArg === undefined)
  throw new Error("usage: PATH NAME COUNT");
const count = Number(countArg);
const db = new Kysely<Database>({ dialect: new NodeSqliteDialect(() => openSqliteFile(path)) });

async function increment(i: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom("server_meta")
      .select("value")
      .where("key", "=", "counter")
      .executeTakeFirstOrThrow();
    // Yield between the read and the write, so that other transactions of this process queue on the mutex.
    await new Promise((resolve) => setImmediate(resolve));
    await trx
      .updateTable("server_meta")
      .set({ value: String(Number(row.value) + 1) })
      .where("key", "=", "counter")
      .execute();
    await trx
      .insertInto("audit_events")
      .values({
        id: `${name}-${i}`,
        user_id: null,
        action: "test.increment",
        vault_id: null,
        version: i,
        created_at: new Date().toISOString(),
      })
      .execute();
  });
}

await Promise.all(Array.from({ length: count }, (_, i) => increment(i)));
const { rows } = await sql<{
  n: number;
}>`select count(*) as n from audit_events where id like ${`${name}-%`}`.execute(db);
await db.destroy();
process.stdout.write(JSON.stringify({ wrote: rows[0]?.n }));

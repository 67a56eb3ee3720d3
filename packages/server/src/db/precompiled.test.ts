import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "./index.js";
import { migrateToLatest } from "./migrations.js";
import { precompile, statementNameOf } from "./precompiled.js";

let dir: string;
let database: OpenDatabase;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-precompiled-"));
  database = await openDatabase({ dataDir: dir });
  await migrateToLatest(database.db);
});
afterEach(async () => {
  await database.close();
  await rm(dir, { recursive: true, force: true });
});

const insertUser = precompile(3, (db, [id, email, at]) =>
  db.insertInto("users").values({ id: id!, email: email!, created_at: at! }),
);
// A slot used twice, next to a constant that stays as built.
const findUser = precompile(1, (db, [id]) =>
  db
    .selectFrom("users")
    .select(["id", "email"])
    .where("id", "=", id!)
    .where((eb) => eb.or([eb("email", "=", "never@example.test"), eb("id", "=", id!)])),
);

it("binds each run's values to the slots, in a transaction too, and sees the data as it is now", async () => {
  const { db } = database;
  await insertUser.run(db, ["u1", "u1@example.test", "2026-01-01T00:00:00.000Z"]);
  await db.transaction().execute(async (trx) => {
    await insertUser.run(trx, ["u2", "u2@example.test", "2026-01-02T00:00:00.000Z"]);
    expect((await findUser.run(trx, ["u2"])).rows).toEqual([{ id: "u2", email: "u2@example.test" }]);
  });
  expect((await findUser.run(db, ["u1"])).rows).toEqual([{ id: "u1", email: "u1@example.test" }]);
  expect((await findUser.run(db, ["u3"])).rows).toEqual([]);
  await db.updateTable("users").set({ email: "new@example.test" }).where("id", "=", "u1").execute();
  expect((await findUser.run(db, ["u1"])).rows).toEqual([{ id: "u1", email: "new@example.test" }]);
});

it("refuses a wrong number of values and a query that leaves a slot out", async () => {
  await expect(findUser.run(database.db, [])).rejects.toThrow(/1 values expected/);
  const unused = precompile(2, (db, [id]) => db.selectFrom("users").select("id").where("id", "=", id!));
  await expect(unused.run(database.db, ["a", "b"])).rejects.toThrow(/every slot/);
});

it("refuses a query that reads or returns *, whose prepared form a migration adding a column would break", async () => {
  const everything = precompile(1, (db, [id]) => db.selectFrom("users").selectAll().where("id", "=", id!));
  await expect(everything.run(database.db, ["u1"])).rejects.toThrow(/name the columns/);
  const returned = precompile(3, (db, [id, email, at]) =>
    db.insertInto("users").values({ id: id!, email: email!, created_at: at! }).returningAll(),
  );
  await expect(
    returned.run(database.db, ["u1", "u1@example.test", "2026-01-01T00:00:00.000Z"]),
  ).rejects.toThrow(/name the columns/);
});

it("names each precompiled statement's SQL, the same name every time, and no other SQL", async () => {
  const { db } = database;
  const ids = precompile(0, (db) =>
    db.selectFrom("users").select("id").where("email", "=", "x@example.test"),
  );
  const text = db.selectFrom("users").select("id").where("email", "=", "x@example.test").compile().sql;
  expect(statementNameOf(text)).toBeUndefined();
  await ids.run(db, []);
  const name = statementNameOf(text);
  expect(name).toMatch(/^lk_\d+$/);
  await ids.run(db, []);
  expect(statementNameOf(text)).toBe(name);
  expect(statementNameOf(db.selectFrom("users").select("email").compile().sql)).toBeUndefined();
});

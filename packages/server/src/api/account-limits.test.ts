import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../db/index.js";
import { MIGRATIONS, migrateToLatest } from "../db/migrations.js";
import { countAction, uncountAction, type AccountLimit } from "./account-limits.js";

let dir: string;
let opened: OpenDatabase;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-account-limits-"));
  opened = await openDatabase({ dataDir: dir });
});
afterEach(async () => {
  await opened.close();
  await rm(dir, { recursive: true, force: true });
});

const HOUR = 60 * 60 * 1000;
const T0 = Date.parse("2026-12-07T10:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);
const RULE: AccountLimit = { action: "test.action", limit: 3, windowMs: HOUR };

async function user(id: string): Promise<void> {
  await opened.db
    .insertInto("users")
    .values({ id, email: `${id}@example.test`, created_at: at(0).toISOString() })
    .execute();
}

describe("account limits", () => {
  it("allows `limit` actions in a window opened by the first, refuses the next until it closes", async () => {
    await migrateToLatest(opened.db);
    await user("u1");
    for (let i = 0; i < 3; i++) {
      expect(await countAction(opened.db, "u1", RULE, at(i * 60_000))).toEqual({ allowed: true });
    }
    // 10 minutes in: the window opened at T0 closes 50 minutes later.
    expect(await countAction(opened.db, "u1", RULE, at(10 * 60_000))).toEqual({
      allowed: false,
      retryAfterSeconds: 50 * 60,
    });
    // Refusals do not move the window.
    expect(await countAction(opened.db, "u1", RULE, at(HOUR - 1_000))).toEqual({
      allowed: false,
      retryAfterSeconds: 1,
    });
    expect(await countAction(opened.db, "u1", RULE, at(HOUR))).toEqual({ allowed: true });
    const row = await opened.db.selectFrom("account_action_counts").selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ user_id: "u1", action: "test.action", window_start: at(HOUR).toISOString() });
    expect(Number(row.count)).toBe(1);
  });

  it("counts each account and each action apart, and takes a count back", async () => {
    await migrateToLatest(opened.db);
    await user("u1");
    await user("u2");
    const other: AccountLimit = { ...RULE, action: "other.action" };
    for (let i = 0; i < 3; i++) await countAction(opened.db, "u1", RULE, at(0));
    expect((await countAction(opened.db, "u1", RULE, at(0))).allowed).toBe(false);
    expect((await countAction(opened.db, "u2", RULE, at(0))).allowed).toBe(true);
    expect((await countAction(opened.db, "u1", other, at(0))).allowed).toBe(true);
    // Four counted (the refused one too); two taken back leave room for one more.
    await uncountAction(opened.db, "u1", RULE);
    await uncountAction(opened.db, "u1", RULE);
    expect((await countAction(opened.db, "u1", RULE, at(0))).allowed).toBe(true);
    expect((await countAction(opened.db, "u1", RULE, at(0))).allowed).toBe(false);
  });

  it("rolls a count back with the transaction it was made in", async () => {
    await migrateToLatest(opened.db);
    await user("u1");
    await expect(
      opened.db.transaction().execute(async (trx) => {
        for (let i = 0; i < 3; i++) await countAction(trx, "u1", RULE, at(0));
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    for (let i = 0; i < 3; i++) expect((await countAction(opened.db, "u1", RULE, at(0))).allowed).toBe(true);
  });

  it("migration 0013 moves the wrong pairing codes counted before it, and drops their old table", async () => {
    const before = Object.fromEntries(
      Object.entries(MIGRATIONS).filter(([name]) => name < "0013_account_action_counts"),
    );
    await migrateToLatest(opened.db, before);
    await user("u1");
    await sql`insert into pairing_join_failures (user_id, window_start, failures)
      values ('u1', ${at(0).toISOString()}, 10)`.execute(opened.db);
    expect(await migrateToLatest(opened.db)).toContain("0013_account_action_counts");
    const rows = await opened.db.selectFrom("account_action_counts").selectAll().execute();
    expect(rows.map((r) => ({ ...r, count: Number(r.count) }))).toEqual([
      { user_id: "u1", action: "pairing.join", window_start: at(0).toISOString(), count: 10 },
    ]);
    const tables = (await opened.db.introspection.getTables()).map((t) => t.name);
    expect(tables).not.toContain("pairing_join_failures");
  });
});

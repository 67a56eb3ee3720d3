import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "./index.js";
import { MIGRATIONS, migrateToLatest, migrationsCurrent } from "./migrations.js";

let dir: string;
let opened: OpenDatabase;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-migrations-"));
  opened = await openDatabase({ dataDir: dir });
});
afterEach(async () => {
  await opened.close();
  await rm(dir, { recursive: true, force: true });
});

describe("migrations", () => {
  it("migrates a fresh database to the latest schema", async () => {
    const { db } = opened;
    expect(await migrationsCurrent(db)).toBe(false);
    expect(await migrateToLatest(db)).toEqual(Object.keys(MIGRATIONS));
    expect(await migrationsCurrent(db)).toBe(true);

    const tables = (await db.introspection.getTables())
      .map((t) => t.name)
      .filter((n) => !n.startsWith("kysely_"));
    // Each slice's migration adds its own tables (identity: oidc_models, sign_in_attempts, sign_in_addresses;
    // sync: its vault tables).
    expect(tables).toEqual(
      expect.arrayContaining([
        "audit_events",
        "server_meta",
        "users",
        "oidc_models",
        "sign_in_attempts",
        "sign_in_addresses",
      ]),
    );
    expect(tables).not.toContain("auth_attempts");
    // The tables work as the schema types say.
    await db
      .insertInto("users")
      .values({ id: "u1", email: "a@example.test", created_at: "2026-01-01T00:00:00Z" })
      .execute();
    await db
      .insertInto("audit_events")
      .values({
        id: "e1",
        user_id: "u1",
        action: "user.create",
        vault_id: null,
        version: null,
        created_at: "2026-01-01T00:00:00Z",
      })
      .execute();
    const event = await db.selectFrom("audit_events").selectAll().executeTakeFirstOrThrow();
    expect(event.metadata).toBe("{}");
  });

  it("does nothing when run again", async () => {
    const { db } = opened;
    await migrateToLatest(db);
    await db.insertInto("server_meta").values({ key: "k", value: "v" }).execute();
    expect(await migrateToLatest(db)).toEqual([]);
    expect(await migrationsCurrent(db)).toBe(true);
    expect(await db.selectFrom("server_meta").selectAll().execute()).toEqual([{ key: "k", value: "v" }]);
  });

  it("survives a reopen: the schema and the record of what ran are on disk", async () => {
    await migrateToLatest(opened.db);
    await opened.close();
    opened = await openDatabase({ dataDir: dir });
    expect(await migrationsCurrent(opened.db)).toBe(true);
    expect(await migrateToLatest(opened.db)).toEqual([]);
  });

  it("reports a migration the code knows but the database has not run as pending", async () => {
    const { db } = opened;
    await migrateToLatest(db);
    const later = {
      ...MIGRATIONS,
      "9999_later": {
        async up(k: Kysely<unknown>) {
          await k.schema
            .createTable("later")
            .addColumn("id", "text", (c) => c.primaryKey())
            .execute();
        },
      },
    };
    expect(await migrationsCurrent(db, later)).toBe(false);
    expect(await migrateToLatest(db, later)).toEqual(["9999_later"]);
    expect(await migrationsCurrent(db, later)).toBe(true);
  });

  it("lets the previous release start on a database a newer release migrated (expand-then-contract)", async () => {
    const { db } = opened;
    const newer = {
      ...MIGRATIONS,
      "9999_newer": {
        async up(k: Kysely<unknown>) {
          await k.schema.createTable("newer").addColumn("id", "text").execute();
        },
      },
    };
    expect(await migrateToLatest(db, newer)).toEqual(Object.keys(newer));
    // The previous release (today's list) restarts there: nothing to run, nothing undone, no error.
    expect(await migrateToLatest(db)).toEqual([]);
    expect(await migrationsCurrent(db)).toBe(true);
    expect((await db.introspection.getTables()).map((t) => t.name)).toContain("newer");
    // A release missing one of the database's own earlier migrations is still refused.
    const gap: Record<string, Migration> = { ...newer };
    delete gap["0016_ci_policies"];
    await expect(migrateToLatest(db, gap)).rejects.toThrow(/failed/);
  });

  it("rolls a failing migration back and says which one failed", async () => {
    const { db } = opened;
    const broken = {
      ...MIGRATIONS,
      "0002_broken": {
        async up(k: Kysely<unknown>) {
          await k.schema.createTable("half").addColumn("id", "text").execute();
          await k.schema.createTable("half").addColumn("id", "text").execute();
        },
      },
    };
    await expect(migrateToLatest(db, broken)).rejects.toThrow(/0002_broken failed/);
    const tables = (await db.introspection.getTables()).map((t) => t.name);
    expect(tables).not.toContain("half");
    expect(await migrationsCurrent(db, broken)).toBe(false);
  });
});

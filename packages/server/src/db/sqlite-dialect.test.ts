import { spawn } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bundleForTest } from "../../../../e2e/support/bundle.js";
import { openDatabase, SQLITE_FILE, type OpenDatabase } from "./index.js";
import { migrateToLatest } from "./migrations.js";
import { STATEMENT_CACHE_SIZE } from "./sqlite-dialect.js";

let dir: string;
let opened: OpenDatabase[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-sqlite-"));
  opened = [];
});
afterEach(async () => {
  for (const o of opened) await o.close();
  await rm(dir, { recursive: true, force: true });
});

async function open(): Promise<OpenDatabase> {
  const o = await openDatabase({ dataDir: dir });
  opened.push(o);
  await migrateToLatest(o.db);
  return o;
}

const user = (id: string) => ({ id, email: `${id}@example.test`, created_at: "2026-01-01T00:00:00.000Z" });

describe("node:sqlite dialect", () => {
  it("opens the file in WAL mode with synchronous=FULL and a busy timeout", async () => {
    const { db, dialect } = await open();
    expect(dialect).toBe("sqlite");
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db);
    expect(mode.rows[0]?.journal_mode).toBe("wal");
    // 2 = FULL
    const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(db);
    expect(sync.rows[0]?.synchronous).toBe(2);
    const busy = await sql<{ timeout: number }>`pragma busy_timeout`.execute(db);
    expect(busy.rows[0]?.timeout).toBeGreaterThan(0);
  });

  it("keeps the database file and its WAL private (0600) whatever the umask", async () => {
    const old = process.umask(0o022);
    try {
      const { db } = await open();
      await db.insertInto("server_meta").values({ key: "k", value: "v" }).execute();
    } finally {
      process.umask(old);
    }
    for (const name of [SQLITE_FILE, `${SQLITE_FILE}-wal`, `${SQLITE_FILE}-shm`]) {
      expect((await stat(join(dir, name))).mode & 0o777, name).toBe(0o600);
    }
  });

  it("commits a transaction", async () => {
    const { db } = await open();
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("users").values(user("a")).execute();
      await trx.insertInto("users").values(user("b")).execute();
    });
    const rows = await db.selectFrom("users").select("id").orderBy("id").execute();
    expect(rows.map((r) => r.id)).toEqual(["a", "b"]);
  });

  it("rolls a failed transaction back, leaving nothing of it", async () => {
    const { db } = await open();
    await db.insertInto("users").values(user("kept")).execute();
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("users").values(user("lost")).execute();
        // The unique email makes the second insert fail after the first succeeded.
        await trx
          .insertInto("users")
          .values({ ...user("dup"), email: "kept@example.test" })
          .execute();
      }),
    ).rejects.toThrow(/UNIQUE/);
    const rows = await db.selectFrom("users").select("id").execute();
    expect(rows.map((r) => r.id)).toEqual(["kept"]);
  });

  it("reports changes and returns rows for RETURNING; binds booleans, dates, null and bytes", async () => {
    const { db } = await open();
    const inserted = await db.insertInto("users").values(user("r")).returning(["id", "email"]).execute();
    expect(inserted).toEqual([{ id: "r", email: "r@example.test" }]);
    const updated = await db
      .updateTable("users")
      .set({ email: "s@example.test" })
      .where("id", "=", "r")
      .executeTakeFirst();
    expect(updated.numUpdatedRows).toBe(1n);
    const bound = await sql<{
      b: number;
      d: string;
      n: null;
      x: Uint8Array;
    }>`select ${true} as b, ${new Date(0)} as d, ${null} as n, ${new Uint8Array([1, 2])} as x`.execute(db);
    expect(bound.rows[0]).toEqual({
      b: 1,
      d: "1970-01-01T00:00:00.000Z",
      n: null,
      x: new Uint8Array([1, 2]),
    });
  });

  it("re-runs cached statements against the current data, including another connection's writes", async () => {
    const first = await open();
    const second = await openDatabase({ dataDir: dir });
    opened.push(second);
    const emails = (o: OpenDatabase) =>
      o.db.selectFrom("users").select("email").where("id", "=", "c").executeTakeFirst();
    expect(await emails(first)).toBeUndefined();
    await second.db.insertInto("users").values(user("c")).execute();
    expect(await emails(first)).toEqual({ email: "c@example.test" });
    await second.db.updateTable("users").set({ email: "d@example.test" }).where("id", "=", "c").execute();
    expect(await emails(first)).toEqual({ email: "d@example.test" });
    await second.db.deleteFrom("users").where("id", "=", "c").execute();
    expect(await emails(first)).toBeUndefined();
  });

  it("stays correct past the statement cache's bound and across a schema change", async () => {
    const { db } = await open();
    await db.insertInto("users").values(user("e")).execute();
    const star = () => sql<Record<string, unknown>>`select * from server_meta where key = ${"k"}`.execute(db);
    await db.insertInto("server_meta").values({ key: "k", value: "v" }).execute();
    expect((await star()).rows).toEqual([{ key: "k", value: "v" }]);
    // Distinct texts (the alias differs) push the first ones out of the cache; each still answers right.
    for (let i = 0; i < STATEMENT_CACHE_SIZE + 20; i++) {
      const text = sql<{ v: number }>`select ${i} as ${sql.ref(`v${i}`)}`;
      const rows = (await text.execute(db)).rows as Record<string, unknown>[];
      expect(rows).toEqual([{ [`v${i}`]: i }]);
    }
    await sql`alter table server_meta add column extra text`.execute(db);
    expect((await star()).rows).toEqual([{ key: "k", value: "v", extra: null }]);
    // The same text as a writer, then as a reader with RETURNING, each reports the right way.
    const update = () => db.updateTable("users").set({ email: "f@example.test" }).where("id", "=", "e");
    expect((await update().executeTakeFirst()).numUpdatedRows).toBe(1n);
    expect((await update().executeTakeFirst()).numUpdatedRows).toBe(1n);
    expect(await update().returning("id").execute()).toEqual([{ id: "e" }]);
  });

  it("streams the rows of a select", async () => {
    const { db } = await open();
    for (const id of ["s1", "s2", "s3"]) await db.insertInto("users").values(user(id)).execute();
    const seen: string[] = [];
    for await (const row of db.selectFrom("users").select("id").orderBy("id").stream()) seen.push(row.id);
    expect(seen).toEqual(["s1", "s2", "s3"]);
  });

  it("keeps concurrent transactions of one process apart on its single connection", async () => {
    const { db } = await open();
    await db.insertInto("server_meta").values({ key: "counter", value: "0" }).execute();
    await Promise.all(
      Array.from({ length: 50 }, () =>
        db.transaction().execute(async (trx) => {
          const row = await trx
            .selectFrom("server_meta")
            .select("value")
            .where("key", "=", "counter")
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
    const row = await db
      .selectFrom("server_meta")
      .select("value")
      .where("key", "=", "counter")
      .executeTakeFirstOrThrow();
    expect(row.value).toBe("50");
  });

  it("lets writers in two processes share the file without lost updates or corruption", async () => {
    const { db } = await open();
    await db.insertInto("server_meta").values({ key: "counter", value: "0" }).execute();
    // The writer runs as its own process (its own connection and locks), bundled from TypeScript for plain node.
    const writer = join(dir, "writer.mjs");
    await bundleForTest({
      entryPoints: [fileURLToPath(new URL("../../test/support/sqlite-writer.ts", import.meta.url))],
      outfile: writer,
    });
    const perWriter = 200;
    const results = await Promise.all(
      ["w1", "w2"].map((name) => runWriter(writer, join(dir, SQLITE_FILE), name, perWriter)),
    );
    for (const r of results) {
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ wrote: perWriter });
    }
    const counter = await db
      .selectFrom("server_meta")
      .select("value")
      .where("key", "=", "counter")
      .executeTakeFirstOrThrow();
    expect(counter.value).toBe(String(2 * perWriter));
    const audit = await sql<{ n: number }>`select count(*) as n from audit_events`.execute(db);
    expect(audit.rows[0]?.n).toBe(2 * perWriter);
    const check = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(db);
    expect(check.rows).toEqual([{ integrity_check: "ok" }]);
  });
});

function runWriter(
  script: string,
  file: string,
  name: string,
  count: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [script, file, name, String(count)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

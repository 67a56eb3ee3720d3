import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { dataVersionOf, identityVersionOf, openDatabase, type OpenDatabase } from "./index.js";
import { migrateToLatest } from "./migrations.js";
import { createReadCache, createStampBatcher } from "./read-cache.js";

describe("data versions and read caches on SQLite", () => {
  let dir: string;
  let first: OpenDatabase;
  let second: OpenDatabase;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "lk-read-cache-"));
    first = await openDatabase({ dataDir: dir });
    second = await openDatabase({ dataDir: dir });
    await sql`create table t (k text primary key, v text)`.execute(first.db);
  });
  afterEach(async () => {
    await first.close();
    await second.close();
    await rm(dir, { recursive: true, force: true });
  });

  const versionOf = (database: OpenDatabase): string | null => dataVersionOf(database.db)!();

  it("changes with every write of this connection, and not with reads", async () => {
    const v0 = versionOf(first);
    await first.db
      .selectFrom("t" as never)
      .selectAll()
      .execute();
    expect(versionOf(first)).toBe(v0);
    await sql`insert into t values ('a', '1')`.execute(first.db);
    const v1 = versionOf(first);
    expect(v1).not.toBe(v0);
    await first.db.transaction().execute(async (trx) => {
      await sql`update t set v = '2' where k = 'a'`.execute(trx);
    });
    expect(versionOf(first)).not.toBe(v1);
  });

  it("changes when another connection commits, not when it only reads", async () => {
    const v0 = versionOf(first);
    await sql`select * from t`.execute(second.db);
    expect(versionOf(first)).toBe(v0);
    await sql`insert into t values ('b', '1')`.execute(second.db);
    expect(versionOf(first)).not.toBe(v0);
  });

  it("serves a value only under the version it was read at", () => {
    const cache = createReadCache<string>(dataVersionOf(first.db), { maxEntries: 10 })!;
    const stamp = cache.stamp();
    cache.set("k", "value", stamp);
    expect(cache.get("k", stamp)).toBe("value");
    expect(cache.get("k", `${stamp}-other`)).toBeUndefined();
    // The mismatch let the entry go.
    expect(cache.get("k", stamp)).toBeUndefined();
    cache.set("n", "no stamp", null);
    expect(cache.get("n", null)).toBeUndefined();
  });

  it("keeps at most maxEntries, dropping the least recently used", () => {
    const cache = createReadCache<number>(dataVersionOf(first.db), { maxEntries: 2 })!;
    const stamp = cache.stamp();
    cache.set("a", 1, stamp);
    cache.set("b", 2, stamp);
    expect(cache.get("a", stamp)).toBe(1);
    cache.set("c", 3, stamp);
    expect(cache.get("b", stamp)).toBeUndefined();
    expect(cache.get("a", stamp)).toBe(1);
    expect(cache.get("c", stamp)).toBe(3);
  });

  it("keeps at most maxBytes, and never a value larger than that", () => {
    const cache = createReadCache<string>(dataVersionOf(first.db), { maxEntries: 100, maxBytes: 10 })!;
    const stamp = cache.stamp();
    cache.set("big", "x".repeat(11), stamp, 11);
    expect(cache.get("big", stamp)).toBeUndefined();
    cache.set("a", "aaaaaa", stamp, 6);
    cache.set("b", "bbbbbb", stamp, 6);
    expect(cache.get("a", stamp)).toBeUndefined();
    expect(cache.get("b", stamp)).toBe("bbbbbb");
    // Replacing an entry gives its bytes back.
    cache.set("b", "bbbb", stamp, 4);
    cache.set("c", "cccccc", stamp, 6);
    expect(cache.get("b", stamp)).toBe("bbbb");
    expect(cache.get("c", stamp)).toBe("cccccc");
  });

  it("gives the callers of one turn one version, read after they all asked", async () => {
    const next = createStampBatcher(dataVersionOf(first.db)!);
    const before = versionOf(first);
    const one = next();
    // A commit of another connection after the first caller asked, in the same turn, is still covered.
    await sql`insert into t values ('c', '1')`.execute(second.db);
    const two = next();
    expect(one).toBe(two);
    const stamp = await one;
    expect(stamp).not.toBe(before);
    expect(stamp).toBe(versionOf(first));
    // A later turn reads again.
    await sql`insert into t values ('d', '1')`.execute(second.db);
    expect(await next()).not.toBe(stamp);
  });

  it("keeps the identity version through other tables' writes, and changes it with tokens and accounts", async () => {
    expect(identityVersionOf(first.db)!()).toBeNull(); // not migrated yet
    await migrateToLatest(first.db);
    const identity = identityVersionOf(first.db)!;
    const v0 = identity();
    expect(v0).not.toBeNull();
    // Another connection's writes to other tables: data_version moves, the identity version does not.
    const data0 = versionOf(first);
    await sql`insert into server_meta (key, value) values ('k', 'v')`.execute(second.db);
    await sql`insert into t values ('x', '1')`.execute(second.db);
    expect(versionOf(first)).not.toBe(data0);
    expect(identity()).toBe(v0);
    // Another connection's writes to tokens and accounts: it moves, for each kind of change.
    const steps = [
      sql`insert into users (id, email, created_at) values ('u1', 'a@example.test', 'now')`,
      sql`update users set email = 'b@example.test' where id = 'u1'`,
      sql`insert into oidc_models (kind, id, payload) values ('AccessToken', 't1', '{}')`,
      sql`update oidc_models set consumed_at = 1 where id = 't1'`,
      sql`delete from oidc_models where id = 't1'`,
      sql`delete from users where id = 'u1'`,
    ];
    let last = identity();
    for (const step of steps) {
      await step.execute(second.db);
      const now = identity();
      expect(now).not.toBe(last);
      last = now;
    }
  });

  it("never gives an identity version back after this connection rolls a change back", async () => {
    await migrateToLatest(first.db);
    const identity = identityVersionOf(first.db)!;
    const before = identity();
    let inside: string | null = null;
    await first.db
      .transaction()
      .execute(async (trx) => {
        await sql`insert into users (id, email, created_at) values ('u2', 'c@example.test', 'now')`.execute(
          trx,
        );
        inside = identity();
        throw new Error("roll back");
      })
      .catch(() => undefined);
    // The counter is back where it was; the version is not, and no later commit can make it `inside` again.
    expect(inside).not.toBe(before);
    expect(identity()).not.toBe(before);
    expect(identity()).not.toBe(inside);
    await sql`insert into users (id, email, created_at) values ('u3', 'd@example.test', 'now')`.execute(
      second.db,
    );
    expect(identity()).not.toBe(inside);
  });

  it("has no cache and no versions for a database openDatabase did not open on SQLite (as PostgreSQL)", async () => {
    const { Kysely, SqliteDialect } = await import("kysely");
    const foreign = new Kysely<never>({
      dialect: new SqliteDialect({ database: {} as never }),
    });
    expect(dataVersionOf(foreign as never)).toBeNull();
    expect(identityVersionOf(foreign as never)).toBeNull();
    expect(createReadCache(dataVersionOf(foreign as never), { maxEntries: 1 })).toBeNull();
  });
});

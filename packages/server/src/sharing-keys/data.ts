/**
 * Data access of the sharing-keys slice: SQL only, no rules. Every function takes the database or a transaction,
 * so the service decides what runs atomically; failures come out as DatabaseError (db/query.ts). A key moves with
 * ONE conditional statement: the initial set inserts only where the account has none, a rotation updates only the
 * key it read, so two moves from one state can never both succeed.
 */
import type { Kysely } from "kysely";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import type { UserPublicKeysTable } from "./migration.js";

/** The database or a transaction on it. */
export type Db = Kysely<Database>;

/** A registered sharing key. */
export type SharingKeyRow = UserPublicKeysTable;

/** A registered public key as other slices read it: what to wrap for, and its fingerprint. */
export interface RegisteredSharingKey {
  /** Canonical standard base64 of the 32-byte X25519 public key. */
  publicKey: string;
  /** Lowercase hex SHA-256 of the key (core sharingKeyFingerprint). */
  fingerprint: string;
}

/** The account's registered key, or undefined when it has none. */
export function findSharingKey(db: Db, userId: string): Promise<SharingKeyRow | undefined> {
  return runQuery("read sharing key", () =>
    db.selectFrom("user_public_keys").selectAll().where("user_id", "=", userId).executeTakeFirst(),
  );
}

/** At most this many ids go into one `in (...)` list (SQLite's default limit on bound values is 32766). */
const IDS_PER_QUERY = 500;

/**
 * The registered keys of `userIds`, by user id: what the organisation slices wrap vault keys for. An account with no
 * entry has no key yet (it waits for one before anything can be shared with it).
 */
export function findSharingKeys(
  db: Db,
  userIds: readonly string[],
): Promise<Map<string, RegisteredSharingKey>> {
  return runQuery("read sharing keys", async () => {
    const found = new Map<string, RegisteredSharingKey>();
    const unique = [...new Set(userIds)];
    for (let start = 0; start < unique.length; start += IDS_PER_QUERY) {
      const rows = await db
        .selectFrom("user_public_keys")
        .select(["user_id", "public_key", "fingerprint"])
        .where("user_id", "in", unique.slice(start, start + IDS_PER_QUERY))
        .execute();
      for (const row of rows) {
        found.set(row.user_id, { publicKey: row.public_key, fingerprint: row.fingerprint });
      }
    }
    return found;
  });
}

/** The account's first key; false, writing nothing, when it has one already. */
export function insertSharingKey(db: Db, row: SharingKeyRow): Promise<boolean> {
  return runQuery("insert sharing key", async () => {
    const rows = await db
      .insertInto("user_public_keys")
      .values(row)
      .onConflict((oc) => oc.column("user_id").doNothing())
      .returning("user_id")
      .execute();
    return rows.length === 1;
  });
}

/**
 * Replaces the account's key, only if it is still the one with `fromFingerprint`; false, changing nothing, when it
 * is not (another rotation got there first).
 */
export function replaceSharingKey(
  db: Db,
  change: { userId: string; fromFingerprint: string; publicKey: string; fingerprint: string; at: string },
): Promise<boolean> {
  return runQuery("replace sharing key", async () => {
    const rows = await db
      .updateTable("user_public_keys")
      .set({ public_key: change.publicKey, fingerprint: change.fingerprint, rotated_at: change.at })
      .where("user_id", "=", change.userId)
      .where("fingerprint", "=", change.fromFingerprint)
      .returning("user_id")
      .execute();
    return rows.length === 1;
  });
}

/**
 * Data access of the sync slice: SQL only, no rules. Every function takes the database or a transaction, so the
 * service decides what runs atomically; database failures come out as DatabaseError (db/query.ts), whose message
 * names the operation and never a value. The audit rows are audit/data.ts's.
 */
import type { Kysely } from "kysely";
import { precompile } from "../db/precompiled.js";
import type { HeadWrite } from "../db/heads.js";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import type { VaultHeadsTable } from "./migration.js";

/** The database or a transaction on it. */
export type Db = Kysely<Database>;

// The statements every pull and push runs are compiled once (db/precompiled.ts); the rest are built per call.
const vaultOwner = precompile(1, (db, [vaultId]) =>
  db.selectFrom("vaults").select("owner_id").where("id", "=", vaultId!),
);

/** The owner of `vaultId`, or null when nobody has pushed it. */
export function findVaultOwner(db: Db, vaultId: string): Promise<string | null> {
  return runQuery("find vault owner", async () => {
    const row = (await vaultOwner.run(db, [vaultId])).rows[0];
    return row?.owner_id ?? null;
  });
}

/**
 * Claims `vaultId` for `userId` unless someone already has; returns the owner either way. ON CONFLICT DO NOTHING
 * waits for a concurrent claimant's transaction on PostgreSQL, so exactly one user ever owns an id.
 */
export function claimVault(db: Db, vaultId: string, userId: string, now: string): Promise<string | null> {
  return runQuery("claim vault", async () => {
    const claimed = await db
      .insertInto("vaults")
      .values({ id: vaultId, owner_id: userId, created_at: now })
      .onConflict((oc) => oc.column("id").doNothing())
      .returning("owner_id")
      .executeTakeFirst();
    // Only a claim that lost to another needs the winner read back.
    if (claimed !== undefined) return claimed.owner_id;
    const row = await db.selectFrom("vaults").select("owner_id").where("id", "=", vaultId).executeTakeFirst();
    return row?.owner_id ?? null;
  });
}

/** The head row of one user's copy of a vault. */
export type HeadRow = VaultHeadsTable;

const head = precompile(2, (db, [vaultId, userId]) =>
  db
    .selectFrom("vault_heads")
    .select([
      "vault_id",
      "user_id",
      "version",
      "encrypted_blob",
      "wrapped_key",
      "schema_json",
      "name",
      "updated_at",
    ])
    .where("vault_id", "=", vaultId!)
    .where("user_id", "=", userId!),
);

/** The head of (vault, user), or undefined. */
export function findHead(db: Db, vaultId: string, userId: string): Promise<HeadRow | undefined> {
  return runQuery("read vault head", async () => (await head.run(db, [vaultId, userId])).rows[0]);
}

/** The current version of (vault, user); 0 when there is no head. */
export function currentVersion(db: Db, vaultId: string, userId: string): Promise<number> {
  return runQuery("read vault version", async () => {
    const row = await db
      .selectFrom("vault_heads")
      .select("version")
      .where("vault_id", "=", vaultId)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return row === undefined ? 0 : Number(row.version);
  });
}

/**
 * Version 1 of (vault, user). Returns false, writing nothing, when the row exists — also when a concurrent first
 * push committed it while this statement waited (ON CONFLICT DO NOTHING on the primary key).
 */
export function insertFirstHead(db: Db, vaultId: string, userId: string, write: HeadWrite): Promise<boolean> {
  return runQuery("insert vault head", async () => {
    const rows = await db
      .insertInto("vault_heads")
      .values({
        vault_id: vaultId,
        user_id: userId,
        version: 1,
        encrypted_blob: write.encryptedBlob,
        wrapped_key: write.wrappedKey,
        schema_json: write.schemaJson ?? null,
        name: write.name,
        updated_at: write.updatedAt,
      })
      .onConflict((oc) => oc.columns(["vault_id", "user_id"]).doNothing())
      .returning("version")
      .execute();
    return rows.length === 1;
  });
}

/**
 * Moves (vault, user) from `baseVersion` to `baseVersion + 1` in one conditional UPDATE, provided `user` owns the
 * vault. Returns false when the row is not at `baseVersion` or the user is not the owner: on PostgreSQL a
 * concurrent writer's row lock makes this statement wait and then re-check the condition against the committed
 * row, so two pushes from one base can never both succeed.
 */
export function advanceHead(
  db: Db,
  vaultId: string,
  userId: string,
  baseVersion: number,
  write: HeadWrite,
): Promise<boolean> {
  return runQuery("advance vault head", async () => {
    const { blob, key, name, at, vault, user, base, next } = ADVANCE_SLOTS;
    const values: unknown[] = [];
    values[blob] = write.encryptedBlob;
    values[key] = write.wrappedKey;
    values[name] = write.name;
    values[at] = write.updatedAt;
    values[vault] = vaultId;
    values[user] = userId;
    values[base] = baseVersion;
    values[next] = baseVersion + 1;
    const result =
      write.schemaJson === undefined
        ? await advanceKeepingSchema.run(db, values)
        : await advanceWithSchema.run(db, [...values, write.schemaJson]);
    return result.rows.length === 1;
  });
}

// Slot numbers of the advance statements (the one that sets the schema has it last).
const ADVANCE_SLOTS = { blob: 0, key: 1, name: 2, at: 3, vault: 4, user: 5, base: 6, next: 7 } as const;

const advance = (withSchema: boolean) =>
  precompile(withSchema ? 9 : 8, (db, s) =>
    db
      .updateTable("vault_heads")
      .set({
        version: s[ADVANCE_SLOTS.next] as unknown as number,
        encrypted_blob: s[ADVANCE_SLOTS.blob]!,
        wrapped_key: s[ADVANCE_SLOTS.key]!,
        ...(withSchema ? { schema_json: s[8]! } : {}),
        name: s[ADVANCE_SLOTS.name]!,
        updated_at: s[ADVANCE_SLOTS.at]!,
      })
      .where("vault_id", "=", s[ADVANCE_SLOTS.vault]!)
      .where("user_id", "=", s[ADVANCE_SLOTS.user]!)
      .where("version", "=", s[ADVANCE_SLOTS.base] as unknown as number)
      // The owner check is part of the update, so a push from a known base needs no separate owner lookup.
      .where((eb) =>
        eb.exists(
          eb
            .selectFrom("vaults")
            .select("vaults.id")
            .where("vaults.id", "=", s[ADVANCE_SLOTS.vault]!)
            .where("vaults.owner_id", "=", s[ADVANCE_SLOTS.user]!),
        ),
      )
      .returning("version"),
  );
const advanceKeepingSchema = advance(false);
const advanceWithSchema = advance(true);

/** Replaces the wrapped key of (vault, user) if it is at `version`; false otherwise. */
export function replaceWrappedKey(
  db: Db,
  vaultId: string,
  userId: string,
  version: number,
  wrappedKey: string,
  updatedAt: string,
): Promise<boolean> {
  return runQuery("replace wrapped key", async () => {
    const rows = await db
      .updateTable("vault_heads")
      .set({ wrapped_key: wrappedKey, updated_at: updatedAt })
      .where("vault_id", "=", vaultId)
      .where("user_id", "=", userId)
      .where("version", "=", version)
      .returning("version")
      .execute();
    return rows.length === 1;
  });
}

/** One history row. */
export interface VersionRecord {
  vaultId: string;
  userId: string;
  version: number;
  blobSha256: string;
  blobSize: number;
  createdAt: string;
}

/** Records an acknowledged version; the primary key refuses a second row for the same version. */
export function insertVersion(db: Db, record: VersionRecord): Promise<void> {
  return runQuery("insert vault version", async () => {
    await versionInsert.run(db, [
      record.vaultId,
      record.userId,
      record.version,
      record.blobSha256,
      record.blobSize,
      record.createdAt,
    ]);
  });
}

const versionInsert = precompile(6, (db, s) =>
  db.insertInto("vault_versions").values({
    vault_id: s[0]!,
    user_id: s[1]!,
    version: s[2] as unknown as number,
    blob_sha256: s[3]!,
    blob_size: s[4] as unknown as number,
    created_at: s[5]!,
  }),
);

/** The history of (vault, user), oldest first. */
export function listVersions(db: Db, vaultId: string, userId: string): Promise<VersionRecord[]> {
  return runQuery("list vault versions", async () => {
    const rows = await db
      .selectFrom("vault_versions")
      .selectAll()
      .where("vault_id", "=", vaultId)
      .where("user_id", "=", userId)
      .orderBy("version", "asc")
      .execute();
    return rows.map((r) => ({
      vaultId: r.vault_id,
      userId: r.user_id,
      version: Number(r.version),
      blobSha256: r.blob_sha256,
      blobSize: Number(r.blob_size),
      createdAt: r.created_at,
    }));
  });
}

/** One of a user's personal copies, without its blob or key. */
export interface HeadSummary {
  vaultId: string;
  name: string;
  version: number;
  updatedAt: string;
}

/** The personal copies of `userId`, by name then vault id. */
export function listHeads(db: Db, userId: string): Promise<HeadSummary[]> {
  return runQuery("list vault heads", async () => {
    const rows = await db
      .selectFrom("vault_heads")
      .select(["vault_id", "name", "version", "updated_at"])
      .where("user_id", "=", userId)
      .orderBy("name")
      .orderBy("vault_id")
      .execute();
    return rows.map((r) => ({
      vaultId: r.vault_id,
      name: r.name,
      version: Number(r.version),
      updatedAt: r.updated_at,
    }));
  });
}

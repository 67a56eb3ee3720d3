/**
 * Data access of the platform connections (platform_connections, docs/platforms.md "Connections"): SQL only, no
 * rules. Every function takes the database or a transaction, so the caller decides what runs atomically; failures
 * come out as DatabaseError (db/query.ts), whose message names the operation and never a value.
 */
import { checkSchema, platformConfigSchema, type PlatformConfig } from "@latchkey/core";
import type { Kysely } from "kysely";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import type { CopyRef } from "../db/copies.js";
import type { PlatformConnectionsTable } from "./migration.js";

/** The database or a transaction on it. */
type Db = Kysely<Database>;

/** A connection's last push as stored. */
export interface LastPushRecord {
  pushedAt: string;
  version: number;
  added: number;
  changed: number;
  removed: number;
  outcome: string;
  message: string | null;
  pushedBy: string | null;
}

/** A connection as stored. */
export interface ConnectionRecord {
  id: string;
  vaultId: string;
  name: string;
  platform: string;
  environment: string;
  config: PlatformConfig;
  sealedCredential: string;
  createdAt: string;
  /** E-mail of who connected it; null when that account is gone. */
  createdBy: string | null;
  lastPush: LastPushRecord | null;
}

/** What connecting writes. */
export interface ConnectionWrite {
  id: string;
  name: string;
  environment: string;
  config: PlatformConfig;
  sealedCredential: string;
  createdBy: string;
  at: string;
}

/** What recording a push writes. */
export interface PushWrite {
  at: string;
  version: number;
  added: number;
  changed: number;
  removed: number;
  outcome: string;
  message: string | null;
  by: string;
}

type Row = PlatformConnectionsTable & { created_by_email: string | null; pushed_by_email: string | null };

function columns(db: Db) {
  return db
    .selectFrom("platform_connections as c")
    .leftJoin("users as cu", "cu.id", "c.created_by")
    .leftJoin("users as pu", "pu.id", "c.pushed_by")
    .selectAll("c")
    .select(["cu.email as created_by_email", "pu.email as pushed_by_email"]);
}

function ofCopy<Q extends ReturnType<typeof columns>>(query: Q, copy: CopyRef): Q {
  const q = query.where("c.vault_id", "=", copy.vaultId);
  return (
    "orgId" in copy
      ? q.where("c.org_id", "=", copy.orgId)
      : q.where("c.org_id", "is", null).where("c.user_id", "=", copy.userId)
  ) as Q;
}

function toRecord(row: Row): ConnectionRecord {
  // Only a validated configuration is ever written: one that no longer reads as one is a fault of the database.
  const checked = checkSchema(platformConfigSchema, JSON.parse(row.config));
  if (!checked.ok)
    throw new Error(`a stored platform configuration does not read as one: ${checked.message}`);
  return {
    id: row.id,
    vaultId: row.vault_id,
    name: row.name,
    platform: row.platform,
    environment: row.environment,
    config: checked.value,
    sealedCredential: row.sealed_credential,
    createdAt: row.created_at,
    createdBy: row.created_by_email,
    lastPush:
      row.pushed_at === null
        ? null
        : {
            pushedAt: row.pushed_at,
            version: Number(row.pushed_version),
            added: Number(row.added_count),
            changed: Number(row.changed_count),
            removed: Number(row.removed_count),
            outcome: row.outcome ?? "failed",
            message: row.message,
            pushedBy: row.pushed_by_email,
          },
  };
}

/** The connections of `copy`, by name. */
export function listConnections(db: Db, copy: CopyRef): Promise<ConnectionRecord[]> {
  return runQuery("list platform connections", async () => {
    const rows = await ofCopy(columns(db), copy).orderBy("c.name").execute();
    return rows.map(toRecord);
  });
}

/** The connection `name` of `copy`, or undefined. */
export function findConnection(db: Db, copy: CopyRef, name: string): Promise<ConnectionRecord | undefined> {
  return runQuery("find platform connection", async () => {
    const row = await ofCopy(columns(db), copy).where("c.name", "=", name).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  });
}

/**
 * Inserts a connection of `copy`; false, writing nothing, when the copy has one of that name or the id is taken
 * (one statement on the unique indexes, so two concurrent connects of one name leave one).
 */
export function insertConnection(db: Db, copy: CopyRef, write: ConnectionWrite): Promise<boolean> {
  return runQuery("insert platform connection", async () => {
    const personal = !("orgId" in copy);
    const result = await db
      .insertInto("platform_connections")
      .values({
        id: write.id,
        vault_id: copy.vaultId,
        user_id: personal ? copy.userId : null,
        org_id: personal ? null : copy.orgId,
        name: write.name,
        platform: write.config.platform,
        environment: write.environment,
        config: JSON.stringify(write.config),
        sealed_credential: write.sealedCredential,
        created_by: write.createdBy,
        created_at: write.at,
        pushed_at: null,
        pushed_version: null,
        pushed_by: null,
        added_count: null,
        changed_count: null,
        removed_count: null,
        outcome: null,
        message: null,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  });
}

/** Records the last push of connection `id`. */
export function recordPush(db: Db, id: string, write: PushWrite): Promise<void> {
  return runQuery("record platform push", async () => {
    await db
      .updateTable("platform_connections")
      .set({
        pushed_at: write.at,
        pushed_version: write.version,
        pushed_by: write.by,
        added_count: write.added,
        changed_count: write.changed,
        removed_count: write.removed,
        outcome: write.outcome,
        message: write.message,
      })
      .where("id", "=", id)
      .execute();
  });
}

/** Replaces the sealed credential of connection `id` (a rotation of its copy's vault key sealed it again). */
export function updateSealedCredential(db: Db, id: string, sealedCredential: string): Promise<void> {
  return runQuery("re-seal platform credential", async () => {
    await db
      .updateTable("platform_connections")
      .set({ sealed_credential: sealedCredential })
      .where("id", "=", id)
      .execute();
  });
}

/** Deletes connection `id` with its sealed credential. */
export function deleteConnection(db: Db, id: string): Promise<void> {
  return runQuery("delete platform connection", async () => {
    await db.deleteFrom("platform_connections").where("id", "=", id).execute();
  });
}

/**
 * Deletes the connections of organisation `orgId`'s copies — of `vaultId` only when given; answers what the audit
 * rows of their deletion name.
 */
export function deleteOrgConnections(
  db: Db,
  orgId: string,
  vaultId: string | null,
): Promise<{ id: string; vaultId: string; name: string; platform: string }[]> {
  return runQuery("delete organisation platform connections", async () => {
    let query = db.deleteFrom("platform_connections").where("org_id", "=", orgId);
    if (vaultId !== null) query = query.where("vault_id", "=", vaultId);
    const rows = await query.returning(["id", "vault_id", "name", "platform"]).execute();
    return rows.map((r) => ({ id: r.id, vaultId: r.vault_id, name: r.name, platform: r.platform }));
  });
}

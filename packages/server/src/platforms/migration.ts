/** The platform connections' table (docs/platforms.md, "Connections"). Owned by platforms/. */
import { sql, type Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/**
 * One connection of a vault copy to a platform (data.ts): a personal copy (vault_id, user_id: its owner) or an
 * organisation's (vault_id, org_id), never both; its name is unique within the copy. The credential is sealed by the
 * CLI with the copy's vault key (associated data: vault id + connection id), so the server stores what it cannot
 * open. The last push's columns are null until a machine records one.
 */
export interface PlatformConnectionsTable {
  /** Chosen by the CLI: the sealed credential is bound to it. */
  id: string;
  vault_id: string;
  /** The personal copy's owner; null for an organisation's copy. */
  user_id: string | null;
  /** The organisation whose copy it is; null for a personal copy. */
  org_id: string | null;
  name: string;
  platform: string;
  /** The vault environment the connection pushes. */
  environment: string;
  /** The platform's non-secret configuration, JSON (core platformConfigSchema). */
  config: string;
  /** Standard base64 of the credential's envelope. */
  sealed_credential: string;
  /** Who connected it. No foreign key: the row says who even if that account goes. */
  created_by: string | null;
  created_at: string;
  pushed_at: string | null;
  pushed_version: number | null;
  pushed_by: string | null;
  added_count: number | null;
  changed_count: number | null;
  removed_count: number | null;
  /** ok, partial or failed. */
  outcome: string | null;
  /** Why a push failed, in the catalogue's words; never a value. */
  message: string | null;
}

/** The platforms slice's tables as Kysely sees them (after its latest migration). */
export interface PlatformTables {
  platform_connections: PlatformConnectionsTable;
}

/**
 * Migration 0019: the platform connections, with two partial unique indexes (a name once per personal copy, once
 * per organisation copy).
 */
export const platformConnectionsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("platform_connections")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("vault_id", "text", (c) => c.notNull())
      .addColumn("user_id", "text", (c) => c.references("users.id"))
      .addColumn("org_id", "text", (c) => c.references("orgs.id"))
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("platform", "text", (c) => c.notNull())
      .addColumn("environment", "text", (c) => c.notNull())
      .addColumn("config", "text", (c) => c.notNull())
      .addColumn("sealed_credential", "text", (c) => c.notNull())
      .addColumn("created_by", "text")
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("pushed_at", "text")
      .addColumn("pushed_version", "bigint")
      .addColumn("pushed_by", "text")
      .addColumn("added_count", "integer")
      .addColumn("changed_count", "integer")
      .addColumn("removed_count", "integer")
      .addColumn("outcome", "text")
      .addColumn("message", "text")
      .addCheckConstraint("platform_connections_one_copy", sql`(user_id is null) <> (org_id is null)`)
      .execute();
    await db.schema
      .createIndex("platform_connections_personal")
      .on("platform_connections")
      .columns(["vault_id", "user_id", "name"])
      .unique()
      .where(sql.ref("org_id"), "is", null)
      .execute();
    await db.schema
      .createIndex("platform_connections_org")
      .on("platform_connections")
      .columns(["org_id", "vault_id", "name"])
      .unique()
      .where(sql.ref("org_id"), "is not", null)
      .execute();
  },
};

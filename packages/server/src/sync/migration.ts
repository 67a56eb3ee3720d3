/** Tables of the sync slice (issue 6 points 4 and 7). Owned by the sync module. */
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/** Who owns a vault id: the first user to push it. Everyone else gets 404 on it, as for an absent vault. */
export interface VaultsTable {
  id: string;
  owner_id: string;
  created_at: string;
}

/**
 * The latest version of one user's copy of a vault: ciphertext and a wrapped key only. `version` only ever moves
 * by one, through a conditional UPDATE (see data.ts).
 */
export interface VaultHeadsTable {
  vault_id: string;
  user_id: string;
  version: number;
  /** Standard base64, exactly as the client sent it. */
  encrypted_blob: string;
  wrapped_key: string;
  /** JSON of latchkey.json's envSchema, or null when no push has carried one. */
  schema_json: string | null;
  name: string;
  updated_at: string;
}

/**
 * Every acknowledged version, once: the primary key (vault, user, version) makes a second row for one version
 * impossible whatever the application does. Holds a digest of the blob, not the blob.
 */
export interface VaultVersionsTable {
  vault_id: string;
  user_id: string;
  version: number;
  /** Hex SHA-256 of the decoded blob bytes. */
  blob_sha256: string;
  blob_size: number;
  created_at: string;
}

/** The sync slice's tables as Kysely sees them (after its latest migration). */
export interface SyncTables {
  vaults: VaultsTable;
  vault_heads: VaultHeadsTable;
  vault_versions: VaultVersionsTable;
}

/** Migration 0003: vaults, their versions per user, and what the audit log needs. */
export const syncMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("vaults")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("owner_id", "text", (c) => c.notNull().references("users.id"))
      .addColumn("created_at", "text", (c) => c.notNull())
      .execute();
    // bigint: a version is a JavaScript safe integer on the wire, beyond PostgreSQL's int4.
    await db.schema
      .createTable("vault_heads")
      .addColumn("vault_id", "text", (c) => c.notNull().references("vaults.id"))
      .addColumn("user_id", "text", (c) => c.notNull().references("users.id"))
      .addColumn("version", "bigint", (c) => c.notNull())
      .addColumn("encrypted_blob", "text", (c) => c.notNull())
      .addColumn("wrapped_key", "text", (c) => c.notNull())
      .addColumn("schema_json", "text")
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("vault_heads_pk", ["vault_id", "user_id"])
      .execute();
    await db.schema
      .createTable("vault_versions")
      .addColumn("vault_id", "text", (c) => c.notNull().references("vaults.id"))
      .addColumn("user_id", "text", (c) => c.notNull().references("users.id"))
      .addColumn("version", "bigint", (c) => c.notNull())
      .addColumn("blob_sha256", "text", (c) => c.notNull())
      .addColumn("blob_size", "bigint", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("vault_versions_pk", ["vault_id", "user_id", "version"])
      .execute();
  },
};

/** Migration 0018: a user's personal copies found by user (the list of GET /api/v1/vaults), not by a full scan. */
export const vaultHeadsByUserMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex("vault_heads_user").on("vault_heads").column("user_id").execute();
  },
};

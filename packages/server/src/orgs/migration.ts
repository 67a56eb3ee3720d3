/** Tables of the organisations slice (docs/teams.md). Owned by the orgs module. */
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";
import type { OrgRole } from "@latchkey/core";

/** An organisation. Its slug is what members address it by, unique on the server. */
export interface OrgsTable {
  id: string;
  slug: string;
  name: string;
  created_at: string;
  /**
   * When its membership last changed. Every membership change (and every share) first updates this column: the
   * row lock that takes on PostgreSQL orders concurrent changes of one organisation, so a check such as "another
   * owner remains" reads what the change before it committed.
   */
  updated_at: string;
}

/** One member of an organisation, with their role. */
export interface OrgMembersTable {
  org_id: string;
  user_id: string;
  role: OrgRole;
  added_at: string;
}

/**
 * The latest version of an organisation's copy of a vault: ciphertext only. The vault key is wrapped per member in
 * vault_org_keys. `version` only ever moves by one, through a conditional UPDATE, as for the personal copies.
 */
export interface OrgVaultHeadsTable {
  vault_id: string;
  org_id: string;
  version: number;
  /** Standard base64, exactly as the client sent it. */
  encrypted_blob: string;
  /** JSON of latchkey.json's envSchema, or null when no push has carried one. */
  schema_json: string | null;
  name: string;
  updated_at: string;
}

/** Every acknowledged version of an organisation's copy, once (primary key (vault, org, version)). */
export interface OrgVaultVersionsTable {
  vault_id: string;
  org_id: string;
  version: number;
  /** Hex SHA-256 of the decoded blob bytes. */
  blob_sha256: string;
  blob_size: number;
  created_at: string;
}

/** The vault key of an organisation's copy, wrapped for one member's sharing key. */
export interface VaultOrgKeysTable {
  vault_id: string;
  org_id: string;
  user_id: string;
  /** The strict wire form of core's x25519.ts (parseWrappedKey), checked before it was written. */
  wrapped_key: string;
  /** Lower-case hex SHA-256 of the sharing public key it is wrapped for. */
  key_fingerprint: string;
  created_at: string;
  /**
   * The account whose share wrote the row (the sharer); null on rows written before migration 0014, which a pull
   * refuses as missing. No foreign key: the row names who wrapped it even if that account goes.
   */
  wrapped_by: string | null;
  /** The sharer's registered sharing public key when it shared (canonical base64): what members unwrap with. */
  wrapped_by_key: string | null;
  /** The version the share that wrapped it created (its key version): part of the wrap's context. */
  key_version: number | null;
}

/**
 * The version an organisation's copy had when it was unshared, kept after its head, history and keys are gone: a
 * later share continues from it (members' CLIs refuse a version below the highest they saw as a rollback). A share
 * that continues the copy deletes this row; a copy has a head or this row, never both.
 */
export interface OrgVaultUnsharedTable {
  vault_id: string;
  org_id: string;
  version: number;
  unshared_at: string;
}

/** The organisations slice's tables as Kysely sees them (after its latest migration). */
export interface OrgTables {
  orgs: OrgsTable;
  org_members: OrgMembersTable;
  org_vault_heads: OrgVaultHeadsTable;
  org_vault_versions: OrgVaultVersionsTable;
  vault_org_keys: VaultOrgKeysTable;
  org_vault_unshared: OrgVaultUnsharedTable;
}

/**
 * Migration 0009: organisations, their members, their copies of vaults and the wrapped keys, and the organisation
 * an audit row belongs to (`audit_events.org_id`, null for every personal row), so an organisation's log is read
 * by an indexed column and a personal log can leave organisation rows out.
 */
export const orgsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("orgs")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("slug", "text", (c) => c.notNull().unique())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("org_members")
      .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
      .addColumn("user_id", "text", (c) => c.notNull().references("users.id"))
      .addColumn("role", "text", (c) => c.notNull())
      .addColumn("added_at", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("org_members_pk", ["org_id", "user_id"])
      .execute();
    // `GET /orgs` lists one user's organisations.
    await db.schema.createIndex("org_members_user").on("org_members").column("user_id").execute();
    // bigint: a version is a JavaScript safe integer on the wire, beyond PostgreSQL's int4.
    await db.schema
      .createTable("org_vault_heads")
      .addColumn("vault_id", "text", (c) => c.notNull())
      .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
      .addColumn("version", "bigint", (c) => c.notNull())
      .addColumn("encrypted_blob", "text", (c) => c.notNull())
      .addColumn("schema_json", "text")
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("org_vault_heads_pk", ["vault_id", "org_id"])
      .execute();
    await db.schema.createIndex("org_vault_heads_org").on("org_vault_heads").column("org_id").execute();
    await db.schema
      .createTable("org_vault_versions")
      .addColumn("vault_id", "text", (c) => c.notNull())
      .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
      .addColumn("version", "bigint", (c) => c.notNull())
      .addColumn("blob_sha256", "text", (c) => c.notNull())
      .addColumn("blob_size", "bigint", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("org_vault_versions_pk", ["vault_id", "org_id", "version"])
      .execute();
    await db.schema
      .createTable("vault_org_keys")
      .addColumn("vault_id", "text", (c) => c.notNull())
      .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
      .addColumn("user_id", "text", (c) => c.notNull().references("users.id"))
      .addColumn("wrapped_key", "text", (c) => c.notNull())
      .addColumn("key_fingerprint", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("vault_org_keys_pk", ["vault_id", "org_id", "user_id"])
      .execute();
    // Removing a member and rotating a sharing key delete one user's keys across vaults.
    await db.schema
      .createIndex("vault_org_keys_member")
      .on("vault_org_keys")
      .columns(["org_id", "user_id"])
      .execute();
    await db.schema.createIndex("vault_org_keys_user").on("vault_org_keys").column("user_id").execute();
    // No foreign key: an organisation's audit rows outlive it.
    await db.schema.alterTable("audit_events").addColumn("org_id", "text").execute();
    await db.schema
      .createIndex("audit_events_org_time")
      .on("audit_events")
      .columns(["org_id", "created_at"])
      .execute();
    await db.schema
      .createIndex("audit_events_org_vault_time")
      .on("audit_events")
      .columns(["org_id", "vault_id", "created_at"])
      .execute();
  },
};

/**
 * Migration 0012: the version each unshared organisation copy had (org_vault_unshared), so its versions never go
 * backwards when it is shared again. A table of its own rather than a head row without its blob: the pull and
 * every list keep reading the heads as they are, and an unshared copy has no blob anywhere to leak.
 */
export const orgVaultUnsharedMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("org_vault_unshared")
      .addColumn("vault_id", "text", (c) => c.notNull())
      .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
      .addColumn("version", "bigint", (c) => c.notNull())
      .addColumn("unshared_at", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("org_vault_unshared_pk", ["vault_id", "org_id"])
      .execute();
    // Deleting an organisation deletes its rows.
    await db.schema.createIndex("org_vault_unshared_org").on("org_vault_unshared").column("org_id").execute();
  },
};

/**
 * Migration 0014: who wrapped each organisation vault key (the sharer's account and public key) and the version of
 * the share that did, so a member's CLI can check the sharer before it unwraps. Nullable: the rows before it have
 * no author, and a pull answers them as missing until a maintainer shares again.
 */
export const orgKeyAuthorsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable("vault_org_keys").addColumn("wrapped_by", "text").execute();
    await db.schema.alterTable("vault_org_keys").addColumn("wrapped_by_key", "text").execute();
    await db.schema.alterTable("vault_org_keys").addColumn("key_version", "bigint").execute();
  },
};

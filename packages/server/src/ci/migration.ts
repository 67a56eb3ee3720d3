/** The CI slice's tables (docs/ci.md). Owned by ci/. */
import { sql, type Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/**
 * A CI token that was exchanged (replay.ts spendCiToken): one row per issuer and jti, so a token is accepted once.
 * Written in the transaction of the exchange, so an exchange that fails leaves the token unspent. A row is worth
 * keeping only while the token could still verify: until its exp plus the leeway (verify.ts).
 */
export interface CiTokenUsesTable {
  issuer: string;
  jti: string;
  /** The token's exp, ISO-8601; rows whose token can no longer verify are swept. */
  expires_at: string;
}

/**
 * One vault copy's CI policy and its escrow (policies-data.ts): a personal copy (vault_id, user_id: its owner) or
 * an organisation's (vault_id, org_id), never both. The escrowed key is the copy's vault key wrapped for the
 * server's escrow key (escrow-key.ts); deleting the row deletes the escrow, and nothing else holds it.
 */
export interface CiPoliciesTable {
  /** New for every policy made: a CI access token names it, so one made after a disable is another policy. */
  id: string;
  vault_id: string;
  /** The personal copy's owner; null for an organisation's copy. */
  user_id: string | null;
  /** The organisation whose copy it is; null for a personal copy. */
  org_id: string | null;
  provider: string;
  issuer: string;
  repository: string;
  repository_id: string;
  owner_id: string;
  /** JSON array of the branch globs. */
  branches: string;
  /** JSON array of the environment names; [] allows any. */
  environments: string;
  /** 1 or 0. */
  allow_forks: number;
  /** 1 or 0. */
  protected_refs_only: number;
  audience: string;
  /** wrapKeyForRecipient of the copy's vault key for the escrow key. */
  escrowed_key: string;
  /** The escrow key it is wrapped for. */
  escrow_key_fingerprint: string;
  /** The copy's version the escrowed key was last checked to open. */
  escrow_version: number;
  /** 1 when made, one more at every replacement (PUT): tokens of an older generation pull nothing. */
  generation: number;
  /** Who made or last replaced it. No foreign key: the row says who even if that account goes. */
  enabled_by: string | null;
  /** When it was made or last replaced. */
  enabled_at: string;
  /** Its last change, a re-escrow by a push included. */
  updated_at: string;
}

/** The CI slice's tables as Kysely sees them (after its latest migration). */
export interface CiTables {
  ci_token_uses: CiTokenUsesTable;
  ci_policies: CiPoliciesTable;
}

/** Migration 0015: the spent CI tokens. */
export const ciOidcMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("ci_token_uses")
      .addColumn("issuer", "text", (c) => c.notNull())
      .addColumn("jti", "text", (c) => c.notNull())
      .addColumn("expires_at", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("ci_token_uses_pk", ["issuer", "jti"])
      .execute();
    await db.schema.createIndex("ci_token_uses_expiry").on("ci_token_uses").column("expires_at").execute();
  },
};

/**
 * Migration 0016: the CI policies with their escrows, one per vault copy (two partial unique indexes: one personal
 * copy per vault, one copy per organisation and vault).
 */
export const ciPoliciesMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("ci_policies")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("vault_id", "text", (c) => c.notNull())
      .addColumn("user_id", "text", (c) => c.references("users.id"))
      .addColumn("org_id", "text", (c) => c.references("orgs.id"))
      .addColumn("provider", "text", (c) => c.notNull())
      .addColumn("issuer", "text", (c) => c.notNull())
      .addColumn("repository", "text", (c) => c.notNull())
      .addColumn("repository_id", "text", (c) => c.notNull())
      .addColumn("owner_id", "text", (c) => c.notNull())
      .addColumn("branches", "text", (c) => c.notNull())
      .addColumn("environments", "text", (c) => c.notNull())
      .addColumn("allow_forks", "integer", (c) => c.notNull())
      .addColumn("protected_refs_only", "integer", (c) => c.notNull())
      .addColumn("audience", "text", (c) => c.notNull())
      .addColumn("escrowed_key", "text", (c) => c.notNull())
      .addColumn("escrow_key_fingerprint", "text", (c) => c.notNull())
      .addColumn("escrow_version", "bigint", (c) => c.notNull())
      .addColumn("generation", "bigint", (c) => c.notNull())
      .addColumn("enabled_by", "text")
      .addColumn("enabled_at", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .addCheckConstraint("ci_policies_one_copy", sql`(user_id is null) <> (org_id is null)`)
      .execute();
    await db.schema
      .createIndex("ci_policies_personal")
      .on("ci_policies")
      .column("vault_id")
      .unique()
      .where(sql.ref("org_id"), "is", null)
      .execute();
    await db.schema
      .createIndex("ci_policies_org")
      .on("ci_policies")
      .columns(["org_id", "vault_id"])
      .unique()
      .where(sql.ref("org_id"), "is not", null)
      .execute();
  },
};

/** The CI slice's tables (docs/ci.md). Owned by ci/. */
import type { Kysely } from "kysely";
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

/** The CI slice's tables as Kysely sees them (after its latest migration). */
export interface CiTables {
  ci_token_uses: CiTokenUsesTable;
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

/** Tables of the API layer: the step-up proofs routes have spent. Owned by api/. */
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/**
 * A step-up proof a route has spent (api/data.ts recordStepUpUse): its `jti` is the primary key, so a proof is
 * spent once. Written in the transaction of the route's write, so a write that fails leaves the proof unspent.
 * A row is worth keeping only until the proof expires (after that, verification refuses it anyway).
 */
export interface StepUpUsesTable {
  jti: string;
  user_id: string;
  /** The proof's scope (its `aud`). */
  scope: string;
  used_at: string;
  /** The proof's `exp`, ISO-8601; rows past it are purged. */
  expires_at: string;
}

/** The API layer's tables as Kysely sees them (after its latest migration). */
export interface ApiTables {
  step_up_uses: StepUpUsesTable;
}

/** Migration 0007: the spent step-up proofs. */
export const stepUpMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("step_up_uses")
      .addColumn("jti", "text", (c) => c.primaryKey())
      .addColumn("user_id", "text", (c) => c.notNull().references("users.id"))
      .addColumn("scope", "text", (c) => c.notNull())
      .addColumn("used_at", "text", (c) => c.notNull())
      .addColumn("expires_at", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("step_up_uses_expiry").on("step_up_uses").column("expires_at").execute();
  },
};

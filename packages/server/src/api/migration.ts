/** Tables of the API layer: the step-up proofs routes have spent, and the accounts' counted actions. Owned by api/. */
import { sql, type Kysely } from "kysely";
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

/**
 * How often one account did one limited action in its current window (api/account-limits.ts): one row per
 * account and action, counted up by a single upsert, so concurrent requests cannot all pass one check.
 */
export interface AccountActionCountsTable {
  user_id: string;
  /** The limited action (AccountLimit.action), e.g. `pairing.join` or `org.member.add`. */
  action: string;
  /** When the current window opened (ISO-8601): at the first counted action after the previous one closed. */
  window_start: string;
  count: number;
}

/** The API layer's tables as Kysely sees them (after its latest migration). */
export interface ApiTables {
  step_up_uses: StepUpUsesTable;
  account_action_counts: AccountActionCountsTable;
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

/**
 * Migration 0013: one table of per-account action counts for every limited action of a signed-in account
 * (api/account-limits.ts). The wrong pairing codes were the first such count, in a table of their own
 * (pairing_join_failures); their rows move here as the action `pairing.join` and that table goes.
 */
export const accountActionCountsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("account_action_counts")
      .addColumn("user_id", "text", (c) => c.notNull().references("users.id"))
      .addColumn("action", "text", (c) => c.notNull())
      .addColumn("window_start", "text", (c) => c.notNull())
      .addColumn("count", "integer", (c) => c.notNull())
      .addPrimaryKeyConstraint("account_action_counts_pk", ["user_id", "action"])
      .execute();
    await sql`insert into account_action_counts (user_id, action, window_start, count)
      select user_id, 'pairing.join', window_start, failures from pairing_join_failures`.execute(db);
    await db.schema.dropTable("pairing_join_failures").execute();
  },
};

/** Tables of the pairing slice (docs/pairing.md). Owned by the pairing module. */
import type { PairingStatus } from "@latchkey/core";
import { sql, type Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/**
 * One pairing: a new device (the creator's session) receiving the wrapping key from an approving machine (the
 * joiner's session) of the same user. The server holds public keys, a commitment and, between approve and
 * consume, the sealed key: never the wrapping key, never the code (only its SHA-256).
 */
export interface PairingsTable {
  id: string;
  user_id: string;
  /** Hex SHA-256 of the normalized code (core pairingCodeHash). */
  code_hash: string;
  label: string;
  /** SHA-256(pubN || r), base64 as sent. */
  commitment: string;
  /**
   * What the last move made it; never `expired` until the sweep writes that (service.ts): a row past expires_at
   * reads as expired whatever this says, unless it is consumed or revoked.
   */
  status: PairingStatus;
  /** The OAuth grant (session) that created it: reveal, consume and the early view are its. */
  creator_grant: string;
  /** The grant that joined it: approve is its. */
  approver_grant: string | null;
  /** pubA, base64, from join. */
  approver_key: string | null;
  /** pubN, base64, from reveal. */
  new_device_key: string | null;
  /** r, base64, from reveal. */
  nonce: string | null;
  /** The sealed wrapping key, base64, from approve until consume (or revocation, or the expiry sweep). */
  sealed_key: string | null;
  created_at: string;
  expires_at: string;
  updated_at: string;
}

/**
 * The pairing slice's tables as Kysely sees them (after its latest migration). Its count of wrong codes moved to
 * the API layer's account_action_counts (migration 0013, api/migration.ts).
 */
export interface PairingTables {
  pairings: PairingsTable;
}

/** Migration 0008: pairings and the per-user count of wrong codes. */
export const pairingMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("pairings")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("user_id", "text", (c) => c.notNull().references("users.id"))
      .addColumn("code_hash", "text", (c) => c.notNull())
      .addColumn("label", "text", (c) => c.notNull())
      .addColumn("commitment", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("creator_grant", "text", (c) => c.notNull())
      .addColumn("approver_grant", "text")
      .addColumn("approver_key", "text")
      .addColumn("new_device_key", "text")
      .addColumn("nonce", "text")
      .addColumn("sealed_key", "text")
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("expires_at", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .execute();
    // A code names at most one pending pairing of a user, whatever the application does: a partial unique index
    // (both databases have them), so finished pairings keep their code hash for telling a reused code apart.
    await db.schema
      .createIndex("pairings_pending_code")
      .unique()
      .on("pairings")
      .columns(["user_id", "code_hash"])
      .where(sql.ref("status"), "=", "pending")
      .execute();
    // Join looks a code up among all of the user's pairings, to tell a wrong code from a finished one.
    await db.schema
      .createIndex("pairings_user_code")
      .on("pairings")
      .columns(["user_id", "code_hash"])
      .execute();
    // The list and the cap on unfinished pairings read a user's newest ones.
    await db.schema
      .createIndex("pairings_user_created")
      .on("pairings")
      .columns(["user_id", "created_at"])
      .execute();
    // The sweep (service.ts) finds expired rows across users.
    await db.schema.createIndex("pairings_expires").on("pairings").column("expires_at").execute();
    await db.schema
      .createTable("pairing_join_failures")
      .addColumn("user_id", "text", (c) => c.primaryKey().references("users.id"))
      .addColumn("window_start", "text", (c) => c.notNull())
      .addColumn("failures", "integer", (c) => c.notNull())
      .execute();
  },
};

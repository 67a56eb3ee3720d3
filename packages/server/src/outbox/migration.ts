/** The outbox table (notices waiting for SMTP, docs/teams.md "Notices"). Owned by the outbox module. */
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/**
 * One notice e-mail: queued by a service inside the transaction of the change it reports (service.ts), sent by
 * the sender (sender.ts). Subject and body name accounts, orgs and vaults, never a secret or a key.
 */
export interface OutboxTable {
  id: string;
  /** The e-mail address it goes to. */
  recipient: string;
  /** `security` (to the account a change was done to) or `impact` (to an org's owners and admins). */
  kind: string;
  subject: string;
  /** Plain text. */
  body: string;
  created_at: string;
  /**
   * Attempts begun: a sender counts one when it claims the row, before it talks to the SMTP server, so two
   * senders can never both claim the same attempt (data.ts claimNotice).
   */
  attempts: number;
  /** When a sender may (next) pick it up; while a send runs, the end of its claim. Null once sent or given up. */
  next_attempt_at: string | null;
  sent_at: string | null;
  /** What went wrong the last time, a short fixed description (error code, SMTP reply code), never a value. */
  last_error: string | null;
}

/** The outbox's tables as Kysely sees them (after its latest migration). */
export interface OutboxTables {
  outbox: OutboxTable;
}

/** Migration 0011: the outbox. */
export const outboxMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("outbox")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("recipient", "text", (c) => c.notNull())
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("subject", "text", (c) => c.notNull())
      .addColumn("body", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("next_attempt_at", "text")
      .addColumn("sent_at", "text")
      .addColumn("last_error", "text")
      .execute();
    // The sender's poll: rows that are due. Sent and given-up rows have no next attempt, so they drop out of it.
    await db.schema.createIndex("outbox_due").on("outbox").column("next_attempt_at").execute();
    // `admin outbox` lists the newest rows; the purge of old sent rows goes by age too.
    await db.schema.createIndex("outbox_created").on("outbox").column("created_at").execute();
  },
};

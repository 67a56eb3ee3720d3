/**
 * Data access of the outbox: SQL only, no rules. Every function takes the database or a transaction; failures
 * come out as DatabaseError (db/query.ts). A sender moves a row with ONE conditional UPDATE naming the attempt
 * count it read (claimNotice) or claimed (the outcome writers): on PostgreSQL a second sender's UPDATE waits
 * for the first one's row lock and then re-checks its condition against the committed row, and SQLite runs one
 * writer at a time, so two senders can never both claim one attempt, and a sender whose claim ran out cannot
 * overwrite the outcome of the sender that took the row over.
 */
import type { Kysely } from "kysely";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import type { OutboxTable } from "./migration.js";

/** The database or a transaction on it. */
export type Db = Kysely<Database>;

/** A stored notice. */
export type OutboxRow = OutboxTable;

/** A notice to store, new and due at once. */
export interface OutboxInsert {
  id: string;
  recipient: string;
  kind: string;
  subject: string;
  body: string;
  createdAt: string;
}

/** Stores notices (in the caller's transaction). */
export function insertNotices(db: Db, notices: readonly OutboxInsert[]): Promise<void> {
  if (notices.length === 0) return Promise.resolve();
  return runQuery("insert notices", async () => {
    await db
      .insertInto("outbox")
      .values(
        notices.map((n) => ({
          id: n.id,
          recipient: n.recipient,
          kind: n.kind,
          subject: n.subject,
          body: n.body,
          created_at: n.createdAt,
          attempts: 0,
          next_attempt_at: n.createdAt,
          sent_at: null,
          last_error: null,
        })),
      )
      .execute();
  });
}

/** A due row as the poll reads it: enough to claim it. */
export interface DueNotice {
  id: string;
  attempts: number;
}

/** Up to `limit` rows due at `now`, the longest waiting first. */
export function listDue(db: Db, now: string, limit: number): Promise<DueNotice[]> {
  return runQuery("list due notices", async () => {
    const rows = await db
      .selectFrom("outbox")
      .select(["id", "attempts"])
      .where("next_attempt_at", "<=", now)
      .where("sent_at", "is", null)
      .orderBy("next_attempt_at")
      .orderBy("id")
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: r.id, attempts: Number(r.attempts) }));
  });
}

/**
 * Claims attempt `attempts + 1` of a due row until `leaseUntil`: only when the row is still unsent, due at `now`
 * and at the count the caller read. Returns the claimed row, or undefined when another sender got there first
 * (or it was sent or given up meanwhile).
 */
export function claimNotice(
  db: Db,
  claim: { id: string; attempts: number; now: string; leaseUntil: string },
): Promise<OutboxRow | undefined> {
  return runQuery("claim notice", () =>
    db
      .updateTable("outbox")
      .set({ attempts: claim.attempts + 1, next_attempt_at: claim.leaseUntil })
      .where("id", "=", claim.id)
      .where("attempts", "=", claim.attempts)
      .where("sent_at", "is", null)
      .where("next_attempt_at", "<=", claim.now)
      .returningAll()
      .executeTakeFirst(),
  );
}

/** The claimed attempt delivered the row. False when the claim was lost (another sender took the row over). */
export function markSent(db: Db, id: string, attempts: number, now: string): Promise<boolean> {
  return runQuery("mark notice sent", async () => {
    const result = await db
      .updateTable("outbox")
      .set({ sent_at: now, next_attempt_at: null, last_error: null })
      .where("id", "=", id)
      .where("attempts", "=", attempts)
      .where("sent_at", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  });
}

/**
 * The claimed attempt failed: the row is due again at `nextAttemptAt`, or given up (null: it stays, as failed).
 * False when the claim was lost.
 */
export function markFailed(
  db: Db,
  failed: { id: string; attempts: number; error: string; nextAttemptAt: string | null },
): Promise<boolean> {
  return runQuery("mark notice failed", async () => {
    const result = await db
      .updateTable("outbox")
      .set({ last_error: failed.error, next_attempt_at: failed.nextAttemptAt })
      .where("id", "=", failed.id)
      .where("attempts", "=", failed.attempts)
      .where("sent_at", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  });
}

/**
 * Hands back a claimed attempt that was interrupted (the server is stopping): the count goes back and the row is
 * due at `now`, so it does not count against the row's attempts.
 */
export function releaseClaim(db: Db, id: string, attempts: number, now: string): Promise<void> {
  return runQuery("release notice claim", async () => {
    await db
      .updateTable("outbox")
      .set({ attempts: attempts - 1, next_attempt_at: now })
      .where("id", "=", id)
      .where("attempts", "=", attempts)
      .where("sent_at", "is", null)
      .execute();
  });
}

/**
 * Gives up the rows whose last allowed attempt was claimed and never finished (its sender died): they are due
 * again, but no attempt is left. They stay, as failed.
 */
export function giveUpExhausted(db: Db, now: string, maxAttempts: number, error: string): Promise<void> {
  return runQuery("give up exhausted notices", async () => {
    await db
      .updateTable("outbox")
      .set((eb) => ({ next_attempt_at: null, last_error: eb.fn.coalesce("last_error", eb.val(error)) }))
      .where("next_attempt_at", "<=", now)
      .where("sent_at", "is", null)
      .where("attempts", ">=", maxAttempts)
      .execute();
  });
}

/** Deletes rows sent before `before`: a delivered notice need not be kept. Failed rows stay. */
export function purgeSent(db: Db, before: string): Promise<void> {
  return runQuery("purge sent notices", async () => {
    await db.deleteFrom("outbox").where("sent_at", "<", before).execute();
  });
}

/** The newest `limit` rows, newest first. */
export function listNotices(db: Db, limit: number): Promise<OutboxRow[]> {
  return runQuery("list notices", async () => {
    const rows = await db
      .selectFrom("outbox")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...r, attempts: Number(r.attempts) }));
  });
}

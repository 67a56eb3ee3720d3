/**
 * The audit log's table (audit_events): the server's one audit writer, which the sync and identity slices both
 * write through, and the reader of a vault's log. SQL only; failures come out as DatabaseError (db/query.ts).
 */
import type { Kysely } from "kysely";
import { precompile } from "../db/precompiled.js";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";

/** The database or a transaction on it. */
type Db = Kysely<Database>;

/** One audit row to write. `metadata` must hold no secret value. */
export interface AuditWrite {
  id: string;
  /** The actor; null when there is none (an email without an account, events of an address). */
  userId: string | null;
  action: string;
  vaultId: string | null;
  version: number | null;
  createdAt: string;
  metadata: Record<string, unknown>;
  /**
   * For events a client can repeat at will (refused sign-in attempts): every write with the same key adds one to
   * the `count` of a single row instead of adding a row, so nobody can grow the log without bound.
   */
  coalesceKey?: string;
}

/** Writes an audit row (in the caller's transaction, with the change it records). */
export function insertAudit(db: Db, event: AuditWrite): Promise<void> {
  return runQuery("insert audit event", async () => {
    if (event.coalesceKey !== undefined) {
      await db
        .insertInto("audit_events")
        .values({
          id: event.id,
          user_id: event.userId,
          action: event.action,
          vault_id: event.vaultId,
          version: event.version,
          created_at: event.createdAt,
          metadata: JSON.stringify(event.metadata),
          coalesce_key: event.coalesceKey,
        })
        .onConflict((oc) =>
          oc
            .column("coalesce_key")
            .doUpdateSet((eb) => ({ count: eb(eb.ref("audit_events.count"), "+", 1) })),
        )
        .execute();
      return;
    }
    await auditInsert.run(db, [
      event.id,
      event.userId,
      event.action,
      event.vaultId,
      event.version,
      event.createdAt,
      JSON.stringify(event.metadata),
    ]);
  });
}

const auditInsert = precompile(7, (db, s) =>
  db.insertInto("audit_events").values({
    id: s[0]!,
    user_id: s[1]!,
    action: s[2]!,
    vault_id: s[3]!,
    version: s[4] as unknown as number,
    created_at: s[5]!,
    metadata: s[6]!,
  }),
);

/** An audit row with its actor's email. */
export interface AuditRow {
  action: string;
  version: number | null;
  createdAt: string;
  userId: string | null;
  email: string | null;
  metadata: string;
}

/** The newest `limit` audit rows of a vault, newest first. */
export function listAudit(db: Db, vaultId: string, limit: number): Promise<AuditRow[]> {
  return runQuery("list audit events", async () => {
    const rows = await db
      .selectFrom("audit_events as a")
      .leftJoin("users as u", "u.id", "a.user_id")
      .select(["a.action", "a.version", "a.created_at", "a.user_id", "u.email", "a.metadata"])
      .where("a.vault_id", "=", vaultId)
      // Several events can share a millisecond; a later version, then a rewrap after the push of its version,
      // is the newer one.
      .orderBy("a.created_at", "desc")
      .orderBy("a.version", "desc")
      .orderBy("a.action", "desc")
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      action: r.action,
      version: r.version === null ? null : Number(r.version),
      createdAt: r.created_at,
      userId: r.user_id,
      email: r.email,
      metadata: r.metadata,
    }));
  });
}

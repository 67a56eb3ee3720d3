/**
 * Data access of the pairing slice: SQL only, no rules. Every function takes the database or a transaction, so the
 * service decides what runs atomically; failures come out as DatabaseError (db/query.ts). Every state move is ONE
 * conditional UPDATE naming the pairing, its user, the session the step belongs to, the state it leaves and its
 * expiry: on PostgreSQL a concurrent mover's row lock makes it wait and then re-check the condition against the
 * committed row, so two moves out of one state can never both succeed. The audit rows are audit/data.ts's.
 */
import type { PairingStatus } from "@latchkey/core";
import type { Kysely } from "kysely";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import type { PairingsTable } from "./migration.js";

/** The database or a transaction on it. */
export type Db = Kysely<Database>;

/** A stored pairing. */
export type PairingRow = PairingsTable;

/** The states a pairing can still leave. */
export const UNFINISHED: readonly PairingStatus[] = ["pending", "joined", "revealed", "approved"];

/** A new pairing; false, writing nothing, when the user has a pending one with the same code (or the id exists). */
export function insertPairing(db: Db, row: PairingRow): Promise<boolean> {
  return runQuery("insert pairing", async () => {
    // Without a conflict target: the one unique index a fresh code can hit is pairings_pending_code, and naming
    // a partial index as the target would need its predicate spelled as the database matches it.
    const rows = await db
      .insertInto("pairings")
      .values(row)
      .onConflict((oc) => oc.doNothing())
      .returning("id")
      .execute();
    return rows.length === 1;
  });
}

/** How many of the user's pairings are unfinished and unexpired at `now`. */
export function countUnfinished(db: Db, userId: string, now: string): Promise<number> {
  return runQuery("count unfinished pairings", async () => {
    const row = await db
      .selectFrom("pairings")
      .select((eb) => eb.fn.countAll<number | string | bigint>().as("n"))
      .where("user_id", "=", userId)
      .where("status", "in", UNFINISHED)
      .where("expires_at", ">", now)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  });
}

/**
 * Unfinished pairings past their expiry become `expired` and lose their sealed key; pairings that expired before
 * `forgetBefore` are deleted (the audit log keeps their history). Returns nothing: the sweep is housekeeping.
 */
export function sweepExpired(db: Db, now: string, forgetBefore: string): Promise<void> {
  return runQuery("sweep expired pairings", async () => {
    await db
      .updateTable("pairings")
      .set({ status: "expired", sealed_key: null, updated_at: now })
      .where("status", "in", UNFINISHED)
      .where("expires_at", "<=", now)
      .execute();
    await db.deleteFrom("pairings").where("expires_at", "<", forgetBefore).execute();
  });
}

/** The pairing `id` of `userId`, whatever its state; undefined when absent or another user's. */
export function findPairing(db: Db, id: string, userId: string): Promise<PairingRow | undefined> {
  return runQuery("read pairing", () =>
    db
      .selectFrom("pairings")
      .selectAll()
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .executeTakeFirst(),
  );
}

/** The user's newest pairing with this code hash, whatever its state. */
export function findPairingByCode(db: Db, userId: string, codeHash: string): Promise<PairingRow | undefined> {
  return runQuery("read pairing by code", () =>
    db
      .selectFrom("pairings")
      .selectAll()
      .where("user_id", "=", userId)
      .where("code_hash", "=", codeHash)
      .orderBy("created_at", "desc")
      .limit(1)
      .executeTakeFirst(),
  );
}

/** The user's pairings created at or after `since`, newest first. */
export function listPairings(db: Db, userId: string, since: string, limit: number): Promise<PairingRow[]> {
  return runQuery("list pairings", () =>
    db
      .selectFrom("pairings")
      .selectAll()
      .where("user_id", "=", userId)
      .where("created_at", ">=", since)
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(limit)
      .execute(),
  );
}

/**
 * pending → joined by code, from a session other than the creator's: the only move that finds its pairing by code
 * (a code names at most one pending pairing of a user). Returns the joined row, or undefined when nothing moved.
 */
export function joinPairing(
  db: Db,
  join: { userId: string; codeHash: string; grantId: string; approverKey: string; now: string },
): Promise<PairingRow | undefined> {
  return runQuery("join pairing", () =>
    db
      .updateTable("pairings")
      .set({
        status: "joined",
        approver_grant: join.grantId,
        approver_key: join.approverKey,
        updated_at: join.now,
      })
      .where("user_id", "=", join.userId)
      .where("code_hash", "=", join.codeHash)
      .where("status", "=", "pending")
      .where("expires_at", ">", join.now)
      .where("creator_grant", "<>", join.grantId)
      .returningAll()
      .executeTakeFirst(),
  );
}

/** What a move after join changes besides the state. */
export type MoveSet = Partial<Pick<PairingRow, "new_device_key" | "nonce" | "sealed_key">>;

/** One move of a pairing out of `from` into `to`, by the session its step belongs to. */
export interface Move {
  id: string;
  userId: string;
  /** Whose step it is: the creator's session or the approver's. */
  role: "creator" | "approver";
  grantId: string;
  from: PairingStatus;
  to: PairingStatus;
  set?: MoveSet;
  now: string;
}

/** Makes `move` in one conditional UPDATE; the row as it left the statement, or undefined when nothing moved. */
export function movePairing(db: Db, move: Move): Promise<PairingRow | undefined> {
  return runQuery("move pairing", () =>
    db
      .updateTable("pairings")
      .set({ ...move.set, status: move.to, updated_at: move.now })
      .where("id", "=", move.id)
      .where("user_id", "=", move.userId)
      .where(move.role === "creator" ? "creator_grant" : "approver_grant", "=", move.grantId)
      .where("status", "=", move.from)
      .where("expires_at", ">", move.now)
      .returningAll()
      .executeTakeFirst(),
  );
}

/** Forgets a consumed pairing's sealed key (consume runs it in the transaction of the move). */
export function clearSealedKey(db: Db, id: string): Promise<void> {
  return runQuery("clear sealed key", async () => {
    await db.updateTable("pairings").set({ sealed_key: null }).where("id", "=", id).execute();
  });
}

/** Revokes one unfinished, unexpired pairing from either of its sessions; the revoked row, or undefined. */
export function revokePairing(
  db: Db,
  revoke: { id: string; userId: string; grantId: string; now: string },
): Promise<PairingRow | undefined> {
  return runQuery("revoke pairing", () =>
    db
      .updateTable("pairings")
      .set({ status: "revoked", sealed_key: null, updated_at: revoke.now })
      .where("id", "=", revoke.id)
      .where("user_id", "=", revoke.userId)
      .where((eb) =>
        eb.or([eb("creator_grant", "=", revoke.grantId), eb("approver_grant", "=", revoke.grantId)]),
      )
      .where("status", "in", UNFINISHED)
      .where("expires_at", ">", revoke.now)
      .returningAll()
      .executeTakeFirst(),
  );
}

/** Revokes every unfinished, unexpired pairing of the user; how many. */
export function revokeAllPairings(db: Db, userId: string, now: string): Promise<number> {
  return runQuery("revoke all pairings", async () => {
    const rows = await db
      .updateTable("pairings")
      .set({ status: "revoked", sealed_key: null, updated_at: now })
      .where("user_id", "=", userId)
      .where("status", "in", UNFINISHED)
      .where("expires_at", ">", now)
      .returning("id")
      .execute();
    return rows.length;
  });
}

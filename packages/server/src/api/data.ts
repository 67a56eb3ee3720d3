/**
 * Data access of the API layer: the spent step-up proofs (step_up_uses). SQL only; failures come out as
 * DatabaseError (db/query.ts).
 */
import type { Kysely } from "kysely";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";

/** One spent proof. Times are ISO-8601. */
export interface StepUpUse {
  jti: string;
  userId: string;
  scope: string;
  usedAt: string;
  expiresAt: string;
}

/**
 * Records `use` in `trx`, the transaction of the route's write; false when its jti is already recorded (the
 * proof was spent: the caller must write nothing). An insert that skips a conflict rather than failing on it, so
 * a PostgreSQL transaction stays usable either way. There, a concurrent transaction recording the same jti makes
 * this one wait for it, then find its row (false) or, had it rolled back, insert.
 */
export function recordStepUpUse(trx: Kysely<Database>, use: StepUpUse): Promise<boolean> {
  return runQuery("record step-up proof", async () => {
    const rows = await trx
      .insertInto("step_up_uses")
      .values({
        jti: use.jti,
        user_id: use.userId,
        scope: use.scope,
        used_at: use.usedAt,
        expires_at: use.expiresAt,
      })
      .onConflict((oc) => oc.column("jti").doNothing())
      .returning("jti")
      .execute();
    return rows.length === 1;
  });
}

/**
 * Removes the rows of proofs expired at or before `until`: verification refuses those proofs anyway. Called
 * outside any route's transaction (when a proof is minted), so it never holds up a route's write.
 */
export function purgeStepUpUses(db: Kysely<Database>, until: string): Promise<void> {
  return runQuery("purge spent step-up proofs", async () => {
    await db.deleteFrom("step_up_uses").where("expires_at", "<=", until).execute();
  });
}

/**
 * Data access of the API layer: the spent step-up proofs (step_up_uses) and the accounts' counted actions
 * (account_action_counts). SQL only; failures come out as DatabaseError (db/query.ts).
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

/**
 * Counts one more `action` of `userId` at `now` (ISO-8601) in `db` (a transaction rolls the count back with it):
 * a window that opened at or before `windowOpenedBefore` is over, and the count starts again at 1 with a window
 * opening now. One upsert, so concurrent counts of the same account each see the others (on PostgreSQL it locks
 * the account's row until the transaction ends). Answers the count with this one and when its window opened.
 */
export function countAccountAction(
  db: Kysely<Database>,
  userId: string,
  action: string,
  now: string,
  windowOpenedBefore: string,
): Promise<{ count: number; windowStart: string }> {
  return runQuery("count account action", async () => {
    const row = await db
      .insertInto("account_action_counts")
      .values({ user_id: userId, action, window_start: now, count: 1 })
      .onConflict((oc) =>
        oc.columns(["user_id", "action"]).doUpdateSet((eb) => {
          const over = eb("account_action_counts.window_start", "<=", windowOpenedBefore);
          return {
            count: eb
              .case()
              .when(over)
              .then(eb.lit(1))
              .else(eb(eb.ref("account_action_counts.count"), "+", eb.lit(1)))
              .end(),
            window_start: eb
              .case()
              .when(over)
              .then(now)
              .else(eb.ref("account_action_counts.window_start"))
              .end(),
          };
        }),
      )
      .returning(["count", "window_start"])
      .executeTakeFirstOrThrow();
    return { count: Number(row.count), windowStart: row.window_start };
  });
}

/** Takes back one count of `action` of `userId` (one that turned out not to count). */
export function uncountAccountAction(db: Kysely<Database>, userId: string, action: string): Promise<void> {
  return runQuery("uncount account action", async () => {
    await db
      .updateTable("account_action_counts")
      .set((eb) => ({ count: eb(eb.ref("count"), "-", eb.lit(1)) }))
      .where("user_id", "=", userId)
      .where("action", "=", action)
      .where("count", ">", 0)
      .execute();
  });
}

/**
 * Limits on how often one signed-in account may do an action (wrong pairing codes, organisation member adds),
 * counted in the database (account_action_counts) so they hold across every server process. A fixed window per
 * account and action: it opens at the first counted action and lasts `windowMs`; within it at most `limit`
 * actions are allowed, and the next is refused until it closes. These are not the sign-in limits
 * (identity/rate-limit.ts): those count failed credentials per account and address, and counting a signed-in
 * session's actions there would delay the account owner's own sign-ins.
 */
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";
import { countAccountAction, uncountAccountAction } from "./data.js";

/** One limited action. */
export interface AccountLimit {
  /** Its name in account_action_counts (a slice's own, e.g. `pairing.join`). */
  action: string;
  /** Actions allowed per window. */
  limit: number;
  windowMs: number;
}

/** An action counted and allowed, or refused with how long until its window closes. */
export type AccountLimitOutcome = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * Counts one more `rule.action` of `userId` at `now` in `db` (in a transaction, the count rolls back with it) and
 * says whether it is within the limit. A refused action is counted too, which changes nothing: the window does
 * not move.
 */
export async function countAction(
  db: Kysely<Database>,
  userId: string,
  rule: AccountLimit,
  now: Date,
): Promise<AccountLimitOutcome> {
  const windowOpenedBefore = new Date(now.getTime() - rule.windowMs).toISOString();
  const counted = await countAccountAction(db, userId, rule.action, now.toISOString(), windowOpenedBefore);
  if (counted.count <= rule.limit) return { allowed: true };
  const closes = Date.parse(counted.windowStart) + rule.windowMs - now.getTime();
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(closes / 1000)) };
}

/** Takes back one count of `rule.action` (an action that turned out not to count, e.g. a right pairing code). */
export function uncountAction(db: Kysely<Database>, userId: string, rule: AccountLimit): Promise<void> {
  return uncountAccountAction(db, userId, rule.action);
}

/**
 * Data access of the CI slice's replay table (ci_token_uses): a verified CI token is spent once, by its issuer and
 * jti. SQL only; failures come out as DatabaseError (db/query.ts).
 */
import type { Kysely } from "kysely";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import { CI_TOKEN_LEEWAY_SECONDS } from "./verify.js";

/** A verified token to spend (verify.ts VerifiedCiToken). */
export interface CiTokenUse {
  issuer: string;
  jti: string;
  /** The token's exp. */
  expiresAt: Date;
}

/**
 * Records `use` in `trx`, the transaction of the exchange; true the first time, false when this issuer's jti was
 * spent before (a replay: the exchange must grant nothing). An insert that skips a conflict rather than failing on
 * it, so a PostgreSQL transaction stays usable either way; there, a concurrent transaction spending the same token
 * makes this one wait for it, then find its row (false) or, had it rolled back, insert (true). SQLite runs one
 * writing transaction at a time.
 */
export function spendCiToken(trx: Kysely<Database>, use: CiTokenUse): Promise<boolean> {
  return runQuery("spend CI token", async () => {
    const rows = await trx
      .insertInto("ci_token_uses")
      .values({ issuer: use.issuer, jti: use.jti, expires_at: use.expiresAt.toISOString() })
      .onConflict((oc) => oc.columns(["issuer", "jti"]).doNothing())
      .returning("jti")
      .execute();
    return rows.length === 1;
  });
}

/**
 * Deletes the rows of tokens that can no longer verify (expired more than the leeway before `now`); returns how many
 * went. Meant to be called now and then outside the exchange's transaction (after it commits), so it never holds
 * up an exchange.
 */
export function sweepCiTokenUses(db: Kysely<Database>, now: Date): Promise<number> {
  return runQuery("sweep spent CI tokens", async () => {
    const until = new Date(now.getTime() - CI_TOKEN_LEEWAY_SECONDS * 1000).toISOString();
    const result = await db.deleteFrom("ci_token_uses").where("expires_at", "<", until).executeTakeFirst();
    return Number(result.numDeletedRows);
  });
}

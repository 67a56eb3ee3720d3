/**
 * "Sign out everywhere": one account's every sign-in ends at once — each OAuth grant with every access and refresh
 * token under it (the CLI's on every machine, the dashboard's in every browser), each browser session of the
 * identity provider (so a reload cannot sign in again silently), and each unfinished pairing — in one transaction
 * with its audit row. Afterwards every client of the account must sign in again.
 */
import type { Kysely } from "kysely";
import { insertActorAudit, type AuditActor } from "../audit/data.js";
import type { Database } from "../db/schema.js";
import * as data from "./data.js";

/** What the service needs. */
export interface SessionServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  /**
   * Drops every unfinished pairing of the account in `trx` (the pairing slice's data access, wired by app.ts so
   * that this slice imports none of it); how many.
   */
  revokePairings: (trx: Kysely<Database>, userId: string, now: string) => Promise<number>;
}

/** The caller: the account, and the sign-in and client it asked from (for the audit row). */
export interface SessionActor extends AuditActor {
  grantId: string;
  clientId: string;
}

/** What a revocation ended. */
export interface RevokedAll {
  grants: number;
  sessions: number;
  pairings: number;
}

/** The session service. */
export interface SessionService {
  revokeAll(actor: SessionActor): Promise<RevokedAll>;
}

/** Creates the session service. */
export function createSessionService(deps: SessionServiceDeps): SessionService {
  return {
    async revokeAll(actor) {
      const at = deps.now().toISOString();
      return deps.db.transaction().execute(async (trx) => {
        const grants = await data.deleteGrants(trx, await data.accountModelIds(trx, "Grant", actor.userId));
        const sessions = await data.deleteModels(
          trx,
          "Session",
          await data.accountModelIds(trx, "Session", actor.userId),
        );
        // A sign-in page left open past its login step could still finish into a new grant.
        await data.deleteModels(
          trx,
          "Interaction",
          await data.accountModelIds(trx, "Interaction", actor.userId),
        );
        const pairings = await deps.revokePairings(trx, actor.userId, at);
        await insertActorAudit(trx, {
          id: deps.randomId(),
          actor,
          action: "account.sessions.revoke_all",
          createdAt: at,
          metadata: { grants, sessions, pairings, session: actor.grantId, clientId: actor.clientId },
        });
        return { grants, sessions, pairings };
      });
    },
  };
}

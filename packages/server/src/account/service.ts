/**
 * The account service: what a signed-in account reads about itself that belongs to no vault and no organisation.
 * So far its audit log — sign-ins (refused ones too), step-ups, pairings, sharing keys — a page at a time.
 */
import type { AuditPageResponse } from "@latchkey/core";
import type { Kysely } from "kysely";
import { readAuditPage, type AuditPageRequest } from "../audit/page.js";
import type { Database } from "../db/schema.js";

/** What the service needs. */
export interface AccountServiceDeps {
  db: Kysely<Database>;
}

/** Builds the service. */
export function createAccountService(deps: AccountServiceDeps) {
  /** A page of `userId`'s own account events: only ever the caller's own, so no permission check is needed. */
  function auditPage(userId: string, request: AuditPageRequest): Promise<AuditPageResponse> {
    return readAuditPage(deps.db, { kind: "account", userId }, request);
  }
  return { auditPage };
}

/** The account service's interface. */
export type AccountService = ReturnType<typeof createAccountService>;

/** What several slices' routes read from a path or a query the same way: vault ids, log limits, the push body. */
import {
  AUDIT_PAGE_SIZE,
  auditQuerySchema,
  canonicalVaultId,
  isOrgSlug,
  isUuid,
  MAX_LOG_LIMIT,
  orgAuditQuerySchema,
  parseIsoDateTime,
  type OrgAuditQuery,
} from "@latchkey/core";
import { decodeAuditCursor, type AuditPageRequest } from "../audit/page.js";
import { invalid, parseBody } from "./plugin.js";

/** Largest push body accepted (fastify answers 413 beyond it, before parsing). */
export const PUSH_BODY_LIMIT = 8 * 1024 * 1024;

/** A vault id is a UUID, taken in its one spelling (lower case), so one UUID names one vault. */
export function parseVaultId(text: string): string {
  if (!isUuid(text)) throw invalid("The vault id must be a UUID.");
  return canonicalVaultId(text);
}

/** An organisation's slug as a path names it: refused unless it is one (core isOrgSlug). */
export function parseOrgSlug(text: string): string {
  if (!isOrgSlug(text)) {
    throw invalid("The organisation slug must be 1 to 40 lower-case letters, digits and inner hyphens.");
  }
  return text;
}

/** The `limit` of a log route: 1 to MAX_LOG_LIMIT, that when absent. */
export function parseLimit(value: unknown): number {
  if (value === undefined) return MAX_LOG_LIMIT;
  if (typeof value !== "string" || !/^\d{1,3}$/.test(value)) {
    throw invalid(`"limit" must be an integer from 1 to ${MAX_LOG_LIMIT}.`);
  }
  const limit = Number(value);
  if (limit < 1 || limit > MAX_LOG_LIMIT)
    throw invalid(`"limit" must be an integer from 1 to ${MAX_LOG_LIMIT}.`);
  return limit;
}

/** A time of the audit query as the audit rows spell theirs (toISOString), so comparing the text compares times. */
function auditTime(value: string | undefined): string | undefined {
  return value === undefined ? undefined : new Date(parseIsoDateTime(value)!).toISOString();
}

/**
 * The query of a paged audit route (core's auditQuerySchema; `withVault`: the organisation's, which also takes
 * `vault`), or a 400 naming the first thing wrong with it.
 */
export function parseAuditQuery(query: unknown, withVault = false): AuditPageRequest {
  const parsed: OrgAuditQuery = withVault
    ? parseBody(orgAuditQuerySchema, query)
    : parseBody(auditQuerySchema, query);
  const after = parsed.cursor === undefined ? null : decodeAuditCursor(parsed.cursor);
  if (parsed.cursor !== undefined && after === null) {
    throw invalid(`"cursor" must be the nextCursor of an earlier page, given once.`);
  }
  return {
    filter: {
      action: parsed.action,
      userId: parsed.user?.toLowerCase(),
      vaultId: parsed.vault === undefined ? undefined : canonicalVaultId(parsed.vault),
      environment: parsed.environment,
      from: auditTime(parsed.from),
      to: auditTime(parsed.to),
    },
    after,
    limit: parsed.limit === undefined ? AUDIT_PAGE_SIZE : Number(parsed.limit),
  };
}

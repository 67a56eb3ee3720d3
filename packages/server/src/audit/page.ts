/**
 * A page of an audit log as the paged routes answer it (core's schemas/dashboard-api.ts), for every slice that
 * has one (a personal vault's, an organisation's, an account's): the rows of pageAudit, their metadata read as
 * the log routes read it, and the cursor of the next page. The cursor is the last row's place in the order,
 * opaque to clients; one that does not decode to such a place is refused, never guessed at.
 */
import {
  AUDIT_PAGE_SIZE,
  parseIsoDateTime,
  type AuditPageEntry,
  type AuditPageResponse,
} from "@latchkey/core";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";
import { pageAudit, type AuditFilter, type AuditPosition, type AuditScope } from "./data.js";
import { parseMetadata } from "./metadata.js";

/** What a paged route asks for: filters, where to continue from, how many rows. */
export interface AuditPageRequest {
  filter: AuditFilter;
  after: AuditPosition | null;
  limit: number;
}

/** Longest row id a cursor may name (the server's ids are 36 characters). */
const MAX_CURSOR_ID = 64;

/** The cursor that continues after `position`. */
export function encodeAuditCursor(position: AuditPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), "utf8").toString("base64url");
}

/** The position `cursor` (made by encodeAuditCursor) names, or null when it names none. */
export function decodeAuditCursor(cursor: string): AuditPosition | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (!Array.isArray(value) || value.length !== 2) return null;
  const [createdAt, id] = value as unknown[];
  if (typeof createdAt !== "string" || parseIsoDateTime(createdAt) === null) return null;
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_CURSOR_ID) return null;
  return { createdAt, id };
}

/** One page of the log `scope` for `request`, as the routes answer it. */
export async function readAuditPage(
  db: Kysely<Database>,
  scope: AuditScope,
  request: AuditPageRequest,
): Promise<AuditPageResponse> {
  const limit = Math.min(Math.max(request.limit, 1), AUDIT_PAGE_SIZE);
  const { rows, next } = await pageAudit(db, scope, request.filter, request.after, limit);
  const entries = rows.map((row): AuditPageEntry => ({
    id: row.id,
    action: row.action,
    createdAt: row.createdAt,
    version: row.version,
    vaultId: row.vaultId,
    actor: row.userId === null ? null : { userId: row.userId, email: row.email },
    environment: row.environment,
    count: row.count,
    metadata: parseMetadata(row.metadata),
  }));
  return { entries, nextCursor: next === null ? null : encodeAuditCursor(next) };
}

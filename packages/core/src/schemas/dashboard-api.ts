/**
 * The read routes the dashboard (packages/web) uses besides the sync and organisation routes: the caller's personal
 * vaults, and the audit log a page at a time with filters (a personal vault's, an organisation's, the account's).
 * The bodies follow sync-api.ts's rules: strict objects, messages that name the field and its rule and never quote a
 * value sent. A query string is checked like a body: every parameter is a string, an unknown one is refused.
 */
import * as z from "zod/mini";
import { isUuid } from "../uuid.js";
import { orgSlugSchema } from "./org-api.js";
import { CONFIG_NAME, parseIsoDateTime } from "./rules.js";
import { auditMetadataSchema, body, MAX_LOG_LIMIT, nested, text } from "./sync-api.js";

/** `GET /api/v1/vaults`: the caller's personal vaults. */
export const VAULTS_PATH = "/api/v1/vaults";
/** `GET /api/v1/account/audit`: the caller's account events (sign-ins, step-ups, pairings, sharing keys). */
export const ACCOUNT_AUDIT_PATH = "/api/v1/account/audit";
/** Entries of one audit page at most (and when `limit` is absent). */
export const AUDIT_PAGE_SIZE = MAX_LOG_LIMIT;
/** Longest `cursor` the audit routes take (the server makes them far shorter). */
export const MAX_AUDIT_CURSOR_LENGTH = 256;

const uuid = (name: string) => z.string(`"${name}" must be a UUID.`).check(z.refine(isUuid));
const versionNumber = (name: string, min: number) =>
  z.int(`"${name}" must be an integer of at least ${min}.`).check(z.gte(min), z.lt(Number.MAX_SAFE_INTEGER));

/** One personal vault of `GET /api/v1/vaults`, without its blob or key. */
export const vaultSummarySchema = nested('Each of "vaults"', {
  vaultId: uuid("vaultId"),
  name: text("name"),
  version: versionNumber("version", 1),
  /** When its latest version was pushed (or its key last rewrapped). */
  updatedAt: text("updatedAt"),
  /** The slugs of the caller's organisations that hold a copy of this vault, by slug; empty when none does. */
  orgs: z.array(orgSlugSchema, `"orgs" must be an array.`),
});
/** One personal vault. */
export type VaultSummary = z.infer<typeof vaultSummarySchema>;

/** 200 answer of `GET /api/v1/vaults`: the caller's personal vaults, by name. */
export const vaultListResponseSchema = body({
  vaults: z.array(vaultSummarySchema, `"vaults" must be an array.`),
});
/** The caller's personal vaults. */
export type VaultListResponse = z.infer<typeof vaultListResponseSchema>;

/** A query parameter: one string (a repeated parameter arrives as an array, refused with this message). */
const parameter = (name: string, rule: string) => z.string(`"${name}" must be ${rule}, given once.`);

const isoDateTime = (name: string) =>
  parameter(name, "an ISO-8601 date-time with a zone, such as 2030-01-31T00:00:00Z").check(
    z.refine((value) => parseIsoDateTime(value) !== null),
  );

/**
 * The filters and position every paged audit route takes (`GET /api/v1/vaults/:vaultId/audit`,
 * `GET /api/v1/account/audit`; the organisation's adds `vault`): all optional, combined with "and".
 * `from` is inclusive and `to` exclusive; `cursor` is the `nextCursor` of the page before, with the same filters.
 */
const auditQueryShape = {
  /** One action exactly, e.g. `vault.push`. */
  action: z.optional(
    parameter("action", "1 to 64 lower-case letters, digits, dots and underscores").check(
      z.regex(/^[a-z0-9_.]{1,64}$/),
    ),
  ),
  /** The acting account's user id (an organisation's log: the member's). */
  user: z.optional(parameter("user", "a UUID").check(z.refine(isUuid))),
  /**
   * An environment name. Only rows that record one match: a CI pull records the environment it released; a push
   * or a pull from the CLI carries the whole encrypted vault, so the server cannot tell which environment it changed.
   */
  environment: z.optional(
    parameter("environment", 'an environment name (letters, digits, ".", "_", "-")').check(
      z.regex(CONFIG_NAME),
    ),
  ),
  from: z.optional(isoDateTime("from")),
  to: z.optional(isoDateTime("to")),
  cursor: z.optional(
    parameter("cursor", "the nextCursor of an earlier page").check(
      z.regex(new RegExp(`^[A-Za-z0-9_-]{1,${MAX_AUDIT_CURSOR_LENGTH}}$`)),
    ),
  ),
  limit: z.optional(
    parameter("limit", `an integer from 1 to ${AUDIT_PAGE_SIZE}`).check(
      z.regex(/^\d{1,3}$/, { abort: true }),
      z.refine((value) => Number(value) >= 1 && Number(value) <= AUDIT_PAGE_SIZE),
    ),
  ),
};

/** The time range is empty when `from` is not before `to`: a mistake, refused rather than answered with nothing. */
const ordered = z.refine<{ from?: string | undefined; to?: string | undefined }>(
  ({ from, to }) => from === undefined || to === undefined || parseIsoDateTime(from)! < parseIsoDateTime(to)!,
  `"from" must be before "to".`,
);

/** The query of `GET /api/v1/vaults/:vaultId/audit` and `GET /api/v1/account/audit`. */
export const auditQuerySchema = body(auditQueryShape).check(ordered);
/** The query of a personal audit route. */
export type AuditQuery = z.infer<typeof auditQuerySchema>;

/** The query of `GET /api/v1/orgs/:slug/audit`: also `vault`, one of the organisation's vaults (shared or not now). */
export const orgAuditQuerySchema = body({
  ...auditQueryShape,
  vault: z.optional(parameter("vault", "a UUID").check(z.refine(isUuid))),
}).check(ordered);
/** The query of the organisation's audit route. */
export type OrgAuditQuery = z.infer<typeof orgAuditQuerySchema>;

/** One entry of an audit page. Never a value: metadata holds sizes, client ids, addresses, key counts at most. */
export const auditPageEntrySchema = nested('Each of "entries"', {
  /** The row's id: unique, stable across pages. */
  id: text("id"),
  action: text("action"),
  createdAt: text("createdAt"),
  /** The vault version the event concerns, if any. */
  version: z.nullable(versionNumber("version", 0)),
  /** The vault the event concerns, if any. */
  vaultId: z.nullable(text("vaultId")),
  /** Who acted; null for an event without an account (a CI job's pull). */
  actor: z.nullable(
    nested('"actor"', {
      userId: text("userId"),
      /** Null when the account no longer exists. */
      email: z.nullable(text("email")),
    }),
  ),
  /** The environment the event concerns, when it records one (a CI pull). */
  environment: z.nullable(text("environment")),
  /** How many times it happened: above 1 for repeated events kept as one row (refused sign-ins). */
  count: versionNumber("count", 1),
  metadata: auditMetadataSchema,
});
/** One entry of an audit page. */
export type AuditPageEntry = z.infer<typeof auditPageEntrySchema>;

/** 200 answer of the paged audit routes: newest first. */
export const auditPageResponseSchema = body({
  entries: z
    .array(auditPageEntrySchema, `"entries" must be an array.`)
    .check(z.maxLength(AUDIT_PAGE_SIZE, `"entries" must hold at most ${AUDIT_PAGE_SIZE} entries.`)),
  /** The `cursor` of the next (older) page; null on the last page. */
  nextCursor: z.nullable(text("nextCursor")),
});
/** A page of an audit log. */
export type AuditPageResponse = z.infer<typeof auditPageResponseSchema>;

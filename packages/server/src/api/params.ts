/** What several slices' routes read from a path or a query the same way: vault ids, log limits, the push body. */
import { canonicalVaultId, isOrgSlug, isUuid, MAX_LOG_LIMIT } from "@latchkey/core";
import { invalid } from "./plugin.js";

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

/**
 * The rules shared by the file formats' schemas (the other modules of this folder, written with zod) and the
 * CLI's readers of the files its hot commands read (`run`, `env get`, `keystore get`, `token`, the credential
 * helpers). Those readers may not load zod: it would be most of their start-up time. This module imports no zod, so
 * a reader that needs a rule imports it from here, and both sides apply the very same one; each such reader is
 * also checked against its schema by a property test (packages/cli/src/fast-readers.test.ts).
 */

/** Profile and service-environment names: letters, digits, `.`, `_` and `-`, at most 64, not starting with a mark. */
export const CONFIG_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The kinds of registry a user's config.toml may declare (`kind`). */
export const REGISTRY_KINDS = ["npm", "github", "gitlab", "custom"] as const;

/** What a registry's `kind` may say. */
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

/** The fields of a registry declaration: all of them in config.toml, all but `kind` in latchkey.json. */
export const REGISTRY_FIELDS = {
  user: ["tokenEnv", "provider", "kind"],
  project: ["tokenEnv", "provider"],
} as const;

/** The kinds of project declaration an approval can be for (approvals.json). */
export const DECLARATION_KINDS = ["provider", "tokenEnv", "vault"] as const;

/** What a project may declare that needs approval; "vault" binds a local vault to a project root. */
export type DeclarationKind = (typeof DECLARATION_KINDS)[number];

/** Longest organisation slug. */
export const MAX_ORG_SLUG_LENGTH = 40;

/** An organisation slug's characters: lower-case letters, digits and inner hyphens. */
export const ORG_SLUG = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/**
 * True when `slug` is an organisation slug: 1 to 40 lower-case letters, digits and inner hyphens (for paths, which
 * no body schema reads, and for latchkey.json's `vaultSync.orgVersions`, which `run` reads without zod).
 */
export function isOrgSlug(slug: string): boolean {
  return slug.length <= MAX_ORG_SLUG_LENGTH && ORG_SLUG.test(slug);
}

/** Lower-case hex of a SHA-256 digest. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A plain table: a TOML table or JSON object. Not an array, null, nor a TOML date (a Date is an object too). */
export function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** A credential provider's argv: a non-empty array of non-empty strings without NUL (it is run without a shell). */
export function isProviderArgv(value: unknown): value is string[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((a) => typeof a === "string" && a !== "" && !a.includes("\u0000"))
  );
}

/** The longest token a credential provider may print. */
export const MAX_PROVIDER_TOKEN_LENGTH = 16 * 1024;

/** True when a provider's token can be handed on as is: not too long, no control character. */
export function isProviderToken(token: string): boolean {
  return (
    token.length <= MAX_PROVIDER_TOKEN_LENGTH && ![...token].some((ch) => ch <= "\u001f" || ch === "\u007f")
  );
}

/** A provider's unix-seconds `expiresAt` at or past this is a millisecond timestamp by mistake (the year 5138). */
export const MAX_UNIX_SECONDS = 1e11;

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;

/**
 * The epoch milliseconds of an ISO-8601 date-time with a zone (`2030-01-01T00:00:00Z`, `…+02:00`), or null when
 * the text is anything else, including impossible dates (February 30) that Date.parse would roll over.
 */
export function parseIsoDateTime(text: string): number | null {
  const m = ISO_8601.exec(text);
  if (m === null) return null;
  const [y = NaN, mo = NaN, d = NaN, h = NaN, mi = NaN, sec = NaN] = m.slice(1, 7).map(Number);
  const zone = m[7] === "Z" ? null : { h: Number(m[8]), m: Number(m[9]) };
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59) return null;
  if (zone !== null && (zone.h > 23 || zone.m > 59)) return null;
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

/**
 * Why `url` may not receive tokens or client secrets, or undefined when it may: it must be https, or http on a
 * loopback host (127.0.0.1, ::1, localhost), since nothing else keeps them off the network in clear. `where`
 * names the setting; the text has no final period.
 */
export function insecureEndpoint(url: string, where: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${where} is not a URL`;
  }
  if (parsed.protocol === "https:") return undefined;
  if (parsed.protocol === "http:" && LOOPBACK_HOSTS.has(parsed.hostname)) return undefined;
  return `${where} (${parsed.origin}) must use https: only loopback hosts (127.0.0.1, ::1, localhost) may use http`;
}

/**
 * Every body of the sync API (sync-wire.ts), requests and answers, declared once as a `zod/mini` schema; the
 * TypeScript types are inferred from them. The server validates each request body with its schema before any
 * service call, the CLI parses each answer with its schema once the signature has been verified; both keep the
 * first problem as `checkSchema` (parse.ts) picks it.
 *
 * Every object is strict: a field the schema does not name is refused, never carried along or dropped. For a
 * request that is the server's rule (nothing unchecked reaches the database). For an answer it holds because the
 * CLI and the server are released together: a field this CLI does not know means an answer it was not built
 * for (a server of another release, or another route's answer), and taking the known part of it could lose what
 * the unknown part meant, e.g. a push after a pull would drop it.
 *
 * The messages are the server's 400 answers, whole sentences naming the field and its rule, never the value
 * sent (nor, for a field a body may not have, its name: the fields it may have are listed instead). Kept apart
 * from sync-wire.ts, whose constants the CLI's hot commands use: those must not pull zod into their bundle.
 */
import * as z from "zod/mini";
import { isCanonicalBase64 } from "../bytes.js";
import { PAIRING_LABEL_UNPRINTABLE } from "../pairing.js";
import { SHARING_KEY_FINGERPRINT_LENGTH } from "../sharing-key.js";
import { parseWrappedKey } from "../x25519.js";
import { envSchemaShapeSchema } from "./env-schema.js";
import { isTable } from "./rules.js";

/** Longest `encryptedBlob` in base64 characters (about 5.25 MiB of ciphertext). */
export const MAX_BLOB_BASE64 = 7 * 1024 * 1024;
/** Longest `wrappedKey` in base64 characters. */
export const MAX_WRAPPED_KEY_BASE64 = 4096;
/** Largest `schema` (latchkey.json's envSchema), serialized as JSON. */
export const MAX_SCHEMA_JSON = 64 * 1024;
/** Longest display `name`. */
export const MAX_NAME_LENGTH = 256;
/** Default and maximum `limit` of the log route, so the most entries one answer holds. */
export const MAX_LOG_LIMIT = 50;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A strict object whose own issues say what the body is (not an object, or fields it may not have). */
export function body<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const fields = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `The body may only have the fields ${fields}.`
        : "The body must be a JSON object.",
  });
}

/** An object inside a body, described as `what`, with only the fields of `shape`. */
export function nested<Shape extends z.core.$ZodLooseShape>(what: string, shape: Shape) {
  return z.strictObject(shape, `${what} must be an object with the fields ${Object.keys(shape).join(", ")}.`);
}

/** A string field named `name` in messages. */
export function text(name: string) {
  return z.string(`"${name}" must be a string.`);
}

/** Canonical standard base64 (one spelling per byte string) of 4 to `max` characters. */
function base64(name: string, max: number) {
  // A schema's message is also its checks'. The length checks abort, so the base64 check never runs over a
  // string already refused for its size.
  return z
    .string(`"${name}" must be standard base64 of at most ${max} characters.`)
    .check(z.minLength(4, { abort: true }), z.maxLength(max, { abort: true }), z.refine(isCanonicalBase64));
}

/** An integer from `min`, below Number.MAX_SAFE_INTEGER so that the next version is a safe integer too. */
function version(name: string, min: number) {
  return z
    .int(`"${name}" must be an integer of at least ${min}.`)
    .check(z.gte(min), z.lt(Number.MAX_SAFE_INTEGER));
}

/** The serialized length of `value` is at most `max`; a value JSON cannot serialize is not. */
function jsonAtMost(value: unknown, max: number): boolean {
  try {
    return JSON.stringify(value).length <= max;
  } catch {
    return false;
  }
}

const displayName = z
  .string(`"name" must be 1 to ${MAX_NAME_LENGTH} characters without control characters.`)
  .check(
    z.minLength(1),
    z.maxLength(MAX_NAME_LENGTH),
    z.refine((name) => !CONTROL.test(name)),
  );

/**
 * The name a push gives its copy. An organisation copy's name is shown to every member, so it also may not hold
 * the bidirectional controls and byte order mark that could make it read as another name (the pairing label's
 * rule). Answers keep the looser {@link displayName}, so a name stored before this rule still pulls.
 */
const pushedName = z
  .string(
    `"name" must be 1 to ${MAX_NAME_LENGTH} characters without control or bidirectional control characters.`,
  )
  .check(
    z.minLength(1),
    z.maxLength(MAX_NAME_LENGTH),
    z.refine((name) => name.search(PAIRING_LABEL_UNPRINTABLE) === -1),
  );

/** A `schema` as JSON: an object of at most {@link MAX_SCHEMA_JSON} characters, passed on as it is. */
const schemaJson = z
  .custom<Record<string, unknown>>(isTable, `"schema" must be a JSON object when present.`)
  .check(
    z.refine(
      (schema) => jsonAtMost(schema, MAX_SCHEMA_JSON),
      `"schema" must be at most ${MAX_SCHEMA_JSON} characters of JSON.`,
    ),
  );

/**
 * latchkey.json's envSchema as a push carries it: its structure ({@link envSchemaShapeSchema}: variable names, rule
 * properties and their types, format names) within {@link MAX_SCHEMA_JSON}. Its patterns are not compiled nor
 * its defaults tested here: the server would run a project's regular expression, and a hostile one with a default
 * crafted to backtrack could hold its event loop for minutes. The CLI checks the whole schema (parseEnvSchema)
 * before it pushes one.
 */
export const pushedEnvSchemaSchema = z.pipe(schemaJson, envSchemaShapeSchema);

/**
 * The envSchema a pull answers with, as the server stored it: any JSON object within {@link MAX_SCHEMA_JSON}, not
 * {@link pushedEnvSchemaSchema}. Servers before that one stored any JSON object a push carried, and a schema that
 * a later release reads more strictly must still pull, or the vault it travels with could not be pulled at all.
 * Nothing is lost by it: a CLI checks values against its project's latchkey.json, never against this copy, which
 * it keeps only to tell whether a later push changes the schema.
 */
export const storedEnvSchemaSchema = z.pipe(schemaJson, z.record(z.string(), z.unknown()));

/** `GET /api/v1/me`: who the bearer token belongs to. */
export const meResponseSchema = body({
  userId: text("userId"),
  email: text("email"),
  /** The OAuth client the token was issued to. */
  clientId: text("clientId"),
  /** When the access token expires (ISO-8601). */
  expiresAt: text("expiresAt"),
});
/** `GET /api/v1/me`: who the bearer token belongs to. */
export type MeResponse = z.infer<typeof meResponseSchema>;

/**
 * A vault key escrowed for CI (docs/ci.md): the 32-byte vault key wrapped for the server's X25519 escrow key
 * (wrapKeyForRecipient), and the fingerprint of that escrow key. Defined here, beside the pushes that may carry
 * one, so the modules that build on this one need not import each other.
 */
export const ciEscrowSchema = nested('"escrow"', {
  escrowedKey: z
    .string(
      `"escrowedKey" must be a wrapped key: three standard base64 parts of 32, 12 and 48 bytes separated by colons.`,
    )
    .check(
      z.maxLength(128, { abort: true }),
      z.refine((wire) => {
        try {
          parseWrappedKey(wire);
          return true;
        } catch {
          return false;
        }
      }),
    ),
  escrowKeyFingerprint: z
    .string(`"escrowKeyFingerprint" must be ${SHARING_KEY_FINGERPRINT_LENGTH} lowercase hex digits.`)
    .check(z.regex(new RegExp(`^[0-9a-f]{${SHARING_KEY_FINGERPRINT_LENGTH}}$`))),
});
/** A vault key escrowed for CI. */
export type CiEscrow = z.infer<typeof ciEscrowSchema>;

/**
 * The optional `escrow` of a push or share: on a copy with CI enabled, the server opens each new version with the
 * escrowed key; a version sealed with another vault key (a rotation) must carry the new key's escrow, which then
 * replaces the old one in the same transaction, else 409 LK_CI_ESCROW_STALE and nothing is written. On a copy
 * without CI it is ignored.
 */
const pushEscrow = z.optional(ciEscrowSchema);

/** `PUT /api/v1/vaults/:vaultId`: a new version of the caller's copy of the vault. */
export const pushRequestSchema = body({
  /** Standard base64 of the vault document sealed with the vault key; associated data syncBlobContext. */
  encryptedBlob: base64("encryptedBlob", MAX_BLOB_BASE64),
  /** The vault key wrapped by the pushing machine's wrapping key (opaque to the server). */
  wrappedKey: base64("wrappedKey", MAX_WRAPPED_KEY_BASE64),
  /** `envSchema` of latchkey.json; absent keeps the server's last one. */
  schema: z.optional(pushedEnvSchemaSchema),
  /** A display name: package.json `name`, then latchkey.json `name`, then the directory name. */
  name: pushedName,
  /** The version this push was based on: 0 for the first push, else the version last pulled or pushed. */
  baseVersion: version("baseVersion", 0),
  escrow: pushEscrow,
});
/** `PUT /api/v1/vaults/:vaultId`: a new version of the caller's copy of the vault. */
export type PushRequest = z.infer<typeof pushRequestSchema>;

/** 200 answer to a push. */
export const pushResponseSchema = body({
  vaultId: text("vaultId"),
  /** The new version: baseVersion + 1. */
  version: version("version", 1),
  createdAt: text("createdAt"),
});
/** 200 answer to a push. */
export type PushResponse = z.infer<typeof pushResponseSchema>;

/** `GET /api/v1/vaults/:vaultId`: the caller's latest copy. 404 `LK_VAULT_NOT_SYNCED` when there is none. */
export const pullResponseSchema = body({
  vaultId: text("vaultId"),
  version: version("version", 1),
  encryptedBlob: base64("encryptedBlob", MAX_BLOB_BASE64),
  wrappedKey: base64("wrappedKey", MAX_WRAPPED_KEY_BASE64),
  /** The envSchema last pushed; null when no push has carried one. */
  schema: z.nullable(storedEnvSchemaSchema),
  name: displayName,
  updatedAt: text("updatedAt"),
});
/** `GET /api/v1/vaults/:vaultId`: the caller's latest copy. */
export type PullResponse = z.infer<typeof pullResponseSchema>;

/**
 * `PUT /api/v1/vaults/:vaultId/key`: replaces the wrapped key of the caller's current version without a new
 * version (`latchkey env rotate-key`). `version` must be the current one, else 409 as for a push.
 */
export const rewrapRequestSchema = body({
  wrappedKey: base64("wrappedKey", MAX_WRAPPED_KEY_BASE64),
  version: version("version", 1),
});
/** `PUT /api/v1/vaults/:vaultId/key`: a new wrapped key for the current version. */
export type RewrapRequest = z.infer<typeof rewrapRequestSchema>;

/** 200 answer to a rewrap. */
export const rewrapResponseSchema = body({
  vaultId: text("vaultId"),
  version: version("version", 1),
});
/** 200 answer to a rewrap. */
export type RewrapResponse = z.infer<typeof rewrapResponseSchema>;

/** What an audit entry records besides its fields, as stored: never values (sizes, client id, key names at most). */
export const auditMetadataSchema = z.record(z.string(), z.unknown(), `"metadata" must be a JSON object.`);

/** One audit entry of `GET /api/v1/vaults/:vaultId/log?limit=N` (default and maximum 50, newest first). */
export const auditEntrySchema = nested('Each of "entries"', {
  /** `vault.push`, `vault.rewrap`, or an action of a later release. */
  action: text("action"),
  version: z.nullable(version("version", 0)),
  createdAt: text("createdAt"),
  actor: nested('"actor"', { userId: text("userId"), email: text("email") }),
  metadata: auditMetadataSchema,
});
/** One audit entry of the log route. */
export type AuditEntry = z.infer<typeof auditEntrySchema>;

/** 200 answer of the log route. */
export const auditLogResponseSchema = body({
  vaultId: text("vaultId"),
  entries: z
    .array(auditEntrySchema, `"entries" must be an array.`)
    .check(z.maxLength(MAX_LOG_LIMIT, `"entries" must hold at most ${MAX_LOG_LIMIT} entries.`)),
});
/** 200 answer of the log route. */
export type AuditLogResponse = z.infer<typeof auditLogResponseSchema>;

/**
 * Every error response of the API. `error` is a stable name (`VaultConflictError` for a stale push), `code` the
 * catalogue code the CLI shows.
 */
export const apiErrorBodySchema = body({
  error: text("error"),
  code: text("code"),
  message: text("message"),
  /** On a 409: the server's current version. */
  currentVersion: z.optional(version("currentVersion", 0)),
});
/** Every error response of the API. */
export type ApiErrorBody = z.infer<typeof apiErrorBodySchema>;

/** A schema of this module, as a caller that validates with it names it (the server's routes, callApi). */
export type WireSchema<T> = z.ZodMiniType<T>;

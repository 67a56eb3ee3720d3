/**
 * Platform connections on the server (docs/platforms.md, "Connections"): one row per connection of a vault copy —
 * the personal copy (`/api/v1/vaults/:vaultId/platforms`) or an organisation's
 * (`/api/v1/orgs/:slug/vaults/:vaultId/platforms`) — holding the platform's non-secret configuration and the
 * platform credential sealed with the copy's vault key, which the server cannot open. The bodies follow
 * sync-api.ts's rules: strict objects, messages that name the field and its rule and never quote a value sent.
 */
import * as z from "zod/mini";
import { associatedData } from "../envelope.js";
import { canonicalVaultId } from "../sync-wire.js";
import { isUuid } from "../uuid.js";
import { orgSlugSchema } from "./org-api.js";
import { sealedCredentialSchema } from "./platform-credentials.js";
import { CONFIG_NAME } from "./rules.js";
import { body, nested, text } from "./sync-api.js";
import { PLATFORMS, platformConfigSchema } from "./platforms.js";

/** The path segment of a copy's connections, after the copy's own path. */
export const PLATFORMS_SEGMENT = "platforms";

/** Longest status message, in characters: a code and a sentence, never a value. */
export const MAX_PLATFORM_STATUS_MESSAGE = 500;

/** A connection's name: unique within its copy, as `platforms push NAME` names it. */
export const PLATFORM_CONNECTION_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** A connection name as a body or a path carries it. */
export const platformConnectionNameSchema = z
  .string(
    `"name" must be 1 to 64 lower-case letters, digits, ".", "_" and "-", starting with a letter or digit.`,
  )
  .check(z.regex(PLATFORM_CONNECTION_NAME));

const uuid = (name: string) => z.string(`"${name}" must be a UUID.`).check(z.refine(isUuid));
const count = (name: string) =>
  z.int(`"${name}" must be a whole number of names.`).check(z.gte(0), z.lte(1_000_000));

/**
 * The associated data of a connection's sealed credential: the vault (one spelling) and the connection's id, so a
 * server cannot move a credential to another vault or connection and have it open there.
 */
export function platformCredentialContext(vaultId: string, connectionId: string): Uint8Array {
  return associatedData({
    purpose: "latchkey-platform-credential",
    vault: canonicalVaultId(vaultId),
    connection: connectionId.toLowerCase(),
  });
}

/**
 * The key version of a personal copy, as a connection of it carries it: its vault key is the one its first version
 * was sealed with and never changes (an organisation copy's key version is the version of the share that wrapped
 * its key now, which a rotation raises).
 */
export const PERSONAL_COPY_KEY_VERSION = 1;

/**
 * `POST …/platforms`: a new connection. The CLI chooses `id` (the credential is sealed under it before the server
 * sees it) and seals the credential with the copy's vault key under {@link platformCredentialContext}; `keyVersion`
 * names that key, and the server refuses one that is not the copy's key now (409 LK_VAULT_KEY_STALE), so a machine
 * with a stale copy cannot seal a credential with a key a rotation retired.
 */
export const platformConnectRequestSchema = body({
  id: uuid("id"),
  name: platformConnectionNameSchema,
  /** The vault environment the connection pushes. */
  environment: z
    .string(`"environment" must be an environment name (letters, digits, ".", "_", "-").`)
    .check(z.regex(CONFIG_NAME)),
  config: platformConfigSchema,
  /** Standard base64 of the credential's envelope (AES-256-GCM with the copy's vault key). */
  sealedCredential: sealedCredentialSchema(),
  /** The copy's key version whose key sealed the credential ({@link PERSONAL_COPY_KEY_VERSION} for a personal copy). */
  keyVersion: z.int(`"keyVersion" must be an integer.`).check(z.gte(1)),
});
/** `POST …/platforms`. */
export type PlatformConnectRequest = z.infer<typeof platformConnectRequestSchema>;

/** How a push or pull ended: every name done, some names failed, or nothing done. */
export const PLATFORM_OUTCOMES = ["ok", "partial", "failed"] as const;
/** One of {@link PLATFORM_OUTCOMES}. */
export type PlatformOutcome = (typeof PLATFORM_OUTCOMES)[number];

/**
 * `PUT …/platforms/:name/status`: what a push (or a pull) from a machine did, as counts of names; `message` says
 * why a push failed in the words of the error catalogue, never a value.
 */
export const platformStatusRequestSchema = body({
  operation: z.enum(["push", "pull"], `"operation" must be "push" or "pull".`),
  /** The version of the copy whose values were pushed (or that a pull was imported into). */
  version: z.int(`"version" must be an integer.`).check(z.gte(1)),
  added: count("added"),
  changed: count("changed"),
  removed: count("removed"),
  outcome: z.enum(PLATFORM_OUTCOMES, `"outcome" must be one of ${PLATFORM_OUTCOMES.join(", ")}.`),
  message: z.nullable(
    z
      .string(`"message" must be at most ${MAX_PLATFORM_STATUS_MESSAGE} characters.`)
      .check(z.maxLength(MAX_PLATFORM_STATUS_MESSAGE)),
  ),
});
/** `PUT …/platforms/:name/status`. */
export type PlatformStatusRequest = z.infer<typeof platformStatusRequestSchema>;

/** A connection's last push, as recorded by the machine that made it. */
export const platformLastPushSchema = nested('"lastPush"', {
  pushedAt: text("pushedAt"),
  version: z.int(`"version" must be an integer.`).check(z.gte(1)),
  added: count("added"),
  changed: count("changed"),
  removed: count("removed"),
  outcome: z.enum(PLATFORM_OUTCOMES, `"outcome" must be one of ${PLATFORM_OUTCOMES.join(", ")}.`),
  message: z.nullable(text("message")),
  /** Who pushed; null when that account no longer exists. */
  pushedBy: z.nullable(text("pushedBy")),
});
/** A connection's last push. */
export type PlatformLastPush = z.infer<typeof platformLastPushSchema>;

/** One connection as the server answers it: everything but the credential in the clear. */
export const platformConnectionSchema = nested("A connection", {
  id: uuid("id"),
  name: platformConnectionNameSchema,
  platform: z.enum(PLATFORMS, `"platform" must be one of ${PLATFORMS.join(", ")}.`),
  environment: text("environment"),
  config: platformConfigSchema,
  sealedCredential: text("sealedCredential"),
  createdAt: text("createdAt"),
  /** Who connected it; null when that account no longer exists. */
  createdBy: z.nullable(text("createdBy")),
  lastPush: z.nullable(platformLastPushSchema),
});
/** One connection. */
export type PlatformConnection = z.infer<typeof platformConnectionSchema>;

/** 200 answer of `GET …/platforms`: the copy's connections, by name. */
export const platformListResponseSchema = body({
  vaultId: uuid("vaultId"),
  /** The organisation's slug for an organisation copy; null for a personal one. */
  org: z.nullable(orgSlugSchema),
  connections: z.array(platformConnectionSchema, `"connections" must be an array.`),
});
/** `GET …/platforms`. */
export type PlatformListResponse = z.infer<typeof platformListResponseSchema>;

/** 201 answer of `POST …/platforms` and 200 answer of `PUT …/platforms/:name/status`: the connection. */
export const platformConnectionResponseSchema = body({
  vaultId: uuid("vaultId"),
  org: z.nullable(orgSlugSchema),
  connection: platformConnectionSchema,
});
/** `POST …/platforms`, `PUT …/status`. */
export type PlatformConnectionResponse = z.infer<typeof platformConnectionResponseSchema>;

/** 200 answer of `DELETE …/platforms/:name`: the row and its sealed credential are gone. */
export const platformDisconnectResponseSchema = body({
  disconnected: z.literal(true, `"disconnected" must be true.`),
});
/** `DELETE …/platforms/:name`. */
export type PlatformDisconnectResponse = z.infer<typeof platformDisconnectResponseSchema>;

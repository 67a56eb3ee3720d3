/**
 * What the CLI writes for itself and reads back: files under `$LATCHKEY_HOME` (docs/architecture.md, Formats)
 * and JSON values in the keystore. Anything may have changed them in between (a hand edit, another version, a
 * damaged disk), so they are checked like any other input.
 */
import * as z from "zod/mini";
import { DECLARATION_KINDS, SHA256_HEX, parseIsoDateTime } from "./rules.js";

const sha256Hex = z.string().check(z.regex(SHA256_HEX));

/** A vault's decrypted content, `vaults/<id>.enc` and every synced copy: environment -> key -> value. */
export const vaultDocumentSchema = z.record(z.string(), z.record(z.string(), z.string()));

/** A vault's content: environment -> key -> value. */
export type VaultDocument = z.output<typeof vaultDocumentSchema>;

/** The file store's decrypted body (`store.enc`): account -> secret. */
export const fileStoreBodySchema = z.looseObject({ entries: z.record(z.string(), z.string()) });

/**
 * `keystore.json`, the marker that secrets live in the OS keychain (written on the keychain's first write). Only
 * its `backend` decides; `since` and `promoted` are for people.
 */
export const keystoreStateSchema = z.looseObject({ backend: z.literal("keyring") });

/** One entry of `registries.json`: the URL a registry login was for (its key is the URL's nerf dart). */
export const loginRecordSchema = z.looseObject({ url: z.string() });

/** What `latchkey login` remembers of a registry beside its token: nothing secret. */
export type LoginRecord = z.output<typeof loginRecordSchema>;

/**
 * An approval in `approvals.json` (version 2): a project root, the kind of declaration and the SHA-256 of its kind
 * and content. `declaration` and `approvedAt` are for a person reading the file; matching uses the hash only.
 */
export const approvalSchema = z.looseObject({
  project: z.string(),
  kind: z.enum(DECLARATION_KINDS),
  sha256: sha256Hex,
  declaration: z.optional(z.unknown()),
  approvedAt: z.optional(z.unknown()),
});

/** One approval. */
export type Approval = z.output<typeof approvalSchema>;

/**
 * `approvals.json`. Version 1 (before tokenEnv approvals) approved a provider's argv for whichever registry the
 * project named; its entries are read and honoured as nothing.
 */
export const approvalsFileSchema = z.union([
  z.looseObject({
    version: z.literal(1),
    approvals: z.array(z.looseObject({ project: z.string(), argvSha256: sha256Hex })),
  }),
  z.looseObject({ version: z.literal(2), approvals: z.array(approvalSchema) }),
]);

/** `approvals.json` as read. */
export type ApprovalsFile = z.output<typeof approvalsFileSchema>;

/**
 * One synced vault in `sync/state.json`: per (server, user, vault, organisation) the highest version seen and the
 * last synced. The personal copy's entry has no `org`; each organisation's copy has its own entry, so the
 * anti-rollback record of one never vouches for the other.
 */
export const syncEntrySchema = z.looseObject({
  server: z.string(),
  userId: z.string(),
  vaultId: z.string(),
  /** The organisation's slug, for an organisation's copy; absent for the personal copy. */
  org: z.optional(z.string()),
  /** The highest version any verified response has shown: a lower one offered later is a rollback. */
  highestVersion: z.int(),
  /** The version this machine last pushed or pulled (the merge base's version). */
  syncedVersion: z.int(),
  /**
   * An organisation copy's highest key version (the version of the share that wrapped its vault key) this machine
   * has opened or made: a pull offering an older one is a rollback to a key a removed member may hold. Absent for
   * a personal copy and in an entry recorded before it was kept.
   */
  highestKeyVersion: z.optional(z.int()),
  /**
   * When this machine last pushed or pulled it successfully (ISO-8601), what `--offline` measures a copy's age
   * from. Absent in an entry recorded before it was kept; a value that is no date-time reads as absent rather
   * than making the whole file unreadable, which would drop the anti-rollback record with it.
   */
  syncedAt: z.catch(
    z.optional(z.string().check(z.refine((text) => parseIsoDateTime(text) !== null))),
    undefined,
  ),
});

/** One synced vault as this machine knows it. */
export type SyncEntry = z.output<typeof syncEntrySchema>;

/** `sync/state.json`. */
export const syncStateSchema = z.looseObject({ format: z.literal(1), entries: z.array(syncEntrySchema) });

/** `sync/state.json` as read. */
export type SyncState = z.output<typeof syncStateSchema>;

/** `sync/<vault-id>.base.enc` once opened: the document as of the version last synced, the merge's base. */
export const syncBaseSchema = z.looseObject({
  server: z.string(),
  userId: z.string(),
  version: z.number(),
  document: vaultDocumentSchema,
  /** The vault's display name at that version (absent in a base written before it was kept). */
  name: z.optional(z.string()),
  /** The envSchema the server holds at that version, null for none (absent: not known). */
  schema: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
  /**
   * For an organisation's copy: the organisation's vault key at that version (standard base64), which seals the
   * next push. Kept here, sealed with the local vault key like the secrets themselves, rather than asked of the
   * server before every push.
   */
  orgKey: z.optional(z.string()),
});

/** The merge base. */
export type SyncBase = z.output<typeof syncBaseSchema>;

/**
 * A single sign-on session, or the session at a Latchkey server, as kept in the keystore (`sso:<issuer>`,
 * `session:<server>`).
 */
export const ssoSessionSchema = z.looseObject({
  access_token: z.string(),
  refresh_token: z.optional(z.string()),
  id_token: z.optional(z.string()),
  /** Seconds since the epoch after which the access token is no longer valid. */
  expires_at: z.number(),
  /** The ID token's `sub`. */
  subject: z.string(),
  issuer: z.string(),
  client_id: z.string(),
  scope: z.optional(z.string()),
});

/** A stored session. */
export type SsoSession = z.output<typeof ssoSessionSchema>;

/**
 * A service environment's cached token (`oauth:<profile>:<env>` in the keystore). What is not as expected in the
 * optional members is dropped rather than refused: the entry still holds a usable access token.
 */
export const cachedTokenSchema = z.object({
  access_token: z.string().check(z.minLength(1)),
  refresh_token: z.catch(z.optional(z.string().check(z.minLength(1))), undefined),
  /** Seconds since the epoch. */
  expires_at: z.number(),
  token_type: z.catch(z.string(), "Bearer"),
  scope: z.catch(z.optional(z.string()), undefined),
});

/** A cached service token. */
export type CachedToken = z.output<typeof cachedTokenSchema>;

/**
 * One pinned sharing key in `org-keys.json`: the fingerprint this machine first wrapped a vault key for (or that
 * its user confirmed with `latchkey org trust`), with the email it was shown under and when.
 */
export const orgKeyPinSchema = z.looseObject({
  email: z.string(),
  fingerprint: sha256Hex,
  /** ISO-8601; for people. */
  firstSeen: z.string(),
});

/** A pinned sharing key. */
export type OrgKeyPin = z.output<typeof orgKeyPinSchema>;

/**
 * `org-keys.json`, the sharing keys of organisation members this machine has trusted: server -> organisation
 * slug -> member user id (lower case) -> pin. A share refuses a member whose key differs from the pin.
 */
export const orgKeysFileSchema = z.looseObject({
  version: z.literal(1),
  servers: z.record(z.string(), z.record(z.string(), z.record(z.string(), orgKeyPinSchema))),
});

/** `org-keys.json` as read. */
export type OrgKeysFile = z.output<typeof orgKeysFileSchema>;

/**
 * One copy this machine's user agreed to escrow for CI pulls (`env ci enable`, or `env ci show --accept`): the
 * copy, by server, account, vault and organisation (absent: the personal copy), and the fingerprint of the server's
 * escrow key it agreed to. A push re-escrows a copy's key only for such a record with that fingerprint.
 */
export const ciEscrowConsentSchema = z.looseObject({
  server: z.string(),
  userId: z.string(),
  vaultId: z.string(),
  org: z.optional(z.string()),
  escrowKeyFingerprint: sha256Hex,
  /** ISO-8601; for people. */
  at: z.string(),
});

/** A copy agreed to be escrowed. */
export type CiEscrowConsent = z.output<typeof ciEscrowConsentSchema>;

/** `ci-escrows.json` under LATCHKEY_HOME: the copies whose key this machine may escrow for the server. */
export const ciEscrowsFileSchema = z.looseObject({
  version: z.literal(1),
  copies: z.array(ciEscrowConsentSchema),
});

/** `ci-escrows.json` as read. */
export type CiEscrowsFile = z.output<typeof ciEscrowsFileSchema>;

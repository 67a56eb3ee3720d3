/**
 * The organisations API (docs/teams.md): organisations, their members and roles, and the organisation's copies of
 * vaults (one row per (vault, organisation), beside the personal rows) with the vault key wrapped for each member's
 * X25519 sharing key (x25519.ts). The bodies follow sync-api.ts's rules: strict objects, messages that name the
 * field and its rule and never quote a value sent. A wrapped key is checked with the strict wire parser
 * (parseWrappedKey) here, so the server refuses a malformed one with a 400 before its service runs.
 */
import * as z from "zod/mini";
import { PAIRING_LABEL_UNPRINTABLE } from "../pairing.js";
import { isUuid } from "../uuid.js";
import { parseWrappedKey } from "../x25519.js";
import { isOrgSlug, MAX_ORG_SLUG_LENGTH, ORG_SLUG } from "./rules.js";
import { platformCredentialsResealSchema } from "./platform-credentials.js";
import { sharingKeyFingerprintSchema, sharingPublicKeySchema } from "./sharing-key-api.js";
import {
  auditEntrySchema,
  body,
  MAX_LOG_LIMIT,
  nested,
  pullResponseSchema,
  pushRequestSchema,
  text,
} from "./sync-api.js";

/** Where the organisation routes live, under the API prefix. */
export const ORGS_PATH = "/api/v1/orgs";

/**
 * The roles of a member, strongest first. Each role may do everything the roles after it may: a member pulls and
 * pushes the organisation's vaults and lists its members; a maintainer also shares and unshares vaults, rotates
 * their keys and reads the organisation's audit log; an admin also adds and removes members and sets roles up to
 * admin; an owner may do everything, including making owners and deleting the organisation.
 */
export const ORG_ROLES = ["owner", "admin", "maintainer", "member"] as const;

/** One of {@link ORG_ROLES}. */
export type OrgRole = (typeof ORG_ROLES)[number];

/** Whether `role` is `least` or stronger: the one ordering of roles, for the server's checks and the CLI's. */
export function orgRoleAtLeast(role: OrgRole, least: OrgRole): boolean {
  return ORG_ROLES.indexOf(role) <= ORG_ROLES.indexOf(least);
}

/** The least role that may share an organisation vault, and so the least a trusted sharer of its key has. */
export const ORG_SHARING_ROLE: OrgRole = "maintainer";

/** Most members one share may carry a wrapped key for (and so the most members an organisation can share to). */
export const MAX_ORG_MEMBERS = 10_000;
/** Characters of a wrapped key in its wire form: base64 of 32, 12 and 48 bytes joined by two colons. */
export const WRAPPED_KEY_WIRE_LENGTH = 44 + 1 + 16 + 1 + 64;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** An organisation's slug: 1 to 40 lower-case letters, digits and inner hyphens; the name it is addressed by. */
export const orgSlugSchema = z
  .string(
    `"slug" must be 1 to ${MAX_ORG_SLUG_LENGTH} lower-case letters, digits and hyphens, starting and ending with a letter or digit.`,
  )
  .check(z.maxLength(MAX_ORG_SLUG_LENGTH, { abort: true }), z.regex(ORG_SLUG));

// The slug's rule lives in rules.ts, where the zod-free readers of latchkey.json find it too.
export { isOrgSlug, MAX_ORG_SLUG_LENGTH };

/**
 * An organisation's display name. Anyone may make an organisation and add any account to it, so its name is shown
 * to people who did not choose it: the pairing label's rule refuses the bidirectional controls that could make it
 * read as another name, besides control characters.
 */
const orgName = z
  .string(`"name" must be 1 to 256 characters without control or bidirectional control characters.`)
  .check(
    z.minLength(1),
    z.maxLength(256),
    z.refine((name) => name.search(PAIRING_LABEL_UNPRINTABLE) === -1),
  );

const role = (name: string) => z.enum(ORG_ROLES, `"${name}" must be one of ${ORG_ROLES.join(", ")}.`);
const userId = (name: string) => z.string(`"${name}" must be a UUID.`).check(z.refine(isUuid));
const vaultId = z.string(`"vaultId" must be a UUID.`).check(z.refine(isUuid));
const count = (name: string) => z.int(`"${name}" must be an integer of at least 0.`).check(z.gte(0));
const versionNumber = (name: string, min: number) =>
  z.int(`"${name}" must be an integer of at least ${min}.`).check(z.gte(min), z.lt(Number.MAX_SAFE_INTEGER));
const email = z.string(`"email" must be an email address of at most 320 characters.`).check(
  z.minLength(3),
  z.maxLength(320),
  z.refine((value) => value.includes("@") && !CONTROL.test(value)),
);

/** True when `wire` is a wrapped key in its one accepted spelling (parseWrappedKey takes it). */
export function isWrappedKeyWire(wire: string): boolean {
  if (wire.length !== WRAPPED_KEY_WIRE_LENGTH) return false;
  try {
    parseWrappedKey(wire);
    return true;
  } catch {
    return false;
  }
}

/** A wrapped key in the strict wire form of x25519.ts. */
const wrappedKeyWire = (name: string) =>
  z
    .string(
      `"${name}" must be a wrapped key: three standard base64 parts of 32, 12 and 48 bytes separated by colons.`,
    )
    .check(z.refine(isWrappedKeyWire));

/** An organisation as one of its members sees it. */
export const orgSummarySchema = nested('"org"', {
  slug: orgSlugSchema,
  name: orgName,
  /** The caller's role in it. */
  role: role("role"),
  createdAt: text("createdAt"),
});
/** An organisation as one of its members sees it. */
export type OrgSummary = z.infer<typeof orgSummarySchema>;

/** `POST /api/v1/orgs`: creates an organisation whose only member, its owner, is the caller. */
export const orgCreateRequestSchema = body({
  slug: orgSlugSchema,
  /** Defaults to the slug. */
  name: z.optional(orgName),
});
/** `POST /api/v1/orgs`. */
export type OrgCreateRequest = z.infer<typeof orgCreateRequestSchema>;

/** 201 answer of create and 200 answer of `GET /api/v1/orgs/:slug`. */
export const orgResponseSchema = body({
  org: orgSummarySchema,
  memberCount: count("memberCount"),
  vaultCount: count("vaultCount"),
});
/** An organisation with its counts. */
export type OrgResponse = z.infer<typeof orgResponseSchema>;

/** 200 answer of `GET /api/v1/orgs`: the caller's organisations, by slug. */
export const orgListResponseSchema = body({
  orgs: z.array(nested('Each of "orgs"', orgSummarySchema.def.shape), `"orgs" must be an array.`),
});
/** The caller's organisations. */
export type OrgListResponse = z.infer<typeof orgListResponseSchema>;

/** 200 answer of `DELETE /api/v1/orgs/:slug`: what went with the organisation. */
export const orgDeleteResponseSchema = body({
  slug: orgSlugSchema,
  membersRemoved: count("membersRemoved"),
  vaultsRemoved: count("vaultsRemoved"),
});
/** 200 answer of delete. */
export type OrgDeleteResponse = z.infer<typeof orgDeleteResponseSchema>;

/** A member, as add and set-role answer it. */
export const orgMemberSchema = nested('"member"', {
  userId: userId("userId"),
  email: text("email"),
  role: role("role"),
  addedAt: text("addedAt"),
});
/** A member. */
export type OrgMember = z.infer<typeof orgMemberSchema>;

/**
 * Where a member stands with one organisation vault: `current` — a key wrapped for their registered sharing key;
 * `missing` — none (never shared to them, or deleted when they rotated their sharing key); `stale` — one wrapped
 * for a sharing key they no longer have.
 */
export const ORG_KEY_STATES = ["current", "missing", "stale"] as const;
/** One of {@link ORG_KEY_STATES}. */
export type OrgKeyState = (typeof ORG_KEY_STATES)[number];

/** One organisation vault, as the member and vault lists name it. */
export const orgVaultSummarySchema = nested('Each of "vaults"', {
  vaultId,
  name: text("name"),
  version: versionNumber("version", 1),
  updatedAt: text("updatedAt"),
});
/** One organisation vault. */
export type OrgVaultSummary = z.infer<typeof orgVaultSummarySchema>;

/** One member in `GET /api/v1/orgs/:slug/members`, with what sharing to them needs. */
export const orgMemberDetailSchema = nested('Each of "members"', {
  userId: userId("userId"),
  email: text("email"),
  role: role("role"),
  addedAt: text("addedAt"),
  /** The fingerprint of their registered sharing key; null while they have none (waiting for one). */
  sharingKeyFingerprint: z.nullable(sharingKeyFingerprintSchema("sharingKeyFingerprint")),
  /** True when they have a sharing key and some vault of the organisation has no current key for it. */
  needsShare: z.boolean(`"needsShare" must be a boolean.`),
  /**
   * Per organisation vault (in the order of the answer's `vaults`), the state of their wrapped key and, for a
   * caller who may read the organisation's audit log (maintainer and above), their last pull of it: absent for
   * other callers, null when they never pulled it.
   */
  keys: z.array(
    nested('Each of "keys"', {
      vaultId,
      state: z.enum(ORG_KEY_STATES, `"state" must be one of ${ORG_KEY_STATES.join(", ")}.`),
      /** When they first pulled the newest version of it they pulled (a pull of a version again writes no row). */
      lastPulledAt: z.optional(z.nullable(text("lastPulledAt"))),
      /** The newest version of it they pulled. */
      lastPulledVersion: z.optional(z.nullable(versionNumber("lastPulledVersion", 1))),
    }),
    `"keys" must be an array.`,
  ),
});
/** One member with their sharing state. */
export type OrgMemberDetail = z.infer<typeof orgMemberDetailSchema>;

/** 200 answer of `GET /api/v1/orgs/:slug/members`, members by email. */
export const orgMembersResponseSchema = body({
  slug: orgSlugSchema,
  vaults: z.array(orgVaultSummarySchema, `"vaults" must be an array.`),
  members: z.array(orgMemberDetailSchema, `"members" must be an array.`),
});
/** The members of an organisation. */
export type OrgMembersResponse = z.infer<typeof orgMembersResponseSchema>;

/** `POST /api/v1/orgs/:slug/members`: adds an existing account by its email. */
export const orgMemberAddRequestSchema = body({ email, role: role("role") });
/** `POST /api/v1/orgs/:slug/members`. */
export type OrgMemberAddRequest = z.infer<typeof orgMemberAddRequestSchema>;

/** `PATCH /api/v1/orgs/:slug/members/:userId`: a member's new role. */
export const orgMemberRoleRequestSchema = body({ role: role("role") });
/** `PATCH /api/v1/orgs/:slug/members/:userId`. */
export type OrgMemberRoleRequest = z.infer<typeof orgMemberRoleRequestSchema>;

/** 201 answer of add, 200 answer of set-role. */
export const orgMemberResponseSchema = body({ member: orgMemberSchema });
/** Answer of add and set-role. */
export type OrgMemberResponse = z.infer<typeof orgMemberResponseSchema>;

/** One organisation vault the removed member could open, for the offboarding report. */
export const orgRemovedVaultSchema = nested('Each of "vaults"', {
  vaultId,
  name: text("name"),
  /** The vault's current version: the one a rotation pushes from. */
  version: versionNumber("version", 1),
  /** When they last pulled it (their first pull of the newest version they pulled); null if never. */
  lastPulledAt: z.nullable(text("lastPulledAt")),
  /** The newest version they pulled; null if never. */
  lastPulledVersion: z.nullable(versionNumber("lastPulledVersion", 1)),
  /**
   * The CI policy that remains on the organisation's copy (another member enabled it; the removed member's own went
   * with them), so the remover decides whether its repository should go on pulling; null when the copy has none.
   * Absent from servers before it.
   */
  ciPolicy: z.optional(
    z.nullable(
      nested('"ciPolicy"', {
        provider: text("provider"),
        repository: text("repository"),
        /** Who enabled it; null when that account no longer exists. */
        enabledBy: z.nullable(text("enabledBy")),
      }),
    ),
  ),
});
/** One vault of the offboarding report. */
export type OrgRemovedVault = z.infer<typeof orgRemovedVaultSchema>;

/** One CI policy a member's removal deleted: one the removed member had enabled on an organisation copy. */
export const orgRemovedCiPolicySchema = nested('Each of "ciPoliciesDisabled"', {
  vaultId,
  provider: text("provider"),
  repository: text("repository"),
});
/** One CI policy deleted with a member. */
export type OrgRemovedCiPolicy = z.infer<typeof orgRemovedCiPolicySchema>;

/**
 * 200 answer of `DELETE /api/v1/orgs/:slug/members/:userId` (step-up `org:member:remove`): who was removed and the
 * organisation vaults they held a wrapped key for when removed (those keys are deleted with the membership).
 */
export const orgMemberRemoveResponseSchema = body({
  removed: orgMemberSchema,
  vaults: z.array(orgRemovedVaultSchema, `"vaults" must be an array.`),
  /**
   * The organisation's CI policies the removed member had enabled, deleted with the membership (else their
   * repository would go on pulling, re-escrowed at every rotation). Absent from servers before it.
   */
  ciPoliciesDisabled: z.optional(z.array(orgRemovedCiPolicySchema, `"ciPoliciesDisabled" must be an array.`)),
});
/** Answer of remove. */
export type OrgMemberRemoveResponse = z.infer<typeof orgMemberRemoveResponseSchema>;

/** 200 answer of `GET /api/v1/orgs/:slug/public-keys`: the members' registered sharing keys, to wrap for. */
export const orgPublicKeysResponseSchema = body({
  keys: z.array(
    nested('Each of "keys"', {
      userId: userId("userId"),
      email: text("email"),
      /** Canonical standard base64 of the 32-byte X25519 public key. */
      publicKey: sharingPublicKeySchema(),
      fingerprint: sharingKeyFingerprintSchema(),
    }),
    `"keys" must be an array.`,
  ),
});
/** The members' sharing keys. */
export type OrgPublicKeysResponse = z.infer<typeof orgPublicKeysResponseSchema>;

/** The vault key wrapped for one member's sharing key. */
export const orgWrappedKeySchema = nested('Each of "wrappedKeys"', {
  userId: userId("userId"),
  wrappedKey: wrappedKeyWire("wrappedKey"),
  /** The fingerprint of the sharing key it is wrapped for: the server refuses one that is not the member's. */
  fingerprint: sharingKeyFingerprintSchema(),
});
/** One member's wrapped key. */
export type OrgWrappedKey = z.infer<typeof orgWrappedKeySchema>;

const push = pushRequestSchema.def.shape;

/**
 * `PUT /api/v1/orgs/:slug/vaults/:vaultId`: a new version of the organisation's copy, sealed with the vault key
 * its members already hold (their wrapped keys stay). The rules of the personal push: version baseVersion + 1, 409
 * LK_VAULT_CONFLICT with the current version on a stale base.
 */
export const orgPushRequestSchema = body({
  encryptedBlob: push.encryptedBlob,
  schema: push.schema,
  name: push.name,
  baseVersion: push.baseVersion,
  escrow: push.escrow,
});
/** `PUT /api/v1/orgs/:slug/vaults/:vaultId`. */
export type OrgPushRequest = z.infer<typeof orgPushRequestSchema>;

/**
 * `PUT /api/v1/orgs/:slug/vaults/:vaultId/share` (maintainer and above): a new version (the first one from
 * baseVersion 0) whose wrapped keys are exactly `wrappedKeys`, one per member, replacing every key the row had.
 * Sharing again with the same vault key gives access to members added since; a new vault key is a rotation.
 */
export const orgShareRequestSchema = body({
  encryptedBlob: push.encryptedBlob,
  schema: push.schema,
  name: push.name,
  baseVersion: push.baseVersion,
  escrow: push.escrow,
  /**
   * A share that seals the copy with a new vault key re-seals its platform connections' credentials with it, in the
   * same request (docs/platforms.md, "Connections"). Absent: the connections are left as they are.
   */
  platformCredentials: z.optional(platformCredentialsResealSchema),
  /**
   * The fingerprint of the sharer's own sharing key, the one every key in `wrappedKeys` is wrapped from
   * (wrapKeyFromSender, under orgVaultKeyContext(vault, slug, baseVersion + 1)). The server refuses one that is
   * not the caller's registered key (409 LK_SHARING_KEY_MISMATCH) and keeps the public key beside the wrapped keys,
   * so that members can check who wrapped theirs.
   */
  senderFingerprint: sharingKeyFingerprintSchema("senderFingerprint"),
  wrappedKeys: z.array(orgWrappedKeySchema, `"wrappedKeys" must be an array.`).check(
    z.minLength(1, `"wrappedKeys" must hold 1 to ${MAX_ORG_MEMBERS} keys.`),
    z.maxLength(MAX_ORG_MEMBERS, `"wrappedKeys" must hold 1 to ${MAX_ORG_MEMBERS} keys.`),
    z.refine(
      (keys) => new Set(keys.map((k) => k.userId)).size === keys.length,
      `"wrappedKeys" must hold at most one key per member.`,
    ),
  ),
});
/** `PUT /api/v1/orgs/:slug/vaults/:vaultId/share`. */
export type OrgShareRequest = z.infer<typeof orgShareRequestSchema>;

const pulled = pullResponseSchema.def.shape;

/** 200 answer of `GET /api/v1/orgs/:slug/vaults/:vaultId`: the latest copy, with the caller's wrapped key. */
export const orgPullResponseSchema = body({
  vaultId: pulled.vaultId,
  version: pulled.version,
  encryptedBlob: pulled.encryptedBlob,
  /** The vault key wrapped for the caller's sharing key (unwrapKeyForRecipient). */
  wrappedKey: wrappedKeyWire("wrappedKey"),
  /** The fingerprint of the sharing key it is wrapped for. */
  fingerprint: sharingKeyFingerprintSchema(),
  /**
   * The version of the share that wrapped this key (the key version): part of the wrap's context, and never
   * lower than one this member's machine has seen for the copy.
   */
  keyVersion: versionNumber("keyVersion", 1),
  /**
   * Who wrapped it: the sharer's account and the sharing key the wrap is made from. The member's CLI opens the
   * key only with this public key (unwrapKeyFromSender) and only when that key is the sharer's key it trusts.
   */
  wrappedBy: nested('"wrappedBy"', {
    userId: userId("userId"),
    /** The sharer's e-mail address; null when the account no longer exists. */
    email: z.nullable(text("email")),
    /**
     * The sharer's role in the organisation now; null when they are no longer a member. A member's CLI opens the
     * key only when it is maintainer or stronger (the roles that may share), besides its pin of the sharer's key.
     */
    role: z.nullable(role("role")),
    publicKey: sharingPublicKeySchema("publicKey"),
    fingerprint: sharingKeyFingerprintSchema("fingerprint"),
  }),
  schema: pulled.schema,
  name: pulled.name,
  updatedAt: pulled.updatedAt,
});
/** The organisation's latest copy of a vault. */
export type OrgPullResponse = z.infer<typeof orgPullResponseSchema>;

/** 200 answer of `GET /api/v1/orgs/:slug/vaults`: the organisation's vaults. */
export const orgVaultsResponseSchema = body({
  vaults: z.array(orgVaultSummarySchema, `"vaults" must be an array.`),
});
/** The organisation's vaults. */
export type OrgVaultsResponse = z.infer<typeof orgVaultsResponseSchema>;

/** 200 answer of `DELETE /api/v1/orgs/:slug/vaults/:vaultId` (unshare): the copy, its history and keys are gone. */
export const orgUnshareResponseSchema = body({
  vaultId,
  wrappedKeysRemoved: count("wrappedKeysRemoved"),
});
/** Answer of unshare. */
export type OrgUnshareResponse = z.infer<typeof orgUnshareResponseSchema>;

/**
 * 200 answer of `GET /api/v1/orgs/:slug/log?limit=N` (maintainer and above): the organisation's audit entries,
 * newest first — membership changes, shares, pushes, pulls. The per-vault log
 * (`GET /api/v1/orgs/:slug/vaults/:vaultId/log`) answers with the personal log's auditLogResponseSchema.
 */
export const orgLogResponseSchema = body({
  slug: orgSlugSchema,
  entries: z
    .array(
      nested('Each of "entries"', { ...auditEntrySchema.def.shape, vaultId: z.nullable(vaultId) }),
      `"entries" must be an array.`,
    )
    .check(z.maxLength(MAX_LOG_LIMIT, `"entries" must hold at most ${MAX_LOG_LIMIT} entries.`)),
});
/** The organisation's audit log. */
export type OrgLogResponse = z.infer<typeof orgLogResponseSchema>;

/**
 * The sharing-key API's bodies (docs/teams.md, "Sharing keys"), requests and answers, in sync-api.ts's style:
 * strict objects, messages that name a field and its rule and never quote a value. A public key is canonical
 * standard base64 of exactly 32 bytes (one spelling per key), a fingerprint the 64 lowercase hex digits of
 * sharing-key.ts sharingKeyFingerprint.
 */
import * as z from "zod/mini";
import { fromBase64, isCanonicalBase64 } from "../bytes.js";
import { SHARING_KEY_FINGERPRINT_LENGTH, SHARING_PUBLIC_KEY_BYTES } from "../sharing-key.js";
import { body, nested, text } from "./sync-api.js";

/** Where the sharing-key routes live. */
export const SHARING_KEY_PATH = "/api/v1/sharing-key";

/**
 * What the server says of the key a machine holds, asked before every organisation operation:
 * - `matches`: the account's registered key is this one;
 * - `needs-initial-set`: the account has none yet: upload this one (step-up `vault:public-key:set`);
 * - `rotation-required`: the account has another one (or this machine has none): never overwritten silently, only
 *   by `latchkey env rotate-sharing-key` (step-up `vault:public-key:rotate`).
 */
export const SHARING_KEY_STATES = ["matches", "needs-initial-set", "rotation-required"] as const;

/** One of {@link SHARING_KEY_STATES}. */
export type SharingKeyState = (typeof SHARING_KEY_STATES)[number];

const PUBLIC_KEY_BASE64_LENGTH = 4 * Math.ceil(SHARING_PUBLIC_KEY_BYTES / 3);

/** A sharing public key named `name`: canonical standard base64 of exactly 32 bytes. */
export function sharingPublicKeySchema(name = "publicKey") {
  return z.string(`"${name}" must be standard base64 of ${SHARING_PUBLIC_KEY_BYTES} bytes.`).check(
    z.length(PUBLIC_KEY_BASE64_LENGTH, { abort: true }),
    z.refine((value) => isCanonicalBase64(value) && fromBase64(value).length === SHARING_PUBLIC_KEY_BYTES),
  );
}

/** A sharing key fingerprint named `name`: 64 lowercase hex digits. */
export function sharingKeyFingerprintSchema(name = "fingerprint") {
  return z
    .string(`"${name}" must be ${SHARING_KEY_FINGERPRINT_LENGTH} lowercase hex digits.`)
    .check(z.regex(new RegExp(`^[0-9a-f]{${SHARING_KEY_FINGERPRINT_LENGTH}}$`)));
}

/**
 * `GET /api/v1/sharing-key?fingerprint=HEX`: the state of the caller's sharing key as seen from a machine whose
 * key has that fingerprint (no query: the machine has no key), and the registered key if there is one.
 */
export const sharingKeyStateResponseSchema = body({
  state: z.enum(SHARING_KEY_STATES, `"state" must be one of ${SHARING_KEY_STATES.join(", ")}.`),
  /** The account's registered public key; null when it has none. */
  publicKey: z.nullable(sharingPublicKeySchema()),
  fingerprint: z.nullable(sharingKeyFingerprintSchema()),
});
/** `GET /api/v1/sharing-key`: the state of the caller's sharing key. */
export type SharingKeyStateResponse = z.infer<typeof sharingKeyStateResponseSchema>;

/**
 * `PUT /api/v1/sharing-key` (step-up `vault:public-key:set`): the account's first sharing key. Refused with 409
 * `LK_SHARING_KEY_EXISTS` when it has one: a stolen session must not be able to plant a key and read the next
 * share.
 */
export const sharingKeySetRequestSchema = body({ publicKey: sharingPublicKeySchema() });
/** `PUT /api/v1/sharing-key`: the account's first sharing key. */
export type SharingKeySetRequest = z.infer<typeof sharingKeySetRequestSchema>;

/** The account's registered sharing key: the 201 answer of the initial set. */
export const sharingKeyResponseSchema = body({
  publicKey: sharingPublicKeySchema(),
  fingerprint: sharingKeyFingerprintSchema(),
  createdAt: text("createdAt"),
  /** When it last replaced another key; null for a key set once and never rotated. */
  rotatedAt: z.nullable(text("rotatedAt")),
});
/** The account's registered sharing key. */
export type SharingKeyResponse = z.infer<typeof sharingKeyResponseSchema>;

/** `POST /api/v1/sharing-key/rotate` (step-up `vault:public-key:rotate`): the key that replaces the account's. */
export const sharingKeyRotateRequestSchema = body({ publicKey: sharingPublicKeySchema() });
/** `POST /api/v1/sharing-key/rotate`. */
export type SharingKeyRotateRequest = z.infer<typeof sharingKeyRotateRequestSchema>;

/** One vault of an organisation whose key was wrapped for the caller's sharing key. */
export const sharingKeyImpactVaultSchema = nested('Each of "vaults"', {
  vaultId: text("vaultId"),
  name: text("name"),
});
/** One vault of an organisation whose key was wrapped for the caller's sharing key. */
export type SharingKeyImpactVault = z.infer<typeof sharingKeyImpactVaultSchema>;

/** One organisation where a rotation takes the caller's wrapped keys away, and the vaults they open. */
export const sharingKeyImpactOrgSchema = nested('Each of "orgs"', {
  orgId: text("orgId"),
  slug: text("slug"),
  vaults: z.array(sharingKeyImpactVaultSchema, `"vaults" must be an array.`),
});
/** One organisation a rotation affects. */
export type SharingKeyImpactOrg = z.infer<typeof sharingKeyImpactOrgSchema>;

/**
 * `GET /api/v1/sharing-key/impact`: what a rotation would take away now, for the warning before it: the
 * organisations and vaults whose keys are wrapped for the caller's current key.
 */
export const sharingKeyImpactResponseSchema = body({
  orgs: z.array(sharingKeyImpactOrgSchema, `"orgs" must be an array.`),
});
/** `GET /api/v1/sharing-key/impact`. */
export type SharingKeyImpactResponse = z.infer<typeof sharingKeyImpactResponseSchema>;

/**
 * 200 answer of the rotation. `rotated` is false when the key sent is already the registered one (a rerun after an
 * answer that never arrived): nothing was changed then, nothing deleted.
 */
export const sharingKeyRotateResponseSchema = body({
  publicKey: sharingPublicKeySchema(),
  fingerprint: sharingKeyFingerprintSchema(),
  /** The key replaced; null when the account had none. */
  previousFingerprint: z.nullable(sharingKeyFingerprintSchema("previousFingerprint")),
  rotated: z.boolean(`"rotated" must be a boolean.`),
  /** The organisations whose wrapped keys for the old key were deleted, and their vaults. */
  orgs: z.array(sharingKeyImpactOrgSchema, `"orgs" must be an array.`),
  /** How many wrapped keys were deleted. */
  wrappedKeysDeleted: z.int(`"wrappedKeysDeleted" must be an integer.`).check(z.gte(0)),
});
/** 200 answer of the rotation. */
export type SharingKeyRotateResponse = z.infer<typeof sharingKeyRotateResponseSchema>;

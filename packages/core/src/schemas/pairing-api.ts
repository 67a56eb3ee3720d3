/**
 * The pairing API's bodies (docs/pairing.md), requests and answers. pairing.ts holds the computations; these say
 * what travels. Keys, nonces and sealed keys are canonical standard base64 of an exact number of bytes; codes are
 * taken as typed and normalized by the server (pairing.ts normalizePairingCode).
 */
import * as z from "zod/mini";
import { fromBase64, isCanonicalBase64 } from "../bytes.js";
import {
  MAX_PAIRING_LABEL_LENGTH,
  PAIRING_HANDED_KEY_BYTES,
  PAIRING_LABEL_UNPRINTABLE,
  PAIRING_NONCE_BYTES,
  PAIRING_PUBLIC_KEY_BYTES,
} from "../pairing.js";
import { isUuid } from "../uuid.js";
import { body, nested, text } from "./sync-api.js";

/** Where the pairing routes live, under the API prefix. */
export const PAIRINGS_PATH = "/api/v1/pairings";

/**
 * A pairing's states. They only move forward: pending → joined → revealed → approved → consumed; any state
 * before consumed can become revoked, and one past its expiry reads as expired.
 */
export const PAIRING_STATUSES = [
  "pending",
  "joined",
  "revealed",
  "approved",
  "consumed",
  "expired",
  "revoked",
] as const;

/** One of {@link PAIRING_STATUSES}. */
export type PairingStatus = (typeof PAIRING_STATUSES)[number];

/**
 * The sizes of a sealed key, in bytes: the envelope's header, nonce and tag (4 + 12 + 16) around the wrapping key
 * alone (32), or the wrapping key and the sharing key (64) (pairing.ts sealPairingKey).
 */
export const PAIRING_SEALED_KEY_SIZES = [
  4 + 12 + PAIRING_HANDED_KEY_BYTES + 16,
  4 + 12 + 2 * PAIRING_HANDED_KEY_BYTES + 16,
] as const;

/** Canonical standard base64 of exactly `bytes` bytes. */
function exactBase64(name: string, bytes: number) {
  const length = 4 * Math.ceil(bytes / 3);
  return z.string(`"${name}" must be standard base64 of ${bytes} bytes.`).check(
    z.length(length, { abort: true }),
    z.refine((value) => isCanonicalBase64(value) && fromBase64(value).length === bytes),
  );
}

/** Canonical standard base64 of exactly one of the {@link PAIRING_SEALED_KEY_SIZES}. */
const sealedKey = z
  .string(`"sealedKey" must be standard base64 of ${PAIRING_SEALED_KEY_SIZES.join(" or ")} bytes.`)
  .check(
    z.refine(
      (value) =>
        PAIRING_SEALED_KEY_SIZES.some((bytes) => value.length === 4 * Math.ceil(bytes / 3)) &&
        isCanonicalBase64(value) &&
        (PAIRING_SEALED_KEY_SIZES as readonly number[]).includes(fromBase64(value).length),
    ),
  );

const pairingId = z.string(`"pairingId" must be a UUID.`).check(z.refine(isUuid));
const expiresAt = text("expiresAt");
const publicKey = (name: string) => exactBase64(name, PAIRING_PUBLIC_KEY_BYTES);
const status = z.enum(PAIRING_STATUSES, `"status" must be one of ${PAIRING_STATUSES.join(", ")}.`);

/** The new device's name as its owner sees it on the approving machine: 1 to 64 characters, none unprintable. */
export const pairingLabelSchema = z
  .string(`"label" must be 1 to ${MAX_PAIRING_LABEL_LENGTH} characters without control characters.`)
  .check(
    z.minLength(1),
    z.maxLength(MAX_PAIRING_LABEL_LENGTH),
    z.refine((label) => label.search(PAIRING_LABEL_UNPRINTABLE) === -1 && label.trim() === label),
  );

/** `POST /api/v1/pairings` (step-up `vault:pair`): the new device starts a pairing. */
export const pairingCreateRequestSchema = body({
  label: pairingLabelSchema,
  /** SHA-256(pubN || r), base64. */
  commitment: exactBase64("commitment", 32),
});
/** `POST /api/v1/pairings`: the new device starts a pairing. */
export type PairingCreateRequest = z.infer<typeof pairingCreateRequestSchema>;

/** 201 answer of create: the code to show, and the id the new device uses from now on. */
export const pairingCreateResponseSchema = body({
  pairingId,
  /** The 6-character code, shown once on the new device; the server keeps only its hash. */
  code: z.string(`"code" must be a pairing code.`).check(z.length(6)),
  expiresAt,
});
/** 201 answer of create. */
export type PairingCreateResponse = z.infer<typeof pairingCreateResponseSchema>;

/** `POST /api/v1/pairings/join`: the approving machine joins by code with its ephemeral public key. */
export const pairingJoinRequestSchema = body({
  /** As typed; the server normalizes it (case, spaces and dashes). */
  code: z.string(`"code" must be a string of at most 32 characters.`).check(z.maxLength(32)),
  publicKey: publicKey("publicKey"),
});
/** `POST /api/v1/pairings/join`. */
export type PairingJoinRequest = z.infer<typeof pairingJoinRequestSchema>;

/** `POST /api/v1/pairings/:id/reveal`: the new device opens its commitment. */
export const pairingRevealRequestSchema = body({
  publicKey: publicKey("publicKey"),
  nonce: exactBase64("nonce", PAIRING_NONCE_BYTES),
});
/** `POST /api/v1/pairings/:id/reveal`. */
export type PairingRevealRequest = z.infer<typeof pairingRevealRequestSchema>;

/** `POST /api/v1/pairings/:id/approve`: the approving machine sends the sealed keys. */
export const pairingApproveRequestSchema = body({
  sealedKey,
});
/** `POST /api/v1/pairings/:id/approve`. */
export type PairingApproveRequest = z.infer<typeof pairingApproveRequestSchema>;

/** 200 answer of `POST /api/v1/pairings/:id/consume`: the sealed key, given out once and then deleted. */
export const pairingConsumeResponseSchema = body({
  pairingId,
  sealedKey,
});
/** 200 answer of consume. */
export type PairingConsumeResponse = z.infer<typeof pairingConsumeResponseSchema>;

/**
 * A pairing as one of its two devices sees it (`GET /api/v1/pairings/:id`, and the answer of join, reveal,
 * approve and revoke): the keys are there once the step that sends them has happened, null before.
 */
export const pairingViewSchema = body({
  pairingId,
  status,
  label: pairingLabelSchema,
  createdAt: text("createdAt"),
  expiresAt,
  /** SHA-256(pubN || r), base64. */
  commitment: exactBase64("commitment", 32),
  /** pubA, once an approver has joined. */
  approverKey: z.nullable(publicKey("approverKey")),
  /** pubN, once revealed. */
  newDeviceKey: z.nullable(publicKey("newDeviceKey")),
  /** r, once revealed. */
  nonce: z.nullable(exactBase64("nonce", PAIRING_NONCE_BYTES)),
});
/** A pairing as one of its devices sees it. */
export type PairingView = z.infer<typeof pairingViewSchema>;

/** One pairing in `GET /api/v1/pairings` (the caller's pending ones and those of the last 24 hours). */
export const pairingSummarySchema = nested('Each of "pairings"', {
  pairingId,
  status,
  label: pairingLabelSchema,
  createdAt: text("createdAt"),
  expiresAt,
});
/** One pairing in the list. */
export type PairingSummary = z.infer<typeof pairingSummarySchema>;

/** 200 answer of `GET /api/v1/pairings`, newest first. */
export const pairingListResponseSchema = body({
  pairings: z.array(pairingSummarySchema, `"pairings" must be an array.`).check(z.maxLength(100)),
});
/** 200 answer of the list. */
export type PairingListResponse = z.infer<typeof pairingListResponseSchema>;

/** 200 answer of `POST /api/v1/pairings/revoke-all`: how many unfinished pairings were revoked. */
export const pairingRevokeAllResponseSchema = body({
  revoked: z.int(`"revoked" must be an integer.`).check(z.gte(0)),
});
/** 200 answer of revoke-all. */
export type PairingRevokeAllResponse = z.infer<typeof pairingRevokeAllResponseSchema>;

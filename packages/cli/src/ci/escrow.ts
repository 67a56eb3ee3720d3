// The escrow of a vault key for CI pulls (docs/ci.md, "Escrow"): the key a copy's blob is sealed with, wrapped for
// the server's X25519 escrow key, so the server can open that one copy for a CI job its policy admits. Every
// versioned write of a copy (personal push, organisation push, share and the rotations that share) goes through
// sendVersion: when the copy has CI enabled and the new version is sealed with a key the escrow does not hold, the
// server refuses it (409 LK_CI_ESCROW_STALE) and the write is sent once more with the new key's escrow, which the
// server then swaps in within the same transaction.
import {
  CI_PATH,
  API_PREFIX,
  LatchkeyError,
  ciConfigResponseSchema,
  fromBase64,
  isLatchkeyError,
  pushResponseSchema,
  sharingKeyFingerprint,
  wrapKeyForRecipient,
  type CiConfigResponse,
  type CiEscrow,
  type PushResponse,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { callApi, type ApiOptions, type ApiResult } from "../server/api.js";
import { requireEscrowConsent } from "./consent.js";

/** `CI_PATH` as callApi takes paths: under the API prefix. */
const CI_API_PATH = CI_PATH.slice(API_PREFIX.length);

/**
 * The server's CI configuration (`GET /api/v1/ci/config`): its escrow public key, that key's fingerprint (checked
 * here to be the key's own), the issuers it trusts and the default audience.
 */
export async function fetchCiConfig(ctx: Context, api: ApiOptions): Promise<ApiResult<CiConfigResponse>> {
  const config = await callApi(
    ctx,
    { method: "GET", path: `${CI_API_PATH}/config`, answer: ciConfigResponseSchema },
    api,
  );
  const fingerprint = await sharingKeyFingerprint(fromBase64(config.data.escrowPublicKey));
  if (fingerprint !== config.data.escrowKeyFingerprint) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `${config.server} gave an escrow key whose fingerprint is not the one it names; nothing was escrowed.`,
      details: { server: config.server },
    });
  }
  return config;
}

/** `vaultKey` wrapped for the server's escrow key, as a push, a share or `env ci enable` sends it. */
export async function escrowKey(vaultKey: Uint8Array, config: CiConfigResponse): Promise<CiEscrow> {
  return {
    escrowedKey: await wrapKeyForRecipient(vaultKey, fromBase64(config.escrowPublicKey)),
    escrowKeyFingerprint: config.escrowKeyFingerprint,
  };
}

/** A versioned write of a copy: where it goes, its body, and the key its blob is sealed with. */
export interface VersionWrite<Body extends { escrow?: CiEscrow }> {
  /** `PUT` path under the API prefix: the personal copy, an organisation's, or its `/share`. */
  readonly path: string;
  readonly body: Body;
  /** The 32-byte key the body's blob is sealed with: what the escrow must hold for CI to go on opening the copy. */
  readonly sealedWith: Uint8Array;
  readonly vaultId: string;
  /** The organisation whose copy it is; absent for the personal copy. */
  readonly org?: string;
}

/** How messages name a copy: `vault ID`, or `organisation S's copy of vault ID`. */
export function copyName(vaultId: string, org: string | undefined): string {
  return org === undefined ? `vault ${vaultId}` : `organisation ${org}'s copy of vault ${vaultId}`;
}

/**
 * Sends one versioned write (`PUT`, answered with a PushResponse). A 409 LK_CI_ESCROW_STALE (the copy has CI
 * enabled, and its escrow does not open the new version) sends it once more with the escrow of `sealedWith` for
 * the server's current escrow key — only for a copy this machine's user agreed to escrow for that key
 * (consent.ts; else LK_CI_ESCROW_UNCONFIRMED, or a question on a terminal); a second refusal is LK_CI_ESCROW_STALE
 * with what to do. Every other answer is the caller's, as callApi gives it.
 */
export async function sendVersion<Body extends { escrow?: CiEscrow }>(
  ctx: Context,
  write: VersionWrite<Body>,
  api: ApiOptions,
): Promise<ApiResult<PushResponse>> {
  const send = (body: Body) =>
    callApi(ctx, { method: "PUT", path: write.path, body, answer: pushResponseSchema }, api);
  try {
    return await send(write.body);
  } catch (error) {
    if (!isLatchkeyError(error, "LK_CI_ESCROW_STALE")) throw error;
  }
  const config = await fetchCiConfig(ctx, api);
  // The 409 is the server's word only: the key goes to a copy its user agreed to escrow, for that escrow key.
  await requireEscrowConsent(
    ctx,
    { server: config.server, userId: config.userId, vaultId: write.vaultId, org: write.org },
    config.data.escrowKeyFingerprint,
    copyName(write.vaultId, write.org),
  );
  const escrow = await escrowKey(write.sealedWith, config.data);
  try {
    return await send({ ...write.body, escrow });
  } catch (error) {
    if (!isLatchkeyError(error, "LK_CI_ESCROW_STALE")) throw error;
    const flag = write.org === undefined ? "" : ` --org ${write.org}`;
    throw new LatchkeyError("LK_CI_ESCROW_STALE", {
      message: `${config.server} has CI pulls enabled for ${copyName(write.vaultId, write.org)} and refused this version twice: its escrowed key does not open it, and neither did the new escrow sent with it (for escrow key ${config.data.escrowKeyFingerprint.slice(0, 16)}…). Nothing was written.`,
      hint: `Run the command again (the server's escrow key may have changed in between); if it is refused again, \`latchkey env ci disable${flag}\` then \`latchkey env ci enable${flag} …\` make the escrow afresh, and the server's operator checks that every server process uses the same escrow key (docs/ci.md, "Escrow").`,
      details: { ...(error.details ?? {}), escrowKeyFingerprint: config.data.escrowKeyFingerprint },
      cause: error,
    });
  }
}

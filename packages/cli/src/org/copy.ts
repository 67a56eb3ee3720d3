// An organisation's copy of a vault (docs/teams.md, "Organisation vaults"): a blob sealed with the organisation's
// vault key, which the server holds wrapped once per member for that member's X25519 sharing key. What the push,
// pull, share and rotation code paths need of it lives here: opening the copy with this machine's sharing key,
// and wrapping a vault key for every member with a registered sharing key. Requests go through callApi; the
// server only ever sees ciphertext and wrapped keys.
import {
  LatchkeyError,
  fromBase64,
  isLatchkeyError,
  orgMembersResponseSchema,
  orgPublicKeysResponseSchema,
  orgPullResponseSchema,
  sharingKeyFingerprint,
  syncBlobContext,
  unwrapKeyForRecipient,
  utf8Decode,
  wrapKeyForRecipient,
  type EnvSchema,
  type OrgPullResponse,
  type OrgShareRequest,
  type OrgWrappedKey,
  type PushResponse,
  type VaultDocument,
} from "@latchkey/core";
import { sendVersion } from "../ci/escrow.js";
import type { Context } from "../context.js";
import { openEnvelopeCli } from "../crypto/native.js";
import { readVaultDocument } from "../fast-readers.js";
import { callApi, type ApiOptions, type ApiResult } from "../server/api.js";
import { shortFingerprint, type SharingKey } from "../sharing/sharing-key.js";
import { checkRecipients } from "./pins.js";

/** The path of an organisation under the API prefix (callApi's paths); the slug is checked by the caller. */
export const orgPath = (slug: string): string => `/orgs/${slug}`;

/** The path of an organisation's copy of a vault. */
export const orgVaultPath = (slug: string, vaultId: string): string =>
  `${orgPath(slug)}/vaults/${encodeURIComponent(vaultId)}`;

/** How many times a share is prepared again when the members changed under it (LK_ORG_MEMBERS_CHANGED). */
export const SHARE_ATTEMPTS = 3;

/** LK_SERVER_ERROR for an organisation copy that cannot be used as the server sent it. */
export function orgCopyInvalid(vaultId: string, org: string, server: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_SERVER_ERROR", {
    message: `The copy of vault ${vaultId} that organisation ${org} holds is not usable: ${why}.`,
    details: { server, org, vaultId },
  });
}

/** Fetches `org`'s copy of the vault (signature checked by callApi): the blob and the key wrapped for the caller. */
export async function fetchOrgCopy(
  ctx: Context,
  org: string,
  vaultId: string,
  options: ApiOptions,
): Promise<ApiResult<OrgPullResponse>> {
  const result = await callApi(
    ctx,
    { method: "GET", path: orgVaultPath(org, vaultId), answer: orgPullResponseSchema },
    options,
  );
  if (result.data.vaultId.toLowerCase() !== vaultId.toLowerCase()) {
    throw orgCopyInvalid(vaultId, org, result.server, "the answer is another vault's");
  }
  return result;
}

/**
 * The organisation's vault key from a pulled copy, unwrapped with this machine's sharing key. A key wrapped for
 * another sharing key of the account (one it had before `env rotate-sharing-key`) is LK_ORG_VAULT_KEY_MISSING:
 * a maintainer must share again; one that does not open is LK_VAULT_DECRYPT_FAILED.
 */
export async function unwrapOrgKey(
  copy: Pick<OrgPullResponse, "wrappedKey" | "fingerprint" | "vaultId">,
  key: SharingKey,
  org: string,
  server: string,
): Promise<Uint8Array> {
  if (copy.fingerprint !== key.fingerprint) {
    throw new LatchkeyError("LK_ORG_VAULT_KEY_MISSING", {
      message: `Organisation ${org}'s copy of vault ${copy.vaultId} has its key wrapped for your sharing key ${shortFingerprint(copy.fingerprint)}…, not for this machine's (${shortFingerprint(key.fingerprint)}…). Nothing was written.`,
      hint: `Ask a maintainer of ${org} to run \`latchkey env share --org ${org}\` in this project again.`,
      details: { server, org, vaultId: copy.vaultId },
    });
  }
  let orgKey: Uint8Array;
  try {
    orgKey = await unwrapKeyForRecipient(copy.wrappedKey, key.privateKey, key.publicKey);
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `The key of organisation ${org}'s copy of vault ${copy.vaultId} does not open with your sharing key, though the server says it was wrapped for it. Nothing was written.`,
      hint: `Ask a maintainer of ${org} to run \`latchkey env share --org ${org}\` in this project again.`,
      details: { server, org, vaultId: copy.vaultId },
    });
  }
  if (orgKey.length !== 32) throw orgCopyInvalid(copy.vaultId, org, server, "its vault key is not 32 bytes");
  return orgKey;
}

/**
 * Decrypts an organisation copy's blob with the organisation's vault key under syncBlobContext(vault, version,
 * org) and reads it as a vault document; anything else is an error, never an empty vault.
 */
export async function openOrgBlob(
  orgKey: Uint8Array,
  copy: Pick<OrgPullResponse, "encryptedBlob" | "vaultId" | "version">,
  org: string,
  server: string,
): Promise<VaultDocument> {
  let plaintext: Uint8Array;
  try {
    // Its schema took canonical base64 only.
    plaintext = await openEnvelopeCli(
      orgKey,
      fromBase64(copy.encryptedBlob),
      syncBlobContext(copy.vaultId, copy.version, org),
    );
  } catch {
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `Organisation ${org}'s copy of vault ${copy.vaultId} does not decrypt as version ${copy.version}: it was altered, or replayed under another version or organisation. Nothing was written.`,
      details: { server, org, vaultId: copy.vaultId, version: copy.version },
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decode(plaintext));
  } catch {
    throw orgCopyInvalid(copy.vaultId, org, server, "it decrypted to something that is not JSON");
  }
  // The same reader as the local vault file's: one definition of a vault document.
  const document = readVaultDocument(parsed);
  if (!document.ok) throw orgCopyInvalid(copy.vaultId, org, server, "it decrypted to an unexpected shape");
  return document.value;
}

/** The vault key wrapped for each member with a registered sharing key, and who is still waiting for one. */
export interface MemberKeys {
  readonly wrappedKeys: OrgWrappedKey[];
  /** Emails of the members the key was wrapped for, sorted. */
  readonly sharedWith: string[];
  /** Emails of the members with no registered sharing key yet, sorted: they get the key at the next share. */
  readonly waiting: string[];
}

/** Who shares: the account and this machine's sharing key, and whether new members' keys are taken unasked. */
export interface Sharer {
  readonly userId: string;
  readonly key: SharingKey;
  /** `--trust-new-members`: pin the server's keys for members never seen here without asking (never a changed key). */
  readonly trustNewMembers?: boolean;
}

/**
 * Wraps `vaultKey` for every member of `org` with a registered sharing key (`GET /orgs/:slug/public-keys`, which
 * needs the maintainer role). Each fingerprint sent is computed here from the key wrapped for, so the server's
 * check that it is the member's registered key is a check of what was really done. The caller's own key must be
 * among them and be `me`, else the share would lock the caller out: LK_SERVER_ERROR. Every other key must pass
 * this machine's pins first (pins.ts checkRecipients): nothing is wrapped for a changed or unconfirmed key.
 */
export async function wrapForMembers(
  ctx: Context,
  org: string,
  vaultKey: Uint8Array,
  me: Sharer,
  options: ApiOptions,
): Promise<MemberKeys> {
  const [keys, members] = await Promise.all([
    callApi(
      ctx,
      { method: "GET", path: `${orgPath(org)}/public-keys`, answer: orgPublicKeysResponseSchema },
      options,
    ),
    callApi(
      ctx,
      { method: "GET", path: `${orgPath(org)}/members`, answer: orgMembersResponseSchema },
      options,
    ),
  ]);
  const roles = new Map(members.data.members.map((m) => [m.userId.toLowerCase(), m.role]));
  const isMe = (userId: string) => userId.toLowerCase() === me.userId.toLowerCase();
  const listed: { userId: string; email: string; publicKey: Uint8Array; fingerprint: string }[] = [];
  for (const member of keys.data.keys) {
    const publicKey = fromBase64(member.publicKey);
    const fingerprint = await sharingKeyFingerprint(publicKey);
    if (isMe(member.userId) && fingerprint !== me.key.fingerprint) {
      throw new LatchkeyError("LK_SERVER_ERROR", {
        message: `${keys.server} lists another sharing key for you (${shortFingerprint(fingerprint)}…) than the one it just confirmed (${shortFingerprint(me.key.fingerprint)}…); nothing was shared.`,
        details: { server: keys.server, org },
      });
    }
    listed.push({ ...member, publicKey, fingerprint });
  }
  if (!listed.some((m) => isMe(m.userId))) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `${keys.server} does not list your own sharing key among organisation ${org}'s members' keys; nothing was shared (you would have lost access).`,
      details: { server: keys.server, org },
    });
  }
  // Before anything is wrapped: a key the server swapped in or added must not get this share.
  await checkRecipients(
    ctx,
    keys.server,
    org,
    listed
      .filter((m) => !isMe(m.userId))
      .map((m) => ({ ...m, role: roles.get(m.userId.toLowerCase()) ?? null })),
    me.trustNewMembers === true,
  );
  const wrappedKeys: OrgWrappedKey[] = [];
  for (const member of listed) {
    // Each wrap has its own ephemeral key: one member's wrapped key tells nothing of another's.
    wrappedKeys.push({
      userId: member.userId,
      wrappedKey: await wrapKeyForRecipient(vaultKey, member.publicKey),
      fingerprint: member.fingerprint,
    });
  }
  const sharedWith = listed.map((m) => m.email);
  const waiting = members.data.members.filter((m) => m.sharingKeyFingerprint === null).map((m) => m.email);
  return { wrappedKeys, sharedWith: sharedWith.sort(), waiting: waiting.sort() };
}

/** A new version of an organisation's copy, sealed and ready to be shared (`PUT …/share`). */
export interface SealedShare {
  readonly org: string;
  readonly vaultId: string;
  /** The organisation vault key `encryptedBlob` is sealed with (syncBlobContext(vault, baseVersion + 1, org)). */
  readonly vaultKey: Uint8Array;
  readonly encryptedBlob: string;
  readonly name: string;
  readonly schema?: EnvSchema;
  readonly baseVersion: number;
}

/**
 * Sends a share: the sealed version with `vaultKey` wrapped for every member with a sharing key, which become the
 * copy's whole key set. When the members or their keys changed while it was prepared (409
 * LK_ORG_MEMBERS_CHANGED), the keys are fetched, checked against the pins and wrapped again, {@link SHARE_ATTEMPTS}
 * times in all; a conflict on the version is the caller's to handle. A copy with CI pulls enabled gets the escrow of
 * a new key the same way as a push (ci/escrow.ts sendVersion).
 */
export async function sendShare(
  ctx: Context,
  share: SealedShare,
  me: Sharer,
  options: ApiOptions,
): Promise<{ answer: ApiResult<PushResponse>; members: MemberKeys }> {
  for (let attempt = 1; ; attempt++) {
    const members = await wrapForMembers(ctx, share.org, share.vaultKey, me, options);
    const body: OrgShareRequest = {
      encryptedBlob: share.encryptedBlob,
      ...(share.schema === undefined ? {} : { schema: share.schema }),
      name: share.name,
      baseVersion: share.baseVersion,
      wrappedKeys: members.wrappedKeys,
    };
    try {
      const answer = await sendVersion(
        ctx,
        {
          path: `${orgVaultPath(share.org, share.vaultId)}/share`,
          body,
          sealedWith: share.vaultKey,
          vaultId: share.vaultId,
          org: share.org,
        },
        options,
      );
      return { answer, members };
    } catch (error) {
      if (!isLatchkeyError(error, "LK_ORG_MEMBERS_CHANGED") || attempt >= SHARE_ATTEMPTS) throw error;
    }
  }
}

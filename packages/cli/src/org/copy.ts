// An organisation's copy of a vault (docs/teams.md, "Organisation vaults"): a blob sealed with the organisation's
// vault key, which the server holds wrapped once per member for that member's X25519 sharing key. What the push,
// pull, share and rotation code paths need of it lives here: opening the copy with this machine's sharing key,
// and wrapping a vault key for every member with a registered sharing key. Every wrap is authenticated with the
// sharer's own sharing key (docs/teams.md, "Who wrapped a key"): the server, which needs only a member's public
// key to wrap something for them, cannot plant a vault key of its own. Requests go through callApi; the server
// only ever sees ciphertext and wrapped keys.
import {
  LatchkeyError,
  ORG_SHARING_ROLE,
  PLATFORMS_SEGMENT,
  fromBase64,
  isLatchkeyError,
  orgRoleAtLeast,
  orgMembersResponseSchema,
  orgPublicKeysResponseSchema,
  orgPullResponseSchema,
  orgVaultKeyContext,
  platformListResponseSchema,
  sharingKeyFingerprint,
  syncBlobContext,
  unwrapKeyFromSender,
  utf8Decode,
  wrapKeyFromSender,
  type EnvSchema,
  type OrgPullResponse,
  type OrgShareRequest,
  type OrgWrappedKey,
  type PlatformConnection,
  type PushResponse,
  type VaultDocument,
} from "@latchkey/core";
import { sendVersion } from "../ci/escrow.js";
import { resealConnections, type ResealedConnections } from "../platforms/reseal.js";
import type { Context } from "../context.js";
import { openEnvelopeCli } from "../crypto/native.js";
import { readVaultDocument } from "../fast-readers.js";
import { callApi, type ApiOptions, type ApiResult } from "../server/api.js";
import { shortFingerprint, type SharingKey } from "../sharing/sharing-key.js";
import { getSyncEntry } from "../sync/state.js";
import { checkRecipients, pinOrgKeys, pinState, pinsOf, readOrgKeys, reviewKeys } from "./pins.js";

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

/** The fields of a pulled copy that say which vault key it holds for the caller, and who wrapped it. */
export type WrappedOrgKey = Pick<
  OrgPullResponse,
  "wrappedKey" | "fingerprint" | "vaultId" | "version" | "keyVersion" | "wrappedBy"
>;

function rewrapHint(org: string): string {
  return `Ask a maintainer of ${org} to run \`latchkey env share --org ${org}\` in this project again.`;
}

/**
 * Who wrapped the copy's key, checked before anything is unwrapped: the fingerprint the server gives must be the
 * one of the public key it gives (computed here); your own account's key must be this machine's; anyone else must
 * be a current maintainer or stronger as the server lists them (LK_ORG_SHARER_NOT_MAINTAINER) and their key must
 * pass this machine's pins (pins.ts reviewKeys: a changed key is refused, a new one asked about). Returns the
 * sharer's public key and the new key to pin once the wrap has opened with it (null: nothing to pin).
 */
async function checkSharer(
  ctx: Context,
  copy: WrappedOrgKey,
  me: Sharer,
  org: string,
  server: string,
): Promise<{ publicKey: Uint8Array; pin: { userId: string; email: string; fingerprint: string } | null }> {
  const by = copy.wrappedBy;
  const publicKey = fromBase64(by.publicKey);
  const fingerprint = await sharingKeyFingerprint(publicKey);
  if (fingerprint !== by.fingerprint) {
    throw orgCopyInvalid(
      copy.vaultId,
      org,
      server,
      "the fingerprint it gives for the sharer's key is not that key's",
    );
  }
  if (by.userId.toLowerCase() === me.userId.toLowerCase()) {
    if (fingerprint !== me.key.fingerprint) {
      throw orgCopyInvalid(
        copy.vaultId,
        org,
        server,
        `it says you wrapped its key with sharing key ${shortFingerprint(fingerprint)}…, which is not this machine's (${shortFingerprint(me.key.fingerprint)}…)`,
      );
    }
    return { publicKey, pin: null };
  }
  // A pin says whose key it is, not that they may hand out keys: a removed or demoted member whose key was pinned
  // could otherwise wrap a key of their own under the copy's context and have the server serve it.
  const removedHere = me.removedSharer?.toLowerCase() === by.userId.toLowerCase();
  if (!removedHere && (by.role === null || !orgRoleAtLeast(by.role, ORG_SHARING_ROLE))) {
    throw new LatchkeyError("LK_ORG_SHARER_NOT_MAINTAINER", {
      message: `The key of ${org}'s copy of vault ${copy.vaultId} was wrapped by ${by.email ?? "an account that no longer exists"}, who ${by.role === null ? "is not a member of the organisation now" : `is a ${by.role} now`}: only a ${ORG_SHARING_ROLE} or a stronger role may share its key. Nothing was written.`,
      hint: `Ask a maintainer of ${org} to run \`latchkey env share --org ${org} --new-key\` in this vault's project (\`org rotate-keys\` cannot: it opens the current key first), then pull again.`,
      details: { server, org, vaultId: copy.vaultId, sharer: by.userId, role: by.role },
    });
  }
  if (by.email === null) {
    // An account that is gone cannot be asked for its fingerprint: only a key pinned before is taken.
    const pins = pinsOf(await readOrgKeys(ctx), server, org);
    if (pinState(pins, { userId: by.userId, email: "", fingerprint }) !== "pinned") {
      throw new LatchkeyError("LK_ORG_MEMBER_UNTRUSTED", {
        message: `The key of ${org}'s copy of vault ${copy.vaultId} was wrapped by an account that no longer exists, with a sharing key this machine never pinned (${fingerprint}); nothing was written.`,
        hint: rewrapHint(org),
        details: { server, org, vaultId: copy.vaultId },
      });
    }
    return { publicKey, pin: null };
  }
  const sharer = { userId: by.userId, email: by.email, role: by.role, fingerprint };
  const accepted = await reviewKeys(ctx, server, org, [sharer], me.trustNewMembers === true, {
    kind: "open",
    vaultId: copy.vaultId,
  });
  return { publicKey, pin: accepted.length === 0 ? null : sharer };
}

/**
 * The organisation's vault key from a pulled copy, unwrapped with this machine's sharing key, once the sharer who
 * wrapped it is one this machine trusts (checkSharer) and its key version is not older than one this machine has
 * opened or made for the copy (else LK_VAULT_ROLLBACK: the old key of a rotation, which a removed member may
 * hold). A key wrapped for another sharing key of the account (one it had before `env rotate-sharing-key`) is
 * LK_ORG_VAULT_KEY_MISSING: a maintainer must share again; one that does not open from the sharer's key under
 * its context is LK_VAULT_DECRYPT_FAILED. A new sharer's key accepted on the way is pinned only after the wrap
 * opened with it; nothing else is written.
 */
export async function unwrapOrgKey(
  ctx: Context,
  copy: WrappedOrgKey,
  me: Sharer,
  org: string,
  server: string,
): Promise<Uint8Array> {
  const key = me.key;
  if (copy.fingerprint !== key.fingerprint) {
    throw new LatchkeyError("LK_ORG_VAULT_KEY_MISSING", {
      message: `Organisation ${org}'s copy of vault ${copy.vaultId} has its key wrapped for your sharing key ${shortFingerprint(copy.fingerprint)}…, not for this machine's (${shortFingerprint(key.fingerprint)}…). Nothing was written.`,
      hint: rewrapHint(org),
      details: { server, org, vaultId: copy.vaultId },
    });
  }
  if (copy.keyVersion > copy.version) {
    throw orgCopyInvalid(
      copy.vaultId,
      org,
      server,
      `its key version ${copy.keyVersion} is above its version ${copy.version}`,
    );
  }
  const entry = await getSyncEntry(ctx.paths.home, server, me.userId, copy.vaultId, org);
  const seen = entry?.highestKeyVersion;
  if (seen !== undefined && copy.keyVersion < seen) {
    throw new LatchkeyError("LK_VAULT_ROLLBACK", {
      message: `The server offered organisation ${org}'s copy of vault ${copy.vaultId} with the vault key of version ${copy.keyVersion}, but this machine has already had the key of version ${seen}: an older key, which a member removed since may still hold. Nothing was written.`,
      hint: `Ask a maintainer of ${org} to check the copy, and to run \`latchkey org rotate-keys ${org}\` if it was tampered with.`,
      details: { server, org, vaultId: copy.vaultId, offered: copy.keyVersion, highestSeen: seen },
    });
  }
  const sharer = await checkSharer(ctx, copy, me, org, server);
  let orgKey: Uint8Array;
  try {
    orgKey = await unwrapKeyFromSender(
      copy.wrappedKey,
      key.privateKey,
      key.publicKey,
      sharer.publicKey,
      orgVaultKeyContext(copy.vaultId, org, copy.keyVersion),
    );
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `The key of organisation ${org}'s copy of vault ${copy.vaultId} does not open with your sharing key as wrapped by ${copy.wrappedBy.email ?? "the account named"} for version ${copy.keyVersion}, though the server says it was: it was altered, or not made by that member. Nothing was written.`,
      hint: rewrapHint(org),
      details: { server, org, vaultId: copy.vaultId },
    });
  }
  if (orgKey.length !== 32) throw orgCopyInvalid(copy.vaultId, org, server, "its vault key is not 32 bytes");
  if (sharer.pin !== null) await pinOrgKeys(ctx, server, org, [sharer.pin]);
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

/**
 * Proves that `key`, the vault key this machine kept for `org`'s copy of `vaultId` at its last pull or share, is the
 * copy's key now: the copy as the server has it opens with it (openOrgBlob, as a rotation opens it). Returns the copy
 * (its key version names that key). A key that does not open it (rotated since, or a damaged record) is
 * LK_VAULT_KEY_STALE: nothing is to be sealed with it, or re-sealed from it. `use` says what the key was for.
 */
export async function checkCurrentOrgKey(
  ctx: Context,
  copy: { org: string; vaultId: string },
  key: Uint8Array,
  use: { what: string; then: string },
  options: ApiOptions,
): Promise<OrgPullResponse> {
  const { org, vaultId } = copy;
  const { data: current, server } = await fetchOrgCopy(ctx, org, vaultId, options);
  try {
    await openOrgBlob(key, current, org, server);
  } catch (error) {
    if (!isLatchkeyError(error, "LK_VAULT_DECRYPT_FAILED")) throw error;
    throw new LatchkeyError("LK_VAULT_KEY_STALE", {
      message: `The vault key this machine kept for organisation ${org}'s copy of vault ${vaultId} at its last pull or share does not open the copy's version ${current.version} on ${server} (its key is now version ${current.keyVersion}'s), so it cannot ${use.what}. Nothing was sent.`,
      hint: `Run \`latchkey env pull --org ${org}\` to get the copy's current key, then ${use.then} again.`,
      details: { server, org, vaultId, version: current.version, keyVersion: current.keyVersion },
      cause: error,
    });
  }
  return current;
}

/** The vault key wrapped for each member with a registered sharing key, and who is still waiting for one. */
export interface MemberKeys {
  readonly wrappedKeys: OrgWrappedKey[];
  /** Emails of the members the key was wrapped for, sorted. */
  readonly sharedWith: string[];
  /** Emails of the members with no registered sharing key yet, sorted: they get the key at the next share. */
  readonly waiting: string[];
}

/**
 * Who shares, or opens a shared key: the account and this machine's sharing key, and whether keys of members never
 * seen here are taken unasked.
 */
export interface Sharer {
  readonly userId: string;
  readonly key: SharingKey;
  /** `--trust-new-members`: pin the server's keys for members never seen here without asking (never a changed key). */
  readonly trustNewMembers?: boolean;
  /**
   * The user id of a maintainer (or stronger) that `org remove` has just removed: its rotations still open a key
   * they wrapped (their pin still applies). They could have wrapped any key a moment before, as a maintainer, so
   * this gives them nothing; refusing would leave a vault last shared by the leaver impossible to rotate.
   */
  readonly removedSharer?: string;
}

/** What a share wraps: the vault key, for which copy, and the key version the share makes (baseVersion + 1). */
export interface KeyToWrap {
  readonly org: string;
  readonly vaultId: string;
  readonly vaultKey: Uint8Array;
  readonly keyVersion: number;
}

// Wraps run concurrently (each is a few X25519 and HKDF operations on the thread pool) but in bounded batches, so
// a large organisation does not queue thousands of operations at once.
const WRAP_BATCH = 64;

/**
 * Wraps the vault key for every member of `wrap.org` with a registered sharing key (`GET /orgs/:slug/public-keys`,
 * which needs the maintainer role), from this machine's sharing key (wrapKeyFromSender) under
 * orgVaultKeyContext(vault, org, keyVersion). Each fingerprint sent is computed here from the key wrapped for, so
 * the server's check that it is the member's registered key is a check of what was really done. The caller's own
 * key must be among them and be `me`, else the share would lock the caller out: LK_SERVER_ERROR. Every other key
 * must pass this machine's pins first (pins.ts checkRecipients): nothing is wrapped for a changed or unconfirmed
 * key.
 */
export async function wrapForMembers(
  ctx: Context,
  wrap: KeyToWrap,
  me: Sharer,
  options: ApiOptions,
): Promise<MemberKeys> {
  const { org } = wrap;
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
  const context = orgVaultKeyContext(wrap.vaultId, org, wrap.keyVersion);
  const sender = { publicKey: me.key.publicKey, privateKey: me.key.privateKey };
  const wrappedKeys: OrgWrappedKey[] = [];
  for (let at = 0; at < listed.length; at += WRAP_BATCH) {
    const batch = listed.slice(at, at + WRAP_BATCH).map(async (member) => ({
      userId: member.userId,
      // Each wrap has its own ephemeral key: one member's wrapped key tells nothing of another's.
      wrappedKey: await wrapKeyFromSender(wrap.vaultKey, member.publicKey, sender, context),
      fingerprint: member.fingerprint,
    }));
    wrappedKeys.push(...(await Promise.all(batch)));
  }
  const sharedWith = listed.map((m) => m.email);
  const waiting = members.data.members.filter((m) => m.sharingKeyFingerprint === null).map((m) => m.email);
  return { wrappedKeys, sharedWith: sharedWith.sort(), waiting: waiting.sort() };
}

/** The platform connections of `org`'s copy of `vaultId` (`GET …/platforms`), checked to be that copy's. */
export async function listOrgConnections(
  ctx: Context,
  org: string,
  vaultId: string,
  options: ApiOptions,
): Promise<PlatformConnection[]> {
  const listed = await callApi(
    ctx,
    {
      method: "GET",
      path: `${orgVaultPath(org, vaultId)}/${PLATFORMS_SEGMENT}`,
      answer: platformListResponseSchema,
    },
    options,
  );
  if (listed.data.vaultId.toLowerCase() !== vaultId.toLowerCase() || listed.data.org !== org)
    throw orgCopyInvalid(
      vaultId,
      org,
      listed.server,
      "its platform connections were answered with another copy's",
    );
  return listed.data.connections;
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
  /**
   * When the share seals the copy with a new key (a rotation): the key the copy is sealed with now. The copy's
   * platform connections' credentials are then opened with it and sent sealed with `vaultKey` (platforms/reseal.ts).
   */
  readonly previousKey?: Uint8Array;
}

/**
 * Sends a share: the sealed version with `vaultKey` wrapped for every member with a sharing key (for key version
 * baseVersion + 1, from this machine's sharing key, whose fingerprint goes with it), which become the copy's whole
 * key set. When the members or their keys changed while it was prepared (409 LK_ORG_MEMBERS_CHANGED), the keys are
 * fetched, checked against the pins and wrapped again, {@link SHARE_ATTEMPTS} times in all; a conflict on the
 * version is the caller's to handle (a share sent again for another base version is wrapped again for it). A
 * copy with CI pulls enabled gets the escrow of a new key the same way as a push (ci/escrow.ts sendVersion). With
 * `previousKey`, the copy's platform connections are listed and their credentials re-sealed for the new key in the
 * share; a connection made or disconnected in between (409 LK_PLATFORM_CONNECTIONS_CHANGED) makes it list them and
 * send again, within the same attempts.
 */
export async function sendShare(
  ctx: Context,
  share: SealedShare,
  me: Sharer,
  options: ApiOptions,
): Promise<{ answer: ApiResult<PushResponse>; members: MemberKeys; platforms: ResealedConnections | null }> {
  for (let attempt = 1; ; attempt++) {
    const members = await wrapForMembers(
      ctx,
      { org: share.org, vaultId: share.vaultId, vaultKey: share.vaultKey, keyVersion: share.baseVersion + 1 },
      me,
      options,
    );
    const platforms =
      share.previousKey === undefined
        ? null
        : await resealConnections(ctx, await listOrgConnections(ctx, share.org, share.vaultId, options), {
            vaultId: share.vaultId,
            oldKey: share.previousKey,
            newKey: share.vaultKey,
          });
    const body: OrgShareRequest = {
      encryptedBlob: share.encryptedBlob,
      ...(share.schema === undefined ? {} : { schema: share.schema }),
      name: share.name,
      baseVersion: share.baseVersion,
      senderFingerprint: me.key.fingerprint,
      wrappedKeys: members.wrappedKeys,
      ...(platforms === null ? {} : { platformCredentials: platforms.credentials }),
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
      return { answer, members, platforms };
    } catch (error) {
      const again =
        isLatchkeyError(error, "LK_ORG_MEMBERS_CHANGED") ||
        isLatchkeyError(error, "LK_PLATFORM_CONNECTIONS_CHANGED");
      if (!again || attempt >= SHARE_ATTEMPTS) throw error;
    }
  }
}

/**
 * The keys this browser holds once paired, and how the views open a vault copy with them (docs/dashboard.md
 * "Pairing a browser"). A pairing hands over the account's wrapping key and, when the approving machine has one,
 * its sharing key (core's pairing.ts); they are kept here as non-extractable CryptoKeys, in this page's memory
 * only: page script can use them but never read their bytes back, nothing writes them to disk, and a reload, a
 * sign-out or "forget this browser" drops them (a reload pairs again). Every decryption is core's code: the wrapped
 * vault key under vaultKeyContext, the blob under syncBlobContext, an organisation's key by unwrapKeyFromSender
 * under orgVaultKeyContext.
 */
import {
  LatchkeyError,
  ORG_SHARING_ROLE,
  checkSchema,
  fromBase64,
  importEnvelopeKey,
  importX25519PrivateKey,
  isLatchkeyError,
  openEnvelope,
  orgRoleAtLeast,
  orgVaultKeyContext,
  sharingKeyFingerprint,
  syncBlobContext,
  unwrapKeyFromSender,
  utf8Decode,
  vaultDocumentSchema,
  vaultKeyContext,
  x25519PublicKey,
  type OrgMemberDetail,
  type OrgPullResponse,
  type PairingKeys,
  type PullResponse,
  type VaultDocument,
} from "@latchkey/core";
import { useEffect, useState } from "preact/hooks";

/** The account's sharing key as this page holds it. */
export interface HeldSharingKey {
  /** The X25519 private key, non-extractable. */
  readonly privateKey: CryptoKey;
  readonly publicKey: Uint8Array;
  /** SHA-256 of the public key in hex, as the server names sharing keys. */
  readonly fingerprint: string;
}

/** What a pairing left this page with, for one signed-in account. */
export interface HeldKeys {
  /** The account (the ID token's `sub`) the keys were paired for: another account's sign-in does not use them. */
  readonly account: string;
  /** The account's wrapping key: AES-256-GCM, non-extractable, decrypt only. */
  readonly wrappingKey: CryptoKey;
  /** Null when the approving machine had no sharing key: organisation copies then stay locked. */
  readonly sharingKey: HeldSharingKey | null;
}

let held: HeldKeys | null = null;
// The highest version and key version opened per copy in this page's life: a server that later offers an older
// one is refused (a reload forgets them, as it forgets the keys).
const seen = new Map<string, { version: number; keyVersion: number }>();
const listeners = new Set<() => void>();

function changed(): void {
  for (const listener of listeners) listener();
}

/**
 * Keeps the keys a pairing handed over for `account`, as non-extractable CryptoKeys, and overwrites the bytes it
 * was given: from here on no script can read them.
 */
export async function holdPairingKeys(account: string, keys: PairingKeys): Promise<HeldKeys> {
  try {
    const wrappingKey = await importEnvelopeKey(keys.wrappingKey);
    let sharingKey: HeldSharingKey | null = null;
    if (keys.sharingKey !== null) {
      const privateKey = await importX25519PrivateKey(keys.sharingKey);
      const publicKey = await x25519PublicKey(privateKey);
      sharingKey = { privateKey, publicKey, fingerprint: await sharingKeyFingerprint(publicKey) };
    }
    held = { account, wrappingKey, sharingKey };
    seen.clear();
    changed();
    return held;
  } finally {
    keys.wrappingKey.fill(0);
    keys.sharingKey?.fill(0);
  }
}

/**
 * The keys this page holds, or null (not paired since it was loaded). They are the signed-in account's: every
 * sign-out of the tab drops them (pairing/index.ts registers dropKeys with session.ts onSignOut).
 */
export function heldKeys(): HeldKeys | null {
  return held;
}

/** Drops the keys (sign-out, "forget this browser"). */
export function dropKeys(): void {
  held = null;
  seen.clear();
  changed();
}

/** Re-renders with the keys this page holds (or null), whenever they change. */
export function useHeldKeys(): HeldKeys | null {
  const [keys, setKeys] = useState(held);
  useEffect(() => {
    const update = (): void => setKeys(held);
    listeners.add(update);
    update();
    return () => {
      listeners.delete(update);
    };
  }, []);
  return keys;
}

function keysOrRefuse(): HeldKeys {
  const keys = held;
  if (keys === null) {
    throw new LatchkeyError("LK_VAULT_NOT_PAIRED", {
      message: "This browser holds no keys: it has not been paired since the page was loaded.",
      hint: "Pair this browser (Unlock vaults), then approve it with `latchkey env pair CODE` on a machine that has your vaults.",
    });
  }
  return keys;
}

function unusable(vaultId: string, why: string, where = "The server's copy"): LatchkeyError {
  return new LatchkeyError("LK_SERVER_ERROR", {
    message: `${where} of vault ${vaultId} is not usable: ${why}.`,
    details: { vaultId },
  });
}

/**
 * Refuses a version or key version below what this page opened of the same copy; the returned function remembers
 * them once the copy opened (a forged copy that does not open must not raise the bar for genuine ones).
 */
function refuseRollback(copy: string, vaultId: string, version: number, keyVersion: number): () => void {
  const before = seen.get(copy);
  if (before !== undefined && (version < before.version || keyVersion < before.keyVersion)) {
    throw new LatchkeyError("LK_VAULT_ROLLBACK", {
      message: `The server offered version ${version} of vault ${vaultId}, but this page has already opened version ${before.version}: an older copy, refused.`,
      hint: "Reload the vault. If it happens again, the server is replaying old copies: tell its administrator.",
      details: { vaultId, offered: version, highestSeen: before.version },
    });
  }
  return () => {
    const now = seen.get(copy);
    seen.set(copy, {
      version: Math.max(version, now?.version ?? 0),
      keyVersion: Math.max(keyVersion, now?.keyVersion ?? 0),
    });
  };
}

async function openBlob(
  vaultKey: Uint8Array,
  vaultId: string,
  version: number,
  encryptedBlob: string,
  org?: string,
): Promise<VaultDocument> {
  let plaintext: Uint8Array;
  try {
    plaintext = await openEnvelope(
      vaultKey,
      fromBase64(encryptedBlob),
      syncBlobContext(vaultId, version, org),
    );
  } catch {
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `The server's copy of vault ${vaultId} does not decrypt as version ${version}${org === undefined ? "" : ` of organisation ${org}`}: it was altered, or replayed under another version.`,
      hint: "Reload the vault. If it happens again, tell the server's administrator: nothing here was changed.",
      details: { vaultId, version },
    });
  } finally {
    vaultKey.fill(0);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decode(plaintext));
  } catch {
    throw unusable(vaultId, "it decrypted to something that is not JSON");
  }
  const document = checkSchema(vaultDocumentSchema, parsed);
  if (!document.ok) throw unusable(vaultId, "it decrypted to an unexpected shape");
  return document.value;
}

/**
 * Opens the signed-in account's own copy of a vault (the answer of `GET /api/v1/vaults/:id`): its vault key
 * unwrapped with the wrapping key the pairing brought, then its blob. LK_VAULT_NOT_PAIRED when this page holds
 * no keys or the copy's key is wrapped for another wrapping key (a machine ran `env rotate-key` since).
 */
export async function openPersonalCopy(pull: PullResponse): Promise<VaultDocument> {
  const keys = keysOrRefuse();
  const opened = refuseRollback(`personal:${pull.vaultId.toLowerCase()}`, pull.vaultId, pull.version, 0);
  let vaultKey: Uint8Array;
  try {
    vaultKey = await openEnvelope(
      keys.wrappingKey,
      fromBase64(pull.wrappedKey),
      vaultKeyContext(pull.vaultId),
    );
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    throw new LatchkeyError("LK_VAULT_NOT_PAIRED", {
      message: `The key of vault ${pull.vaultId} is wrapped for another wrapping key than the one this browser was paired with (a machine replaced its key since).`,
      hint: "Forget this browser and pair it again from a machine that opens this vault.",
      details: { vaultId: pull.vaultId, version: pull.version },
    });
  }
  if (vaultKey.length !== 32) throw unusable(pull.vaultId, "its vault key is not 32 bytes");
  const document = await openBlob(vaultKey, pull.vaultId, pull.version, pull.encryptedBlob);
  opened();
  return document;
}

/** Who wrapped an organisation copy's key, as the view shows it beside the values. */
export interface OrgCopySharer {
  readonly userId: string;
  readonly email: string;
  /** The sharer's role now, as the server lists it; null for the signed-in account's own share. */
  readonly role: OrgMemberDetail["role"] | null;
  /** SHA-256 of the sharing key the key was wrapped from, in hex (computed here from that key). */
  readonly fingerprint: string;
  /** True when the signed-in account wrapped it, with the sharing key this browser holds. */
  readonly self: boolean;
}

/** An organisation copy, opened. */
export interface OpenedOrgCopy {
  readonly document: VaultDocument;
  readonly sharedBy: OrgCopySharer;
}

function untrusted(org: string, vaultId: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_ORG_MEMBER_UNTRUSTED", {
    message: `The key of organisation ${org}'s copy of vault ${vaultId} was ${why}; the browser does not open it.`,
    hint: `Ask a maintainer of ${org} to run \`latchkey env share --org ${org}\` in the project, or read the vault with \`latchkey env pull --org ${org}\`, which checks sharers against the keys it pinned.`,
    details: { org, vaultId },
  });
}

/**
 * Whether the browser takes the sharer the server names for a copy (docs/dashboard.md "Pairing a browser": a
 * browser has no pins, so it trusts the server's member list): the signed-in account with the sharing key this
 * browser holds, or a current owner or maintainer whose registered sharing key is the one the key was wrapped from.
 * The fingerprint is computed here from the key the wrap names, never taken from the server.
 */
async function checkSharer(
  org: string,
  copy: OrgPullResponse,
  account: string,
  own: HeldSharingKey,
  members: readonly OrgMemberDetail[],
): Promise<{ publicKey: Uint8Array; sharer: OrgCopySharer }> {
  const by = copy.wrappedBy;
  const publicKey = fromBase64(by.publicKey);
  const fingerprint = await sharingKeyFingerprint(publicKey);
  if (fingerprint !== by.fingerprint) {
    throw unusable(
      copy.vaultId,
      "the fingerprint it gives for the sharer's key is not that key's",
      `Organisation ${org}'s copy`,
    );
  }
  const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  if (same(by.userId, account)) {
    if (fingerprint !== own.fingerprint) {
      throw untrusted(
        org,
        copy.vaultId,
        "wrapped by you, says the server, but with a sharing key this browser was not given",
      );
    }
    const email = by.email ?? members.find((m) => same(m.userId, account))?.email ?? "you";
    return { publicKey, sharer: { userId: by.userId, email, role: null, fingerprint, self: true } };
  }
  const member = members.find((m) => same(m.userId, by.userId));
  if (by.email === null || member === undefined) {
    throw untrusted(org, copy.vaultId, "wrapped by an account that is no longer a member");
  }
  // The roles that may share (the server's vault.share permission): an admin's share is as good as an owner's.
  if (!orgRoleAtLeast(member.role, ORG_SHARING_ROLE)) {
    throw untrusted(
      org,
      copy.vaultId,
      `wrapped by ${member.email}, who is a ${member.role} now, not an owner or maintainer`,
    );
  }
  if (member.sharingKeyFingerprint !== fingerprint) {
    throw untrusted(
      org,
      copy.vaultId,
      `wrapped by ${member.email} from a sharing key that is not the one the server lists for them now`,
    );
  }
  return {
    publicKey,
    sharer: { userId: member.userId, email: member.email, role: member.role, fingerprint, self: false },
  };
}

/**
 * Opens organisation `org`'s copy of a vault (the answer of `GET /api/v1/orgs/:slug/vaults/:id`): the vault key
 * wrapped for the account's sharing key is unwrapped from the sharer's key under its context, once the sharer is
 * one the browser takes (see checkSharer; `members` is the answer of `GET /api/v1/orgs/:slug/members`), then the
 * blob. LK_ORG_VAULT_KEY_MISSING when this browser has no sharing key or the copy's key is wrapped for another.
 */
export async function openOrgCopy(
  org: string,
  copy: OrgPullResponse,
  members: readonly OrgMemberDetail[],
): Promise<OpenedOrgCopy> {
  const keys = keysOrRefuse();
  const own = keys.sharingKey;
  if (own === null) {
    throw new LatchkeyError("LK_ORG_VAULT_KEY_MISSING", {
      message: `This browser holds no sharing key, so organisation ${org}'s vaults stay locked: the machine that approved the pairing had none.`,
      hint: "Forget this browser and pair it again, approving from a machine that has used an organisation vault (it holds your sharing key).",
      details: { org, vaultId: copy.vaultId },
    });
  }
  if (copy.fingerprint !== own.fingerprint) {
    throw new LatchkeyError("LK_ORG_VAULT_KEY_MISSING", {
      message: `Organisation ${org}'s copy of vault ${copy.vaultId} has its key wrapped for another sharing key of yours than the one this browser holds.`,
      hint: `Ask a maintainer of ${org} to run \`latchkey env share --org ${org}\` in the project again.`,
      details: { org, vaultId: copy.vaultId },
    });
  }
  if (copy.keyVersion > copy.version) {
    throw unusable(
      copy.vaultId,
      `its key version ${copy.keyVersion} is above its version ${copy.version}`,
      `Organisation ${org}'s copy`,
    );
  }
  const opened = refuseRollback(
    `org:${org}:${copy.vaultId.toLowerCase()}`,
    copy.vaultId,
    copy.version,
    copy.keyVersion,
  );
  const { publicKey, sharer } = await checkSharer(org, copy, keys.account, own, members);
  let vaultKey: Uint8Array;
  try {
    vaultKey = await unwrapKeyFromSender(
      copy.wrappedKey,
      own.privateKey,
      own.publicKey,
      publicKey,
      orgVaultKeyContext(copy.vaultId, org, copy.keyVersion),
    );
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `The key of organisation ${org}'s copy of vault ${copy.vaultId} does not open as wrapped by ${sharer.email} for version ${copy.keyVersion}, though the server says it was: it was altered, or not made by that member.`,
      hint: `Ask a maintainer of ${org} to run \`latchkey env share --org ${org}\` in the project again.`,
      details: { org, vaultId: copy.vaultId },
    });
  }
  if (vaultKey.length !== 32)
    throw unusable(copy.vaultId, "its vault key is not 32 bytes", `Organisation ${org}'s copy`);
  const document = await openBlob(vaultKey, copy.vaultId, copy.version, copy.encryptedBlob, org);
  opened();
  return { document, sharedBy: sharer };
}

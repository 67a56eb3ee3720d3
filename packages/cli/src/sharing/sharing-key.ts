// The account's sharing key on this machine (docs/teams.md, "Sharing keys"): an X25519 key pair whose private half
// leaves the keystore only sealed by pairing, for another machine of the account (adoptSharingKey), and whose
// public half is registered on the server, so members of an organisation can wrap its vault keys for this account.
// Every organisation operation calls ensureSharingKey first: the server says whether the key here is the
// registered one, and a key is registered only where the account has none — never overwritten silently, since a
// stolen session could otherwise plant a key and read the next share.
import {
  API_PREFIX,
  LatchkeyError,
  SHARING_KEY_PATH,
  fromBase64,
  isLatchkeyError,
  sharingKeyFingerprint,
  sharingKeyResponseSchema,
  sharingKeyStateResponseSchema,
  toBase64,
  x25519PublicKey,
  type SharingKeySetRequest,
  type SharingKeyStateResponse,
} from "@latchkey/core";
import { join } from "node:path";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir } from "../fs/safe-file.js";
import type { Keystore } from "../keystore/types.js";
import { printStatus } from "../output/output.js";
import { callApi, type ApiOptions, type ApiResult } from "../server/api.js";
import { mintStepUpProof } from "../server/step-up.js";

/** Keystore account of the sharing key: standard base64 of the 32-byte X25519 private scalar. */
export const SHARING_KEY_ACCOUNT = "sharing-key";

/**
 * Keystore account of the key `latchkey env rotate-sharing-key` is moving to, from before its upload until it
 * becomes the sharing key: a run that stops in between finds it, and the server says whether it was uploaded.
 */
export const PENDING_SHARING_KEY_ACCOUNT = "sharing-key-pending";

/**
 * The points between the durable steps of `env rotate-sharing-key` (Context.afterRotateStep): the new key stored as
 * pending, the server holding it, the pending key promoted (before its entry is dropped).
 */
export type SharingKeyRotateStep =
  "sharing-key-pending-stored" | "sharing-key-uploaded" | "sharing-key-promoted";

/** The path of the sharing-key routes under the API prefix (callApi's paths). */
export const SHARING_KEY_API_PATH = SHARING_KEY_PATH.slice(API_PREFIX.length);

/** A sharing key pair with its fingerprint (core sharingKeyFingerprint). The private half stays in memory. */
export interface SharingKey {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
  /** Lowercase hex SHA-256 of the public key, as the server and wrapped vault keys name it. */
  readonly fingerprint: string;
}

/** The first digits of a fingerprint, as messages show it. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.slice(0, 16);
}

/** The key pair of a private scalar. */
async function fromPrivateKey(privateKey: Uint8Array): Promise<SharingKey> {
  const publicKey = await x25519PublicKey(privateKey);
  return { publicKey, privateKey, fingerprint: await sharingKeyFingerprint(publicKey) };
}

/**
 * The key pair stored under `account` (the sharing key, or the pending one), or null when there is none. The
 * public half is derived from the private one, so the two can never disagree.
 */
export async function readSharingKey(
  keystore: Keystore,
  account: string = SHARING_KEY_ACCOUNT,
): Promise<SharingKey | null> {
  const value = await keystore.get(account);
  if (value === null) return null;
  let privateKey: Uint8Array;
  try {
    privateKey = fromBase64(value);
  } catch {
    privateKey = new Uint8Array();
  }
  if (privateKey.length !== 32) {
    throw new LatchkeyError("LK_STORE_CORRUPT", {
      message: `The keystore entry ${account} is not an X25519 private key.`,
    });
  }
  return fromPrivateKey(privateKey);
}

/** A new key pair from the context's CSPRNG (X25519 takes any 32 bytes as a private scalar, RFC 7748 §5). */
export function newSharingKey(ctx: Context): Promise<SharingKey> {
  return fromPrivateKey(ctx.random.bytes(32));
}

/** Stores `key` under `account`: its private half only. */
export function storeSharingKey(keystore: Keystore, account: string, key: SharingKey): Promise<void> {
  return keystore.set(account, toBase64(key.privateKey));
}

/**
 * Runs `body` under the lock of the sharing key (a file beside the keystore's entries, under LATCHKEY_HOME): two
 * first uses on one machine agree on one key, and a promotion never interleaves with a first use.
 */
export async function underSharingKeyLock<T>(ctx: Context, body: () => Promise<T>): Promise<T> {
  const home = ctx.paths.home;
  await ensurePrivateDir(home);
  return withFileLock(join(home, SHARING_KEY_ACCOUNT), body);
}

/** Asks the server the state of the account's key as seen from `key` (null: this machine has none). */
export function askSharingKeyState(
  ctx: Context,
  key: SharingKey | null,
  options: ApiOptions,
): Promise<ApiResult<SharingKeyStateResponse>> {
  return callApi(
    ctx,
    {
      method: "GET",
      path: key === null ? SHARING_KEY_API_PATH : `${SHARING_KEY_API_PATH}?fingerprint=${key.fingerprint}`,
      answer: sharingKeyStateResponseSchema,
    },
    options,
  );
}

/** Makes the pending key the sharing key, and then drops the pending entry. */
export async function promotePendingSharingKey(
  ctx: Context,
  keystore: Keystore,
  pending: SharingKey,
): Promise<void> {
  await underSharingKeyLock(ctx, async () => {
    await storeSharingKey(keystore, SHARING_KEY_ACCOUNT, pending);
    await ctx.afterRotateStep?.("sharing-key-promoted");
    await keystore.delete(PENDING_SHARING_KEY_ACCOUNT);
  });
}

/**
 * Finishes a rotation that stopped after its upload: when the pending key is the one the server has, it becomes
 * the sharing key. Returns it then, with the server that has it; null when there is no pending key or the server
 * has another one (the upload never happened, and the pending key stays for the next rotation to send).
 */
export async function recoverPendingSharingKey(
  ctx: Context,
  keystore: Keystore,
  options: ApiOptions,
): Promise<{ key: SharingKey; server: string } | null> {
  const pending = await readSharingKey(keystore, PENDING_SHARING_KEY_ACCOUNT);
  if (pending === null) return null;
  const asked = await askSharingKeyState(ctx, pending, options);
  if (asked.data.state !== "matches") return null;
  await promotePendingSharingKey(ctx, keystore, pending);
  return { key: pending, server: asked.server };
}

/** LK_SHARING_KEY_MISMATCH for a state answer that is `rotation-required`. */
export function sharingKeyMismatch(
  server: string,
  registered: string | null,
  local: SharingKey | null,
): LatchkeyError {
  const theirs = registered === null ? "another key" : `the key ${shortFingerprint(registered)}…`;
  const ours = local === null ? "none" : `${shortFingerprint(local.fingerprint)}…`;
  return new LatchkeyError("LK_SHARING_KEY_MISMATCH", {
    message: `${server} has ${theirs} as your account's sharing key, and this machine holds ${local === null ? "none" : `another (${ours})`}: organisation operations are refused here rather than replace it silently.`,
    details: {
      server,
      registeredFingerprint: registered,
      localFingerprint: local?.fingerprint ?? null,
    },
  });
}

/** The sharing key of this machine, created (under the lock) when it has none. */
async function getOrCreateSharingKey(ctx: Context, keystore: Keystore): Promise<SharingKey> {
  const existing = await readSharingKey(keystore);
  if (existing !== null) return existing;
  return underSharingKeyLock(ctx, async () => {
    const again = await readSharingKey(keystore);
    if (again !== null) return again;
    const key = await newSharingKey(ctx);
    await storeSharingKey(keystore, SHARING_KEY_ACCOUNT, key);
    return key;
  });
}

/**
 * Makes sure this machine's sharing key is the one the server has for the account, before an organisation
 * operation: every one of them calls this first and uses the key it returns to open what is wrapped for it.
 * - a pending key left by an interrupted `env rotate-sharing-key` that the server already has becomes the key;
 * - `matches`: returns the key;
 * - `needs-initial-set`: creates a key if this machine has none (stored before it is sent, so a crash cannot
 *   lose a registered key), and registers it with a `vault:public-key:set` step-up proof (the person types their
 *   password on a terminal; LK_NOT_INTERACTIVE without one). When another run registered one meanwhile (409), the
 *   state is asked again;
 * - `rotation-required`: LK_SHARING_KEY_MISMATCH, pointing to `latchkey env rotate-sharing-key`.
 */
export async function ensureSharingKey(ctx: Context, options: ApiOptions = {}): Promise<SharingKey> {
  const { keystore } = await ctx.keystore(SHARING_KEY_ACCOUNT);
  const recovered = await recoverPendingSharingKey(ctx, keystore, options);
  if (recovered !== null) return recovered.key;
  const local = await readSharingKey(keystore);
  const asked = await askSharingKeyState(ctx, local, options);
  const at: ApiOptions = { ...options, server: asked.server };
  if (asked.data.state === "matches" && local !== null) return local;
  if (asked.data.state !== "needs-initial-set") {
    throw sharingKeyMismatch(asked.server, asked.data.fingerprint, local);
  }
  const key = local ?? (await getOrCreateSharingKey(ctx, keystore));
  printStatus(
    ctx,
    `Your account has no sharing key on ${asked.server} yet: registering this machine's (${shortFingerprint(key.fingerprint)}…), so that organisations can share vaults with you.`,
  );
  const proof = await mintStepUpProof(ctx, "vault:public-key:set", at);
  const body: SharingKeySetRequest = { publicKey: toBase64(key.publicKey) };
  try {
    const set = await callApi(
      ctx,
      {
        method: "PUT",
        path: SHARING_KEY_API_PATH,
        body,
        answer: sharingKeyResponseSchema,
        stepUpProof: proof.proof,
      },
      { ...at, server: proof.server },
    );
    if (set.data.fingerprint !== key.fingerprint) {
      throw new LatchkeyError("LK_SERVER_ERROR", {
        message: `${set.server} answered the registration of sharing key ${shortFingerprint(key.fingerprint)}… with another key; it was not used.`,
        details: { server: set.server },
      });
    }
    return key;
  } catch (error) {
    if (!isLatchkeyError(error, "LK_SHARING_KEY_EXISTS")) throw error;
    const again = await askSharingKeyState(ctx, key, { ...at, server: proof.server });
    if (again.data.state === "matches") return key;
    throw sharingKeyMismatch(again.server, again.data.fingerprint, key);
  }
}

/**
 * What pairing did with the sharing key the other machine handed over (docs/pairing.md, "Adoption"), named by the
 * fingerprint of the key this machine holds afterwards:
 * - `none`: the other machine has no sharing key; nothing changed;
 * - `stored`: this machine had none, so the received key became its sharing key;
 * - `unchanged`: this machine already held that key;
 * - `kept`: this machine's own key is the one the server has registered; the received one was dropped;
 * - `replaced`: this machine's own key was not the registered one and the received one is, so it took its place;
 * - `ignored`: neither is the registered one (the account has another key, or none yet): this machine kept its
 *   own.
 */
export type SharingKeyAdoption =
  { how: "none" } | { how: "stored" | "unchanged" | "kept" | "replaced" | "ignored"; fingerprint: string };

/**
 * Makes `privateKey`, the account's sharing key received by pairing, this machine's sharing key where that helps:
 * always when this machine has none; otherwise only when the server says its own one is not the account's
 * registered key and the received one is, since a registered key holds the organisation vault keys wrapped for
 * it. Under the sharing key's lock, so no first use or promotion interleaves; the key is stored by one keystore
 * write, so a crash leaves the old key or the new one. A pending key (an unfinished `env rotate-sharing-key`) is
 * refused, as is a pending wrapping key at adoption: the rotation would replace whatever this stored.
 */
export async function adoptSharingKey(
  ctx: Context,
  privateKey: Uint8Array,
  options: ApiOptions,
): Promise<SharingKeyAdoption> {
  const received = await fromPrivateKey(privateKey);
  const { keystore } = await ctx.keystore(SHARING_KEY_ACCOUNT);
  return underSharingKeyLock(ctx, async () => {
    if ((await keystore.get(PENDING_SHARING_KEY_ACCOUNT)) !== null) {
      throw new LatchkeyError("LK_PAIRING_FAILED", {
        message:
          "This machine is in the middle of replacing its sharing key (an unfinished `latchkey env rotate-sharing-key`), so the sharing key received by pairing was not stored.",
        hint: "Run `latchkey env rotate-sharing-key` to finish that first; to take your other machine's key instead, pair again afterwards.",
      });
    }
    const local = await readSharingKey(keystore);
    const take = async (how: "stored" | "replaced"): Promise<SharingKeyAdoption> => {
      await storeSharingKey(keystore, SHARING_KEY_ACCOUNT, received);
      return { how, fingerprint: received.fingerprint };
    };
    if (local === null) return take("stored");
    if (local.fingerprint === received.fingerprint)
      return { how: "unchanged", fingerprint: local.fingerprint };
    const asked = await askSharingKeyState(ctx, local, options);
    if (asked.data.state === "matches") return { how: "kept", fingerprint: local.fingerprint };
    if (asked.data.fingerprint === received.fingerprint) return take("replaced");
    return { how: "ignored", fingerprint: local.fingerprint };
  });
}

/**
 * An account's sharing key (docs/teams.md, "Sharing keys"): the X25519 key pair (x25519.ts) whose public half the
 * server holds, so that others can wrap organisation vault keys for the account. What the server, the CLI and
 * other slices must agree on lives here: the size of a public key, whether one is usable, and its fingerprint.
 */
import { toBufferSource, toHex, utf8Encode } from "./bytes.js";
import { isLatchkeyError, LatchkeyError } from "./errors.js";
import { x25519SharedSecret } from "./x25519.js";

/** Bytes of an X25519 public key (RFC 7748 §5). */
export const SHARING_PUBLIC_KEY_BYTES = 32;

/** Characters of a sharing key fingerprint: the hex SHA-256 of the public key. */
export const SHARING_KEY_FINGERPRINT_LENGTH = 64;

/**
 * The fingerprint of a sharing public key: the lowercase hex SHA-256 of its 32 raw bytes. The server stores it
 * beside the key, the CLI sends it to ask whether its key is the registered one, and a wrapped vault key records
 * the fingerprint of the key it was wrapped for.
 */
export async function sharingKeyFingerprint(publicKey: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", toBufferSource(publicKey))));
}

// Any clamped scalar gives an all-zero shared secret exactly when the peer key is a low-order point, so a fixed
// one tells such keys apart; the secret it computes is thrown away.
const PROBE_SCALAR = new Uint8Array(32).fill(0x5a);

/**
 * Whether `publicKey` is a key that others can wrap for: 32 bytes and not a low-order point. A low-order key would
 * make every wrap for it fail (wrapKeyForRecipient refuses it), so the server refuses to register one.
 */
export async function isUsableSharingPublicKey(publicKey: Uint8Array): Promise<boolean> {
  if (publicKey.length !== SHARING_PUBLIC_KEY_BYTES) return false;
  try {
    await x25519SharedSecret(PROBE_SCALAR, publicKey);
    return true;
  } catch (error) {
    if (isLatchkeyError(error, "LK_FORMAT_INVALID")) return false;
    throw error;
  }
}

const ORG_VAULT_KEY_LABEL = "latchkey-org-vault-key-v1";

/**
 * The context an organisation copy's vault key is wrapped under (`wrapKeyFromSender`): which vault, which
 * organisation's copy, and the version of the share that wrapped it (its key version). A wrap made for one copy
 * or share therefore opens for no other, and a member's CLI can refuse a key version older than one it has seen.
 * The vault id and slug are the canonical forms the wire schemas accept (no line breaks).
 */
export function orgVaultKeyContext(vaultId: string, slug: string, keyVersion: number): Uint8Array {
  if (/[\r\n]/.test(vaultId) || /[\r\n]/.test(slug) || !Number.isSafeInteger(keyVersion) || keyVersion < 1) {
    throw new LatchkeyError("LK_FORMAT_INVALID", {
      message: "An organisation vault key context needs a vault id, a slug and a key version of 1 or more.",
    });
  }
  return utf8Encode(`${ORG_VAULT_KEY_LABEL}\n${vaultId}\n${slug}\n${keyVersion}`);
}

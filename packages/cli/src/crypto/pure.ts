// SHA-256, HKDF-SHA256 and AES-256-GCM decryption in plain JavaScript, for the small inputs the CLI's hot read
// paths handle (the file store, a wrapped vault key, a small vault, an approval's hash). Why not node:crypto
// there: loading it costs 6–8 ms, which alone is most of the start-up budget of `latchkey token` and
// `keystore get` (bench scenarios 2 and 7), while the work itself is a few dozen blocks. The primitives are the
// audited @noble/hashes and @noble/ciphers, bundled into fast.cjs (scripts/build.mjs) and so under the launcher's
// code cache; this file only fixes the parameters the envelope uses. Decryption only: every key and nonce is
// still made by node:crypto, and native.ts hands large inputs to node:crypto, where AES-NI wins over the load.
// The AES module is loaded at the first decryption (noble-gcm.ts): evaluating it costs a few milliseconds.
//
// Side channels: noble's AES uses lookup tables, whose cache timing can depend on the key. The keys opened here
// sit in files or keychain items that any process able to mount such an attack (same user, same host) can read
// outright, so this adds no exposure. pure.test.ts checks every function against NIST/RFC vectors and against
// node:crypto on generated inputs, including tampered ones.

import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";

const KEY_LENGTH = 32;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;

/** SHA-256 of `data` (FIPS 180-4). */
export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

/** HKDF-SHA256 (RFC 5869), extract then expand; throws when `length` is past 255 × 32 bytes. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return hkdf(nobleSha256, ikm, salt, info, length);
}

/**
 * AES-256-GCM decryption with a 12-byte nonce and a 16-byte tag appended to `sealed` (SP 800-38D). Returns the
 * plaintext, or null when the tag does not verify (no plaintext is released then) or a size is not the
 * envelope's: noble would also take AES-128 keys and other nonce lengths. Asynchronous only because the AES
 * module is loaded on the first call; the decryption itself is synchronous.
 */
export async function aes256GcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  additionalData: Uint8Array,
): Promise<Uint8Array | null> {
  if (key.length !== KEY_LENGTH || nonce.length !== NONCE_LENGTH || sealed.length < TAG_LENGTH) return null;
  const { gcm } = await import("./noble-gcm.js");
  try {
    return gcm(key, nonce, additionalData).decrypt(sealed);
  } catch {
    return null;
  }
}

/**
 * HKDF-SHA256 key derivation (RFC 5869, https://www.rfc-editor.org/rfc/rfc5869) on WebCrypto.
 */
import { toBufferSource } from "./bytes.js";

// RFC 5869 §2.3: L <= 255 * HashLen.
const MAX_LENGTH = 255 * 32;

/**
 * Derives `length` bytes (1..8160) from input keying material with HKDF-SHA256: extract with `salt` (an empty
 * salt means HashLen zero bytes, per RFC 5869 §2.2), then expand with `info`, which should name the purpose
 * so keys derived for different uses never coincide.
 */
export async function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  if (!Number.isSafeInteger(length) || length < 1 || length > MAX_LENGTH) {
    throw new RangeError(`hkdfSha256: length must be an integer from 1 to ${MAX_LENGTH}`);
  }
  const subtle = globalThis.crypto.subtle;
  const key = await subtle.importKey("raw", toBufferSource(ikm), "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: toBufferSource(salt), info: toBufferSource(info) },
    key,
    length * 8,
  );
  return new Uint8Array(bits);
}

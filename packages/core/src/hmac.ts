/**
 * HMAC-SHA256 (RFC 2104, https://www.rfc-editor.org/rfc/rfc2104) on WebCrypto, e.g. for the server's
 * `X-Latchkey-Signature` over sync responses.
 */
import { constantTimeEqual, toBufferSource } from "./bytes.js";
import { LatchkeyError } from "./errors.js";

function importHmacKey(key: Uint8Array, usage: "sign"): Promise<CryptoKey> {
  // WebCrypto refuses zero-length HMAC keys (Node: DataError), so say so in our own terms.
  if (key.length === 0) {
    throw new LatchkeyError("LK_FORMAT_INVALID", { message: "An HMAC key must not be empty." });
  }
  return globalThis.crypto.subtle.importKey(
    "raw",
    toBufferSource(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

/** Computes the 32-byte HMAC-SHA256 of `data` under `key` (which must not be empty). */
export async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const cryptoKey = await importHmacKey(key, "sign");
  return new Uint8Array(await globalThis.crypto.subtle.sign("HMAC", cryptoKey, toBufferSource(data)));
}

/**
 * Checks a full 32-byte HMAC-SHA256 tag in constant time. A tag of any other length — including a truncated
 * one (RFC 4231 test case 5 style) — is simply false, so a short guess can never verify.
 */
export async function verifyHmacSha256(key: Uint8Array, data: Uint8Array, mac: Uint8Array): Promise<boolean> {
  const expected = await hmacSha256(key, data);
  return constantTimeEqual(expected, mac);
}

/**
 * Randomness for keys, nonces and ids, from the platform CSPRNG (`crypto.getRandomValues`) in Node and the
 * browser alike. Nothing in Latchkey may use `Math.random`.
 */

// getRandomValues throws QuotaExceededError above 65536 bytes per call (WebCrypto §10.1.1).
const MAX_CHUNK = 65536;

/**
 * Returns `length` cryptographically secure random bytes, filled in chunks so any length works.
 * https://w3c.github.io/webcrypto/#Crypto-method-getRandomValues
 */
export function randomBytes(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0)
    throw new RangeError("randomBytes: length must be a non-negative integer");
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += MAX_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(offset + MAX_CHUNK, length)));
  }
  return out;
}

/** Returns a fresh 256-bit key (machine wrapping key, vault key, AES-256-GCM key). */
export function randomKey(): Uint8Array {
  return randomBytes(32);
}

/**
 * Returns a random UUID v4 (RFC 9562 §5.4, https://www.rfc-editor.org/rfc/rfc9562#section-5.4), e.g. a new
 * vault id. Lowercase, 36 characters.
 */
export function randomId(): string {
  return globalThis.crypto.randomUUID();
}

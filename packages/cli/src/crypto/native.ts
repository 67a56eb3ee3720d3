// The CLI's envelope and HKDF on node:crypto, byte for byte the formats of @latchkey/core. Why not core's
// WebCrypto: its first use in a process costs 7–10 ms (loading Node's WebCrypto layer and its promise hops),
// which is most of the budget of `run`, `env get` and the credential helpers that other programs call many
// times a second. The layout pieces (header, GCM additional data, nonce checks) come from core, so only the
// AES-GCM and HKDF calls differ; native.test.ts checks both directions against core. Small reads skip node:crypto
// altogether: they open with @noble/ciphers and derive with @noble/hashes (pure.ts), below.
import {
  LatchkeyError,
  checkEnvelopeKey,
  envelopeGcmAdditionalData,
  envelopeNonce,
  joinEnvelope,
  splitEnvelope,
} from "@latchkey/core";
import type * as NodeCrypto from "node:crypto";
import { aes256GcmOpen, hkdfSha256 } from "./pure.js";

const TAG_LENGTH = 16;

// Loaded at the first call, not at import (which the bundle would hoist to start-up): node:crypto costs 6–8 ms to
// load, and reads (a token from the file store, a small vault) need none of it: they go through pure.ts.
let loaded: typeof NodeCrypto | undefined;
const crypto = () => (loaded ??= process.getBuiltinModule("node:crypto"));

/**
 * Above this many bytes of ciphertext, loading node:crypto (AES-NI) costs less than opening in JavaScript: a
 * first open there evaluates noble's AES module, builds GHASH tables for the key (larger ones past 1 KiB) and
 * runs as yet unoptimised code. Measured with `keystore get` on file stores of several sizes, the built CLI run
 * with this limit forced either way, 40 alternating runs each on warm code caches: JavaScript was 1.0 ms faster
 * at 71 and 297 bytes, even at 553 and 1,065, 2.1 ms slower at 1,577 and 5.0 ms slower at 16 KiB.
 */
export const PURE_OPEN_LIMIT = 1024;

/** Whether this open goes through pure.ts: small, and node:crypto not loaded yet (once it is, it is cheaper). */
function openInJavaScript(sealedLength: number): boolean {
  return loaded === undefined && sealedLength <= PURE_OPEN_LIMIT;
}

/** CSPRNG bytes from node:crypto (core's randomBytes would load WebCrypto for crypto.getRandomValues). */
export function nativeRandomBytes(length: number): Uint8Array {
  return crypto().randomFillSync(new Uint8Array(length));
}

/** core's sealEnvelope, synchronous; `random` draws the nonce (tests inject it, `nonce` pins it for vectors). */
export function sealEnvelopeSync(
  key: Uint8Array,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
  random: (length: number) => Uint8Array = nativeRandomBytes,
  nonce?: Uint8Array,
): Uint8Array {
  checkEnvelopeKey(key);
  const iv = envelopeNonce(nonce, random);
  const cipher = crypto().createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(envelopeGcmAdditionalData(associatedData));
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  const sealed = new Uint8Array(head.length + tail.length + TAG_LENGTH);
  sealed.set(head, 0);
  sealed.set(tail, head.length);
  sealed.set(cipher.getAuthTag(), head.length + tail.length);
  return joinEnvelope(iv, sealed);
}

/**
 * core's openEnvelope without WebCrypto: every failure is the same opaque `LK_DECRYPT_FAILED`. Asynchronous
 * because the JavaScript AES is loaded at its first use (pure.ts). `implementation` exists for tests, which must
 * drive both; callers leave it to the size rule above.
 */
export async function openEnvelopeCli(
  key: Uint8Array,
  envelope: Uint8Array,
  associatedData: Uint8Array,
  implementation?: "javascript" | "node",
): Promise<Uint8Array> {
  checkEnvelopeKey(key);
  try {
    const { nonce, sealed } = splitEnvelope(envelope);
    if (
      implementation === "javascript" ||
      (implementation === undefined && openInJavaScript(sealed.length))
    ) {
      const plaintext = await aes256GcmOpen(key, nonce, sealed, envelopeGcmAdditionalData(associatedData));
      if (plaintext === null) throw new Error("tag");
      return plaintext;
    }
    const body = sealed.subarray(0, sealed.length - TAG_LENGTH);
    const decipher = crypto().createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(envelopeGcmAdditionalData(associatedData));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
    const head = decipher.update(body);
    const tail = decipher.final();
    const plaintext = new Uint8Array(head.length + tail.length);
    plaintext.set(head, 0);
    plaintext.set(tail, head.length);
    return plaintext;
  } catch {
    // Deliberately no cause: it would say which check failed.
    throw new LatchkeyError("LK_DECRYPT_FAILED");
  }
}

/** core's hkdfSha256, synchronous; in JavaScript unless node:crypto is loaded already (see openEnvelopeCli). */
export function hkdfSha256Sync(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
  implementation?: "javascript" | "node",
): Uint8Array {
  if (implementation === "javascript" || (implementation === undefined && loaded === undefined)) {
    return hkdfSha256(ikm, salt, info, length);
  }
  return new Uint8Array(crypto().hkdfSync("sha256", ikm, salt, info, length));
}

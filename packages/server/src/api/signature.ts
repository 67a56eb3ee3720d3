/**
 * Response signatures: `X-Latchkey-Signature` is standard base64 of HMAC-SHA256, keyed by SHA-256 of the bearer
 * token's UTF-8 bytes, over core's signaturePreamble (version, method, path, request id, status) followed by the
 * exact body bytes. Only the holder of the token can verify (or forge) it, so a proxy or a server that does not
 * know the token cannot alter a signed answer unnoticed, nor hand it out as the answer to another request.
 */
import { createHash, createHmac, createSecretKey, type KeyObject } from "node:crypto";
import { signaturePreamble, type SignedRequest } from "@latchkey/core";

/** The HMAC key for responses to requests carrying `bearerToken`. */
export function signatureKey(bearerToken: string): Buffer {
  return createHash("sha256").update(bearerToken, "utf8").digest();
}

// Importing the raw key into an HMAC costs about three times the HMAC of a 4 KiB body, and a client sends many
// requests with one token: keep the imported keys of recent tokens, indexed by the key's own hex (never by the
// token), bounded so the map cannot grow with the number of tokens seen.
const KEY_CACHE_SIZE = 1024;
const keys = new Map<string, KeyObject>();

function importedKey(bearerToken: string): KeyObject {
  const raw = signatureKey(bearerToken);
  const id = raw.toString("hex");
  let key = keys.get(id);
  if (key === undefined) {
    key = createSecretKey(raw);
    if (keys.size >= KEY_CACHE_SIZE) keys.delete(keys.keys().next().value!);
    keys.set(id, key);
  }
  return key;
}

/**
 * The header value for the answer to `request` whose body is `body` (the bytes exactly as sent; a string is taken
 * as UTF-8). The body is fed to the HMAC as it is, never copied behind the preamble.
 */
export function signResponse(bearerToken: string, request: SignedRequest, body: Uint8Array | string): string {
  const hmac = createHmac("sha256", importedKey(bearerToken));
  hmac.update(signaturePreamble(request), "utf8");
  if (typeof body === "string") hmac.update(body, "utf8");
  else hmac.update(body);
  return hmac.digest("base64");
}

// The response signature of the sync API (sync-wire.ts SIGNATURE_HEADER): HMAC-SHA256, keyed by SHA-256 of the
// bearer token, over core's signaturePreamble (method, path, request id, status) and the exact body bytes. It
// binds each answer to the session and the very request that asked for it, so a proxy that swaps bodies, replays
// an answer to another request, or a server that is not the one logged in to, is caught before the body is
// parsed. Anyone who holds the token can still forge it (docs/sync-protocol.md).
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { LatchkeyError, signaturePreamble, type SignedRequest } from "@latchkey/core";

/** The header as users see it in messages (HTTP header names are case-insensitive). */
export const SIGNATURE_HEADER_DISPLAY = "X-Latchkey-Signature";

/** Standard base64 of 32 bytes: 43 characters and one `=`; anything else is not a signature. */
const SIGNATURE_SHAPE = /^[A-Za-z0-9+/]{43}=$/;

/** base64(HMAC-SHA256(key = SHA-256(utf8(accessToken)), utf8(signaturePreamble(request)) || body)). */
export function signResponse(accessToken: string, request: SignedRequest, body: Uint8Array): string {
  const key = createHash("sha256").update(accessToken, "utf8").digest();
  return createHmac("sha256", key).update(signaturePreamble(request), "utf8").update(body).digest("base64");
}

function invalid(why: string, where: string): LatchkeyError {
  return new LatchkeyError("LK_SIGNATURE_INVALID", {
    message: `The response of ${where} failed its ${SIGNATURE_HEADER_DISPLAY} check: ${why}; the body was discarded unread.`,
    details: { header: SIGNATURE_HEADER_DISPLAY },
  });
}

/**
 * Throws LK_SIGNATURE_INVALID unless `header` is the signature, under `accessToken`, of `body` as the answer to
 * `request` with its status: missing, not standard base64 of 32 bytes, or different — a changed body, or an
 * answer signed for another request, method, path or status (compared in constant time). There is no fallback to
 * an unsigned body. `where` names the request (method and URL, no token) in the message.
 */
export function verifySignature(
  accessToken: string,
  request: SignedRequest,
  body: Uint8Array,
  header: string | null,
  where: string,
): void {
  if (header === null || header === "") throw invalid("the header is missing", where);
  const value = header.trim();
  if (!SIGNATURE_SHAPE.test(value)) throw invalid("the header is not base64 of an HMAC-SHA256", where);
  const expected = Buffer.from(signResponse(accessToken, request, body), "base64");
  const given = Buffer.from(value, "base64");
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw invalid("the signature does not match this request and its answer", where);
}

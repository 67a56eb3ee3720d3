/**
 * The sync API's wire contract between `latchkey` and `latchkey-server`: paths, the request id and signature
 * headers, the signed bytes of an answer and the associated data of a pushed blob. Both sides import it, so a
 * change on one side is a type error on the other. The bodies are schemas in schemas/sync-api.ts, which both sides
 * validate with: the server every request body, the CLI every answer once its signature has been verified.
 *
 * Every request to `/api/v1/*` carries `Authorization: Bearer <access token>` issued by the server's OpenID
 * provider to the client `latchkey-cli`, and a fresh {@link REQUEST_ID_HEADER}. Every 2xx response under
 * `/api/v1/` carries {@link SIGNATURE_HEADER} over {@link signaturePreamble} and the body; error responses are
 * unsigned and carry an `ApiErrorBody`. docs/sync-protocol.md says what the signature does and does not
 * protect.
 */
import { concatBytes, fromBase64, toBufferSource, utf8Encode } from "./bytes.js";
import { associatedData } from "./envelope.js";
import { verifyHmacSha256 } from "./hmac.js";

/** The path prefix of the sync API. */
export const API_PREFIX = "/api/v1";

/** The OAuth client id the CLI uses at a Latchkey server: a public (native) client, PKCE required. */
export const CLI_CLIENT_ID = "latchkey-cli";

/** Where the server mounts its OpenID provider; the issuer is `${publicUrl}${OIDC_PATH}`. */
export const OIDC_PATH = "/oidc";

/**
 * The OAuth client id of the browser dashboard (packages/web): a public web client, PKCE required, authorization
 * code only (no refresh token in a browser). Its access tokens are accepted by the API like the CLI's.
 */
export const DASHBOARD_CLIENT_ID = "latchkey-dashboard";

/** Where the server serves the dashboard; its sign-in returns to `${publicUrl}${DASHBOARD_PATH}/callback`. */
export const DASHBOARD_PATH = "/dashboard";

/**
 * The response signature: standard base64 of HMAC-SHA256, keyed by SHA-256 of the bearer token's UTF-8 bytes,
 * over the UTF-8 bytes of {@link signaturePreamble} followed by the exact body bytes. The CLI verifies it before
 * parsing the body.
 */
export const SIGNATURE_HEADER = "x-latchkey-signature";

/**
 * The request id: fresh random for every request the CLI sends (16 bytes, base64url), echoed by the server into
 * the signed bytes of its answer, so an answer signed for one request is refused as the answer to any other. The
 * server refuses a request to `/api/v1/*` without a well-formed one (400).
 */
export const REQUEST_ID_HEADER = "x-latchkey-request-id";

// At least 22 base64url characters is at least 128 bits when random (a UUID also fits); the bound keeps it short.
const REQUEST_ID = /^[A-Za-z0-9_-]{22,64}$/;

/** True when `value` is a well-formed request id: 22 to 64 base64url characters (no padding). */
export function isRequestId(value: string): boolean {
  return REQUEST_ID.test(value);
}

/** The first line of the signed bytes; a change to what is signed gets a new one. */
export const SIGNATURE_VERSION = "latchkey-sig-v2";

/** What an answer's signature binds besides its body. */
export interface SignedRequest {
  /** The request's method, upper case (`GET`, `PUT`). */
  method: string;
  /** The request target as the server received it: path and query, e.g. `/api/v1/vaults/<id>/log?limit=5`. */
  path: string;
  /** The request's {@link REQUEST_ID_HEADER}. */
  requestId: string;
  /** The answer's HTTP status. */
  status: number;
}

const METHOD = /^[A-Z]{1,16}$/;
// The printable ASCII of an HTTP request target: no space, no line break, so the preamble splits one way only.
const REQUEST_TARGET = /^\/[\x21-\x7e]*$/;

/**
 * The signed bytes before the body, as text (ASCII): `latchkey-sig-v2 LF method LF path LF requestId LF status
 * LF`. No field can hold a line feed, and the body comes last, so each signed byte string has exactly one
 * reading. Throws (a bug, not bad input) for a field outside its shape.
 */
export function signaturePreamble(request: SignedRequest): string {
  const { method, path, requestId, status } = request;
  if (!METHOD.test(method)) throw new Error("signaturePreamble: the method is not an upper-case token");
  if (!REQUEST_TARGET.test(path))
    throw new Error("signaturePreamble: the path is not printable ASCII from '/'");
  if (!isRequestId(requestId)) throw new Error("signaturePreamble: the request id is malformed");
  if (!Number.isInteger(status) || status < 100 || status > 599)
    throw new Error("signaturePreamble: the status is not an HTTP status");
  return `${SIGNATURE_VERSION}\n${method}\n${path}\n${requestId}\n${status}\n`;
}

/** Standard base64 of 32 bytes: 43 characters and one `=`; anything else is not a signature. */
const SIGNATURE_SHAPE = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Whether `header` is the {@link SIGNATURE_HEADER} of `body` as the answer to `request`, under `accessToken`:
 * false when missing, not base64 of 32 bytes, or different (compared in constant time). WebCrypto only, so the
 * browser dashboard checks answers exactly as the protocol says (docs/sync-protocol.md).
 */
export async function responseSignatureValid(
  accessToken: string,
  request: SignedRequest,
  body: Uint8Array,
  header: string | null,
): Promise<boolean> {
  const value = header?.trim() ?? "";
  if (!SIGNATURE_SHAPE.test(value)) return false;
  const key = new Uint8Array(
    await globalThis.crypto.subtle.digest("SHA-256", toBufferSource(utf8Encode(accessToken))),
  );
  return verifyHmacSha256(key, concatBytes(utf8Encode(signaturePreamble(request)), body), fromBase64(value));
}

/**
 * The one spelling of a vault id: ASCII letters in lower case. Vault ids are ASCII (the CLI's whitelist; the
 * server takes only UUIDs, which RFC 9562 compares case-insensitively), and one vault must have one file name,
 * one keystore account, one server row and one associated data on every machine however latchkey.json spells it.
 */
export function canonicalVaultId(vaultId: string): string {
  return vaultId.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/**
 * The largest vault a client pushes, as the UTF-8 bytes of its plaintext JSON document. The server's limit on
 * `encryptedBlob` leaves room for such a document sealed; clients refuse a larger vault before sending it.
 */
export const MAX_VAULT_DOCUMENT_BYTES = 5 * 1024 * 1024;

/**
 * The associated data of a wrapped vault key (the envelope of the 32-byte vault key under a machine wrapping key,
 * kept in a machine's keystore and pushed as `wrappedKey`): it binds the vault id in its one spelling, so a wrapped
 * key copied under another vault's id fails to open. The CLI and the browser dashboard open it with this.
 */
export function vaultKeyContext(vaultId: string): Uint8Array {
  return associatedData({ purpose: "latchkey-vault-key", vault: canonicalVaultId(vaultId) });
}

/**
 * The associated data of a pushed blob: it binds the vault id (in its one spelling, so machines spelling it
 * differently agree) and the version the blob was pushed as, so the server cannot serve one vault's blob under
 * another id, or an old blob under a newer version number. An organisation's copy also binds the organisation's
 * slug, so one organisation's blob can never be served as another's or as a personal copy.
 */
export function syncBlobContext(vaultId: string, version: number, org?: string): Uint8Array {
  return associatedData({
    purpose: "latchkey-sync-blob",
    vault: canonicalVaultId(vaultId),
    version,
    ...(org === undefined ? {} : { org }),
  });
}

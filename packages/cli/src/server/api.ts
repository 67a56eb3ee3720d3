// The client of the sync API (`/api/v1`, sync-wire.ts): one function every server command goes through, over the
// CLI's one HTTP client (http/client.ts). It sends the active profile's access token and a fresh request id with
// every attempt, refreshes once on a 401, has each answer's signature checked against the very attempt that asked
// for it before a byte of the body is parsed, parses the answer with its schema from core (schemas/sync-api.ts),
// and maps the server's errors onto the catalogue.
import {
  API_PREFIX,
  LatchkeyError,
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  STEP_UP_HEADER,
  apiErrorBodySchema,
  checkSchema,
  errorCatalogue,
  type ErrorCode,
  type WireSchema,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { REQUEST_TIMEOUT_MS, request, type Attempt, type Bearer } from "../http/client.js";
import { refreshServerSession, requireServerSession, sessionExpired, unreachable } from "./session.js";
import { verifySignature } from "./signature.js";

/** One request to the sync API, and what its 2xx answer must be. */
export interface ApiCall<T> {
  method: "GET" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** The path under API_PREFIX, e.g. `/vaults/${id}`. */
  path: string;
  /** Sent as JSON. */
  body?: unknown;
  /** The schema of the 2xx answer (core's schemas/sync-api.ts); an answer it refuses is LK_SERVER_ERROR. */
  answer: WireSchema<T>;
  /** A step-up proof for this one request (server/step-up.ts mints it), sent as STEP_UP_HEADER. */
  stepUpProof?: string;
  /**
   * The request or its answer carries a credential or plaintext values under names the trace redaction cannot
   * tell (the CI exchange and pull): `-vv` traces show the bodies' length only.
   */
  secretBodies?: boolean;
}

/** Which session to use, and how loud to be. */
export interface ApiOptions {
  profile?: string;
  server?: string;
  /** -v level: traces requests on stderr, tokens redacted. */
  verbose?: number;
}

/**
 * A credential of the call's own instead of a session, for the routes whose callers are not signed in (the CI
 * exchange and pull, ci/ci-pull.ts): no keystore is read and nothing is refreshed.
 */
export interface ApiCredential {
  /** The server, canonical (server/session.ts canonicalServerUrl). */
  server: string;
  /** Sent as the bearer token; absent: the request has no Authorization header. */
  bearer?: string;
  /** What the answer's signature is keyed with: the bearer token, or the proof the body carries. */
  signedWith: string;
}

/** A verified, parsed answer. */
export interface ApiResult<T> {
  data: T;
  /** The server it came from (canonical URL). */
  server: string;
  /** The session's subject: the user id at the server. */
  userId: string;
}

/** The largest error body read for its code: error bodies are a few hundred bytes. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** Random bytes of a request id: 128 bits, 22 base64url characters (sync-wire.ts isRequestId). */
const REQUEST_ID_BYTES = 16;

function describe(call: ApiCall<unknown>, server: string): string {
  return `${call.method} ${server}${API_PREFIX}${call.path}`;
}

/**
 * The catalogue code and current version an error body names, if it is an ApiErrorBody (a proxy's error page is
 * not); never its message. Error answers are unsigned: these only choose which error to show.
 */
async function errorBody(
  response: Response,
): Promise<{ code?: string; currentVersion?: number; message?: string }> {
  let text: string;
  try {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > MAX_ERROR_BODY_BYTES) return {};
    text = new TextDecoder().decode(bytes);
  } catch {
    return {};
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return {};
  }
  const checked = checkSchema(apiErrorBodySchema, json);
  if (!checked.ok) return {};
  const { code, currentVersion, message } = checked.value;
  return { code, message, ...(currentVersion === undefined ? {} : { currentVersion }) };
}

function isCatalogueCode(code: string | undefined): code is ErrorCode {
  return code !== undefined && Object.hasOwn(errorCatalogue, code);
}

// The refusals a 403 may name: the step-up routes and the routes that need a proof say which it is, and each has
// its own remedy (type the password again, ask for one, set one); an organisation route says the caller's role is
// too weak. Anything else a 403 names is LK_FORBIDDEN.
const FORBIDDEN_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "LK_STEP_UP_REQUIRED",
  "LK_STEP_UP_FAILED",
  "LK_STEP_UP_UNAVAILABLE",
  "LK_ORG_FORBIDDEN",
  "LK_CI_POLICY_DENIED",
]);

// The CI routes' refusals of the credential a job presented (401), or of its issuer's keys (502): each has its own
// remedy. A session's 401 never gets here (callApi refreshes, then says the session expired).
const CI_CREDENTIAL_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "LK_CI_TOKEN_INVALID",
  "LK_CI_TOKEN_REPLAYED",
  "LK_CI_ACCESS_TOKEN_INVALID",
  "LK_CI_ISSUER_FAILED",
]);

// Refusals whose reason only the server knows and the person must read to fix anything: which rule of a CI policy
// a job failed and the claim's value, which check a CI token failed. Error answers are unsigned, so their words are
// shown as the server's, quoted, without control or bidirectional characters and cut short, and nothing acts on
// them. Neither carries a secret: the server never quotes a token.
const SERVER_WORDS_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "LK_CI_POLICY_DENIED",
  "LK_CI_TOKEN_INVALID",
]);

/** The longest part of a server's message shown. */
const MAX_SERVER_WORDS = 400;

/** The server's message, printable and short, for a code of SERVER_WORDS_CODES; undefined for any other. */
function serverWords(code: string, message: string | undefined): string | undefined {
  if (message === undefined || !SERVER_WORDS_CODES.has(code)) return undefined;
  const printable = message
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  if (printable === "") return undefined;
  return printable.length > MAX_SERVER_WORDS ? `${printable.slice(0, MAX_SERVER_WORDS)}…` : printable;
}

// The refusals a 409 may name besides a stale version, each with its own remedy. Any other 409 is a vault conflict.
const CONFLICT_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "LK_PAIRING_FAILED",
  "LK_SHARING_KEY_EXISTS",
  "LK_SHARING_KEY_MISMATCH",
  "LK_ORG_EXISTS",
  "LK_ORG_LAST_OWNER",
  "LK_MEMBER_EXISTS",
  "LK_ORG_MEMBERS_CHANGED",
  "LK_ORG_VAULT_KEY_MISSING",
  "LK_CI_ESCROW_STALE",
  "LK_PLATFORM_NAME_TAKEN",
  "LK_PLATFORM_CONNECTIONS_CHANGED",
  "LK_VAULT_KEY_STALE",
]);

// The refusals a 400 may name that have a remedy of their own; any other 400 is LK_SERVER_ERROR (a body this CLI
// should never have sent).
const BAD_REQUEST_CODES: ReadonlySet<string> = new Set<ErrorCode>(["LK_CI_ESCROW_INVALID"]);

/**
 * Seconds to wait from a Retry-After header (delta-seconds or an HTTP date, RFC 9110 §10.2.3), or null when it
 * is absent or neither.
 */
export function retryAfterSeconds(header: string | null, now: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^[0-9]{1,9}$/.test(text)) return Number(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** Maps a non-2xx answer (other than the 401 handled by the caller) onto the catalogue. */
async function responseError(
  ctx: Context,
  response: Response,
  call: ApiCall<unknown>,
  server: string,
): Promise<LatchkeyError> {
  const where = describe(call, server);
  const status = response.status;
  const body = await errorBody(response);
  if (status === 400 && body.code !== undefined && BAD_REQUEST_CODES.has(body.code)) {
    return new LatchkeyError(body.code as ErrorCode, { details: { status, server } });
  }
  if (
    (status === 401 || status === 403 || status === 502) &&
    body.code !== undefined &&
    (status === 403 ? FORBIDDEN_CODES : CI_CREDENTIAL_CODES).has(body.code)
  ) {
    const code = body.code as ErrorCode;
    const words = serverWords(code, body.message);
    return new LatchkeyError(code, {
      ...(words === undefined
        ? {}
        : { message: `${errorCatalogue[code].message} The server says: "${words}"` }),
      details: { status, server, ...(words === undefined ? {} : { serverMessage: words }) },
    });
  }
  if (status === 403) {
    return new LatchkeyError("LK_FORBIDDEN", {
      message: `The server refused ${where} (403).`,
      details: { status, server },
    });
  }
  if (status === 404 && isCatalogueCode(body.code)) {
    return new LatchkeyError(body.code, { details: { status, server } });
  }
  if (status === 413) {
    return new LatchkeyError("LK_VAULT_TOO_LARGE", {
      message: `The server refused ${where}: the request is larger than it accepts (413). Nothing was stored there.`,
      hint: "Make the vault smaller (remove large values or environments you no longer need, `latchkey env list`), or ask the server's administrator about its limit.",
      details: { status, server },
    });
  }
  if (status === 409 && body.code !== undefined && CONFLICT_CODES.has(body.code)) {
    return new LatchkeyError(body.code as ErrorCode, { details: { status, server } });
  }
  if (status === 429) {
    const wait = retryAfterSeconds(response.headers.get("retry-after"), ctx.clock.now());
    return new LatchkeyError("LK_RATE_LIMITED", {
      message:
        wait === null
          ? `The server refused ${where}: too many recent attempts (429).`
          : `The server refused ${where}: too many recent attempts (429); it accepts another in ${wait} second${wait === 1 ? "" : "s"}.`,
      hint:
        wait === null
          ? "Wait a few minutes, then try again."
          : `Wait ${wait} second${wait === 1 ? "" : "s"}, then try again.`,
      details: { status, server, ...(wait === null ? {} : { retryAfterSeconds: wait }) },
    });
  }
  if (status === 409) {
    return new LatchkeyError("LK_VAULT_CONFLICT", {
      message:
        body.currentVersion === undefined
          ? `The server refused ${where}: it has a newer version of this vault.`
          : `The server refused ${where}: it has version ${body.currentVersion} of this vault.`,
      details: {
        status,
        server,
        ...(body.currentVersion === undefined ? {} : { currentVersion: body.currentVersion }),
      },
    });
  }
  return new LatchkeyError("LK_SERVER_ERROR", {
    message: `The Latchkey server answered ${status} to ${where}.`,
    details: { status, server, ...(body.code === undefined ? {} : { code: body.code }) },
  });
}

/**
 * Calls the server with the active profile's session: refreshes an expired session first; on a 401 refreshes once
 * and retries; sends a fresh X-Latchkey-Request-Id with every request and verifies X-Latchkey-Signature on every
 * 2xx BEFORE parsing, over this request's method, path, id, the status and the body (missing / non-base64 /
 * mismatch, e.g. an answer signed for another request → LK_SIGNATURE_INVALID naming the header; never a
 * fallback); then parses the answer with `call.answer` (not JSON, or not that shape → LK_SERVER_ERROR); maps
 * errors: 401 after the retry → LK_SESSION_EXPIRED
 * (hint: `latchkey login`), 400 → the body's LK_CI_ESCROW_INVALID, 403 → the body's LK_STEP_UP_REQUIRED / _FAILED / _UNAVAILABLE, LK_ORG_FORBIDDEN or LK_CI_POLICY_DENIED (with the server's words), else
 * LK_FORBIDDEN, 404 → the body's code if it is a catalogue code (LK_VAULT_NOT_SYNCED, LK_PAIRING_NOT_FOUND,
 * LK_ORG_NOT_FOUND…) else LK_SERVER_ERROR, 409 → the body's code when it is one of CONFLICT_CODES (pairing,
 * sharing keys, organisations, the CI escrow, platform connections), else LK_VAULT_CONFLICT with details.currentVersion, 413 →
 * LK_VAULT_TOO_LARGE, 429 → LK_RATE_LIMITED naming Retry-After, other → LK_SERVER_ERROR (status named, body not
 * echoed), network → LK_SERVER_UNREACHABLE. `call.stepUpProof` goes in STEP_UP_HEADER on every attempt.
 */
export async function callApi<T>(
  ctx: Context,
  call: ApiCall<T>,
  options: ApiOptions = {},
): Promise<ApiResult<T>> {
  const verbose = options.verbose ?? 0;
  const active = await requireServerSession(ctx, {
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
    verbose,
  });
  const server = active.selection.server;
  let session = active.session;
  const data = await send(ctx, call, server, verbose, {
    bearer: {
      token: session.access_token,
      refresh: {
        renew: async (rejected) => {
          session = await refreshServerSession(ctx, server, session, { verbose, replacing: rejected });
          return session.access_token;
        },
        rejectedAgain: () =>
          sessionExpired(server, ": the server refused its access token, also after a refresh"),
      },
    },
    signingKey: (attempt) => attempt.token!,
  });
  return { data, server, userId: session.subject };
}

/**
 * {@link callApi} with a credential of the call's own instead of a session (the CI exchange and pull): the same
 * request id, signature check (keyed by `credential.signedWith`), answer schema and error mapping, plus the CI
 * routes' refusals — 401 LK_CI_TOKEN_INVALID (with the server's words), LK_CI_TOKEN_REPLAYED,
 * LK_CI_ACCESS_TOKEN_INVALID, 502 LK_CI_ISSUER_FAILED. No keystore is read; a 401 is not retried.
 */
export async function callApiWith<T>(
  ctx: Context,
  call: ApiCall<T>,
  credential: ApiCredential,
  options: { verbose?: number } = {},
): Promise<{ data: T; server: string }> {
  const data = await send(ctx, call, credential.server, options.verbose ?? 0, {
    ...(credential.bearer === undefined ? {} : { bearer: { token: credential.bearer } }),
    signingKey: () => credential.signedWith,
  });
  return { data, server: credential.server };
}

/** How a request authenticates: its bearer token (if any), and the key each attempt's answer is signed with. */
interface RequestAuth {
  bearer?: Bearer;
  signingKey: (attempt: Attempt) => string;
}

/** One call to `server`: sent, its 2xx answer verified with `auth.signingKey` and parsed; errors mapped. */
async function send<T>(
  ctx: Context,
  call: ApiCall<T>,
  server: string,
  verbose: number,
  auth: RequestAuth,
): Promise<T> {
  if (!call.path.startsWith("/")) throw new Error(`API path must start with '/': ${call.path}`);
  const url = `${server}${API_PREFIX}${call.path}`;
  // The server signs the request target it received; a reverse proxy may strip the server URL's own path, never
  // the API path. A path the URL parser would respell could never verify, so it is a bug to send one.
  const path = `${API_PREFIX}${call.path}`;
  const parsed = new URL(url);
  if (!`${parsed.pathname}${parsed.search}`.endsWith(path))
    throw new Error(`API path is not canonical: ${call.path}`);
  const where = describe(call, server);
  const body = call.body === undefined ? undefined : JSON.stringify(call.body);

  const response = await request(ctx, {
    url,
    method: call.method,
    headers: () => ({
      accept: "application/json",
      [REQUEST_ID_HEADER]: Buffer.from(ctx.random.bytes(REQUEST_ID_BYTES)).toString("base64url"),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(call.stepUpProof === undefined ? {} : { [STEP_UP_HEADER]: call.stepUpProof }),
    }),
    ...(body === undefined ? {} : { body }),
    verbose,
    timeoutMs: REQUEST_TIMEOUT_MS,
    ...(auth.bearer === undefined ? {} : { bearer: auth.bearer }),
    ...(call.secretBodies === true ? { secretBodies: true } : {}),
    unreachable: (cause) => unreachable(server, cause),
    verify: (answer, bytes, attempt) =>
      verifySignature(
        auth.signingKey(attempt),
        {
          method: call.method,
          path,
          requestId: attempt.headers.get(REQUEST_ID_HEADER)!,
          status: answer.status,
        },
        bytes,
        answer.headers.get(SIGNATURE_HEADER),
        where,
      ),
  });
  if (response.status < 200 || response.status > 299) throw await responseError(ctx, response, call, server);

  // Verified and held in memory by request(): reading it cannot fail on the network any more.
  const bytes = new Uint8Array(await response.arrayBuffer());
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The Latchkey server's answer to ${where} is not JSON.`,
      cause: error,
      details: { status: response.status, server },
    });
  }
  const answer = checkSchema(call.answer, json);
  if (!answer.ok) {
    // The schema's messages name a field and its rule, never a value, so one can be shown.
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The Latchkey server's answer to ${where} is not the answer that request expects (${answer.message}); it was not used.`,
      details: { status: response.status, server },
    });
  }
  return answer.value;
}

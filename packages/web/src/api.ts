/**
 * The dashboard's one client of the server's API (/api/v1): every view and the pairing flow call through it. Like
 * the CLI's (docs/sync-protocol.md), each request carries the bearer token and a fresh X-Latchkey-Request-Id, and
 * every 2xx answer's X-Latchkey-Signature is checked with core's code before a byte of the body is parsed; the body
 * is then read with the route's schema from core. Cookies of this origin go along (the pairing's step-up cookie).
 * A 401 means the session is over: the tab is signed out (session.ts) and nothing is retried.
 */
import {
  LatchkeyError,
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  STEP_UP_HEADER,
  apiErrorBodySchema,
  checkSchema,
  errorCatalogue,
  responseSignatureValid,
  toBase64,
  type ErrorCode,
  type WireSchema,
} from "@latchkey/core";
import { accessToken, authState, forgetSession } from "./session.js";

/** One request, and what its 2xx answer must be. */
export interface ApiRequest<T> {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** The full path and query, e.g. `/api/v1/vaults/<id>/log?limit=50` (core's *_PATH constants). */
  path: string;
  /** Sent as JSON. */
  body?: unknown;
  /** The 2xx answer's schema (core's schemas); any other shape is LK_SERVER_ERROR. */
  answer: WireSchema<T>;
  /** A step-up proof for this request, sent as X-Latchkey-Step-Up (the pairing uses the cookie instead). */
  stepUpProof?: string;
}

/** What the client needs; apiClient() below is the page's own. */
export interface ApiDeps {
  origin: string;
  fetch: typeof fetch;
  randomBytes: (n: number) => Uint8Array;
  /** The current access token; undefined when signed out or expired. */
  token: () => string | undefined;
  /** Called once the server refused the token (401), or there was none to send. */
  onUnauthorized: () => void;
}

/** The dashboard's API client. */
export interface ApiClient {
  /** Sends `request`; the checked answer, or a LatchkeyError. */
  call<T>(request: ApiRequest<T>): Promise<T>;
}

const SESSION_OVER_HINT = "Sign in again.";

function base64url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function isCatalogueCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCatalogue, code);
}

/** Makes a client on `deps`. */
export function createApiClient(deps: ApiDeps): ApiClient {
  return {
    async call<T>(request: ApiRequest<T>): Promise<T> {
      const { method, path } = request;
      // The server signs the target it received: a path the URL parser would respell could never verify.
      const url = new URL(path, deps.origin);
      if (!path.startsWith("/api/") || `${url.pathname}${url.search}` !== path)
        throw new Error(`API path is not canonical: ${path}`);
      const where = `${method} ${url.pathname}`;
      const token = deps.token();
      if (token === undefined) {
        deps.onUnauthorized();
        throw new LatchkeyError("LK_SESSION_EXPIRED", {
          message: "You are not signed in to the dashboard.",
          hint: SESSION_OVER_HINT,
        });
      }
      const requestId = base64url(deps.randomBytes(16));
      const body = request.body === undefined ? undefined : JSON.stringify(request.body);
      let response: Response;
      try {
        response = await deps.fetch(url.href, {
          method,
          headers: {
            accept: "application/json",
            authorization: `Bearer ${token}`,
            [REQUEST_ID_HEADER]: requestId,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
            ...(request.stepUpProof === undefined ? {} : { [STEP_UP_HEADER]: request.stepUpProof }),
          },
          credentials: "same-origin",
          cache: "no-store",
          ...(body === undefined ? {} : { body }),
        });
      } catch (cause) {
        throw new LatchkeyError("LK_SERVER_UNREACHABLE", {
          message: `The Latchkey server did not answer ${where}.`,
          hint: "Check your connection, then try again.",
          cause,
        });
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (response.status === 401) {
        deps.onUnauthorized();
        throw new LatchkeyError("LK_SESSION_EXPIRED", {
          message: "The server no longer accepts this dashboard's session (it expired, or was signed out).",
          hint: SESSION_OVER_HINT,
        });
      }
      if (response.status < 200 || response.status > 299) throw refusal(response, bytes, where);
      const signed = await responseSignatureValid(
        token,
        { method, path, requestId, status: response.status },
        bytes,
        response.headers.get(SIGNATURE_HEADER),
      );
      if (!signed) {
        throw new LatchkeyError("LK_SIGNATURE_INVALID", {
          message: `The answer to ${where} failed its X-Latchkey-Signature check and was discarded unread.`,
          hint: "Something between this browser and the server altered or replayed the answer. Reload; if it repeats, check proxies in between.",
        });
      }
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
      } catch (cause) {
        throw new LatchkeyError("LK_SERVER_ERROR", {
          message: `The server's answer to ${where} is not JSON.`,
          cause,
        });
      }
      const checked = checkSchema(request.answer, json);
      if (!checked.ok) {
        throw new LatchkeyError("LK_SERVER_ERROR", {
          message: `The server's answer to ${where} is not the answer that request expects (${checked.message}).`,
        });
      }
      return checked.value;
    },
  };
}

/** The LatchkeyError of a refused request: the body's catalogue code and words, else LK_SERVER_ERROR. */
function refusal(response: Response, bytes: Uint8Array, where: string): LatchkeyError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    parsed = undefined;
  }
  const checked = checkSchema(apiErrorBodySchema, parsed);
  const retryAfter = response.headers.get("retry-after");
  const details = {
    status: response.status,
    ...(retryAfter === null ? {} : { retryAfterSeconds: Number(retryAfter) }),
  };
  if (checked.ok && isCatalogueCode(checked.value.code)) {
    // The server's messages name what was refused and why, never a value sent.
    return new LatchkeyError(checked.value.code, { message: checked.value.message, details });
  }
  return new LatchkeyError("LK_SERVER_ERROR", {
    message: `The Latchkey server answered ${response.status} to ${where}.`,
    hint: "Try again; if it persists, check the server's log.",
    details,
  });
}

let page: ApiClient | undefined;

/**
 * The page's client: this origin, the tab's session (session.ts), and a sign-out of the tab when the server no
 * longer takes its token.
 */
export function api(): ApiClient {
  page ??= createApiClient({
    origin: location.origin,
    fetch: (input, init) => fetch(input, init),
    randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
    token: () => accessToken(),
    onUnauthorized: () => {
      if (authState().kind !== "signed-in") return;
      void forgetSession({
        kind: "signed-out",
        notice: "Your session has ended: it expired, or you signed out everywhere. Sign in again to go on.",
      });
    },
  });
  return page;
}

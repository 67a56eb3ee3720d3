// The CLI's one HTTP client. The sync API (server/api.ts), requests with a service environment's token
// (oauth/fetch.ts), npm registries (registry/registry-client.ts) and openid-client (through tracedFetch as its
// customFetch) all send through here, so they share what must never differ between them: redirects are returned
// rather than followed (a credential never reaches another origin), a failure to reach the host becomes the
// caller's catalogue code, `-v`/`-vv` traces redact credentials, a bearer token gets one refresh-and-retry after a
// 401, and an answer that must be verified is checked before a byte of it can be parsed.
import type { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { redact } from "../output/output.js";

/** How long one request to a Latchkey server or a registry may take before the host counts as unreachable. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** A request body that can be sent twice (the retry after a refresh): a stream could not be replayed. */
export type ReplayableBody = string | Uint8Array | URLSearchParams;

/** The fetch signature of a traced fetch; openid-client's customFetch accepts it. */
export type TraceableFetch = (url: string, init: RequestInit) => Promise<Response>;

/** What a 401 to a bearer token leads to. Without it, a 401 is handed back to the caller like any answer. */
export interface BearerRefresh {
  /**
   * Whether this 401 is worth a new token; false hands it back as is. May throw to refuse outright (a challenge a
   * new token cannot satisfy). Default: every 401 is.
   */
  readonly retry?: (response: Response) => boolean;
  /** A new token for the one retry; `rejected` is the token the server refused. Runs after the 401 is drained. */
  readonly renew: (rejected: string) => Promise<string>;
  /** The error when the retry's answer is a 401 too (already drained). */
  readonly rejectedAgain: (response: Response) => Error;
}

/** A bearer token sent as `Authorization: Bearer …`, optionally refreshed once after a 401. */
export interface Bearer {
  readonly token: string;
  readonly refresh?: BearerRefresh;
}

/** One attempt as it was sent, for checks that bind an answer to the request that asked for it. */
export interface Attempt {
  /** The headers sent, Authorization included. */
  readonly headers: Headers;
  /** The bearer token this attempt carried, if any. */
  readonly token?: string;
}

/** One request through {@link request}. */
export interface HttpRequest {
  readonly url: string | URL;
  /** Default GET. */
  readonly method?: string;
  /** The headers of every attempt; a function gives each attempt its own (a fresh request id, the retry too). */
  readonly headers?: HeadersInit | (() => HeadersInit);
  readonly body?: ReplayableBody | null;
  /** -v level: 1 traces request and status lines on stderr, 2 headers and bodies too, credentials redacted. */
  readonly verbose?: number;
  /** How long each attempt may take; without it only `signal` limits it. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Default "manual": a redirect is returned, never followed, so a credential cannot follow it elsewhere. */
  readonly redirect?: RequestRedirect;
  readonly bearer?: Bearer;
  /**
   * The catalogue error for a host that could not be reached (refused, reset, unknown, timed out), also while the
   * verified body is read. Without it such failures are thrown as fetch threw them; other errors always are.
   */
  readonly unreachable?: (cause: unknown, timedOut: boolean) => LatchkeyError;
  /**
   * Checks each 2xx answer's exact body bytes before anyone can read them, throwing to reject it; the Response
   * returned then carries those bytes. Other statuses are returned unchecked.
   */
  readonly verify?: (response: Response, body: Uint8Array, attempt: Attempt) => void;
  /** The URL is itself a credential (a web login's doneUrl): traces show only its origin. */
  readonly secretUrl?: boolean;
  /**
   * The bodies carry credentials or plaintext secrets under names the redaction cannot tell (a runner's `value`,
   * a CI pull's `values`): `-vv` traces show only their length.
   */
  readonly secretBodies?: boolean;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** Walks `error` and its causes (cycles stopped) until `test` holds for one. */
function someCause(
  error: unknown,
  test: (e: { name?: unknown; code?: unknown; message?: unknown }) => boolean,
) {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (typeof current === "object" && current !== null && !seen.has(current)) {
    seen.add(current);
    if (test(current)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

function isTimeout(error: unknown): boolean {
  return someCause(error, (e) => e.name === "TimeoutError" || e.name === "AbortError");
}

/** True when `error` (or a cause of it) is a failure to reach the host rather than an answer from it. */
export function isNetworkError(error: unknown): boolean {
  return someCause(
    error,
    (e) =>
      (typeof e.code === "string" && NETWORK_CODES.has(e.code)) ||
      e.name === "TimeoutError" ||
      e.name === "AbortError" ||
      (e.name === "TypeError" && e.message === "fetch failed"),
  );
}

// ---- traces ----

// npm's web login answers a doneUrl that hands the token to whoever polls it first. A step-up request carries the
// account's password and TOTP code, and its answer a proof that stands in for them for five minutes.
const SECRET_FIELD = /(^|_)(token|secret|password|code|assertion|verifier|otp|totp|pin|proof)$|^doneUrl$/i;
// Headers that carry a credential whole: npm's one-time password, GitLab's PRIVATE-TOKEN, API keys, the step-up
// proof (X-Latchkey-Step-Up).
const SECRET_HEADER = /^(cookie|set-cookie)$|(^|-)(otp|token|secret|password|api-key|apikey|step-up)$/i;
const REDACTED = "[REDACTED]";

function redactForm(text: string): string {
  const params = new URLSearchParams(text);
  const out: string[] = [];
  for (const [key, value] of params) {
    out.push(`${key}=${SECRET_FIELD.test(key) ? REDACTED : encodeURIComponent(value)}`);
  }
  return out.join("&");
}

function redactJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactJson);
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value))
      out[key] = SECRET_FIELD.test(key) && v !== null ? REDACTED : redactJson(v);
    return out;
  }
  return value;
}

/** A body as trace text: forms and JSON field by field, anything else only by its length. */
export function redactBody(text: string, contentType: string | null): string {
  const type = (contentType ?? "").toLowerCase();
  if (type.includes("application/x-www-form-urlencoded")) return redactForm(text);
  if (type.includes("json") || /^\s*[[{]/.test(text)) {
    try {
      return JSON.stringify(redactJson(JSON.parse(text)));
    } catch {
      // not JSON after all
    }
  }
  return `(${text.length} characters)`;
}

function redactUrl(url: string, secret: boolean): string {
  try {
    const parsed = new URL(url);
    if (secret) return `${parsed.origin}/${REDACTED}`;
    for (const key of [...parsed.searchParams.keys()])
      if (SECRET_FIELD.test(key)) parsed.searchParams.set(key, REDACTED);
    parsed.username = parsed.username ? REDACTED : "";
    parsed.password = "";
    return parsed.href;
  } catch {
    return REDACTED;
  }
}

function headerLines(prefix: string, headers: Headers): string[] {
  const lines: string[] = [];
  headers.forEach((value, name) => {
    let shown = value;
    // The scheme (Bearer, Basic, DPoP) helps debugging; what follows it is the credential.
    if (/^(authorization|proxy-authorization|dpop)$/i.test(name))
      shown = `${value.split(" ")[0]} ${REDACTED}`;
    else if (SECRET_HEADER.test(name)) shown = REDACTED;
    lines.push(`${prefix} ${name}: ${shown}`);
  });
  return lines;
}

function bodyText(body: RequestInit["body"]): string | null {
  if (body === undefined || body === null) return null;
  if (typeof body === "string") return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  return null;
}

/**
 * `ctx.fetch`, traced on stderr at `verbose` ≥ 1 (request line, status) or ≥ 2 (headers and bodies). Credentials
 * are redacted by shape, never by trusting the caller: Authorization, cookie and credential-named headers, form,
 * JSON and query fields whose name ends in token, secret, password, code, assertion, verifier, otp, totp, pin or
 * proof (and npm's doneUrl), then
 * output.ts's pattern-based redaction over the whole text as a second net; with `secretBodies`, bodies by their length
 * only. At verbose 0 it is `ctx.fetch` itself.
 * openid-client takes it as its customFetch; everything else goes through {@link request}.
 */
export function tracedFetch(
  ctx: Context,
  verbose: number,
  options: { secretUrl?: boolean; secretBodies?: boolean } = {},
): TraceableFetch {
  const base = ctx.fetch;
  if (verbose < 1) return (url, init) => base(url, init);
  const write = (lines: string[]): void => ctx.stderr.write(`${redact(lines.join("\n"), ctx.env)}\n`);
  const secretUrl = options.secretUrl === true;
  const shownBody = (text: string, contentType: string | null): string =>
    options.secretBodies === true ? `(${text.length} characters, not shown)` : redactBody(text, contentType);
  return async (url, init) => {
    const method = (init.method ?? "GET").toUpperCase();
    const shownUrl = redactUrl(url, secretUrl);
    const request = [`> ${method} ${shownUrl}`];
    if (verbose >= 2) {
      const headers = new Headers(init.headers);
      request.push(...headerLines(">", headers));
      const text = bodyText(init.body);
      if (text !== null) request.push(`> ${shownBody(text, headers.get("content-type"))}`);
    }
    write(request);
    const response = await base(url, init);
    const status = response.statusText
      ? `${response.status} ${response.statusText}`
      : String(response.status);
    const lines = [`< ${status} (${method} ${shownUrl})`];
    if (verbose >= 2) {
      lines.push(...headerLines("<", response.headers));
      const text = await response
        .clone()
        .text()
        .catch(() => null);
      if (text) lines.push(`< ${shownBody(text, response.headers.get("content-type"))}`);
    }
    write(lines);
    return response;
  };
}

// ---- requests ----

/** Reads and discards a refused answer, so its connection can carry the next request. */
async function drain(response: Response): Promise<void> {
  await response.arrayBuffer().catch(() => undefined);
}

/** Statuses whose Response cannot carry a body. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Sends one request, and one retry when the bearer token is refused and can be renewed (see {@link Bearer}):
 * every attempt is traced at `verbose`, gets its own headers, timeout and Authorization, and never follows a
 * redirect unless told to. A failure to reach the host is `unreachable`'s error; a 2xx answer passes `verify`
 * before it is returned. Any other answer, 4xx and 5xx included, is returned for the caller to map.
 */
export async function request(ctx: Context, req: HttpRequest): Promise<Response> {
  const send = tracedFetch(ctx, req.verbose ?? 0, {
    ...(req.secretUrl === true ? { secretUrl: true } : {}),
    ...(req.secretBodies === true ? { secretBodies: true } : {}),
  });
  const url = String(req.url);
  const guard = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (error) {
      if (req.unreachable !== undefined && isNetworkError(error))
        throw req.unreachable(error, isTimeout(error));
      throw error;
    }
  };

  const attempt = async (token: string | undefined): Promise<{ response: Response; attempt: Attempt }> => {
    const headers = new Headers(typeof req.headers === "function" ? req.headers() : req.headers);
    if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
    // A fresh copy per attempt: fetch may take over the buffer it sends.
    const body = req.body instanceof Uint8Array ? new Uint8Array(req.body) : req.body;
    const timeout = req.timeoutMs === undefined ? undefined : AbortSignal.timeout(req.timeoutMs);
    const signal =
      timeout !== undefined && req.signal !== undefined
        ? AbortSignal.any([req.signal, timeout])
        : (timeout ?? req.signal);
    const response = await guard(() =>
      send(url, {
        method: req.method ?? "GET",
        headers,
        ...(body === undefined || body === null ? {} : { body }),
        redirect: req.redirect ?? "manual",
        ...(signal === undefined ? {} : { signal }),
      }),
    );
    return { response, attempt: { headers, ...(token === undefined ? {} : { token }) } };
  };

  let sent = await attempt(req.bearer?.token);
  const refresh = req.bearer?.refresh;
  if (sent.response.status === 401 && refresh !== undefined && (refresh.retry?.(sent.response) ?? true)) {
    await drain(sent.response);
    sent = await attempt(await refresh.renew(req.bearer!.token));
    if (sent.response.status === 401) {
      await drain(sent.response);
      throw refresh.rejectedAgain(sent.response);
    }
  }
  const { response } = sent;
  if (req.verify === undefined || response.status < 200 || response.status > 299) return response;
  const bytes = await guard(async () => new Uint8Array(await response.arrayBuffer()));
  req.verify(response, bytes, sent.attempt);
  return new Response(NULL_BODY_STATUSES.has(response.status) ? null : bytes, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

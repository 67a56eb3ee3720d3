// HTTP against an npm-compatible registry, as the npm CLI does it (npm-registry-fetch, npm-profile):
// - whoami: `GET /-/whoami` with the bearer token answers `{"username": …}` (@npmcli's get-identity);
// - web login: `POST /-/v1/login` answers `{loginUrl, doneUrl}`; the user opens loginUrl, and `GET doneUrl`
//   answers 202 with `Retry-After` until the login is done, then 200 with `{token}`. A 4xx or 500 from the POST
//   means the registry has no web login (npm-profile's WebLoginNotSupported) and npm falls back to…
// - classic login: `PUT /-/user/org.couchdb.user:NAME` with the CouchDB user document answers 201 `{token}`;
//   401 with `WWW-Authenticate: OTP` asks for a one-time password in the `npm-otp` header; 409 (an existing
//   user: CouchDB, verdaccio's htpasswd) is followed by a GET `?write=true` and the PUT again with basic auth
//   (to `/-rev/REV` when the document has a revision).
// Redirects are never followed with a credential attached, and no token or password reaches an error message.
import {
  LatchkeyError,
  checkSchema,
  npmErrorAnswerSchema,
  npmTokenAnswerSchema,
  npmUserDocumentSchema,
  npmWebLoginAnswerSchema,
  npmWhoamiAnswerSchema,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { REQUEST_TIMEOUT_MS, request } from "../http/client.js";
import { VERSION } from "../version.js";
import type { RegistryKind } from "./types.js";

/** How long a web login waits for the browser side to finish. */
export const WEB_LOGIN_TIMEOUT_MS = 5 * 60_000;
// A Retry-After of 0 or none would poll in a tight loop; a huge one would outlive the login.
const MIN_POLL_MS = 1000;
const MAX_POLL_MS = 30_000;

/** What a registry said about a token. */
export interface WhoamiResult {
  /** The user the registry names for the token; null when it cannot say. */
  readonly username: string | null;
  /** True when the registry confirmed the token; false when it offers no way to check one. */
  readonly verified: boolean;
  /** Why the token could not be checked, when it could not. */
  readonly note?: string;
}

/** The two URLs of a started web login. */
export interface WebLoginSession {
  readonly loginUrl: string;
  readonly doneUrl: string;
}

/** A successful classic login. */
export interface CouchLoginResult {
  readonly token: string;
  readonly username: string;
}

function endpoint(registryUrl: string, path: string): URL {
  const base = registryUrl.endsWith("/") ? registryUrl : `${registryUrl}/`;
  return new URL(path, base);
}

function origin(url: string | URL): string {
  return new URL(url).origin;
}

function baseHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { "user-agent": `latchkey/${VERSION}`, accept: "application/json", ...extra };
}

/** How loud a registry call is. */
export interface RegistryCallOptions {
  /** -v level: traces requests on stderr, credentials redacted. */
  readonly verbose?: number;
}

/** One request of a registry call; `bearer` is sent as `Authorization: Bearer …`. */
interface RegistryRequest {
  readonly method?: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly bearer?: string;
  /** The URL itself is a credential (a web login's doneUrl). */
  readonly secretUrl?: boolean;
}

/** One request: network failures become LK_REGISTRY_UNREACHABLE, redirects are returned, never followed. */
async function send(
  ctx: Context,
  url: URL,
  req: RegistryRequest,
  options: RegistryCallOptions,
): Promise<Response> {
  return request(ctx, {
    url,
    ...(req.method === undefined ? {} : { method: req.method }),
    headers: req.headers,
    ...(req.body === undefined ? {} : { body: req.body }),
    ...(req.bearer === undefined ? {} : { bearer: { token: req.bearer } }),
    ...(req.secretUrl === true ? { secretUrl: true } : {}),
    verbose: options.verbose ?? 0,
    timeoutMs: REQUEST_TIMEOUT_MS,
    unreachable: (cause, timedOut) =>
      new LatchkeyError("LK_REGISTRY_UNREACHABLE", {
        message: timedOut
          ? `${origin(url)} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s.`
          : `Could not reach ${origin(url)}.`,
        cause,
      }),
  });
}

/** The answer's JSON, for core's schemas of npm's answers to read; undefined when it is not JSON. */
async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    const body: unknown = JSON.parse(text);
    return body;
  } catch {
    return undefined;
  }
}

/** The registry's own explanation, cleaned for a terminal and stripped of anything we sent it. */
function registrySays(body: unknown, secrets: readonly string[]): string {
  const answer = checkSchema(npmErrorAnswerSchema, body);
  if (!answer.ok) return "";
  for (const value of [answer.value.error, answer.value.reason, answer.value.message]) {
    if (value !== undefined && value.trim() !== "") {
      let text = value.replace(/\p{Cc}+/gu, " ").trim();
      for (const secret of secrets) if (secret !== "") text = text.split(secret).join("[REDACTED]");
      return text.length > 200 ? `${text.slice(0, 200)}…` : text;
    }
  }
  return "";
}

function unexpectedStatus(url: URL, response: Response): LatchkeyError {
  const redirect = response.status >= 300 && response.status < 400;
  return new LatchkeyError("LK_REGISTRY_UNREACHABLE", {
    message: redirect
      ? `${origin(url)} redirected ${url.pathname} elsewhere; Latchkey does not follow a redirect with a credential.`
      : `${origin(url)} answered ${url.pathname} with HTTP ${response.status}.`,
    ...(redirect ? { hint: "Give the registry's final URL (the one it redirects to) with --registry." } : {}),
  });
}

function invalidToken(registryUrl: string, status: number): LatchkeyError {
  return new LatchkeyError("LK_TOKEN_INVALID", {
    message: `${registryUrl} did not accept the token (HTTP ${status} from /-/whoami).`,
    hint: `Log in again with \`latchkey login --registry ${registryUrl}\`; if the token came from the environment or gh/glab, renew it there.`,
  });
}

/** GitLab serves no /-/whoami; its REST API names the user of a personal or OAuth token. */
async function gitlabWhoami(
  ctx: Context,
  registryUrl: string,
  token: string,
  options: RegistryCallOptions,
): Promise<WhoamiResult> {
  const url = new URL(registryUrl);
  const root = url.pathname.slice(0, url.pathname.indexOf("/api/v4/") + 1);
  const user = new URL(`${root}api/v4/user`, url.origin);
  const response = await send(ctx, user, { headers: baseHeaders(), bearer: token }, options);
  const who = checkSchema(npmWhoamiAnswerSchema, await readJson(response));
  if (response.status === 200 && who.ok) return { username: who.value.username, verified: true };
  return {
    username: null,
    verified: false,
    note:
      `GitLab has no /-/whoami, and its /api/v4/user answered HTTP ${response.status}` +
      " (job and deploy tokens cannot read it)",
  };
}

/**
 * Asks the registry who the token belongs to. 401/403 → LK_TOKEN_INVALID; a registry without the endpoint
 * (404, 405, 501) is reported as unverified rather than invalid, except GitLab, asked through its REST API.
 */
export async function registryWhoami(
  ctx: Context,
  registryUrl: string,
  token: string,
  kind: RegistryKind,
  options: RegistryCallOptions = {},
): Promise<WhoamiResult> {
  const url = endpoint(registryUrl, "-/whoami");
  const response = await send(ctx, url, { headers: baseHeaders(), bearer: token }, options);
  if (response.status === 401 || response.status === 403) throw invalidToken(registryUrl, response.status);
  if (response.status === 404 || response.status === 405 || response.status === 501) {
    if (kind === "gitlab") return gitlabWhoami(ctx, registryUrl, token, options);
    return {
      username: null,
      verified: false,
      note: `the registry has no /-/whoami (HTTP ${response.status})`,
    };
  }
  if (response.status !== 200) throw unexpectedStatus(url, response);
  const who = checkSchema(npmWhoamiAnswerSchema, await readJson(response));
  // npm's get-identity treats an answer without a user name as "not logged in".
  if (!who.ok || who.value.username === "") {
    throw new LatchkeyError("LK_TOKEN_INVALID", {
      message: `${registryUrl} answered /-/whoami without naming a user for the token.`,
    });
  }
  return { username: who.value.username, verified: true };
}

/**
 * Starts npm's web login. Null when the registry has none (4xx or 500, as npm-profile decides), so the caller
 * can fall back to the classic login.
 */
export async function startWebLogin(
  ctx: Context,
  registryUrl: string,
  options: RegistryCallOptions = {},
): Promise<WebLoginSession | null> {
  const url = endpoint(registryUrl, "-/v1/login");
  const response = await send(
    ctx,
    url,
    {
      method: "POST",
      headers: baseHeaders({
        "content-type": "application/json",
        "npm-auth-type": "web",
        "npm-command": "login",
      }),
      body: "{}",
    },
    options,
  );
  if ((response.status >= 400 && response.status <= 499) || response.status === 500) return null;
  if (response.status < 200 || response.status > 299) throw unexpectedStatus(url, response);
  const login = checkSchema(npmWebLoginAnswerSchema, await readJson(response));
  if (!login.ok) {
    throw new LatchkeyError("LK_LOGIN_FAILED", {
      message: `${registryUrl} answered /-/v1/login without an http(s) loginUrl and doneUrl.`,
    });
  }
  const { loginUrl, doneUrl } = login.value;
  // The token comes back from doneUrl: an https registry must not hand it over in clear text.
  if (new URL(registryUrl).protocol === "https:" && new URL(doneUrl).protocol !== "https:") {
    throw new LatchkeyError("LK_LOGIN_FAILED", {
      message: `${registryUrl} asked to collect the token over plain http; refusing.`,
    });
  }
  return { loginUrl: new URL(loginUrl).href, doneUrl: new URL(doneUrl).href };
}

function retryAfterMs(value: string | null, now: number): number {
  if (value === null || value.trim() === "") return MIN_POLL_MS;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return MIN_POLL_MS;
  return Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, ms));
}

/**
 * Polls a web login's doneUrl until it hands over the token (200 `{token}`), honouring Retry-After between
 * 202 answers, for at most `timeoutMs`.
 */
export async function pollWebLogin(
  ctx: Context,
  session: WebLoginSession,
  timeoutMs: number = WEB_LOGIN_TIMEOUT_MS,
  options: RegistryCallOptions = {},
): Promise<string> {
  const deadline = ctx.clock.now() + timeoutMs;
  const url = new URL(session.doneUrl);
  for (;;) {
    // Whoever holds doneUrl can collect the token: traces show only its origin.
    const response = await send(
      ctx,
      url,
      { headers: baseHeaders({ "cache-control": "no-store" }), secretUrl: true },
      options,
    );
    const body = await readJson(response);
    if (response.status === 200) {
      const done = checkSchema(npmTokenAnswerSchema, body);
      if (!done.ok) {
        throw new LatchkeyError("LK_LOGIN_FAILED", {
          message: `${origin(url)} finished the web login without a token.`,
        });
      }
      return done.value.token;
    }
    if (response.status !== 202) {
      throw new LatchkeyError("LK_LOGIN_FAILED", {
        message: `The web login ended with HTTP ${response.status} from ${origin(url)}${suffix(registrySays(body, []))}.`,
      });
    }
    const now = ctx.clock.now();
    const wait = retryAfterMs(response.headers.get("retry-after"), now);
    if (now + wait > deadline) {
      throw new LatchkeyError("LK_LOGIN_FAILED", {
        message: `The web login was not completed within ${Math.round(timeoutMs / 1000)} s.`,
      });
    }
    await ctx.clock.sleep(wait);
  }
}

function suffix(text: string): string {
  return text === "" ? "" : `: ${text}`;
}

function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

function wantsOtp(response: Response, body: unknown): boolean {
  const challenge = response.headers.get("www-authenticate") ?? "";
  if (/\botp\b/i.test(challenge)) return true;
  return /one-time pass/i.test(registrySays(body, []));
}

/** Options for the classic login. */
export interface CouchLoginOptions extends RegistryCallOptions {
  /** Asked once when the registry wants a one-time password (two-factor authentication). */
  otp?: () => Promise<string>;
}

/**
 * npm's classic login: PUT the CouchDB user document; the registry answers with a token. Wrong credentials,
 * an unknown user or a refused one-time password are LK_LOGIN_FAILED with the registry's own words.
 */
export async function couchLogin(
  ctx: Context,
  registryUrl: string,
  username: string,
  password: string,
  options: CouchLoginOptions = {},
): Promise<CouchLoginResult> {
  const userPath = `-/user/org.couchdb.user:${encodeURIComponent(username)}`;
  const url = endpoint(registryUrl, userPath);
  const doc: Record<string, unknown> = {
    _id: `org.couchdb.user:${username}`,
    name: username,
    password,
    type: "user",
    roles: [],
    date: new Date(ctx.clock.now()).toISOString(),
  };
  const secrets = [password];
  let otp: string | undefined;

  const put = async (target: URL, auth: boolean): Promise<{ response: Response; body: unknown }> => {
    const headers = baseHeaders({ "content-type": "application/json" });
    if (otp !== undefined) headers["npm-otp"] = otp;
    if (auth) headers.authorization = basicAuth(username, password);
    const response = await send(ctx, target, { method: "PUT", headers, body: JSON.stringify(doc) }, options);
    return { response, body: await readJson(response) };
  };

  let { response, body } = await put(url, false);
  if (response.status === 401 && wantsOtp(response, body) && options.otp !== undefined) {
    otp = await options.otp();
    secrets.push(otp);
    ({ response, body } = await put(url, false));
  }
  if (response.status === 409) {
    // An existing user (CouchDB, verdaccio): npm reads the document with basic auth, then PUTs it back, to its
    // revision when it has one, authenticated as the user, and the registry answers with a token.
    const read = endpoint(registryUrl, `${userPath}?write=true`);
    const existing = await send(
      ctx,
      read,
      { headers: baseHeaders({ authorization: basicAuth(username, password) }) },
      options,
    );
    const current = await readJson(existing);
    if (existing.status !== 200)
      throw loginFailed(registryUrl, existing.status, current, secrets, username, existing);
    const user = checkSchema(npmUserDocumentSchema, current);
    const known = user.ok ? user.value : {};
    for (const [key, value] of Object.entries(known)) {
      if (doc[key] === undefined || key === "roles") doc[key] = value;
    }
    const rev = known._rev;
    const target = typeof rev === "string" ? `${userPath}/-rev/${encodeURIComponent(rev)}` : userPath;
    ({ response, body } = await put(endpoint(registryUrl, target), true));
  }
  if (response.status >= 200 && response.status <= 299) {
    const login = checkSchema(npmTokenAnswerSchema, body);
    if (!login.ok) {
      throw new LatchkeyError("LK_LOGIN_FAILED", {
        message: `${registryUrl} accepted the login but returned no token (a session-cookie registry is not supported).`,
      });
    }
    return { token: login.value.token, username };
  }
  if (response.status >= 500 || (response.status >= 300 && response.status < 400)) {
    throw unexpectedStatus(url, response);
  }
  throw loginFailed(registryUrl, response.status, body, secrets, username, response);
}

function loginFailed(
  registryUrl: string,
  status: number,
  body: unknown,
  secrets: readonly string[],
  username?: string,
  response?: Response,
): LatchkeyError {
  const says = registrySays(body, secrets);
  let message: string;
  if (status === 400 && username !== undefined) {
    message = `${registryUrl} has no user named "${username}"`;
  } else if (
    status === 401 &&
    response !== undefined &&
    /\bipaddress\b/i.test(response.headers.get("www-authenticate") ?? "")
  ) {
    message = `${registryUrl} does not allow logging in from this IP address`;
  } else if (status === 401 && response !== undefined && wantsOtp(response, body)) {
    message = `${registryUrl} needs a one-time password, and the one given was not accepted`;
  } else if (status === 401 || status === 403) {
    message = `${registryUrl} rejected the user name or password (HTTP ${status})`;
  } else {
    message = `${registryUrl} refused the login (HTTP ${status})`;
  }
  return new LatchkeyError("LK_LOGIN_FAILED", { message: `${message}${suffix(says)}.` });
}

// SSO sessions: a person's login at the company's OpenID provider, kept in the keystore under `sso:<issuer>`.
// Browser login is the authorization code flow with PKCE through a one-shot loopback listener (RFC 8252); machines
// without a browser use the device authorization grant (device.ts, RFC 8628). openid-client does discovery, the
// code exchange (it checks state, nonce, PKCE and the ID token), refresh and revocation.
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Configuration, TokenEndpointResponse } from "openid-client";
import { LatchkeyError, isLatchkeyError, ssoSessionSchema, type SsoSession } from "@latchkey/core";
import type { Context } from "../context.js";
import { ensurePrivateDir } from "../fs/safe-file.js";
import { withFileLock } from "../fs/lock.js";
import { assertSecureEndpoint, selectProfile } from "./config.js";
import { openBrowser } from "../browser.js";
import { tracedFetch } from "../http/client.js";
import { startLoopbackListener } from "./loopback.js";
import { grantParameters, type InteractiveGrant } from "./tokens.js";

/** The scopes a login asks for: an ID token (`openid`) and a refresh token (`offline_access`). */
export const SSO_SCOPE = "openid offline_access";

/** The keystore account of the SSO session at `issuer`. */
export function ssoAccount(issuer: string): string {
  return `sso:${issuer}`;
}

/** Where a login goes, after flags and the profile are combined. */
export interface SsoTarget {
  readonly issuer: string;
  readonly clientId: string;
  readonly profile: string;
  /**
   * The keystore account the session is stored under: `sso:<issuer>` when absent. A Latchkey server's session
   * uses the same flows under `session:<server>` (server/session.ts).
   */
  readonly account?: string;
}

/** Flags shared by the SSO commands. */
export interface SsoTargetOptions {
  issuer?: string;
  clientId?: string;
  profile?: string;
}

/** Combines `--issuer` / `--client-id` with the selected profile's `sso_issuer` / `sso_client_id`. */
export async function resolveSsoTarget(ctx: Context, options: SsoTargetOptions): Promise<SsoTarget> {
  const selected = await selectProfile(ctx, options.profile);
  const issuer = options.issuer ?? selected.profile.ssoIssuer;
  const clientId = options.clientId ?? selected.profile.ssoClientId;
  if (issuer === undefined || issuer === "") {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `No SSO issuer: pass --issuer URL or set sso_issuer in [profiles.${selected.name}] of ${ctx.paths.config}.`,
      hint: `Example: latchkey login sso --issuer https://login.example.com --client-id latchkey-cli`,
    });
  }
  if (clientId === undefined || clientId === "") {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `No SSO client id: pass --client-id ID or set sso_client_id in [profiles.${selected.name}] of ${ctx.paths.config}.`,
      hint: "Your identity provider's administrator registers Latchkey as a public (native) client and gives you its id.",
    });
  }
  assertSecureEndpoint(issuer);
  return { issuer: canonicalIssuer(issuer), clientId, profile: selected.name };
}

/** `https://idp.example.com/` and `https://idp.example.com` are the same issuer; keep one spelling for the account. */
function canonicalIssuer(issuer: string): string {
  return issuer.endsWith("/") ? issuer.slice(0, -1) : issuer;
}

function isLoopbackHttp(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "http:" && ["127.0.0.1", "[::1]", "localhost"].includes(hostname);
}

/** The OAuth error code of an openid-client failure (a provider's JSON error answer), if it is one. */
export function oauthErrorCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "error" in error) {
    const code = error.error;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** Wraps anything openid-client throws in the catalogue; provider error codes are named, values never are. */
export function ssoFailure(error: unknown, what: string, issuer: string): LatchkeyError {
  if (isLatchkeyError(error)) return error;
  const code = oauthErrorCode(error);
  return new LatchkeyError("LK_SSO_FAILED", {
    message: `${what} at ${issuer} failed${code ? `: the provider answered ${code}` : ""}.`,
    cause: error,
    ...(code ? { details: { error: code } } : {}),
  });
}

/**
 * Discovers the provider (OpenID Connect discovery) and returns openid-client's configuration for a public client.
 * Plain http is allowed only for loopback issuers, and every endpoint the discovery document names must pass
 * the same rule, so an https issuer cannot send tokens to a plain-http endpoint.
 */
export async function discoverProvider(
  ctx: Context,
  issuer: string,
  clientId: string,
  verbose: number,
): Promise<Configuration> {
  assertSecureEndpoint(issuer);
  const oidc = await import("openid-client");
  const trace = tracedFetch(ctx, verbose);
  let config: Configuration;
  try {
    config = await oidc.discovery(new URL(issuer), clientId, undefined, oidc.None(), {
      // openid-client's bodies are strings, URLSearchParams or bytes: all valid RequestInit bodies.
      [oidc.customFetch]: (url, options) => trace(url, options as RequestInit),
      ...(isLoopbackHttp(issuer) ? { execute: [oidc.allowInsecureRequests] } : {}),
    });
  } catch (error) {
    throw ssoFailure(error, "Discovery (/.well-known/openid-configuration)", issuer);
  }
  const metadata = config.serverMetadata();
  for (const key of [
    "authorization_endpoint",
    "token_endpoint",
    "device_authorization_endpoint",
    "revocation_endpoint",
    "jwks_uri",
  ] as const) {
    const endpoint = metadata[key];
    if (typeof endpoint === "string") assertSecureEndpoint(endpoint);
  }
  return config;
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/** The PKCE and CSRF values of one authorization request, all from ctx.random. */
export interface AuthorizationSecrets {
  /** 32 random bytes, base64url (43 characters): RFC 7636 §4.1. */
  readonly codeVerifier: string;
  readonly codeChallenge: string;
  readonly state: string;
  readonly nonce: string;
}

/** Draws a PKCE verifier (S256 challenge), a state and a nonce. */
export function authorizationSecrets(ctx: Context): AuthorizationSecrets {
  const codeVerifier = base64url(ctx.random.bytes(32));
  const codeChallenge = createHash("sha256").update(codeVerifier).digest("base64url");
  return {
    codeVerifier,
    codeChallenge,
    state: base64url(ctx.random.bytes(32)),
    nonce: base64url(ctx.random.bytes(32)),
  };
}

/** How long an SSO browser login may take at most, and other knobs tests turn. */
export interface BrowserLoginOptions {
  readonly noBrowser?: boolean;
  readonly timeoutMs?: number;
  readonly verbose?: number;
}

const BROWSER_TIMEOUT_MS = 30_000;

/** Turns a token endpoint answer into the stored session. */
function sessionFrom(
  ctx: Context,
  target: { issuer: string; clientId: string },
  tokens: {
    access_token: string;
    refresh_token?: string;
    id_token?: string;
    expires_in?: number;
    scope?: string;
    claims(): { sub: string } | undefined;
  },
  previous?: SsoSession,
): SsoSession {
  const claims = tokens.claims();
  const subject = claims?.sub ?? previous?.subject;
  if (subject === undefined) {
    throw new LatchkeyError("LK_SSO_FAILED", {
      message: `${target.issuer} returned no ID token, so the session has no subject.`,
      hint: "The provider must support OpenID Connect and grant the `openid` scope to this client.",
    });
  }
  if (previous !== undefined && subject !== previous.subject) {
    throw new LatchkeyError("LK_SSO_FAILED", {
      message: `${target.issuer} refreshed the session for a different subject than the one logged in.`,
      hint: "Run `latchkey logout sso` and `latchkey login sso` again.",
    });
  }
  // Without expires_in the token's lifetime is unknown; one hour is the common default, and a 401 corrects it.
  const lifetimeS = tokens.expires_in ?? 3600;
  const refresh = tokens.refresh_token ?? previous?.refresh_token;
  const idToken = tokens.id_token ?? previous?.id_token;
  const scope = tokens.scope ?? previous?.scope;
  return {
    access_token: tokens.access_token,
    ...(refresh === undefined ? {} : { refresh_token: refresh }),
    ...(idToken === undefined ? {} : { id_token: idToken }),
    expires_at: Math.floor(ctx.clock.now() / 1000) + lifetimeS,
    subject,
    issuer: target.issuer,
    client_id: target.clientId,
    ...(scope === undefined ? {} : { scope }),
  };
}

/** The token endpoint answer of a login, as openid-client returns it. */
export type LoginTokens = Parameters<typeof sessionFrom>[2];

/** Builds the session from a login's token answer and stores it under the target's account. */
export async function saveSsoSessionFrom(
  ctx: Context,
  target: { issuer: string; clientId: string; account?: string },
  tokens: LoginTokens,
): Promise<SsoSession> {
  const session = sessionFrom(ctx, target, tokens);
  await saveSsoSession(ctx, session, target.account);
  return session;
}

/** Stores the session in the keystore (never a file: the file store is itself encrypted); default `sso:<issuer>`. */
export async function saveSsoSession(
  ctx: Context,
  session: SsoSession,
  account = ssoAccount(session.issuer),
): Promise<void> {
  const { keystore } = await ctx.keystore();
  await keystore.set(account, JSON.stringify(session));
}

/** The stored session at `issuer`, or null. A damaged entry is LK_FORMAT_INVALID (values are never quoted). */
export async function loadSsoSession(ctx: Context, issuer: string): Promise<SsoSession | null> {
  return loadStoredSession(
    ctx,
    ssoAccount(issuer),
    "Run `latchkey logout sso` and `latchkey login sso` again.",
  );
}

/** The session stored under a keystore account (`sso:…` or `session:…`), or null; damaged → LK_FORMAT_INVALID. */
export async function loadStoredSession(
  ctx: Context,
  account: string,
  hint: string,
): Promise<SsoSession | null> {
  const { keystore } = await ctx.keystore(account);
  const raw = await keystore.get(account);
  if (raw === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const session = ssoSessionSchema.safeParse(parsed);
  if (!session.success) {
    throw new LatchkeyError("LK_FORMAT_INVALID", {
      message: `The session stored under ${account} is not valid.`,
      hint,
    });
  }
  return session.data;
}

/** Every issuer with a stored SSO session. */
export async function storedSsoIssuers(ctx: Context): Promise<string[]> {
  const { keystore } = await ctx.keystore();
  return (await keystore.list()).filter((a) => a.startsWith("sso:")).map((a) => a.slice("sso:".length));
}

/** A session is used until 60 s before its expiry, so a token is never handed out about to lapse in flight. */
export const EXPIRY_MARGIN_S = 60;

/** True when the session's access token is still usable at `nowMs`. */
export function sessionValid(session: SsoSession, nowMs: number): boolean {
  return session.expires_at - EXPIRY_MARGIN_S > nowMs / 1000;
}

function expiredError(issuer: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_SESSION_EXPIRED", {
    message: `The SSO session at ${issuer} has expired${why}.`,
  });
}

/** Where a session is kept, and whether a still-valid access token must be replaced anyway. */
export interface RefreshOptions {
  /** The keystore account; default `sso:<issuer>`. */
  readonly account?: string;
  /**
   * An access token to replace even though it has not expired (the resource server rejected it, or the user
   * rotates it). When the stored session already carries another token, another process replaced it: that one
   * is returned without a request.
   */
  readonly replacing?: string;
}

// The refresh under way in this process, by context and keystore account. A command's concurrent requests (each
// meeting the expired session, or each a 401) share it, its error included: the file lock alone would only queue
// them, each polling for the lock, and after a failed refresh each would spend the refresh token again.
const refreshing = new WeakMap<Context, Map<string, Promise<SsoSession>>>();

/**
 * Refreshes `session` with its refresh token, one refresh at a time: callers in this process while one is under
 * way get its session or its error, and a refresh runs under an inter-process lock, so no two requests ever spend
 * the same rotating refresh token (oidc-provider takes a second use for theft and revokes the whole grant).
 * Inside the lock the stored session is read again: another process may have refreshed it already.
 */
export async function refreshSsoSession(
  ctx: Context,
  session: SsoSession,
  verbose = 0,
  options: RefreshOptions = {},
): Promise<SsoSession> {
  const account = options.account ?? ssoAccount(session.issuer);
  const flights = refreshing.get(ctx) ?? new Map<string, Promise<SsoSession>>();
  refreshing.set(ctx, flights);
  for (let running = flights.get(account); running !== undefined; running = flights.get(account)) {
    const shared = await running;
    // A refresh that found the stored session still valid hands that one back: not enough when it is the token
    // the server just refused.
    if (options.replacing === undefined || shared.access_token !== options.replacing) return shared;
  }
  const flight = redeemRefreshToken(ctx, session, verbose, account, options).finally(() =>
    flights.delete(account),
  );
  flights.set(account, flight);
  return flight;
}

/** The refresh itself, under the inter-process lock (see {@link refreshSsoSession}). */
async function redeemRefreshToken(
  ctx: Context,
  session: SsoSession,
  verbose: number,
  account: string,
  options: RefreshOptions,
): Promise<SsoSession> {
  await ensurePrivateDir(ctx.paths.home);
  // The SSO lock keeps its historical name; other accounts are named by a hash of the account.
  const lockName =
    options.account === undefined
      ? `sso-${createHash("sha256").update(session.issuer).digest("hex").slice(0, 16)}`
      : `session-${createHash("sha256").update(account).digest("hex").slice(0, 16)}`;
  const lockTarget = join(ctx.paths.home, lockName);
  return withFileLock(lockTarget, async () => {
    const current = (await loadStoredSession(ctx, account, "Log in again.")) ?? session;
    const replaced = options.replacing !== undefined && current.access_token !== options.replacing;
    if (replaced || (options.replacing === undefined && sessionValid(current, ctx.clock.now())))
      return current;
    if (current.refresh_token === undefined)
      throw expiredError(current.issuer, " and it has no refresh token");
    const config = await discoverProvider(ctx, current.issuer, current.client_id, verbose);
    const oidc = await import("openid-client");
    let tokens: Awaited<ReturnType<typeof oidc.refreshTokenGrant>>;
    try {
      tokens = await oidc.refreshTokenGrant(config, current.refresh_token);
    } catch (error) {
      const code = oauthErrorCode(error);
      if (code === "invalid_grant") {
        throw new LatchkeyError("LK_SESSION_EXPIRED", {
          message: `The SSO session at ${current.issuer} has expired: the provider no longer accepts its refresh token.`,
          cause: error,
        });
      }
      throw ssoFailure(error, "Refreshing the SSO session", current.issuer);
    }
    const next = sessionFrom(ctx, { issuer: current.issuer, clientId: current.client_id }, tokens, current);
    await saveSsoSession(ctx, next, account);
    return next;
  });
}

/**
 * The SSO session for a command that needs one: the stored session, refreshed when its access token has
 * expired. No session, or one that cannot be refreshed, is LK_SESSION_EXPIRED with the login hint.
 */
export async function requireSsoSession(
  ctx: Context,
  options: SsoTargetOptions & { verbose?: number } = {},
): Promise<SsoSession> {
  const issuer = await sessionIssuer(ctx, options);
  const session = await loadSsoSession(ctx, issuer);
  if (session === null) {
    throw new LatchkeyError("LK_SESSION_EXPIRED", {
      message: `There is no SSO session at ${issuer}.`,
    });
  }
  if (sessionValid(session, ctx.clock.now())) return session;
  return refreshSsoSession(ctx, session, options.verbose ?? 0);
}

/** The issuer a session command is about: --issuer, else the profile's sso_issuer, else the only stored session. */
export async function sessionIssuer(ctx: Context, options: SsoTargetOptions): Promise<string> {
  if (options.issuer !== undefined) {
    assertSecureEndpoint(options.issuer);
    return canonicalIssuer(options.issuer);
  }
  const selected = await selectProfile(ctx, options.profile);
  if (selected.profile.ssoIssuer !== undefined) return canonicalIssuer(selected.profile.ssoIssuer);
  const stored = await storedSsoIssuers(ctx);
  if (stored.length === 1) return stored[0]!;
  if (stored.length === 0) {
    throw new LatchkeyError("LK_SESSION_EXPIRED", {
      message: "There is no SSO session.",
    });
  }
  throw new LatchkeyError("LK_USAGE", {
    message: `There are SSO sessions at ${stored.length} issuers (${stored.join(", ")}); say which with --issuer.`,
  });
}

/** The outcome of a login, for the command to report. */
export interface LoginResult {
  readonly session: SsoSession;
}

/** One authorization code flow: what to ask for, and how to reach the user. */
export interface CodeFlowRequest {
  /** The provider, for messages. */
  readonly issuer: string;
  /** Authorization request parameters besides PKCE, state, nonce and redirect_uri (scope, resource, …). */
  readonly parameters: URLSearchParams;
  /** True to send a nonce and require an ID token bound to it (OpenID Connect logins). */
  readonly openid: boolean;
  readonly noBrowser?: boolean;
  readonly timeoutMs?: number;
}

/**
 * The authorization code flow with PKCE (S256), state and nonce, redirected to a one-shot loopback listener; with
 * `noBrowser` the URL is only printed. A wrong state or an error callback ends the flow before any token request;
 * openid-client checks state, nonce and the ID token again at the exchange.
 */
export async function authorizationCodeFlow(
  ctx: Context,
  config: Configuration,
  request: CodeFlowRequest,
): Promise<LoginTokens & TokenEndpointResponse> {
  const endpoint = config.serverMetadata().authorization_endpoint;
  if (endpoint === undefined) {
    throw new LatchkeyError("LK_SSO_FAILED", {
      message: `${request.issuer} offers no authorization endpoint, so there is no browser login.`,
    });
  }
  // The browser is sent there with the PKCE challenge and returns with the code: same rule as every endpoint.
  assertSecureEndpoint(endpoint, "the authorization_endpoint");
  const oidc = await import("openid-client");
  const secrets = authorizationSecrets(ctx);
  const listener = await startLoopbackListener({
    expectedState: secrets.state,
    ...(request.timeoutMs === undefined ? {} : { timeoutMs: request.timeoutMs }),
  });
  let browser: Promise<boolean> | undefined;
  try {
    const parameters = new URLSearchParams(request.parameters);
    parameters.set("redirect_uri", listener.redirectUri);
    parameters.set("code_challenge", secrets.codeChallenge);
    parameters.set("code_challenge_method", "S256");
    parameters.set("state", secrets.state);
    if (request.openid) parameters.set("nonce", secrets.nonce);
    const url = oidc.buildAuthorizationUrl(config, parameters);
    if (request.noBrowser) {
      ctx.stderr.write(
        `Open this URL in a browser on this machine to log in to ${request.issuer}:\n  ${url.href}\n` +
          `Waiting for the login at ${listener.redirectUri} …\n`,
      );
    } else {
      ctx.stderr.write(
        `Opening your browser to log in to ${request.issuer}. If it does not open, visit:\n  ${url.href}\n`,
      );
      browser = openBrowser(ctx, url.href, BROWSER_TIMEOUT_MS).catch(() => false);
    }
    const callbackUrl = await listener.callback;
    try {
      return await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: secrets.codeVerifier,
        expectedState: secrets.state,
        ...(request.openid ? { expectedNonce: secrets.nonce, idTokenExpected: true } : {}),
      });
    } catch (error) {
      throw ssoFailure(error, "Exchanging the authorization code", request.issuer);
    }
  } finally {
    await listener.close();
    await browser;
  }
}

/** The browser login of `latchkey login sso`: {@link authorizationCodeFlow} for an ID token and a refresh token. */
export async function browserLogin(
  ctx: Context,
  target: SsoTarget,
  options: BrowserLoginOptions = {},
): Promise<LoginResult> {
  const config = await discoverProvider(ctx, target.issuer, target.clientId, options.verbose ?? 0);
  const tokens = await authorizationCodeFlow(ctx, config, {
    issuer: target.issuer,
    parameters: new URLSearchParams({ scope: SSO_SCOPE }),
    openid: true,
    ...(options.noBrowser === undefined ? {} : { noBrowser: options.noBrowser }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  return { session: await saveSsoSessionFrom(ctx, target, tokens) };
}

/** What `logout sso` did at the provider. */
export interface RevocationResult {
  /** False when the provider's discovery document names no revocation_endpoint. */
  readonly offered: boolean;
  /** Which tokens were revoked, in order. */
  readonly revoked: readonly ("refresh_token" | "access_token")[];
}

/** How a logout reports what {@link revokeSsoSession} did; `where` is "the provider" or "the server". */
export function describeRevocation(result: RevocationResult, where: string): string {
  return result.offered
    ? `revoked the ${result.revoked.join(" and ").replaceAll("_", " ")} at ${where}`
    : `${where} offers no revocation endpoint, so its tokens stay valid until they expire`;
}

/**
 * Revokes the session's tokens at the provider (RFC 7009), refresh token first: revoking it ends the grant, so
 * the access token cannot be renewed while its own revocation is in flight.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009
 */
export async function revokeSsoSession(
  ctx: Context,
  session: SsoSession,
  verbose = 0,
): Promise<RevocationResult> {
  return revokeTokens(
    ctx,
    session,
    [
      ["refresh_token", session.refresh_token],
      ["access_token", session.access_token],
    ],
    verbose,
  );
}

/** Revokes `tokens` in order at the session's provider (RFC 7009); undefined entries are skipped. */
export async function revokeTokens(
  ctx: Context,
  session: Pick<SsoSession, "issuer" | "client_id">,
  tokens: readonly (readonly ["refresh_token" | "access_token", string | undefined])[],
  verbose = 0,
): Promise<RevocationResult> {
  const config = await discoverProvider(ctx, session.issuer, session.client_id, verbose);
  if (config.serverMetadata().revocation_endpoint === undefined) return { offered: false, revoked: [] };
  const oidc = await import("openid-client");
  const revoked: ("refresh_token" | "access_token")[] = [];
  for (const [hint, token] of tokens) {
    if (token === undefined) continue;
    try {
      await oidc.tokenRevocation(config, token, { token_type_hint: hint });
    } catch (error) {
      throw ssoFailure(error, `Revoking the ${hint.replace("_", " ")}`, session.issuer);
    }
    revoked.push(hint);
  }
  return { offered: true, revoked };
}

/** Removes the stored session; true when there was one. */
export async function deleteSsoSession(ctx: Context, issuer: string): Promise<boolean> {
  const { keystore } = await ctx.keystore();
  return keystore.delete(ssoAccount(issuer));
}

/** The browser flow for environments declared with `grant = "authorization_code"` (oauth/tokens.ts's hook). */
export const environmentCodeGrant: InteractiveGrant = (ctx, env, config) =>
  authorizationCodeFlow(ctx, config, {
    issuer: env.issuer ?? env.tokenEndpoint ?? env.name,
    parameters: grantParameters(env),
    openid: env.scopes.includes("openid"),
  });

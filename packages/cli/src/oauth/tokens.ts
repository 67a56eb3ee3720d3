// Access tokens for service environments: cached in the keystore under `oauth:<profile>:<env>` (DESIGN.md), reused
// until 60 s before expiry, refreshed with the refresh token when there is one, re-acquired otherwise.
//
// Single-flight across processes: a process that finds no usable token takes an inter-process lock
// ($LATCHKEY_HOME/oauth/<profile>.<env>.lock) and reads the cache again before asking the provider, so N concurrent
// processes on an expired cache make one token request, and a rotating refresh token is spent once (a second use
// of a rotated refresh token is invalid_grant, and oidc-provider then revokes the whole grant).
import { join } from "node:path";
import { LatchkeyError, cachedTokenSchema, type CachedToken } from "@latchkey/core";
import type * as OpenId from "openid-client";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir } from "../fs/safe-file.js";
import {
  assertSecureEndpoint,
  loadEnvironment,
  readEnvironmentSecret,
  type EnvironmentConfig,
} from "./config.js";
import { tracedFetch } from "../http/client.js";

/** A token is used until this many seconds before it expires. */
export const EXPIRY_LEEWAY_SECONDS = 60;
/** Lifetime assumed for a token whose response has no expires_in: short, so a silently expired token does not linger. */
export const DEFAULT_LIFETIME_SECONDS = 300;

/**
 * How long a process waits for another one's token request: discovery and the token request may each take up to
 * openid-client's 30 s timeout, and a waiter that gave up sooner would fail while the holder is about to succeed.
 */
const TOKEN_LOCK_TIMEOUT_MS = 90_000;

/** Which environment to get a token for. */
export interface TokenTarget {
  profile: string;
  env: string;
}

/** Options for getAccessToken. */
export interface GetAccessTokenOptions {
  /** -v level for HTTP traces on stderr. */
  verbose?: number;
  /**
   * An access token a resource server rejected: if the cache still holds it, it is discarded and a new one acquired.
   * If another process has already replaced it, the replacement is used without a request.
   */
  reject?: string;
}

/** A usable token and how it was obtained. */
export interface AccessTokenResult {
  token: CachedToken;
  source: "cache" | "refreshed" | "acquired";
  environment: EnvironmentConfig;
}

/** The keystore account of an environment's token cache. */
export function tokenAccount(target: TokenTarget): string {
  return `oauth:${target.profile}:${target.env}`;
}

/** True when `token` may still be used at `nowMs`. */
export function isFresh(token: CachedToken, nowMs: number): boolean {
  return token.expires_at - EXPIRY_LEEWAY_SECONDS > nowMs / 1000;
}

/** Parses a cache entry; anything malformed counts as no entry (it is replaced on the next acquisition). */
export function parseCachedToken(value: string | null): CachedToken | null {
  if (value === null) return null;
  let data: unknown;
  try {
    data = JSON.parse(value);
  } catch {
    return null;
  }
  const parsed = cachedTokenSchema.safeParse(data);
  return parsed.success ? parsed.data : null;
}

/** Acquires a token for an `authorization_code` / `device_code` environment with a person's help. */
export type InteractiveGrant = (
  ctx: Context,
  env: EnvironmentConfig,
  config: OpenId.Configuration,
  client: typeof OpenId,
) => Promise<OpenId.TokenEndpointResponse>;

/**
 * The browser and device logins, by the grant that needs them. The context carries them (Context.interactiveGrants):
 * without them those environments work only while their cached or refreshable token lasts.
 */
export interface InteractiveGrants {
  readonly authorization_code: InteractiveGrant;
  readonly device_code: InteractiveGrant;
}

function oauthFailed(env: EnvironmentConfig, what: string, cause: unknown): LatchkeyError {
  if (cause instanceof LatchkeyError) return cause;
  const answer = oauthError(cause);
  let detail: string;
  if (answer !== undefined) {
    // error and error_description are the provider's words about the request, never credentials.
    detail = `the provider answered ${answer.error}${answer.description !== undefined ? ` (${answer.description})` : ""}`;
  } else if (cause instanceof TypeError) {
    detail = "the provider could not be reached";
  } else {
    detail = cause instanceof Error ? cause.message : "unexpected answer";
  }
  return new LatchkeyError("LK_OAUTH_FAILED", {
    message: `Could not ${what} for environment ${JSON.stringify(env.name)} (profile ${JSON.stringify(env.profile)}): ${detail}.`,
    cause,
    details: {
      environment: env.name,
      profile: env.profile,
      ...(answer !== undefined ? { error: answer.error } : {}),
    },
  });
}

/**
 * The OAuth error of a failed request: openid-client puts it on the error itself (a JSON error body) or, when the
 * server also sent WWW-Authenticate (oidc-provider does for invalid_client), in the parsed challenges.
 */
function oauthError(cause: unknown): { error: string; description?: string } | undefined {
  const body = cause as { error?: unknown; error_description?: unknown; cause?: unknown } | null;
  if (typeof body?.error === "string") {
    return {
      error: body.error,
      ...(typeof body.error_description === "string" ? { description: body.error_description } : {}),
    };
  }
  if (Array.isArray(body?.cause)) {
    for (const challenge of body.cause as Array<{ parameters?: Record<string, unknown> }>) {
      const error = challenge.parameters?.error;
      const description = challenge.parameters?.error_description;
      if (typeof error === "string")
        return { error, ...(typeof description === "string" ? { description } : {}) };
    }
  }
  return undefined;
}

function errorCode(cause: unknown): string | undefined {
  return oauthError(cause)?.error;
}

async function loadClient(): Promise<typeof OpenId> {
  // openid-client (and jose beneath it) are loaded only when a token has to be requested: a cache hit costs no load.
  return import("openid-client");
}

/** The openid-client Configuration for an environment: discovery, or a bare token endpoint. */
async function clientConfiguration(
  ctx: Context,
  env: EnvironmentConfig,
  verbose: number,
  client: typeof OpenId,
): Promise<OpenId.Configuration> {
  const secret =
    env.clientSecretEnv === undefined
      ? undefined
      : await readEnvironmentSecret(ctx, env, env.clientSecretEnv, "client secret");
  const auth = secret === undefined ? client.None() : client.ClientSecretBasic(secret);
  const fetcher = tracedFetch(ctx, verbose) as OpenId.CustomFetch;
  const base = env.issuer ?? env.tokenEndpoint!;
  const insecure =
    assertSecureEndpoint(base, env.issuer !== undefined ? "issuer" : "token_endpoint").protocol === "http:";
  let config: OpenId.Configuration;
  if (env.issuer !== undefined) {
    try {
      config = await client.discovery(new URL(env.issuer), env.clientId, undefined, auth, {
        [client.customFetch]: fetcher,
        execute: insecure ? [client.allowInsecureRequests] : [],
      });
    } catch (err) {
      throw oauthFailed(env, "discover the issuer", err);
    }
  } else {
    const endpoint = new URL(env.tokenEndpoint!);
    config = new client.Configuration(
      { issuer: endpoint.origin, token_endpoint: endpoint.href },
      env.clientId,
      undefined,
      auth,
    );
    config[client.customFetch] = fetcher;
    if (insecure) client.allowInsecureRequests(config);
  }
  // A loopback issuer may not send the client's secret to a plain-http endpoint elsewhere.
  const tokenEndpoint = config.serverMetadata().token_endpoint;
  if (tokenEndpoint === undefined)
    throw oauthFailed(
      env,
      "find the token endpoint",
      new Error("the discovery document names no token_endpoint"),
    );
  assertSecureEndpoint(tokenEndpoint, "the discovered token_endpoint");
  return config;
}

/** The token-request parameters an environment adds to any grant: scope, resource indicators, audience. */
export function grantParameters(env: EnvironmentConfig): URLSearchParams {
  const params = new URLSearchParams();
  if (env.scopes.length > 0) params.set("scope", env.scopes.join(" "));
  for (const resource of env.resource) params.append("resource", resource);
  if (env.audience !== undefined) params.set("audience", env.audience);
  return params;
}

function toCache(
  ctx: Context,
  response: OpenId.TokenEndpointResponse,
  previous: CachedToken | null,
): CachedToken {
  const lifetime =
    typeof response.expires_in === "number" && response.expires_in > 0
      ? response.expires_in
      : DEFAULT_LIFETIME_SECONDS;
  // A refresh response without a refresh_token keeps the old one valid (RFC 6749 §6); with one, the old is spent.
  const refresh = response.refresh_token ?? previous?.refresh_token;
  return {
    access_token: response.access_token,
    ...(refresh !== undefined ? { refresh_token: refresh } : {}),
    expires_at: Math.floor(ctx.clock.now() / 1000) + lifetime,
    // openid-client lower-cases token_type; Bearer is how RFC 6750 spells it in the header.
    token_type:
      response.token_type === undefined || response.token_type.toLowerCase() === "bearer"
        ? "Bearer"
        : response.token_type,
    ...(typeof response.scope === "string" ? { scope: response.scope } : {}),
  };
}

const warned = new WeakSet<Context>();

/** Prints the RFC 9700 warning for environments that use the password grant, once per command. */
export function warnPasswordGrant(ctx: Context, env: EnvironmentConfig): void {
  if (warned.has(ctx)) return;
  warned.add(ctx);
  ctx.stderr.write(
    `warning: environment ${JSON.stringify(env.name)} uses the resource owner password grant, which the OAuth 2.0 ` +
      "Security Best Current Practice (RFC 9700, section 2.4) says MUST NOT be used; move it to client_credentials.\n",
  );
}

async function acquire(
  ctx: Context,
  env: EnvironmentConfig,
  config: OpenId.Configuration,
  client: typeof OpenId,
): Promise<OpenId.TokenEndpointResponse> {
  switch (env.grant) {
    case "client_credentials":
      return client.clientCredentialsGrant(config, grantParameters(env));
    case "password": {
      const password = await readEnvironmentSecret(ctx, env, env.passwordEnv!, "password");
      const params = grantParameters(env);
      params.set("username", env.username!);
      params.set("password", password);
      return client.genericGrantRequest(config, "password", params);
    }
    case "authorization_code":
    case "device_code": {
      const interactive = ctx.interactiveGrants?.[env.grant];
      if (interactive === undefined) {
        throw new LatchkeyError("LK_OAUTH_FAILED", {
          message: `Environment ${JSON.stringify(env.name)} uses the ${env.grant} grant, which needs an interactive login this command cannot run.`,
          hint: "Use a client_credentials client for unattended use.",
          details: { environment: env.name, grant: env.grant },
        });
      }
      return interactive(ctx, env, config, client);
    }
  }
}

/** Grants that can run without a person: after a failed refresh they simply run again. */
function unattended(env: EnvironmentConfig): boolean {
  return env.grant === "client_credentials" || env.grant === "password";
}

/**
 * A valid access token for `target`: from the keystore cache while it has more than 60 s left, else refreshed or
 * re-acquired under an inter-process lock (single-flight), then cached. `invalid_grant` on refresh re-acquires when
 * the grant runs unattended, else clears the cache and fails. Throws LK_OAUTH_* errors naming the environment.
 */
export async function getAccessToken(
  ctx: Context,
  target: TokenTarget,
  options: GetAccessTokenOptions = {},
): Promise<AccessTokenResult> {
  const env = await loadEnvironment(ctx, target.profile, target.env);
  if (env.grant === "password") warnPasswordGrant(ctx, env);
  const account = tokenAccount(target);
  const { keystore } = await ctx.keystore(account);
  // Not a type guard: a stale or rejected entry is still a CachedToken whose refresh token may be used.
  const usable = (token: CachedToken | null): boolean =>
    token !== null && token.access_token !== options.reject && isFresh(token, ctx.clock.now());

  const first = parseCachedToken(await keystore.get(account));
  if (first !== null && usable(first)) return { token: first, source: "cache", environment: env };

  const dir = join(ctx.paths.home, "oauth");
  await ensurePrivateDir(ctx.paths.home);
  await ensurePrivateDir(dir);
  return withFileLock(
    join(dir, `${target.profile}.${target.env}`),
    async (signal) => {
      // Another process may have refreshed while this one waited for the lock.
      const cached = parseCachedToken(await keystore.get(account));
      if (cached !== null && usable(cached))
        return { token: cached, source: "cache" as const, environment: env };

      const client = await loadClient();
      const config = await clientConfiguration(ctx, env, options.verbose ?? 0, client);
      let response: OpenId.TokenEndpointResponse | undefined;
      let source: AccessTokenResult["source"] = "acquired";
      if (cached?.refresh_token !== undefined) {
        try {
          response = await client.refreshTokenGrant(config, cached.refresh_token);
          source = "refreshed";
        } catch (err) {
          if (errorCode(err) !== "invalid_grant") throw oauthFailed(env, "refresh the token", err);
          // The refresh token is dead (expired, revoked or already rotated): it must not be tried again.
          await keystore.delete(account);
          if (!unattended(env)) {
            throw new LatchkeyError("LK_SESSION_EXPIRED", {
              message: `The refresh token of environment ${JSON.stringify(env.name)} was refused (invalid_grant), and its ${env.grant} grant needs an interactive login.`,
              // The cache is gone now, so the next run goes straight to the interactive login.
              hint: `Run \`latchkey auth token --env ${env.name}\` again on a terminal to log in.`,
              details: { environment: env.name },
            });
          }
        }
      }
      if (response === undefined) {
        try {
          response = await acquire(ctx, env, config, client);
        } catch (err) {
          throw oauthFailed(env, "obtain a token", err);
        }
      }
      const token = toCache(ctx, response, source === "refreshed" ? cached : null);
      // A lost lock means another process may be writing too: fail rather than race its write.
      signal.throwIfAborted();
      await keystore.set(account, JSON.stringify(token));
      return { token, source, environment: env };
    },
    { timeoutMs: TOKEN_LOCK_TIMEOUT_MS },
  );
}

/** Removes an environment's cached token; true when there was one. */
export async function clearCachedToken(ctx: Context, target: TokenTarget): Promise<boolean> {
  const account = tokenAccount(target);
  const { keystore } = await ctx.keystore(account);
  return keystore.delete(account);
}

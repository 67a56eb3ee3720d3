// Requests to a service with an environment's bearer token, and the one retry RFC 6750 makes safe: a 401 whose
// challenge says the token is invalid (or gives no error code) means the cached token died early (revoked, keys
// rotated), so it is discarded, a new one acquired and the request sent once more. Anything else a retry cannot fix
// (insufficient_scope, a step-up challenge, a fresh token rejected too) is an error naming the environment.
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { assertSecureEndpoint } from "./config.js";
import { request, type ReplayableBody } from "../http/client.js";
import { getAccessToken, type TokenTarget } from "./tokens.js";

/** Options for authFetch. */
export interface AuthFetchOptions {
  /** -v level for HTTP traces on stderr (tokens redacted). */
  verbose?: number;
}

/** What authFetch sends: a replayable body, since the retry sends it again. */
export interface AuthFetchInit {
  method?: string;
  headers?: HeadersInit;
  body?: ReplayableBody | null;
  signal?: AbortSignal | null;
  /** Default "manual": a redirect is returned, so the token never follows it to another origin. */
  redirect?: RequestRedirect;
}

/** One parsed `Bearer` challenge from WWW-Authenticate (RFC 6750 §3). */
export interface BearerChallenge {
  error?: string;
  errorDescription?: string;
  scope?: string;
  /** Step-up parameters (RFC 9470). */
  acrValues?: string;
  maxAge?: string;
}

/** Parses the Bearer challenge out of a WWW-Authenticate header; null when there is none. */
export function parseBearerChallenge(header: string | null): BearerChallenge | null {
  if (header === null) return null;
  const start = header.search(/(^|[\s,])Bearer(\s|$)/i);
  if (start === -1) return null;
  const rest = header.slice(start).replace(/^[\s,]*Bearer/i, "");
  const params: Record<string, string> = {};
  const pattern = /\s*,?\s*([A-Za-z_][\w-]*)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]*)/y;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(rest)) !== null) {
    // A bare token without '=' starts the next challenge (another scheme): stop there.
    const value = match[3] !== undefined ? match[3].replace(/\\(.)/g, "$1") : match[2]!;
    params[match[1]!.toLowerCase()] = value;
  }
  return {
    ...(params.error !== undefined ? { error: params.error } : {}),
    ...(params.error_description !== undefined ? { errorDescription: params.error_description } : {}),
    ...(params.scope !== undefined ? { scope: params.scope } : {}),
    ...(params.acr_values !== undefined ? { acrValues: params.acr_values } : {}),
    ...(params.max_age !== undefined ? { maxAge: params.max_age } : {}),
  };
}

function isStepUp(challenge: BearerChallenge): boolean {
  return (
    challenge.error === "insufficient_user_authentication" ||
    challenge.acrValues !== undefined ||
    challenge.maxAge !== undefined
  );
}

function challengeError(
  target: TokenTarget,
  url: URL,
  status: number,
  challenge: BearerChallenge,
): LatchkeyError | null {
  const where = `${url.origin}${url.pathname}`;
  const env = JSON.stringify(target.env);
  if (isStepUp(challenge)) {
    const wants = [
      challenge.acrValues !== undefined ? `acr_values ${challenge.acrValues}` : "",
      challenge.maxAge !== undefined ? `max_age ${challenge.maxAge}` : "",
    ]
      .filter(Boolean)
      .join(", ");
    return new LatchkeyError("LK_OAUTH_INSUFFICIENT_SCOPE", {
      message: `${where} asks environment ${env} for a stronger authentication (step-up${wants ? `: ${wants}` : ""}); a service token cannot provide it, so no retry was made.`,
      hint: "Use an environment whose client the server accepts without step-up, or reach the server through an interactive login.",
      details: { environment: target.env, status, error: challenge.error ?? "step_up" },
    });
  }
  if (challenge.error === "insufficient_scope") {
    return new LatchkeyError("LK_OAUTH_INSUFFICIENT_SCOPE", {
      message: `${where} answered ${status} insufficient_scope to environment ${env}${challenge.scope !== undefined ? ` (it needs scope ${challenge.scope})` : ""}; no retry was made.`,
      details: { environment: target.env, status, error: "insufficient_scope" },
    });
  }
  return null;
}

/**
 * fetch() with the access token of `target` (see getAccessToken), through the CLI's one HTTP client. On 401 with
 * error="invalid_token" or no error code it discards the cached token, acquires a new one and retries exactly
 * once. insufficient_scope, a step-up challenge, a second 401 or a failed re-acquisition throw LK_OAUTH_* errors
 * naming the environment, with no further request. Other responses, 4xx and 5xx included, are returned. `url` must
 * be https (http on loopback). Redirects are returned, not followed (unless `init.redirect` says so), so the token
 * never reaches another origin.
 */
export async function authFetch(
  ctx: Context,
  target: TokenTarget,
  url: string | URL,
  init: AuthFetchInit = {},
  options: AuthFetchOptions = {},
): Promise<Response> {
  const parsed = assertSecureEndpoint(String(url), "the request URL");
  const verbose = options.verbose ?? 0;
  const blocked = (res: Response): LatchkeyError | null => {
    if (res.status !== 401 && res.status !== 403) return null;
    const challenge = parseBearerChallenge(res.headers.get("www-authenticate"));
    return challenge === null ? null : challengeError(target, parsed, res.status, challenge);
  };

  const first = await getAccessToken(ctx, target, { verbose });
  const response = await request(ctx, {
    url: parsed.href,
    ...(init.method === undefined ? {} : { method: init.method }),
    ...(init.headers === undefined ? {} : { headers: init.headers }),
    ...(init.body === undefined ? {} : { body: init.body }),
    ...(init.signal === undefined || init.signal === null ? {} : { signal: init.signal }),
    ...(init.redirect === undefined ? {} : { redirect: init.redirect }),
    verbose,
    bearer: {
      token: first.token.access_token,
      refresh: {
        retry: (res) => {
          const refused = blocked(res);
          if (refused !== null) throw refused;
          const challenge = parseBearerChallenge(res.headers.get("www-authenticate"));
          return challenge?.error === undefined || challenge.error === "invalid_token";
        },
        renew: async (rejected) => {
          try {
            return (await getAccessToken(ctx, target, { verbose, reject: rejected })).token.access_token;
          } catch (err) {
            if (err instanceof LatchkeyError && err.code !== "LK_OAUTH_FAILED") throw err;
            throw new LatchkeyError("LK_OAUTH_FAILED", {
              message: `${parsed.origin} rejected the token of environment ${JSON.stringify(target.env)} (401), and a new one could not be acquired${err instanceof LatchkeyError ? `: ${err.message}` : "."}`,
              cause: err,
              details: { environment: target.env },
            });
          }
        },
        rejectedAgain: (res) =>
          blocked(res) ??
          new LatchkeyError("LK_OAUTH_TOKEN_REJECTED", {
            message: `${parsed.origin}${parsed.pathname} rejected environment ${JSON.stringify(target.env)}'s token twice (401), the second time a freshly acquired one; no further request was made.`,
            details: { environment: target.env, status: 401 },
          }),
      },
    },
  });
  const refused = blocked(response);
  if (refused !== null) throw refused;
  return response;
}

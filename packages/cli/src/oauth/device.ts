// The device authorization grant (RFC 8628) for machines without a browser: the user enters a short code on
// another device while the CLI polls the token endpoint. The polling loop is ours rather than openid-client's
// pollDeviceAuthorizationGrant so that its waits go through ctx.clock (tests replace it) and its ending
// conditions map onto the catalogue.
import type { Configuration, TokenEndpointResponse } from "openid-client";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { browserUnavailable } from "../browser.js";
import { assertSecureEndpoint } from "./config.js";
import { grantParameters, type InteractiveGrant } from "./tokens.js";
import {
  SSO_SCOPE,
  browserLogin,
  discoverProvider,
  oauthErrorCode,
  saveSsoSessionFrom,
  ssoFailure,
  type BrowserLoginOptions,
  type LoginResult,
  type LoginTokens,
  type SsoTarget,
} from "./sso.js";

/** The grant type of the device access token request (RFC 8628 §3.4). */
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** RFC 8628 §3.5: the default polling interval, and how much `slow_down` adds to it. */
const DEFAULT_INTERVAL_S = 5;
const SLOW_DOWN_STEP_S = 5;

/**
 * Runs the device flow: prints the verification URI and user code on stderr, then polls honouring `interval` and
 * `slow_down` until the user approves, denies, or the device code expires.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628
 */
export async function deviceAuthorizationFlow(
  ctx: Context,
  config: Configuration,
  target: { issuer: string; parameters: URLSearchParams },
): Promise<LoginTokens & TokenEndpointResponse> {
  const endpoint = config.serverMetadata().device_authorization_endpoint;
  if (endpoint === undefined) {
    throw new LatchkeyError("LK_SSO_FAILED", {
      message: `${target.issuer} does not offer the device authorization grant (no device_authorization_endpoint).`,
      hint: "Log in with the browser instead: `latchkey login sso` (add --no-browser to print the URL).",
    });
  }
  assertSecureEndpoint(endpoint, "the device_authorization_endpoint");
  const oidc = await import("openid-client");
  let authorization: Awaited<ReturnType<typeof oidc.initiateDeviceAuthorization>>;
  try {
    authorization = await oidc.initiateDeviceAuthorization(config, target.parameters);
  } catch (error) {
    throw ssoFailure(error, "Starting the device login", target.issuer);
  }
  ctx.stderr.write(
    `To log in to ${target.issuer}, open ${authorization.verification_uri} on any device and enter the code:\n\n` +
      `    ${authorization.user_code}\n\n` +
      (authorization.verification_uri_complete
        ? `(or open ${authorization.verification_uri_complete})\n`
        : "") +
      `Waiting for the login (the code expires in ${Math.round(authorization.expires_in / 60)} min)…\n`,
  );

  let intervalS = authorization.interval ?? DEFAULT_INTERVAL_S;
  const deadline = ctx.clock.now() + authorization.expires_in * 1000;
  for (;;) {
    await ctx.clock.sleep(intervalS * 1000);
    if (ctx.clock.now() >= deadline) break;
    try {
      return await oidc.genericGrantRequest(config, DEVICE_CODE_GRANT, {
        device_code: authorization.device_code,
      });
    } catch (error) {
      const code = oauthErrorCode(error);
      if (code === "authorization_pending") continue;
      if (code === "slow_down") {
        intervalS += SLOW_DOWN_STEP_S;
        continue;
      }
      if (code === "access_denied") {
        throw new LatchkeyError("LK_OAUTH_DENIED", {
          message: `The device login at ${target.issuer} was denied.`,
          details: { error: code },
        });
      }
      if (code === "expired_token") break;
      throw ssoFailure(error, "The device login", target.issuer);
    }
  }
  throw new LatchkeyError("LK_OAUTH_TIMEOUT", {
    message: `The device code for ${target.issuer} expired before the login was approved.`,
    hint: "Run the command again and enter the new code promptly.",
  });
}

/** `latchkey login sso --device`: {@link deviceAuthorizationFlow} for an ID token and a refresh token. */
export async function deviceLogin(ctx: Context, target: SsoTarget, verbose = 0): Promise<LoginResult> {
  const config = await discoverProvider(ctx, target.issuer, target.clientId, verbose);
  const tokens = await deviceAuthorizationFlow(ctx, config, {
    issuer: target.issuer,
    parameters: new URLSearchParams({ scope: SSO_SCOPE }),
  });
  return { session: await saveSsoSessionFrom(ctx, target, tokens) };
}

/** A login with `--device` ({@link deviceLogin}) or in the browser (browserLogin): `login sso` and `login --server`. */
export async function interactiveLogin(
  ctx: Context,
  target: SsoTarget,
  options: { device?: boolean; noBrowser?: boolean; timeoutMs?: number },
  verbose = 0,
): Promise<LoginResult> {
  if (options.device) return deviceLogin(ctx, target, verbose);
  // Said before anything starts: otherwise the login would wait minutes for a browser that never opens.
  const noBrowserHere = options.noBrowser === true ? null : browserUnavailable(ctx);
  if (noBrowserHere !== null) {
    throw new LatchkeyError("LK_NO_BROWSER", {
      message: `No browser can be opened on this machine: ${noBrowserHere}.`,
    });
  }
  const browser: BrowserLoginOptions = {
    noBrowser: options.noBrowser === true,
    verbose,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
  return browserLogin(ctx, target, browser);
}

/** The device flow for environments declared with `grant = "device_code"` (oauth/tokens.ts's hook). */
export const environmentDeviceGrant: InteractiveGrant = (ctx, env, config) =>
  deviceAuthorizationFlow(ctx, config, {
    issuer: env.issuer ?? env.tokenEndpoint ?? env.name,
    parameters: grantParameters(env),
  });

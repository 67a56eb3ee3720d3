/**
 * oidc-provider, configured for Latchkey: the public client `latchkey-cli` (PKCE, loopback redirects, the device
 * flow), the public web client `latchkey-dashboard` (PKCE, its one redirect under PUBLIC_URL, sign-out through
 * end_session), implicit consent, rotating refresh tokens, revocation that ends one token or one session, its storage on
 * the server's database (adapter.ts) and its keys from the server secret (keys.ts). Sessions reach the audit log
 * through a middleware: a refresh, a revocation, and the reuse of a refresh token as a security event.
 */
import { CLI_CLIENT_ID, DASHBOARD_CLIENT_ID, DASHBOARD_PATH, OIDC_PATH } from "@latchkey/core";
import type { FastifyBaseLogger } from "fastify";
import type { Kysely } from "kysely";
import Provider, { type ClientMetadata, type Configuration, type KoaContextWithOIDC } from "oidc-provider";
import type { Database } from "../db/schema.js";
import { errorSummary } from "../logging.js";
import { kyselyAdapter } from "./adapter.js";
import { findAccountById } from "./data.js";
import type { IdentityKeys } from "./keys.js";
import { escapeHtml, page } from "./pages.js";

/** Token lifetimes, in seconds (access 15 minutes, refresh 30 days, rotating). */
export const TTL = {
  accessToken: 15 * 60,
  refreshToken: 30 * 24 * 60 * 60,
  authorizationCode: 60,
  deviceCode: 10 * 60,
  interaction: 60 * 60,
  session: 24 * 60 * 60,
  idToken: 60 * 60,
} as const;

/** Whether `client` may revoke `token` (RFC 7009 §2.1: only its own). */
function mayRevoke(client: { clientId: string }, token: { clientId?: string | undefined }): boolean {
  return token.clientId === client.clientId;
}

/**
 * The audit row, if any, of a request the provider handled: a refresh, a revocation (logout revokes the refresh
 * token and ends the session; token-rotate revokes the old access token alone), or a session ended at the token
 * endpoint. oidc-provider revokes a grant there only when a refresh token (or a code) is used a second time,
 * which means it was stolen or the client is broken: a security event.
 */
function sessionEvent(
  ctx: KoaContextWithOIDC,
  revokedGrants: readonly string[],
): { action: string; userId: string | null; metadata: Record<string, unknown> } | undefined {
  const oidc = ctx.oidc as KoaContextWithOIDC["oidc"] | undefined;
  if (!oidc) return undefined;
  const { entities } = oidc;
  const clientId = oidc.client?.clientId ?? null;
  if (oidc.route === "token") {
    const grantType = oidc.params?.grant_type;
    if (revokedGrants.length > 0) {
      const source = entities.RefreshToken ?? entities.AuthorizationCode ?? entities.DeviceCode;
      return {
        action: "auth.session_revoked",
        userId: source?.accountId ?? null,
        metadata: {
          reason: grantType === "refresh_token" ? "refresh_token_reused" : "code_reused",
          securityEvent: true,
          session: revokedGrants[0],
          clientId,
        },
      };
    }
    const token = entities.RefreshToken;
    if (grantType === "refresh_token" && ctx.status === 200 && token) {
      return {
        action: "auth.token_refreshed",
        userId: token.accountId,
        metadata: { session: token.grantId ?? null, clientId },
      };
    }
    return undefined;
  }
  if (oidc.route === "revocation" && ctx.status === 200 && oidc.client) {
    const token = entities.RefreshToken ?? entities.AccessToken;
    if (!token || !mayRevoke(oidc.client, token)) return undefined;
    return {
      action: "auth.token_revoked",
      userId: token.accountId ?? null,
      metadata: {
        token: token.kind === "RefreshToken" ? "refresh_token" : "access_token",
        session: token.grantId ?? null,
        sessionEnded: token.grantId !== undefined && revokedGrants.includes(token.grantId),
        clientId,
      },
    };
  }
  return undefined;
}

/** What the provider needs. */
export interface ProviderDeps {
  db: Kysely<Database>;
  keys: IdentityKeys;
  /** Writes one audit row (the service's writer). */
  audit: (action: string, userId: string | null, metadata: Record<string, unknown>) => Promise<void>;
  /** Where provider errors are logged, once there is a logger. */
  log: () => FastifyBaseLogger | undefined;
}

/**
 * The browser dashboard's client (packages/web): a web application with no secret, so PKCE is what binds a code to
 * the page that asked for it; the authorization code grant alone, as a browser must not hold a refresh token (a
 * reload signs in again with prompt=none while the provider's session lives). Its redirect URIs are exact: the
 * dashboard's callback and, after end_session, the dashboard itself, both under the server's public URL.
 */
export function dashboardClient(publicUrl: string): ClientMetadata {
  return {
    client_id: DASHBOARD_CLIENT_ID,
    client_name: "Latchkey dashboard",
    application_type: "web",
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code"],
    response_types: ["code"],
    redirect_uris: [`${publicUrl}${DASHBOARD_PATH}/callback`],
    post_logout_redirect_uris: [`${publicUrl}${DASHBOARD_PATH}/`],
    id_token_signed_response_alg: "EdDSA",
  };
}

/** The provider with issuer `issuer` (`${publicUrl}/oidc`). */
export function makeProvider(issuer: string, deps: ProviderDeps): Provider {
  const { db, keys } = deps;
  const publicUrl = issuer.slice(0, -OIDC_PATH.length);
  const nowSeconds = (): number => Math.floor(Date.now() / 1000);
  // Grants whose other tokens survive the access-token revocation being handled right now (revokeGrantPolicy).
  const keepTokensOf = new Set<string>();
  const configuration: Configuration = {
    adapter: kyselyAdapter(db, nowSeconds, (grantId) => keepTokensOf.has(grantId)),
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        client_name: "Latchkey CLI",
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        response_types: ["code"],
        // RFC 8252 §7.3: oidc-provider matches loopback redirect URIs of native clients without their port, so
        // these two stand for every port the CLI's one-shot listener picks.
        redirect_uris: ["http://127.0.0.1/callback", "http://[::1]/callback"],
        id_token_signed_response_alg: "EdDSA",
      },
      dashboardClient(publicUrl),
    ],
    jwks: { keys: [keys.signingJwk] },
    // SameSite=Strict rather than oidc-provider's Lax: every step of a sign-in (the login form, the resume, the
    // dashboard's silent sign-in) is a navigation from this origin or one the user started, so no cross-site
    // request ever needs the provider's session; Secure follows the request's scheme (TRUST_PROXY decides it).
    cookies: {
      keys: keys.cookieKeys,
      long: { httpOnly: true, sameSite: "strict" },
      short: { httpOnly: true, sameSite: "strict" },
    },
    scopes: ["openid", "offline_access", "email"],
    claims: { openid: ["sub"], email: ["email"] },
    async findAccount(_ctx, sub) {
      const account = await findAccountById(db, sub);
      if (!account) return undefined;
      return { accountId: sub, claims: () => ({ sub, email: account.email }) };
    },
    pkce: { required: () => true },
    responseTypes: ["code"],
    rotateRefreshToken: true,
    // oidc-provider drops offline_access from an authorization request unless it also says prompt=consent; this
    // first-party client never shows a consent page, so its logins always get a refresh token, and its tokens
    // outlive the browser session that made them (the CLI, not the browser, holds the session).
    issueRefreshToken: (_ctx, client) => Promise.resolve(client.grantTypeAllowed("refresh_token")),
    // The dashboard's code and tokens are the other way round: bound to the browser's provider session, so signing
    // out there (end_session) revokes the dashboard's grant and its token dies with it.
    expiresWithSession: (ctx) => Promise.resolve(ctx.oidc.client?.clientId === DASHBOARD_CLIENT_ID),
    ttl: {
      AccessToken: TTL.accessToken,
      RefreshToken: TTL.refreshToken,
      AuthorizationCode: TTL.authorizationCode,
      DeviceCode: TTL.deviceCode,
      Interaction: TTL.interaction,
      Session: TTL.session,
      IdToken: TTL.idToken,
      Grant: TTL.refreshToken,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // The CLI is first-party: consent is implicit. Every authorization gets its own grant, so revoking one
    // machine's session (revocation destroys the grant) leaves the user's other machines signed in.
    // The dashboard is first-party too, but one browser session keeps one grant: every reload signs in again
    // (prompt=none), and a grant each time would pile up until the account signs out everywhere.
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const { client, session, params } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      if (client.clientId !== CLI_CLIENT_ID && client.clientId !== DASHBOARD_CLIENT_ID) return undefined;
      const scope = typeof params?.scope === "string" ? params.scope : "openid";
      const kept = client.clientId === DASHBOARD_CLIENT_ID ? session.grantIdFor(client.clientId) : undefined;
      const existing = kept ? await ctx.oidc.provider.Grant.find(kept) : undefined;
      const grant =
        existing && existing.accountId === session.accountId && existing.clientId === client.clientId
          ? existing
          : new ctx.oidc.provider.Grant({ accountId: session.accountId, clientId: client.clientId });
      grant.addOIDCScope(scope);
      await grant.save();
      return grant;
    },
    // oidc-provider refuses a token request that carries an Origin unless this says yes: only the dashboard's page,
    // on the server's own origin, sends one.
    clientBasedCORS: (_ctx, origin, client) =>
      client.clientId === DASHBOARD_CLIENT_ID && origin === new URL(publicUrl).origin,
    // RFC 7009 lets a server revoke the whole grant when an access token is revoked, and oidc-provider revokes all
    // of the grant's tokens. `latchkey token-rotate` refreshes, then revokes the OLD access token: that must end
    // the old token alone, not the rotated session. So revoking an access token destroys just that token;
    // revoking a refresh token (logout) still ends the grant and every token of it. oidc-provider asks this
    // policy right before it calls revokeByGrantId for each model, in the same tick; the mark lasts that tick.
    revokeGrantPolicy(ctx) {
      const accessToken = ctx.oidc.entities.AccessToken;
      if (ctx.oidc.route === "revocation" && accessToken) {
        const grantId = accessToken.grantId;
        if (grantId) {
          keepTokensOf.add(grantId);
          setImmediate(() => keepTokensOf.delete(grantId));
        }
        return false;
      }
      return true;
    },
    features: {
      devInteractions: { enabled: false },
      // The CLI signs out by revoking its refresh token. The dashboard signs out here (end_session), which ends
      // the browser's provider session and revokes the dashboard's grant (its tokens expire with the session);
      // the CLI's are not bound to the session and outlive it (oidc-provider's persistsLogout). The confirmation step is oidc-provider's: a page of
      // another site cannot sign the user out.
      rpInitiatedLogout: {
        enabled: true,
        logoutSource(ctx, form) {
          ctx.type = "html";
          ctx.body = page(
            "Sign out",
            `<p>Sign out of Latchkey in this browser?</p>${form}` +
              `<button type="submit" form="op.logoutForm" value="yes" name="logout" autofocus>Sign out</button> ` +
              `<button type="submit" form="op.logoutForm">Sign out of the dashboard only</button>`,
          );
          return Promise.resolve();
        },
        postLogoutSuccessSource(ctx) {
          ctx.type = "html";
          ctx.body = page("Signed out", "<p>You are signed out of Latchkey in this browser.</p>");
          return Promise.resolve();
        },
      },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => mayRevoke(client, token),
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource(ctx, form, _out, err) {
          const message = err
            ? err.name === "NoCodeError" || "userCode" in err
              ? "That code is not valid or has expired. Check it and try again."
              : "Something went wrong. Try again."
            : "Enter the code your terminal shows.";
          ctx.type = "html";
          ctx.body = page(
            "Sign in a device",
            `<p>${escapeHtml(message)}</p>${form}<button type="submit" form="op.deviceInputForm">Continue</button>`,
          );
        },
        userCodeConfirmSource(ctx, form, _client, _deviceInfo, userCode) {
          ctx.type = "html";
          ctx.body = page(
            "Confirm the device",
            `<p>Check that your terminal shows this code:</p><p><code>${escapeHtml(userCode)}</code></p>` +
              `<p class="muted">If you did not start this sign-in, close this page.</p>${form}` +
              `<button type="submit" form="op.deviceConfirmForm">Continue</button>` +
              `<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`,
          );
        },
        successSource(ctx) {
          ctx.type = "html";
          ctx.body = page("Signed in", "<p>The device is signed in. You can close this page.</p>");
        },
      },
    },
    renderError(ctx, out) {
      ctx.type = "html";
      ctx.body = page(
        "Sign-in error",
        `<p>${escapeHtml(String(out.error_description ?? out.error ?? "error"))}</p>`,
      );
      return Promise.resolve();
    },
  };
  const provider = new Provider(issuer, configuration);
  // Server errors inside the provider (a failing database, a bug) reach the JSON log; its client errors are the
  // client's business and are not logged (their descriptions can quote request parameters).
  provider.on("server_error", (_ctx: unknown, err: unknown) => {
    deps.log()?.error({ event: "oidc.server_error", err: errorSummary(err) }, "identity provider error");
  });
  // Sessions in the audit log (sessionEvent). oidc-provider announces a destroyed grant in the middle of the
  // request (helpers/revoke.js); the row is written once the request is handled and before the answer leaves.
  // A failed write is logged, not answered: the revocation or refresh it records has already happened.
  const revokedGrants = new WeakMap<object, string[]>();
  provider.on("grant.revoked", (ctx: object, grantId: string) => {
    revokedGrants.set(ctx, [...(revokedGrants.get(ctx) ?? []), grantId]);
  });
  provider.use(async (ctx, next) => {
    await next();
    const event = sessionEvent(ctx as KoaContextWithOIDC, revokedGrants.get(ctx) ?? []);
    if (!event) return;
    try {
      await deps.audit(event.action, event.userId, event.metadata);
    } catch (err) {
      deps
        .log()
        ?.error(
          { event: "auth.audit_failed", action: event.action, err: errorSummary(err) },
          "audit write failed",
        );
    }
  });
  return provider;
}

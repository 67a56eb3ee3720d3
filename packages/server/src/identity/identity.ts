/**
 * The identity service: oidc-provider mounted under OIDC_PATH with the public client `latchkey-cli`, the
 * server-rendered sign-in pages it sends users to, and `authenticate` for the sync API's bearer tokens.
 *
 * The provider's issuer is `${publicUrl}/oidc`. When the server is started without PUBLIC_URL and on --port 0,
 * the URL is known only once it listens, so the provider is made then (`setPublicUrl`); until that moment
 * requests to /oidc get a 503 and tokens authenticate as null.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createHash, randomUUID } from "node:crypto";
import { CLI_CLIENT_ID, OIDC_PATH } from "@latchkey/core";
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { sql, SqliteAdapter, type Kysely } from "kysely";
import Provider, {
  type AccessToken,
  type AdapterPayload,
  type Configuration,
  type KoaContextWithOIDC,
} from "oidc-provider";
import type { Database } from "../db/schema.js";
import { insertAudit } from "../sync/data.js";
import type { Authenticated } from "../sync/routes.js";
import {
  argon2Hasher,
  createAccount,
  findAccountByEmail,
  findAccountById,
  normalizeEmail,
  prepareDecoy,
  verifyPassword,
  verifyTotp,
  type Account,
  type PasswordHasher,
} from "./accounts.js";
import { precompile } from "../db/precompiled.js";
import { identityVersionOf } from "../db/index.js";
import { createReadCache, type ReadStamp } from "../db/read-cache.js";
import { kyselyAdapter, storedPayload } from "./adapter.js";
import { deriveIdentityKeys, macEqual, type IdentityKeys } from "./keys.js";
import { escapeHtml, loginPage, messagePage, page, signupPage, totpPage } from "./pages.js";
import { beginAttempt, purgeAttempts, rememberAddress, WINDOW_MS, type SignInLimits } from "./rate-limit.js";
import { isLatchkeyError } from "@latchkey/core";

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

/** How long the ticket of a passed password step stays good for the TOTP step. */
const TICKET_SECONDS = 5 * 60;

/** What the identity service needs. */
export interface IdentityOptions {
  db: Kysely<Database>;
  /** The server secret (secret.ts): every key is derived from it. */
  secret: string;
  /** The URL clients reach the server at; absent until the server listens (see setPublicUrl). */
  publicUrl?: string;
  /** --open-signup: the login page links to a sign-up form. */
  openSignup?: boolean;
  now?: () => Date;
  randomId?: () => string;
  /** Replaces some of the sign-in limits (rate-limit.ts LIMITS); tests lower them. */
  limits?: Partial<SignInLimits>;
  /** Default Argon2id. */
  hasher?: PasswordHasher;
}

/** The identity service of one server process. */
export interface Identity {
  readonly keys: IdentityKeys;
  /** The provider's issuer, once known. */
  readonly issuer: string | undefined;
  /**
   * The bearer token's owner, or null when unknown, malformed, expired, revoked or issued to another client.
   * `stamp`: the data version the request took on arrival (read-cache.ts); taken here when not given.
   */
  authenticate(bearerToken: string, stamp?: ReadStamp | null): Promise<Authenticated | null>;
  /** Mounts the provider and the sign-in pages on `app`. */
  register(app: FastifyInstance): void;
  /** Makes the provider for `publicUrl` (once; later calls with another URL throw). */
  setPublicUrl(publicUrl: string): void;
  /** The provider; throws before setPublicUrl. */
  provider(): Provider;
}

type RawRequest = IncomingMessage & { originalUrl?: string };

/** Creates the identity service. */
export function createIdentity(options: IdentityOptions): Identity {
  const { db } = options;
  const now = options.now ?? (() => new Date());
  const randomId = options.randomId ?? randomUUID;
  const keys = deriveIdentityKeys(options.secret);
  let provider: Provider | undefined;
  let handle: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
  let issuer: string | undefined;
  let log: FastifyBaseLogger | undefined;
  const audit: Audit = (action, userId, metadata, coalesceKey) =>
    insertAudit(db, {
      id: randomId(),
      userId,
      action,
      vaultId: null,
      version: null,
      createdAt: now().toISOString(),
      metadata,
      ...(coalesceKey === undefined ? {} : { coalesceKey }),
    });

  const setPublicUrl = (publicUrl: string): void => {
    const next = `${publicUrl.replace(/\/$/, "")}${OIDC_PATH}`;
    if (provider) {
      if (next !== issuer) throw new Error(`the issuer is already ${issuer}`);
      return;
    }
    issuer = next;
    provider = makeProvider(next, { db, keys, audit, log: () => log });
    // Behind an https PUBLIC_URL the TLS ends at a proxy: trust its X-Forwarded-Proto so cookies are Secure.
    if (next.startsWith("https:")) provider.proxy = true;
    handle = provider.callback();
  };
  if (options.publicUrl !== undefined) setPublicUrl(options.publicUrl);

  const current = (): Provider => {
    if (!provider) throw new Error("the identity service has no issuer yet (setPublicUrl)");
    return provider;
  };

  // Accepted tokens, kept while nothing authentication reads has changed (read-cache.ts, identityVersionOf): a
  // revocation, a refresh, a deleted account or any other write to tokens, grants or accounts retires them all, so
  // the cache answers exactly as the rows would. Each
  // entry also keeps the earliest expiry among the rows it was judged on, which the clock is checked against.
  const accepted = createReadCache<{ user: Authenticated; validUntil: number }>(identityVersionOf(db), {
    maxEntries: 10_000,
  });

  const authenticate = async (
    bearerToken: string,
    stampGiven?: ReadStamp | null,
  ): Promise<Authenticated | null> => {
    // Opaque tokens of oidc-provider are 43 base64url characters; anything far off is malformed.
    if (!provider || typeof bearerToken !== "string" || !/^[A-Za-z0-9_-]{20,256}$/.test(bearerToken))
      return null;
    try {
      const stamp = stampGiven !== undefined ? stampGiven : (accepted?.stamp() ?? null);
      const kept = accepted?.get(bearerToken, stamp);
      if (kept !== undefined && Math.floor(Date.now() / 1000) < kept.validUntil) return kept.user;
      const found = await findTokenGrantAccount(db, bearerToken);
      // The token row, its grant row and its account in one statement (the sync API authenticates every
      // request). Each row goes through what provider.AccessToken.find / provider.Grant.find would do with it:
      // the adapter's expiry (storedPayload), then oidc-provider's own verify and instantiate.
      // oidc-provider reads the real clock for every expiry it judges (isExpired, its adapter's rows); the rows
      // read here are judged by the same clock, not the injectable `now`, so the two can never disagree.
      const nowSeconds = Math.floor(Date.now() / 1000);
      const tokenPayload = found && storedPayload(found.token, nowSeconds);
      if (!found || !tokenPayload) return null;
      if (tokenPayload.expiresWithSession || found.token.grant_id !== (tokenPayload.grantId ?? null)) {
        // Not what this server issues (expiresWithSession is off; grant_id mirrors the payload), but if it is
        // ever stored, the provider's own path judges it.
        return await authenticateByProvider(provider, bearerToken);
      }
      const token = await modelOf(provider.AccessToken, tokenPayload);
      if (!isUsableAccessToken(token)) return null;
      // Revocation (RFC 7009) and refresh-token reuse destroy the grant; a token of a destroyed grant is dead
      // even if its own row survived.
      const grantPayload = found.grant && storedPayload(found.grant, nowSeconds);
      const grant = grantPayload && (await modelOf(provider.Grant, grantPayload));
      if (!grant || grant.accountId !== token.accountId) return null;
      const account = found.account;
      if (!account || account.id !== token.accountId) return null;
      const user = {
        userId: account.id,
        email: account.email,
        clientId: token.clientId,
        expiresAt: token.exp,
      };
      // Each of these, once reached, would have made the lookup above fail (storedPayload, isExpired).
      const validUntil = Math.min(
        token.exp,
        ...[found.token.expires_at, found.grant?.expires_at, grant.exp]
          .filter((at) => at !== null && at !== undefined)
          .map(Number),
      );
      accepted?.set(bearerToken, { user, validUntil }, stamp);
      return user;
    } catch (err) {
      log?.error({ err: errorSummary(err), event: "auth.authenticate_error" }, "token lookup failed");
      return null;
    }
  };

  // The path authenticate took before it read the rows itself: three lookups through oidc-provider's models.
  const authenticateByProvider = async (p: Provider, bearerToken: string): Promise<Authenticated | null> => {
    const token = await p.AccessToken.find(bearerToken);
    if (!isUsableAccessToken(token)) return null;
    const grant = await p.Grant.find(token.grantId);
    if (!grant || grant.accountId !== token.accountId) return null;
    const account = await findAccountById(db, token.accountId);
    if (!account) return null;
    return { userId: account.id, email: account.email, clientId: token.clientId, expiresAt: token.exp };
  };

  const hasher = options.hasher ?? argon2Hasher;
  const register = (app: FastifyInstance): void => {
    log = app.log;
    prepareDecoy(hasher);
    // The provider reads the raw request itself (bodies included), so the hand-off happens in onRequest, before
    // fastify would parse (and refuse) a form body; hijack tells fastify the response is not its business.
    app.route({
      method: ["GET", "POST", "HEAD", "OPTIONS", "DELETE", "PUT"],
      url: `${OIDC_PATH}/*`,
      onRequest: async (request, reply) => {
        if (!handle) {
          return reply.code(503).send({ error: "unavailable", message: "The identity service is starting." });
        }
        reply.hijack();
        const raw = request.raw as RawRequest;
        const full = raw.url ?? "/";
        raw.originalUrl = full;
        raw.url = full.slice(OIDC_PATH.length) || "/";
        await handle(raw, reply.raw);
      },
      // Never reached: onRequest hijacks every request.
      handler: () => undefined,
    });
    void app.register((pages, _options, done) => {
      pages.addContentTypeParser(
        "application/x-www-form-urlencoded",
        { parseAs: "string", bodyLimit: 16 * 1024 },
        (_request, body, done) => {
          done(null, Object.fromEntries(new URLSearchParams(body as string)));
        },
      );
      registerPages(pages, {
        db,
        keys,
        now,
        randomId,
        openSignup: options.openSignup === true,
        provider: current,
        audit,
        hasher,
        ...(options.limits ? { limits: options.limits } : {}),
      });
      done();
    });
  };

  return {
    keys,
    get issuer() {
      return issuer;
    },
    authenticate,
    register,
    setPublicUrl,
    provider: current,
  };
}

/** Writes one audit row of the identity slice (through the server's one audit writer, sync/data.ts). */
type Audit = (
  action: string,
  userId: string | null,
  metadata: Record<string, unknown>,
  coalesceKey?: string,
) => Promise<void>;

function errorSummary(err: unknown): { name: string; message: string } {
  return err instanceof Error
    ? { name: err.name, message: err.message }
    : { name: "Error", message: String(err) };
}

interface TokenGrantAccount {
  token: { payload: string; grant_id: string | null; expires_at: number | null; consumed_at: number | null };
  grant: { id: string; payload: string; expires_at: number | null; consumed_at: number | null } | undefined;
  account: { id: string; email: string } | undefined;
}

/**
 * The AccessToken row `id`, the Grant row its grant_id column names, and the user its payload's accountId
 * names, in one statement. The account id is only in the JSON payload, and the two databases spell "field of a
 * JSON text" differently: SQLite (3.38+) takes `->>` on text, PostgreSQL needs the text cast to json first.
 */
const tokenGrantAccount = precompile(1, (db, [id]) => {
  const accountId =
    db.getExecutor().adapter instanceof SqliteAdapter
      ? sql<string>`${sql.ref("t.payload")} ->> 'accountId'`
      : sql<string>`cast(${sql.ref("t.payload")} as json) ->> 'accountId'`;
  return db
    .selectFrom("oidc_models as t")
    .leftJoin("oidc_models as g", (join) => join.on("g.kind", "=", "Grant").onRef("g.id", "=", "t.grant_id"))
    .leftJoin("users as u", (join) => join.on(sql.ref("u.id"), "=", accountId))
    .select([
      "t.payload as t_payload",
      "t.grant_id as t_grant_id",
      "t.expires_at as t_expires_at",
      "t.consumed_at as t_consumed_at",
      "g.id as g_id",
      "g.payload as g_payload",
      "g.expires_at as g_expires_at",
      "g.consumed_at as g_consumed_at",
      "u.id as u_id",
      "u.email as u_email",
    ])
    .where("t.kind", "=", "AccessToken")
    .where("t.id", "=", id!);
});

/** An access token the sync API accepts: unexpired, the CLI's, and bound to an account and a grant. */
function isUsableAccessToken(
  token: AccessToken | undefined,
): token is AccessToken & { exp: number; clientId: string; accountId: string; grantId: string } {
  return (
    token !== undefined &&
    !token.isExpired &&
    token.exp !== undefined &&
    token.clientId === CLI_CLIENT_ID &&
    !!token.accountId &&
    !!token.grantId
  );
}

async function findTokenGrantAccount(
  db: Kysely<Database>,
  id: string,
): Promise<TokenGrantAccount | undefined> {
  const row = (await tokenGrantAccount.run(db, [id])).rows[0];
  if (!row) return undefined;
  return {
    token: {
      payload: row.t_payload,
      grant_id: row.t_grant_id,
      expires_at: row.t_expires_at,
      consumed_at: row.t_consumed_at,
    },
    grant:
      row.g_id === null || row.g_payload === null
        ? undefined
        : {
            id: row.g_id,
            payload: row.g_payload,
            expires_at: row.g_expires_at,
            consumed_at: row.g_consumed_at,
          },
    account: row.u_id === null || row.u_email === null ? undefined : { id: row.u_id, email: row.u_email },
  };
}

/** The static side of an oidc-provider model that BaseModel.find uses on a stored payload. */
interface ModelStatics<T> {
  verify(stored: AdapterPayload): Promise<AdapterPayload>;
  instantiate(payload: AdapterPayload): T;
}

/**
 * What BaseModel.find (oidc-provider lib/models/base_model.js) makes of a payload the adapter found: the model's
 * own verify (format and claim checks, clock tolerance) and instantiate (kind check); undefined when either
 * throws, as find answers.
 */
async function modelOf<T>(model: { prototype: T }, stored: AdapterPayload): Promise<T | undefined> {
  const statics = model as unknown as ModelStatics<T>;
  try {
    return statics.instantiate(await statics.verify(stored));
  } catch {
    return undefined;
  }
}

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

function makeProvider(
  issuer: string,
  deps: {
    db: Kysely<Database>;
    keys: IdentityKeys;
    audit: Audit;
    log: () => FastifyBaseLogger | undefined;
  },
): Provider {
  const { db, keys } = deps;
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
    ],
    jwks: { keys: [keys.signingJwk] },
    cookies: { keys: keys.cookieKeys },
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
    expiresWithSession: () => Promise.resolve(false),
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
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const { client, session, params } = ctx.oidc;
      if (!client || client.clientId !== CLI_CLIENT_ID || !session?.accountId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ accountId: session.accountId, clientId: client.clientId });
      const scope = typeof params?.scope === "string" ? params.scope : "openid";
      grant.addOIDCScope(scope);
      await grant.save();
      return grant;
    },
    clientBasedCORS: () => false,
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
      // The CLI signs out by revoking its refresh token; no browser logout page is needed.
      rpInitiatedLogout: { enabled: false },
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

interface PageDeps {
  db: Kysely<Database>;
  keys: IdentityKeys;
  now: () => Date;
  randomId: () => string;
  openSignup: boolean;
  provider: () => Provider;
  audit: Audit;
  hasher: PasswordHasher;
  limits?: Partial<SignInLimits>;
}

type Form = Record<string, string | undefined>;
type UidRequest = FastifyRequest<{ Params: { uid: string }; Body: Form }>;

/** "N seconds" or "N minutes", rounded up. */
function aboutHowLong(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? "1 second" : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

function registerPages(app: FastifyInstance, deps: PageDeps): void {
  const html = (reply: FastifyReply, status: number, body: string): FastifyReply =>
    reply
      .code(status)
      .header("content-type", "text/html; charset=utf-8")
      .header("cache-control", "no-store")
      .header("x-frame-options", "DENY")
      // No form-action: browsers apply it to the redirects after a submission, and the last one goes to the
      // CLI's loopback listener.
      .header(
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      )
      .send(body);

  /** The interaction of the request (by its cookie), or a page saying it expired. */
  const details = async (request: UidRequest, reply: FastifyReply) => {
    try {
      const interaction = await deps.provider().interactionDetails(request.raw, reply.raw);
      if (interaction.uid !== request.params.uid) throw new Error("uid mismatch");
      return interaction;
    } catch {
      await html(
        reply,
        400,
        messagePage(
          "Sign-in expired",
          "This sign-in page has expired or was opened in another browser. Start the sign-in again from your terminal.",
        ),
      );
      return undefined;
    }
  };

  const finish = async (
    request: UidRequest,
    reply: FastifyReply,
    result: Parameters<Provider["interactionResult"]>[2],
  ): Promise<void> => {
    const returnTo = await deps.provider().interactionResult(request.raw, reply.raw, result, {
      mergeWithLastSubmission: false,
    });
    await reply.code(303).header("cache-control", "no-store").redirect(returnTo, 303);
  };

  const { audit } = deps;

  /** Runs `check` under the rate limits; answers 429 when a limit refuses the attempt. */
  const limited = async (
    request: UidRequest,
    reply: FastifyReply,
    email: string,
    account: Account | undefined,
    step: "password" | "totp",
    check: () => Promise<boolean>,
  ): Promise<boolean | undefined> => {
    const attempt = await beginAttempt(
      {
        db: deps.db,
        now: deps.now,
        randomId: deps.randomId,
        ...(deps.limits ? { limits: deps.limits } : {}),
      },
      email,
      request.ip,
    );
    if (!attempt.allowed) {
      request.log.warn(
        { event: "auth.rate_limited", limit: attempt.limit, step },
        "sign-in attempt rate-limited",
      );
      // A refused attempt costs its sender nothing, so it must not cost a row either: one row per limit,
      // account and address (address alone for the address limit) and window, counting the refusals.
      const window = Math.floor(deps.now().getTime() / WINDOW_MS);
      const subject =
        attempt.limit === "ip"
          ? [attempt.limit, request.ip, window]
          : [attempt.limit, email, request.ip, window];
      await audit(
        "auth.rate_limited",
        attempt.limit === "ip" ? null : (account?.id ?? null),
        { limit: attempt.limit, step, ip: request.ip },
        `auth.rate_limited:${createHash("sha256").update(JSON.stringify(subject)).digest("base64url")}`,
      );
      const seconds = Math.ceil(attempt.retryAfterMs / 1000);
      await html(
        reply.header("retry-after", String(seconds)),
        429,
        messagePage(
          "Too many attempts",
          `Too many failed sign-in attempts. Try again in ${aboutHowLong(seconds)}.`,
        ),
      );
      return undefined;
    }
    const ok = await check();
    if (ok) {
      await attempt.succeeded();
      return true;
    }
    await attempt.failed();
    request.log.info({ event: "auth.login_failed", step }, "sign-in attempt failed");
    await audit("auth.login_failed", account?.id ?? null, { step, ip: request.ip });
    return false;
  };

  const ticketFor = (uid: string, userId: string): string => {
    const exp = String(Math.floor(deps.now().getTime() / 1000) + TICKET_SECONDS);
    return `${userId}.${exp}.${deps.keys.mac("totp-ticket", uid, userId, exp).toString("base64url")}`;
  };
  const openTicket = (uid: string, ticket: string | undefined): string | undefined => {
    const [userId, exp, mac] = (ticket ?? "").split(".");
    if (!userId || !exp || !mac) return undefined;
    if (!macEqual(Buffer.from(mac, "base64url"), deps.keys.mac("totp-ticket", uid, userId, exp)))
      return undefined;
    if (Number(exp) < Math.floor(deps.now().getTime() / 1000)) return undefined;
    return userId;
  };

  const isDevice = (interaction: { params: Record<string, unknown> }): boolean =>
    interaction.params.response_type === undefined;

  app.get("/interaction/:uid", async (request: UidRequest, reply) => {
    const interaction = await details(request, reply);
    if (!interaction) return;
    if (interaction.prompt.name === "login") {
      return html(
        reply,
        200,
        loginPage({ uid: interaction.uid, signup: deps.openSignup, deviceFlow: isDevice(interaction) }),
      );
    }
    // Consent for the first-party CLI is implicit (loadExistingGrant); any other prompt is finished as such.
    const provider = deps.provider();
    const accountId = interaction.session?.accountId;
    const clientId = interaction.params.client_id;
    if (!accountId || typeof clientId !== "string") return finish(request, reply, { error: "access_denied" });
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(typeof interaction.params.scope === "string" ? interaction.params.scope : "openid");
    return finish(request, reply, { consent: { grantId: await grant.save() } });
  });

  app.post("/interaction/:uid/login", async (request: UidRequest, reply) => {
    const interaction = await details(request, reply);
    if (!interaction) return;
    const form = request.body ?? {};
    const typed = (form.email ?? "").slice(0, 300);
    let email: string;
    try {
      email = normalizeEmail(typed);
    } catch {
      return html(
        reply,
        400,
        loginPage({
          uid: interaction.uid,
          email: typed,
          error: "Enter the email address of your account.",
          signup: deps.openSignup,
          deviceFlow: isDevice(interaction),
        }),
      );
    }
    const account = await findAccountByEmail(deps.db, email);
    // Without an account too, the password is checked (against a decoy): the same work either way.
    const ok = await limited(request, reply, email, account, "password", () =>
      verifyPassword(account, form.password ?? "", deps.hasher),
    );
    if (ok === undefined) return;
    if (!ok || !account) {
      return html(
        reply,
        401,
        loginPage({
          uid: interaction.uid,
          email,
          error: "Wrong email or password.",
          signup: deps.openSignup,
          deviceFlow: isDevice(interaction),
        }),
      );
    }
    if (account.totp_enabled === 1) {
      return html(
        reply,
        200,
        totpPage({ uid: interaction.uid, ticket: ticketFor(interaction.uid, account.id) }),
      );
    }
    await rememberAddress(deps, account.email, request.ip);
    await audit("auth.login", account.id, { ip: request.ip, totp: false });
    return finish(request, reply, { login: { accountId: account.id } });
  });

  app.post("/interaction/:uid/totp", async (request: UidRequest, reply) => {
    const interaction = await details(request, reply);
    if (!interaction) return;
    const form = request.body ?? {};
    const userId = openTicket(interaction.uid, form.ticket);
    const account = userId === undefined ? undefined : await findAccountById(deps.db, userId);
    if (!account || form.ticket === undefined) {
      return html(
        reply,
        400,
        messagePage(
          "Sign-in expired",
          "The verification step expired. Start the sign-in again from your terminal.",
        ),
      );
    }
    const ok = await limited(request, reply, account.email, account, "totp", () =>
      verifyTotp(deps, account, form.code ?? ""),
    );
    if (ok === undefined) return;
    if (!ok) {
      return html(
        reply,
        401,
        totpPage({
          uid: interaction.uid,
          ticket: form.ticket,
          error: "That code is not right. Try the current one.",
        }),
      );
    }
    await rememberAddress(deps, account.email, request.ip);
    await audit("auth.login", account.id, { ip: request.ip, totp: true });
    return finish(request, reply, { login: { accountId: account.id } });
  });

  app.get("/interaction/:uid/abort", async (request: UidRequest, reply) => {
    const interaction = await details(request, reply);
    if (!interaction) return;
    return finish(request, reply, {
      error: "access_denied",
      error_description: "The user cancelled the sign-in.",
    });
  });

  if (deps.openSignup) {
    app.get("/interaction/:uid/signup", async (request: UidRequest, reply) => {
      const interaction = await details(request, reply);
      if (!interaction) return;
      return html(reply, 200, signupPage({ uid: interaction.uid }));
    });
    app.post("/interaction/:uid/signup", async (request: UidRequest, reply) => {
      const interaction = await details(request, reply);
      if (!interaction) return;
      const form = request.body ?? {};
      const typed = (form.email ?? "").slice(0, 300);
      try {
        const created = await createAccount(
          { db: deps.db, now: deps.now, randomId: deps.randomId, hasher: deps.hasher },
          { email: typed, password: form.new_password ?? "", via: "signup" },
        );
        return finish(request, reply, { login: { accountId: created.userId } });
      } catch (err) {
        if (!isLatchkeyError(err)) throw err;
        const message =
          err.code === "LK_ACCOUNT_EXISTS"
            ? "An account with this email already exists. Sign in instead."
            : err.code === "LK_EMAIL_INVALID"
              ? "Enter a valid email address."
              : "Choose a password of at least 12 characters: a few words make a good one.";
        return html(reply, 400, signupPage({ uid: interaction.uid, email: typed, error: message }));
      }
    });
  }

  // Old attempts are only noise for the counts; drop them now and then.
  let served = 0;
  app.addHook("onResponse", async () => {
    if (++served % 200 === 0) await purgeAttempts(deps);
  });
}

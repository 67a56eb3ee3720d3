/**
 * Identity helpers for the server suites (sync routes, authorization matrix, e2e support): accounts, an
 * in-process app with the real identity service, and REAL access tokens issued through the real provider's
 * models and storage, so `authenticate` accepts them exactly as it accepts a token from the token endpoint.
 *
 * Tokens for the authorization matrix:
 * - valid:    `await mintAccessToken(identity, { userId })`
 * - expired:  `await mintAccessToken(identity, { userId, expiresInSeconds: 0 })` — stored with an `exp` in the
 *             past (no waiting); authenticate returns null.
 * - revoked:  mint one, then `await revokeToken(identity, token)` — destroys its grant as the revocation endpoint
 *             (RFC 7009) does; authenticate returns null afterwards.
 * - another user's: create a second user with createTestUser and mint for that user.
 * - malformed: any string that is not a token, e.g. "not-a-token" or "".
 *
 * Typical use (in-process, app.inject):
 *   const { db } = ...migrated database...;
 *   const { app, identity } = buildTestApp({ db });
 *   const alice = await createTestUser(db, "alice@example.test", "correct horse");
 *   const token = await mintAccessToken(identity, { userId: alice.userId });
 *   await app.inject({ method: "GET", url: "/api/v1/me", headers: apiHeaders(token) }); // sync-support.ts
 */
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { CLI_CLIENT_ID } from "@latchkey/core";
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import type { Kysely } from "kysely";
import { buildApp, type TestRoutes } from "../../src/app.js";
import type { CiIssuer } from "../../src/ci/issuers.js";
import type { Database } from "../../src/db/schema.js";
import { escrowKeyFrom, type EscrowKey } from "../../src/escrow-key.js";
import { createAccount, enrollTotp, totpCode, type PasswordHasher } from "../../src/identity/accounts.js";
import { createIdentity, type Identity } from "../../src/identity/identity.js";
import type { SignInLimits } from "../../src/identity/rate-limit.js";

/** A fixed server secret for in-process apps (any process given it derives the same keys). */
export const TEST_SERVER_SECRET = "test-server-secret-0123456789abcdefghijklmnop";

/** A fixed escrow key for in-process apps (apps sharing a database must share it, as processes must). */
export const TEST_ESCROW_KEY: EscrowKey = await escrowKeyFrom(new Uint8Array(32).fill(0x2e));

/** The public URL in-process apps get when none is given (app.inject needs no socket). */
export const TEST_PUBLIC_URL = "http://127.0.0.1:8787";

/** A user made by createTestUser. */
export interface TestUser {
  userId: string;
  email: string;
  password: string;
  /** Base32 TOTP secret when created with `{ totp: true }`; pass it to `totpNow`. */
  totpSecret?: string;
}

/** Creates an account with an Argon2id password (and TOTP when asked), as `admin create-user` does. */
export async function createTestUser(
  db: Kysely<Database>,
  email: string,
  password: string,
  options: { totp?: boolean } = {},
): Promise<TestUser> {
  const deps = { db, now: () => new Date(), randomId: randomUUID };
  const created = await createAccount(deps, { email, password, via: "admin" });
  if (!options.totp) return { ...created, password };
  const { secret } = await enrollTotp(
    { ...deps, keys: createIdentity({ db, secret: TEST_SERVER_SECRET }).keys, issuerName: "Latchkey test" },
    created.email,
  );
  return { ...created, password, totpSecret: secret };
}

/** The current code of a TOTP secret. */
export function totpNow(secret: string, at: Date = new Date()): string {
  return totpCode(secret, at);
}

/** Options of an in-process app. */
export interface TestAppOptions {
  db: Kysely<Database>;
  /** Default TEST_PUBLIC_URL. */
  publicUrl?: string;
  /** Default TEST_SERVER_SECRET. Note: createTestUser's TOTP secrets are sealed with TEST_SERVER_SECRET. */
  secret?: string;
  openSignup?: boolean;
  limits?: Partial<SignInLimits>;
  /** Default Argon2id. */
  hasher?: PasswordHasher;
  logger?: FastifyServerOptions["logger"];
  now?: () => Date;
  /** As behind a TLS proxy at these addresses (server.ts TrustProxy): X-Forwarded-For gives the client IP. */
  trustProxy?: readonly string[];
  /** Test-only routes (app.ts TestRoutes), e.g. an /api/v1 route that needs a step-up proof. */
  testRoutes?: TestRoutes;
  /** Default TEST_ESCROW_KEY. */
  escrowKey?: EscrowKey;
  /** The trusted CI issuers (app.ts ciIssuers); default none. */
  ciIssuers?: readonly CiIssuer[];
}

/** The app (routes: health, identity, sync) and its identity service, for `app.inject`. */
export function buildTestApp(options: TestAppOptions): { app: FastifyInstance; identity: Identity } {
  return makeTestApp(options, options.publicUrl ?? TEST_PUBLIC_URL);
}

// publicUrl undefined: the issuer is set once the app listens (as the real server does on --port 0).
function makeTestApp(
  options: TestAppOptions,
  publicUrl: string | undefined,
): { app: FastifyInstance; identity: Identity } {
  const identity = createIdentity({
    db: options.db,
    secret: options.secret ?? TEST_SERVER_SECRET,
    ...(publicUrl === undefined ? {} : { publicUrl }),
    ...(options.openSignup ? { openSignup: true } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.hasher ? { hasher: options.hasher } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const app = buildApp({
    db: options.db,
    identity,
    escrowKey: options.escrowKey ?? TEST_ESCROW_KEY,
    ...(options.ciIssuers ? { ciIssuers: options.ciIssuers } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.trustProxy ? { trustProxy: options.trustProxy } : {}),
    ...(options.testRoutes ? { testRoutes: options.testRoutes } : {}),
  });
  return { app, identity };
}

/** An in-process app listening on 127.0.0.1 (random port), its issuer set to that URL: for real HTTP flows. */
export async function startTestServer(
  options: Omit<TestAppOptions, "publicUrl">,
): Promise<{ app: FastifyInstance; identity: Identity; url: string; close: () => Promise<void> }> {
  const { app, identity } = makeTestApp(options, undefined);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  identity.setPublicUrl(url);
  return { app, identity, url, close: () => app.close() };
}

/**
 * Issues a real access token for `userId` to the CLI client through the provider's models (a new grant, as a
 * login makes). `expiresInSeconds` defaults to the configured 15 minutes; 0 or less stores an already expired
 * token.
 */
export async function mintAccessToken(
  identity: Identity,
  options: { userId: string; expiresInSeconds?: number },
): Promise<string> {
  const provider = identity.provider();
  const client = await provider.Client.find(CLI_CLIENT_ID);
  if (!client) throw new Error(`client ${CLI_CLIENT_ID} is not registered`);
  const grant = new provider.Grant({ accountId: options.userId, clientId: CLI_CLIENT_ID });
  grant.addOIDCScope("openid offline_access");
  const grantId = await grant.save();
  const expires = options.expiresInSeconds;
  const token = new provider.AccessToken({
    accountId: options.userId,
    client,
    grantId,
    gty: "authorization_code",
    scope: "openid offline_access",
    ...(expires !== undefined && expires > 0 ? { expiresIn: expires } : {}),
  });
  if (expires !== undefined && expires <= 0) {
    const now = Math.floor(Date.now() / 1000);
    token.iat = now - 3600;
    token.exp = now - 1 + expires;
  }
  return token.save();
}

/** Revokes an access token the way the revocation endpoint does: the token and its whole grant. */
export async function revokeToken(identity: Identity, token: string): Promise<void> {
  const provider = identity.provider();
  const found = await provider.AccessToken.find(token, { ignoreExpiration: true });
  if (!found) throw new Error("no such access token");
  await found.destroy();
  if (found.grantId) {
    await Promise.all([
      provider.AccessToken.revokeByGrantId(found.grantId),
      provider.RefreshToken.revokeByGrantId(found.grantId),
      provider.Grant.adapter.destroy(found.grantId),
    ]);
  }
}

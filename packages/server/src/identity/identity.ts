/**
 * The identity slice of one server process, put together: oidc-provider mounted under OIDC_PATH with the public
 * client `latchkey-cli` (provider.ts), the server-rendered sign-in pages it sends users to (routes.ts, pages.ts),
 * the rules behind them (service.ts), `authenticate` for the API's bearer tokens (tokens.ts) and the factor
 * checks of step-ups.
 *
 * The provider's issuer is `${publicUrl}/oidc`. When the server is started without PUBLIC_URL and on --port 0,
 * the URL is known only once it listens, so the provider is made then (`setPublicUrl`); until that moment
 * requests to /oidc get a 503 and tokens authenticate as null.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { OIDC_PATH } from "@latchkey/core";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { Kysely } from "kysely";
import type Provider from "oidc-provider";
import type { Database } from "../db/schema.js";
import type { Reauthentication } from "../reauthentication.js";
import type { PasswordHasher } from "./accounts.js";
import { deriveIdentityKeys, type IdentityKeys } from "./keys.js";
import { makeProvider } from "./provider.js";
import type { SignInLimits } from "./rate-limit.js";
import { registerIdentityRoutes } from "./routes.js";
import { createIdentityService } from "./service.js";
import type { Authenticate } from "./tokens.js";

/** What the identity slice needs. */
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

/** The identity slice of one server process. */
export interface Identity {
  readonly keys: IdentityKeys;
  /** The provider's issuer, once known. */
  readonly issuer: string | undefined;
  /**
   * The bearer token's owner, or null when unknown, malformed, expired, revoked or issued to another client.
   * `stamp`: the data version the request took on arrival (read-cache.ts); taken here when not given.
   */
  authenticate: Authenticate;
  /** Checks a signed-in user's password (and TOTP code) for a step-up, under the sign-in limits. */
  readonly reauthentication: Reauthentication;
  /** Mounts the provider and the sign-in pages on `app`. */
  register(app: FastifyInstance): void;
  /** Makes the provider for `publicUrl` (once; later calls with another URL throw). */
  setPublicUrl(publicUrl: string): void;
  /** The provider; throws before setPublicUrl. */
  provider(): Provider;
}

/** Creates the identity slice. */
export function createIdentity(options: IdentityOptions): Identity {
  const { db } = options;
  const keys = deriveIdentityKeys(options.secret);
  let provider: Provider | undefined;
  let handle: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
  let issuer: string | undefined;
  let log: FastifyBaseLogger | undefined;

  const service = createIdentityService({
    db,
    keys,
    now: options.now ?? (() => new Date()),
    randomId: options.randomId ?? randomUUID,
    ...(options.hasher ? { hasher: options.hasher } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    provider: () => provider,
    log: () => log,
  });

  const setPublicUrl = (publicUrl: string): void => {
    const next = `${publicUrl.replace(/\/$/, "")}${OIDC_PATH}`;
    if (provider) {
      if (next !== issuer) throw new Error(`the issuer is already ${issuer}`);
      return;
    }
    issuer = next;
    provider = makeProvider(next, { db, keys, audit: service.audit, log: () => log });
    // Behind an https PUBLIC_URL the TLS ends at a proxy: trust its X-Forwarded-Proto so cookies are Secure.
    if (next.startsWith("https:")) provider.proxy = true;
    handle = provider.callback();
  };
  if (options.publicUrl !== undefined) setPublicUrl(options.publicUrl);

  const current = (): Provider => {
    if (!provider) throw new Error("the identity service has no issuer yet (setPublicUrl)");
    return provider;
  };

  return {
    keys,
    get issuer() {
      return issuer;
    },
    authenticate: service.authenticate,
    reauthentication: service.reauthentication,
    register(app) {
      log = app.log;
      service.prepare();
      registerIdentityRoutes(app, {
        service,
        provider: current,
        handler: () => handle,
        openSignup: options.openSignup === true,
      });
    },
    setPublicUrl,
    provider: current,
  };
}

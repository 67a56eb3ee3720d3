/**
 * Which bearer tokens the sync API accepts: an access token of the CLI's or the dashboard's client, unexpired and unrevoked, whose
 * grant and account still exist. The client id goes with the caller: the API layer (api/plugin.ts) lets the
 * dashboard's tokens read and pair a browser only. The rows are read in one statement (data.ts) and judged as oidc-provider's own
 * models would judge them; accepted tokens are kept in a read cache that any write to what they were judged on
 * retires.
 */
import { CLI_CLIENT_ID, DASHBOARD_CLIENT_ID } from "@latchkey/core";
import type { FastifyBaseLogger } from "fastify";
import type { Kysely } from "kysely";
import type Provider from "oidc-provider";
import type { AccessToken, AdapterPayload } from "oidc-provider";
import type { Authenticated } from "../authenticated.js";
import { identityVersionOf } from "../db/index.js";
import { createReadCache, type ReadStamp } from "../db/read-cache.js";
import type { Database } from "../db/schema.js";
import { errorSummary } from "../logging.js";
import { storedPayload } from "./adapter.js";
import * as data from "./data.js";

/** What authenticate needs. */
export interface TokenDeps {
  db: Kysely<Database>;
  /** The provider, or undefined before the server knows its public URL: no token is accepted then. */
  provider: () => Provider | undefined;
  /** Where lookup failures are logged, once there is a logger. */
  log: () => FastifyBaseLogger | undefined;
}

/**
 * The bearer token's owner, or null when unknown, malformed, expired, revoked or issued to another client.
 * `stamp`: the data version the request took on arrival (read-cache.ts); taken here when not given.
 */
export type Authenticate = (bearerToken: string, stamp?: ReadStamp | null) => Promise<Authenticated | null>;

/** Makes `authenticate` for the tokens the provider on `deps.db` issued. */
export function createAuthenticate(deps: TokenDeps): Authenticate {
  const { db } = deps;
  // Accepted tokens, kept while nothing authentication reads has changed (read-cache.ts, identityVersionOf): a
  // revocation, a refresh, a deleted account or any other write to tokens, grants or accounts retires them all, so
  // the cache answers exactly as the rows would. Each entry also keeps the earliest expiry among the rows it was
  // judged on, which the clock is checked against.
  const accepted = createReadCache<{ user: Authenticated; validUntil: number }>(identityVersionOf(db), {
    maxEntries: 10_000,
  });

  // The path authenticate took before it read the rows itself: three lookups through oidc-provider's models.
  const authenticateByProvider = async (p: Provider, bearerToken: string): Promise<Authenticated | null> => {
    const token = await p.AccessToken.find(bearerToken);
    if (!isUsableAccessToken(token)) return null;
    const grant = await p.Grant.find(token.grantId);
    if (!grant || grant.accountId !== token.accountId) return null;
    const account = await data.findAccountById(db, token.accountId);
    if (!account) return null;
    return {
      userId: account.id,
      email: account.email,
      clientId: token.clientId,
      grantId: token.grantId,
      expiresAt: token.exp,
    };
  };

  return async (bearerToken, stampGiven) => {
    const provider = deps.provider();
    // Opaque tokens of oidc-provider are 43 base64url characters; anything far off is malformed.
    if (!provider || typeof bearerToken !== "string" || !/^[A-Za-z0-9_-]{20,256}$/.test(bearerToken))
      return null;
    try {
      const stamp = stampGiven !== undefined ? stampGiven : (accepted?.stamp() ?? null);
      const kept = accepted?.get(bearerToken, stamp);
      if (kept !== undefined && Math.floor(Date.now() / 1000) < kept.validUntil) return kept.user;
      const found = await data.findTokenGrantAccount(db, bearerToken);
      // The token row, its grant row and its account in one statement (the sync API authenticates every
      // request). Each row goes through what provider.AccessToken.find / provider.Grant.find would do with it:
      // the adapter's expiry (storedPayload), then oidc-provider's own verify and instantiate.
      // oidc-provider reads the real clock for every expiry it judges (isExpired, its adapter's rows); the rows
      // read here are judged by the same clock, not the injectable `now`, so the two can never disagree.
      const nowSeconds = Math.floor(Date.now() / 1000);
      const tokenPayload = found && storedPayload(found.token, nowSeconds);
      if (!found || !tokenPayload) return null;
      if (tokenPayload.expiresWithSession || found.token.grant_id !== (tokenPayload.grantId ?? null)) {
        // The dashboard's tokens live only as long as the browser's provider session (provider.ts
        // expiresWithSession), which only the provider's own path checks; so does any row whose grant_id does not
        // mirror its payload (never written by this server).
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
        grantId: token.grantId,
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
      deps.log()?.error({ err: errorSummary(err), event: "auth.authenticate_error" }, "token lookup failed");
      return null;
    }
  };
}

/** The clients whose access tokens the API accepts: the CLI and the browser dashboard. */
const API_CLIENTS: ReadonlySet<string> = new Set([CLI_CLIENT_ID, DASHBOARD_CLIENT_ID]);

/** An access token the sync API accepts: unexpired, the CLI's or the dashboard's, bound to an account and a grant. */
function isUsableAccessToken(
  token: AccessToken | undefined,
): token is AccessToken & { exp: number; clientId: string; accountId: string; grantId: string } {
  return (
    token !== undefined &&
    !token.isExpired &&
    token.exp !== undefined &&
    token.clientId !== undefined &&
    API_CLIENTS.has(token.clientId) &&
    !!token.accountId &&
    !!token.grantId
  );
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

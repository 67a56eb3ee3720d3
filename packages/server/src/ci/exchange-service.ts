/**
 * The CI exchange (docs/ci.md "Exchange"): a CI job's OIDC ID token for a CI access token of one vault copy. The
 * copy's policy names the issuer and audience the token must have (verify.ts) and the claims the job must show
 * (claims.ts); the token's jti is then spent, the exchange audited and the access token minted in one transaction,
 * so a replayed token gets nothing and an exchange that fails leaves its token unspent. Outcomes the route must
 * tell apart are values; the token itself is never logged, stored or quoted.
 */
import { CI_ACCESS_TOKEN_TTL_SECONDS, isLatchkeyError, type CiExchangeResponse } from "@latchkey/core";
import type { Kysely } from "kysely";
import { insertAudit } from "../audit/data.js";
import type { Database } from "../db/schema.js";
import { mintCiAccessToken } from "./access-token.js";
import { matchCiPolicy, type CiPolicyDenial } from "./claims.js";
import { findCiPolicy } from "./policies-data.js";
import { spendCiToken } from "./replay.js";
import { expectCiToken, type CiTokenVerifier } from "./verify.js";

/** The audit action of an exchange. */
export const CI_EXCHANGE_ACTION = "vault.ci.exchange";

/**
 * Failed exchanges one client address may make in an hour before each further one waits: a delay that starts at
 * {@link CI_EXCHANGE_FIRST_DELAY_MS} and doubles up to {@link CI_EXCHANGE_MAX_DELAY_MS} (the server's sign-in
 * limiter counts them, app.ts). A job's exchange that succeeds does not count.
 */
export const CI_EXCHANGE_FREE_FAILURES = 20;
/** The first delay after {@link CI_EXCHANGE_FREE_FAILURES}. */
export const CI_EXCHANGE_FIRST_DELAY_MS = 1_000;
/** The longest delay. */
export const CI_EXCHANGE_MAX_DELAY_MS = 5 * 60_000;

/**
 * Counts a client address's failed exchanges: `begin` before any work, then exactly one of `succeeded` (the
 * attempt does not count) or `failed`.
 */
export interface CiExchangeLimiter {
  begin(
    ip: string,
  ): Promise<
    | { allowed: true; succeeded(): Promise<void>; failed(): Promise<void> }
    | { allowed: false; retryAfterMs: number }
  >;
}

/** What the exchange needs. */
export interface CiExchangeDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  randomBytes: (length: number) => Uint8Array;
  verifier: CiTokenVerifier;
  /** IdentityKeys.ciAccessKey. */
  accessKey: Uint8Array;
  limiter: CiExchangeLimiter;
}

/** An exchange request, validated. */
export interface CiExchangeInput {
  /** Canonical (lower case). */
  vaultId: string;
  org: string | undefined;
  token: string;
  /** The client's address (api/plugin.ts). */
  ip: string;
}

/** Result of an exchange. */
export type CiExchangeOutcome =
  | { kind: "exchanged"; answer: CiExchangeResponse }
  | { kind: "rate-limited"; retryAfterSeconds: number }
  | { kind: "not-enabled" }
  /** LK_CI_TOKEN_INVALID from the verifier, or the exchange's own refusal of a token about to expire. */
  | { kind: "invalid"; message: string }
  | { kind: "replayed" }
  | { kind: "denied"; denial: CiPolicyDenial };

/** The exchange. */
export interface CiExchangeService {
  exchange(input: CiExchangeInput): Promise<CiExchangeOutcome>;
}

/** Creates the exchange service. */
export function createCiExchangeService(deps: CiExchangeDeps): CiExchangeService {
  return {
    async exchange(input) {
      const attempt = await deps.limiter.begin(input.ip);
      if (!attempt.allowed) {
        return {
          kind: "rate-limited",
          retryAfterSeconds: Math.max(1, Math.ceil(attempt.retryAfterMs / 1000)),
        };
      }
      let outcome: CiExchangeOutcome;
      try {
        outcome = await exchangeToken(deps, input);
      } catch (err) {
        // The server's failure (a database, an issuer out of reach) is not the client's: it does not count.
        await attempt.succeeded();
        throw err;
      }
      if (outcome.kind === "exchanged") await attempt.succeeded();
      else await attempt.failed();
      return outcome;
    },
  };
}

async function exchangeToken(deps: CiExchangeDeps, input: CiExchangeInput): Promise<CiExchangeOutcome> {
  // The token is verified before the copy's policy is looked up: a caller without a valid token of a trusted issuer
  // gets the same answer whether or not the copy has CI, so it cannot probe which copies have it.
  let verified;
  let record;
  try {
    verified = await deps.verifier.verify(input.token, { issuer: null, audience: null });
    record = await findCiPolicy(deps.db, { vaultId: input.vaultId, orgSlug: input.org });
    if (record === undefined) return { kind: "not-enabled" };
    expectCiToken(verified, record.policy);
  } catch (err) {
    if (isLatchkeyError(err, "LK_CI_TOKEN_INVALID")) return { kind: "invalid", message: err.message };
    throw err;
  }
  const { policy } = record;
  const match = matchCiPolicy(policy, verified);
  if (!match.ok) return { kind: "denied", denial: match.denial };

  const now = deps.now();
  const iat = Math.floor(now.getTime() / 1000);
  // Never outliving the job's own token: whoever steals the access token gains no time over the ID token.
  const exp = Math.min(iat + CI_ACCESS_TOKEN_TTL_SECONDS, Math.floor(verified.expiresAt.getTime() / 1000));
  if (exp <= iat) {
    return { kind: "invalid", message: "The CI token was refused: it expires now; request a fresh one." };
  }
  const copy = record.copy;
  const orgSlug = "orgId" in copy ? copy.slug : null;
  const accessToken = await mintCiAccessToken(deps.accessKey, {
    vaultId: copy.vaultId,
    org: orgSlug,
    policyId: record.id,
    generation: record.generation,
    environments: match.environments,
    job: {
      ref: match.run.ref,
      runId: match.run.runId,
      event: match.run.event,
      environment: match.run.environment,
      jti: match.run.jti,
    },
    jti: Buffer.from(deps.randomBytes(16)).toString("base64url"),
    iat,
    exp,
  });
  const expiresAt = new Date(exp * 1000).toISOString();
  const spent = await deps.db.transaction().execute(async (trx) => {
    if (
      !(await spendCiToken(trx, {
        issuer: verified.issuer,
        jti: verified.jti,
        expiresAt: verified.expiresAt,
      }))
    ) {
      return false;
    }
    await insertAudit(trx, {
      id: deps.randomId(),
      userId: null,
      action: CI_EXCHANGE_ACTION,
      vaultId: copy.vaultId,
      orgId: "orgId" in copy ? copy.orgId : null,
      version: null,
      createdAt: now.toISOString(),
      metadata: {
        name: match.name,
        ...match.run,
        environments: match.environments,
        policyGeneration: record.generation,
        expiresAt,
        ip: input.ip,
      },
    });
    return true;
  });
  if (!spent) return { kind: "replayed" };
  return {
    kind: "exchanged",
    answer: {
      accessToken,
      tokenType: "Bearer",
      expiresAt,
      name: match.name,
      environments: match.environments,
    },
  };
}

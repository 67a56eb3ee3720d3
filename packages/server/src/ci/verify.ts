/**
 * Verification of a CI job's OIDC ID token (docs/ci.md "Trusted issuers and token verification"): the signature
 * with a key from the issuer's own key set (jwks.ts), the algorithm, the exact issuer and audience the caller
 * expects (the vault's CI policy), the times, and a `jti` for the replay table (replay.ts). What the token's claims
 * allow (repository, branch, environment) is the policy's business, not this module's. A refusal is
 * LK_CI_TOKEN_INVALID naming the check that failed in plain words, never quoting the token.
 */
import { LatchkeyError, MAX_CI_ID_TOKEN_LENGTH, type CiProvider } from "@latchkey/core";
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyOptions } from "jose";
import type { CiIssuer } from "./issuers.js";
import { createIssuerKeys, type CiFetch } from "./jwks.js";

/** The signature algorithms accepted: what GitHub and GitLab sign with, and no symmetric or unsigned one. */
export const CI_TOKEN_ALGORITHMS = ["RS256", "ES256"] as const;
/** How far the server's clock and the issuer's may disagree on exp, nbf and iat. */
export const CI_TOKEN_LEEWAY_SECONDS = 60;
/**
 * The oldest a token may be (from its iat, plus the leeway), whatever its exp says: a token that leaked from an old
 * job log is useless soon after, even where the issuer made it live for an hour.
 */
export const CI_TOKEN_MAX_AGE_SECONDS = 15 * 60;
/** The longest `jti` kept in the replay table. */
export const CI_JTI_MAX_LENGTH = 256;
/** The longest `kid` looked up. */
const KID_MAX_LENGTH = 256;

/** Which check refused a token (LatchkeyError details.check), for tests and logs; the message says it in words. */
export type CiTokenCheck =
  | "size"
  | "issuer-not-trusted"
  | "format"
  | "algorithm"
  | "key"
  | "signature"
  | "issuer"
  | "audience"
  | "expired"
  | "not-yet-valid"
  | "too-old"
  | "issued-in-future"
  | "claims"
  | "jti";

/** What the verifier needs. */
export interface CiTokenVerifierDeps {
  /** The trusted issuers (server configuration, parseCiIssuers). */
  issuers: readonly CiIssuer[];
  /** How the issuers' documents are fetched. */
  fetch: CiFetch;
  /** The clock for exp, nbf, iat and the key cache. */
  now: () => Date;
  /** Time allowed for each fetch from an issuer; default jwks.ts ISSUER_FETCH_TIMEOUT_MS. */
  fetchTimeoutMs?: number;
}

/**
 * What the caller requires of a token: its policy's issuer and audience, each compared exactly. A null issuer is
 * the trusted issuer the token's own `iss` names, a null audience any: what the exchange checks before it looks up
 * a policy, so that a caller without a valid token learns nothing of the copy ({@link expectCiToken} then).
 */
export interface ExpectedCiToken {
  issuer: string | null;
  audience: string | null;
}

/** A token that passed every check. Its jti is not yet spent: the caller spends it (replay.ts) in its transaction. */
export interface VerifiedCiToken {
  provider: CiProvider;
  issuer: string;
  /** Every claim of the token, as the issuer signed them; the policy reads the platform's own claims here. */
  claims: Readonly<Record<string, unknown>>;
  jti: string;
  issuedAt: Date;
  expiresAt: Date;
}

/** Verifies CI tokens; one per server process, so the issuers' keys are cached across requests. */
export interface CiTokenVerifier {
  /** The verified token; throws LK_CI_TOKEN_INVALID (401), or LK_CI_ISSUER_FAILED (502) when the keys are unusable. */
  verify(token: string, expected: ExpectedCiToken): Promise<VerifiedCiToken>;
}

/** Creates the verifier; keys are fetched on first use. */
export function createCiTokenVerifier(deps: CiTokenVerifierDeps): CiTokenVerifier {
  const keys = createIssuerKeys({
    fetch: deps.fetch,
    now: deps.now,
    ...(deps.fetchTimeoutMs === undefined ? {} : { fetchTimeoutMs: deps.fetchTimeoutMs }),
  });
  return {
    async verify(token, expected) {
      if (typeof token !== "string" || token.length > MAX_CI_ID_TOKEN_LENGTH) {
        throw refused("size", `it is longer than ${MAX_CI_ID_TOKEN_LENGTH / 1024} KiB`);
      }
      const kid = signingKeyId(token);
      const wanted = expected.issuer ?? claimedIssuer(token);
      const issuer = deps.issuers.find((trusted) => trusted.url === wanted);
      if (issuer === undefined) {
        throw refused(
          "issuer-not-trusted",
          expected.issuer === null
            ? "its issuer is not one this server trusts"
            : `its issuer ${expected.issuer} is not one this server trusts`,
        );
      }
      const keySet = await keys.forKid(issuer, kid);
      if (keySet === null) {
        throw refused("key", "unknown signing key: the issuer publishes no key with the kid the token names");
      }
      const options: JWTVerifyOptions = {
        algorithms: [...CI_TOKEN_ALGORITHMS],
        issuer: issuer.url,
        ...(expected.audience === null ? {} : { audience: expected.audience }),
        clockTolerance: CI_TOKEN_LEEWAY_SECONDS,
        maxTokenAge: CI_TOKEN_MAX_AGE_SECONDS,
        requiredClaims: ["exp", "jti"],
        currentDate: deps.now(),
      };
      let payload: Record<string, unknown>;
      try {
        // The key comes from the issuer's set by kid and alg alone: jwk, jku, x5u and x5c in the header are never read.
        ({ payload } = await jwtVerify(token, keySet, options));
      } catch (err) {
        throw joseRefusal(err, { issuer: issuer.url, audience: expected.audience });
      }
      const jti = payload.jti;
      if (typeof jti !== "string" || jti.length === 0 || jti.length > CI_JTI_MAX_LENGTH) {
        throw refused("jti", `its jti is not a string of 1 to ${CI_JTI_MAX_LENGTH} characters`);
      }
      // jwtVerify has checked both are numbers (exp required, iat by the maximum age).
      return {
        provider: issuer.provider,
        issuer: issuer.url,
        claims: payload,
        jti,
        issuedAt: new Date(Number(payload.iat) * 1000),
        expiresAt: new Date(Number(payload.exp) * 1000),
      };
    },
  };
}

/**
 * Throws LK_CI_TOKEN_INVALID, as {@link CiTokenVerifier.verify} would have, when a token verified against the issuer
 * it names and any audience is not for `expected`'s issuer and audience.
 */
export function expectCiToken(
  verified: VerifiedCiToken,
  expected: { issuer: string; audience: string },
): void {
  if (verified.issuer !== expected.issuer) {
    throw refused("issuer", `the token's issuer is not ${expected.issuer}`);
  }
  const aud = verified.claims.aud;
  if (!(aud === expected.audience || (Array.isArray(aud) && aud.includes(expected.audience)))) {
    throw refused("audience", `the token's audience is not ${expected.audience}`);
  }
}

/** The unverified `iss` of a token whose header already read as a JWS's: which trusted issuer to verify it with. */
function claimedIssuer(token: string): string | undefined {
  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch (err) {
    throw refused("format", "it is not a signed JWT", err);
  }
  return typeof iss === "string" ? iss : undefined;
}

/** The token's header kid, after the checks that need no key: three parts, an allowed algorithm, a kid. */
function signingKeyId(token: string): string {
  if (token.split(".").length !== 3) throw refused("format", "it is not a signed JWT");
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch (err) {
    throw refused("format", "it is not a signed JWT", err);
  }
  if (!(CI_TOKEN_ALGORITHMS as readonly unknown[]).includes(header.alg)) {
    throw refused("algorithm", `it is not signed with ${CI_TOKEN_ALGORITHMS.join(" or ")}`);
  }
  const kid = header.kid;
  if (typeof kid !== "string" || kid === "" || kid.length > KID_MAX_LENGTH) {
    throw refused("key", "its header names no signing key (kid)");
  }
  return kid;
}

/** jose's refusal in plain words; anything that is not jose's is passed on unchanged. */
function joseRefusal(err: unknown, expected: { issuer: string; audience: string | null }): unknown {
  if (err instanceof LatchkeyError) return err;
  if (err instanceof errors.JWTExpired) {
    return err.claim === "iat"
      ? refused("too-old", `it was issued more than ${CI_TOKEN_MAX_AGE_SECONDS / 60} minutes ago`, err)
      : refused("expired", "the token expired", err);
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "jti") return refused("jti", "it has no jti", err);
    if (err.reason === "missing") return refused("claims", `it has no ${err.claim} claim`, err);
    if (err.reason === "invalid") return refused("claims", `its ${err.claim} claim is not a number`, err);
    switch (err.claim) {
      case "iss":
        return refused("issuer", `the token's issuer is not ${expected.issuer}`, err);
      case "aud":
        return refused("audience", `the token's audience is not ${expected.audience ?? "accepted"}`, err);
      case "nbf":
        return refused("not-yet-valid", "the token is not valid yet (its nbf is in the future)", err);
      case "iat":
        return refused("issued-in-future", "its issue time (iat) is in the future", err);
      default:
        return refused("claims", `its ${err.claim} claim failed a check`, err);
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return refused("signature", "its signature does not verify with the issuer's key", err);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return refused("algorithm", `it is not signed with ${CI_TOKEN_ALGORITHMS.join(" or ")}`, err);
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return refused(
      "key",
      "unknown signing key: no single key of the issuer has the token's kid and algorithm",
      err,
    );
  }
  if (err instanceof errors.JWKSInvalid) {
    return new LatchkeyError("LK_CI_ISSUER_FAILED", {
      message:
        "The server could not use the signing keys of the CI token's issuer: a key in its key set is not a usable public key.",
      cause: err,
    });
  }
  if (err instanceof errors.JOSEError || err instanceof TypeError) {
    return refused("format", "it is not a well-formed signed JWT", err);
  }
  return err;
}

function refused(check: CiTokenCheck, why: string, cause?: unknown): LatchkeyError {
  return new LatchkeyError("LK_CI_TOKEN_INVALID", {
    message: `The CI token was refused: ${why}.`,
    details: { check },
    ...(cause === undefined ? {} : { cause }),
  });
}

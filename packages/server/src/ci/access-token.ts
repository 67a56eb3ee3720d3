/**
 * CI access tokens (docs/ci.md "Exchange"): what the exchange hands a CI job whose OIDC token a copy's policy
 * allowed, and the only bearer the CI pull takes. A compact JWS, HS256 under IdentityKeys.ciAccessKey (a key no
 * other token is signed with), typ `latchkey-ci-access+jwt`, audience {@link CI_ACCESS_AUDIENCE}; it states which
 * copy it opens, the policy and generation it was issued under (a disable or replace revokes it), the environments
 * it may pull and the job it was issued to, until `exp`. What the policy says (provider, issuer, repository) is
 * not repeated: the pull reads it from the policy of that generation. Both sides are here so that what is minted and what is
 * checked cannot drift apart. Verification is jose's with the algorithm pinned.
 */
import { CI_ACCESS_TOKEN_TTL_SECONDS } from "@latchkey/core";
import { errors, jwtVerify, SignJWT } from "jose";
import type { CiJob } from "./claims.js";

/** The JWS `typ` of a CI access token: a JWT of its own kind. */
export const CI_ACCESS_TYP = "latchkey-ci-access+jwt";
/** Its audience: the CI pull, and nothing else. */
export const CI_ACCESS_AUDIENCE = "latchkey:ci-pull";
/** The longest CI access token looked at (the exchange's answer allows no more). */
export const MAX_CI_ACCESS_TOKEN_LENGTH = 4096;

/** What a CI access token states. Times are seconds since the epoch. */
export interface CiAccessClaims {
  vaultId: string;
  /** The organisation's slug for an organisation copy; null for a personal copy. */
  org: string | null;
  /** The policy's id and generation when the token was issued; the pull refuses the token once either changed. */
  policyId: string;
  generation: number;
  /** The environments it may pull; empty: any of the vault's. */
  environments: string[];
  /** The job it was issued to, for the pull's audit row. */
  job: CiJob;
  /** 128 random bits, base64url. */
  jti: string;
  iat: number;
  exp: number;
}

/** Mints the token for `claims` under `key`. */
export function mintCiAccessToken(key: Uint8Array, claims: CiAccessClaims): Promise<string> {
  return new SignJWT({
    org: claims.org,
    pol: claims.policyId,
    gen: claims.generation,
    env: claims.environments,
    job: { ...claims.job },
  })
    .setProtectedHeader({ alg: "HS256", typ: CI_ACCESS_TYP })
    .setSubject(claims.vaultId)
    .setAudience(CI_ACCESS_AUDIENCE)
    .setJti(claims.jti)
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp)
    .sign(key);
}

/** Why a CI access token was not taken. */
export type CiAccessRefusal = "invalid" | "expired";

/** The claims of `token` if this server minted it as a CI access token and it has not expired, or why not. */
export async function verifyCiAccessToken(
  key: Uint8Array,
  token: string,
  now: Date,
): Promise<{ ok: true; claims: CiAccessClaims } | { ok: false; refusal: CiAccessRefusal }> {
  if (token.length > MAX_CI_ACCESS_TOKEN_LENGTH) return { ok: false, refusal: "invalid" };
  let payload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: ["HS256"],
      typ: CI_ACCESS_TYP,
      audience: CI_ACCESS_AUDIENCE,
      currentDate: now,
      // Minted for at most CI_ACCESS_TOKEN_TTL_SECONDS: one that claims a longer life or a birth in the future
      // was not minted here.
      maxTokenAge: CI_ACCESS_TOKEN_TTL_SECONDS,
      requiredClaims: ["sub", "jti", "iat", "exp", "pol", "gen", "env", "job"],
    }));
  } catch (err) {
    // Only a token whose signature verified reaches the time checks, so "expired" names a real token's state.
    if (err instanceof errors.JWTExpired) return { ok: false, refusal: "expired" };
    return { ok: false, refusal: "invalid" };
  }
  const { sub, org, pol, gen, env, job, jti, iat, exp } = payload;
  if (
    typeof sub !== "string" ||
    !(org === null || typeof org === "string") ||
    typeof pol !== "string" ||
    typeof gen !== "number" ||
    !Array.isArray(env) ||
    !env.every((item) => typeof item === "string") ||
    !isJob(job) ||
    typeof jti !== "string" ||
    typeof iat !== "number" ||
    typeof exp !== "number" ||
    exp - iat > CI_ACCESS_TOKEN_TTL_SECONDS
  ) {
    return { ok: false, refusal: "invalid" };
  }
  return {
    ok: true,
    claims: { vaultId: sub, org, policyId: pol, generation: gen, environments: env, job, jti, iat, exp },
  };
}

const JOB_TEXT = ["ref", "runId", "event", "environment"] as const;

function isJob(value: unknown): value is CiJob {
  if (typeof value !== "object" || value === null) return false;
  const job = value as Record<string, unknown>;
  return (
    typeof job.jti === "string" &&
    JOB_TEXT.every((field) => job[field] === null || typeof job[field] === "string")
  );
}

/**
 * CI access tokens (docs/ci.md "Exchange"): what the exchange hands a CI job whose OIDC token a copy's policy
 * allowed, and the only bearer the CI pull takes. A compact JWS, HS256 under IdentityKeys.ciAccessKey (a key no
 * other token is signed with), typ `latchkey-ci-access+jwt`, audience {@link CI_ACCESS_AUDIENCE}; it states which
 * copy it opens, the policy generation it was issued under (a disable or replace revokes it), the environments it
 * may pull and the job it was issued to, until `exp`. Both sides are here so that what is minted and what is
 * checked cannot drift apart. Verification is jose's with the algorithm pinned.
 */
import { CI_ACCESS_TOKEN_TTL_SECONDS } from "@latchkey/core";
import { errors, jwtVerify, SignJWT } from "jose";
import type { CiRun } from "./claims.js";

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
  /** The policy's generation when the token was issued; the pull refuses the token once it has changed. */
  generation: number;
  /** The environments it may pull; empty: any of the vault's. */
  environments: string[];
  /** `oidc:{provider}:{repository}:{ref}`. */
  name: string;
  /** The job it was issued to, for the pull's audit row. */
  run: CiRun;
  /** 128 random bits, base64url. */
  jti: string;
  iat: number;
  exp: number;
}

/** Mints the token for `claims` under `key`. */
export function mintCiAccessToken(key: Uint8Array, claims: CiAccessClaims): Promise<string> {
  return new SignJWT({
    org: claims.org,
    gen: claims.generation,
    env: claims.environments,
    name: claims.name,
    run: { ...claims.run },
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
      requiredClaims: ["sub", "jti", "iat", "exp", "gen", "env", "name", "run"],
    }));
  } catch (err) {
    // Only a token whose signature verified reaches the time checks, so "expired" names a real token's state.
    if (err instanceof errors.JWTExpired) return { ok: false, refusal: "expired" };
    return { ok: false, refusal: "invalid" };
  }
  const { sub, org, gen, env, name, run, jti, iat, exp } = payload;
  if (
    typeof sub !== "string" ||
    !(org === null || typeof org === "string") ||
    typeof gen !== "number" ||
    !Array.isArray(env) ||
    !env.every((item) => typeof item === "string") ||
    typeof name !== "string" ||
    !isRun(run) ||
    typeof jti !== "string" ||
    typeof iat !== "number" ||
    typeof exp !== "number" ||
    exp - iat > CI_ACCESS_TOKEN_TTL_SECONDS
  ) {
    return { ok: false, refusal: "invalid" };
  }
  return {
    ok: true,
    claims: { vaultId: sub, org, generation: gen, environments: env, name, run, jti, iat, exp },
  };
}

const RUN_TEXT = ["repository", "ref", "runId", "event", "environment"] as const;

function isRun(value: unknown): value is CiRun {
  if (typeof value !== "object" || value === null) return false;
  const run = value as Record<string, unknown>;
  return (
    (run.provider === "github" || run.provider === "gitlab") &&
    typeof run.issuer === "string" &&
    typeof run.jti === "string" &&
    RUN_TEXT.every((field) => run[field] === null || typeof run[field] === "string")
  );
}

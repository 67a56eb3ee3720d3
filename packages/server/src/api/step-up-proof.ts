/**
 * Step-up proofs as tokens (docs/pairing.md): a compact JWS, HS256 under IdentityKeys.stepUpKey, typ
 * `latchkey-step-up+jwt`, stating that user `sub` re-authenticated in session `sid` (the bearer's OAuth grant)
 * for the one action `aud`, until `exp`. The step-up slice mints them; the API layer checks them for the routes
 * that need one (plugin.ts). Both sides are here so that what is minted and what is checked cannot drift apart.
 * Verification is jose's: the algorithm is pinned, so neither `none` nor another algorithm is ever taken.
 */
import { PAIRINGS_PATH, STEP_UP_TTL_SECONDS, type StepUpMethod, type StepUpScope } from "@latchkey/core";
import { errors, jwtVerify, SignJWT } from "jose";

/** The JWS `typ` of a step-up proof: a JWT of its own kind, never confused with an ID or access token. */
export const STEP_UP_TYP = "latchkey-step-up+jwt";

/** How the user re-authenticated: the methods of a proof (never `unavailable`). */
export type StepUpFactors = Exclude<StepUpMethod, "unavailable">;

/** What a proof states. Times are seconds since the epoch. */
export interface StepUpClaims {
  /** The user. */
  sub: string;
  /** The session: the OAuth grant of the bearer token the proof was minted with. */
  sid: string;
  scope: StepUpScope;
  /** 128 random bits, base64url: the proof's identity, recorded when a route spends it. */
  jti: string;
  method: StepUpFactors;
  iat: number;
  exp: number;
}

// RFC 8176 authentication method references: a password; and a one-time password.
const AMR: Readonly<Record<StepUpFactors, readonly string[]>> = {
  password: ["pwd"],
  "password+totp": ["pwd", "otp"],
};

/** Mints the proof for `claims` under `key`. */
export function mintStepUpProof(key: Uint8Array, claims: StepUpClaims): Promise<string> {
  return new SignJWT({ sid: claims.sid, amr: [...AMR[claims.method]] })
    .setProtectedHeader({ alg: "HS256", typ: STEP_UP_TYP })
    .setSubject(claims.sub)
    .setAudience(claims.scope)
    .setJti(claims.jti)
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp)
    .sign(key);
}

/** Why a proof was not taken. */
export type StepUpRefusal = "missing" | "invalid" | "expired" | "other-action" | "other-session" | "used";

/** What a proof must match: the route's scope, the bearer's user and session, and the server's clock. */
export interface StepUpExpected {
  scope: StepUpScope;
  userId: string;
  grantId: string;
  now: Date;
}

/** Longest proof looked at (the schema of the step-up answer allows no more). */
const MAX_PROOF_LENGTH = 2048;

/** The claims of `proof` if it is a proof for `expected`, or why not. */
export async function verifyStepUpProof(
  key: Uint8Array,
  proof: string | undefined,
  expected: StepUpExpected,
): Promise<{ ok: true; claims: StepUpClaims } | { ok: false; refusal: StepUpRefusal }> {
  if (proof === undefined || proof === "") return { ok: false, refusal: "missing" };
  if (proof.length > MAX_PROOF_LENGTH) return { ok: false, refusal: "invalid" };
  let payload;
  try {
    ({ payload } = await jwtVerify(proof, key, {
      algorithms: ["HS256"],
      typ: STEP_UP_TYP,
      audience: expected.scope,
      currentDate: expected.now,
      // A proof is minted for STEP_UP_TTL_SECONDS: one that claims a longer life, or a birth in the future, was
      // not minted here.
      maxTokenAge: STEP_UP_TTL_SECONDS,
      requiredClaims: ["sub", "sid", "aud", "jti", "iat", "exp", "amr"],
    }));
  } catch (err) {
    // Only a proof whose signature verified reaches the claim checks, so these two name a real proof's flaw.
    if (err instanceof errors.JWTExpired) return { ok: false, refusal: "expired" };
    if (err instanceof errors.JWTClaimValidationFailed && err.claim === "aud")
      return { ok: false, refusal: "other-action" };
    return { ok: false, refusal: "invalid" };
  }
  const { sub, sid, aud, jti, iat, exp, amr } = payload;
  const method = methodOf(amr);
  if (
    typeof sub !== "string" ||
    typeof sid !== "string" ||
    aud !== expected.scope ||
    typeof jti !== "string" ||
    typeof iat !== "number" ||
    typeof exp !== "number" ||
    exp - iat > STEP_UP_TTL_SECONDS ||
    method === undefined
  ) {
    return { ok: false, refusal: "invalid" };
  }
  // One refusal for another user and another session: a proof is good in the session that minted it only.
  if (sub !== expected.userId || sid !== expected.grantId) return { ok: false, refusal: "other-session" };
  return { ok: true, claims: { sub, sid, scope: expected.scope, jti, method, iat, exp } };
}

function methodOf(amr: unknown): StepUpFactors | undefined {
  if (!Array.isArray(amr) || !amr.every((item) => typeof item === "string")) return undefined;
  const text = amr.join(" ");
  return (Object.keys(AMR) as StepUpFactors[]).find((method) => AMR[method].join(" ") === text);
}

/**
 * The browser's proof travels in a cookie rather than in page script (docs/pairing.md "The browser's step-up
 * cookie"). Its name carries the `__Secure-` prefix whenever it is Secure, so that no plain-http page of a sibling
 * host can plant one; `__Host-` would need Path=/, and the cookie is scoped to the routes that take it.
 */
export function stepUpCookieName(secure: boolean): string {
  return `${secure ? "__Secure-" : ""}latchkey-step-up`;
}

/**
 * The Set-Cookie value that hands `proof` to the browser: sent only to the pairing routes, never readable by page
 * script, never sent by a request another site starts, and gone when the proof expires. `secure` is false only
 * for a loopback http server (loopback.ts secureCookies), where a browser would drop a Secure cookie.
 */
export function stepUpCookie(proof: string, secure: boolean, maxAgeSeconds = STEP_UP_TTL_SECONDS): string {
  const attributes = [
    `${stepUpCookieName(secure)}=${proof}`,
    `Path=${PAIRINGS_PATH}`,
    `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
    "HttpOnly",
    "SameSite=Strict",
  ];
  if (secure) attributes.push("Secure");
  return attributes.join("; ");
}

/** The Set-Cookie value that deletes the step-up cookie (once a route has spent it). */
export function clearedStepUpCookie(secure: boolean): string {
  return stepUpCookie("", secure, 0);
}

/**
 * The proof in a request's Cookie header: undefined when there is none, null when there are several (a planted
 * one beside the browser's own: neither is taken, as a repeated X-Latchkey-Step-Up is not).
 */
export function stepUpProofFromCookies(
  header: string | undefined,
  secure: boolean,
): string | undefined | null {
  if (header === undefined) return undefined;
  const name = stepUpCookieName(secure);
  const found: string[] = [];
  for (const pair of header.split(";")) {
    const at = pair.indexOf("=");
    if (at < 0 || pair.slice(0, at).trim() !== name) continue;
    found.push(pair.slice(at + 1).trim());
  }
  if (found.length > 1) return null;
  return found[0];
}

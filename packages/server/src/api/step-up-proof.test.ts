import { randomBytes } from "node:crypto";
import { STEP_UP_TTL_SECONDS } from "@latchkey/core";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { mintStepUpProof, STEP_UP_TYP, verifyStepUpProof, type StepUpClaims } from "./step-up-proof.js";

const key = new Uint8Array(randomBytes(32));
const iat = 1_900_000_000;
const claims: StepUpClaims = {
  sub: "user-1",
  sid: "grant-1",
  scope: "vault:pair",
  jti: "AAECAwQFBgcICQoLDA0ODw",
  method: "password+totp",
  iat,
  exp: iat + STEP_UP_TTL_SECONDS,
};
const expected = {
  scope: claims.scope,
  userId: "user-1",
  grantId: "grant-1",
  now: new Date((iat + 10) * 1000),
};

/** A token signed with the proof key whose header and payload are chosen freely. */
const forged = (payload: Record<string, unknown>, typ = STEP_UP_TYP) =>
  new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ }).sign(key);

describe("step-up proofs", () => {
  it("verifies what it minted, with its claims, and states the method as RFC 8176 amr values", async () => {
    const proof = await mintStepUpProof(key, claims);
    expect(await verifyStepUpProof(key, proof, expected)).toEqual({ ok: true, claims });
    const payload = JSON.parse(Buffer.from(proof.split(".")[1]!, "base64url").toString("utf8")) as unknown;
    expect(payload).toEqual({
      sub: "user-1",
      sid: "grant-1",
      aud: "vault:pair",
      jti: claims.jti,
      iat,
      exp: iat + STEP_UP_TTL_SECONDS,
      amr: ["pwd", "otp"],
    });
    const password = await mintStepUpProof(key, { ...claims, method: "password" });
    expect(await verifyStepUpProof(key, password, expected)).toMatchObject({
      ok: true,
      claims: { method: "password" },
    });
  });

  it("is expired from its exp second on, by the clock it is given", async () => {
    const proof = await mintStepUpProof(key, claims);
    const at = (seconds: number) => ({ ...expected, now: new Date(seconds * 1000) });
    expect((await verifyStepUpProof(key, proof, at(claims.exp - 1))).ok).toBe(true);
    expect(await verifyStepUpProof(key, proof, at(claims.exp))).toEqual({ ok: false, refusal: "expired" });
  });

  it("refuses a signed token that no proof minter makes: longer-lived, born later, other typ, odd amr", async () => {
    const base = { sub: "user-1", sid: "grant-1", aud: "vault:pair", jti: claims.jti, iat, amr: ["pwd"] };
    const cases = [
      await forged({ ...base, exp: iat + STEP_UP_TTL_SECONDS + 1 }),
      await forged({ ...base, iat: iat + 60, exp: iat + 120 }),
      await forged({ ...base, exp: iat + 60 }, "JWT"),
      await forged({ ...base, exp: iat + 60, amr: ["otp"] }),
      await forged({ ...base, exp: iat + 60, amr: "pwd" }),
      await forged({ ...base, exp: iat + 60, aud: ["vault:pair", "org:member:remove"] }),
      await forged({ sub: "user-1", sid: "grant-1", aud: "vault:pair", iat, exp: iat + 60, amr: ["pwd"] }),
    ];
    for (const [i, proof] of cases.entries()) {
      expect(await verifyStepUpProof(key, proof, expected), `case ${i}`).toEqual({
        ok: false,
        refusal: "invalid",
      });
    }
    expect((await verifyStepUpProof(key, await forged({ ...base, exp: iat + 60 }), expected)).ok).toBe(true);
  });

  it("says a missing proof is missing and an oversized one invalid", async () => {
    expect(await verifyStepUpProof(key, undefined, expected)).toEqual({ ok: false, refusal: "missing" });
    expect(await verifyStepUpProof(key, "", expected)).toEqual({ ok: false, refusal: "missing" });
    expect(await verifyStepUpProof(key, "a".repeat(3000), expected)).toEqual({
      ok: false,
      refusal: "invalid",
    });
  });
});

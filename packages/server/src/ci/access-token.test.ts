import { randomBytes } from "node:crypto";
import { CI_ACCESS_TOKEN_TTL_SECONDS } from "@latchkey/core";
import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { mintStepUpProof } from "../api/step-up-proof.js";
import {
  CI_ACCESS_AUDIENCE,
  CI_ACCESS_TYP,
  mintCiAccessToken,
  verifyCiAccessToken,
  type CiAccessClaims,
} from "./access-token.js";

// The server's two HS256 keys (identity/keys.ts derives them apart from one secret; keys.test.ts checks that).
const keys = { ciAccessKey: new Uint8Array(randomBytes(32)), stepUpKey: new Uint8Array(randomBytes(32)) };
const NOW = 1_800_000_000;
const at = (seconds: number) => new Date(seconds * 1000);

const claims: CiAccessClaims = {
  vaultId: "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e",
  org: null,
  policyId: "5d0b3c52-8f1e-4a57-9a51-1c1e0f7d2a10",
  generation: 3,
  environments: ["production"],
  job: {
    ref: "refs/heads/main",
    runId: "1658821493/1",
    event: "push",
    environment: "production",
    jti: "id-token-jti",
  },
  jti: "access-token-jti",
  iat: NOW,
  exp: NOW + CI_ACCESS_TOKEN_TTL_SECONDS,
};

describe("CI access tokens", () => {
  it("verify under the key they were minted with until they expire, with every claim back", async () => {
    const token = await mintCiAccessToken(keys.ciAccessKey, claims);
    expect(await verifyCiAccessToken(keys.ciAccessKey, token, at(NOW + 1))).toEqual({ ok: true, claims });
    const org = await mintCiAccessToken(keys.ciAccessKey, { ...claims, org: "acme", environments: [] });
    expect(await verifyCiAccessToken(keys.ciAccessKey, org, at(NOW))).toMatchObject({
      ok: true,
      claims: { org: "acme", environments: [] },
    });
    expect(await verifyCiAccessToken(keys.ciAccessKey, token, at(claims.exp + 1))).toEqual({
      ok: false,
      refusal: "expired",
    });
  });

  it("are refused under another key: another server secret, the step-up key", async () => {
    const token = await mintCiAccessToken(keys.ciAccessKey, claims);
    const otherSecret = new Uint8Array(randomBytes(32));
    expect(await verifyCiAccessToken(otherSecret, token, at(NOW))).toEqual({
      ok: false,
      refusal: "invalid",
    });
    expect(await verifyCiAccessToken(keys.stepUpKey, token, at(NOW))).toEqual({
      ok: false,
      refusal: "invalid",
    });
  });

  it("refuse a step-up proof, a token of another typ or audience, and an unsigned one, even under the right key", async () => {
    const proof = await mintStepUpProof(keys.ciAccessKey, {
      sub: "user",
      sid: "grant",
      scope: "vault:pair",
      jti: "j",
      method: "password",
      iat: NOW,
      exp: NOW + 60,
    });
    expect(await verifyCiAccessToken(keys.ciAccessKey, proof, at(NOW))).toMatchObject({ ok: false });
    const payload = { org: null, pol: claims.policyId, gen: 3, env: [], job: claims.job };
    const signed = (typ: string, aud: string) =>
      new SignJWT(payload)
        .setProtectedHeader({ alg: "HS256", typ })
        .setSubject(claims.vaultId)
        .setAudience(aud)
        .setJti("j")
        .setIssuedAt(NOW)
        .setExpirationTime(NOW + 60)
        .sign(keys.ciAccessKey);
    expect(
      await verifyCiAccessToken(keys.ciAccessKey, await signed(CI_ACCESS_TYP, CI_ACCESS_AUDIENCE), at(NOW)),
    ).toMatchObject({ ok: true });
    expect(
      await verifyCiAccessToken(keys.ciAccessKey, await signed("JWT", CI_ACCESS_AUDIENCE), at(NOW)),
    ).toMatchObject({ ok: false });
    expect(
      await verifyCiAccessToken(keys.ciAccessKey, await signed(CI_ACCESS_TYP, "vault:pair"), at(NOW)),
    ).toMatchObject({ ok: false });
    const unsigned = new UnsecuredJWT(payload)
      .setSubject(claims.vaultId)
      .setAudience(CI_ACCESS_AUDIENCE)
      .setJti("j")
      .setIssuedAt(NOW)
      .setExpirationTime(NOW + 60)
      .encode();
    expect(await verifyCiAccessToken(keys.ciAccessKey, unsigned, at(NOW))).toMatchObject({ ok: false });
  });

  it("refuse a token that claims a longer life than the exchange gives, or lacks a claim", async () => {
    const long = await mintCiAccessToken(keys.ciAccessKey, {
      ...claims,
      exp: NOW + CI_ACCESS_TOKEN_TTL_SECONDS + 1,
    });
    expect(await verifyCiAccessToken(keys.ciAccessKey, long, at(NOW))).toEqual({
      ok: false,
      refusal: "invalid",
    });
    const badJob = await mintCiAccessToken(keys.ciAccessKey, {
      ...claims,
      job: { ...claims.job, runId: 7 as unknown as string },
    });
    expect(await verifyCiAccessToken(keys.ciAccessKey, badJob, at(NOW))).toEqual({
      ok: false,
      refusal: "invalid",
    });
    expect(await verifyCiAccessToken(keys.ciAccessKey, "x".repeat(5000), at(NOW))).toEqual({
      ok: false,
      refusal: "invalid",
    });
  });
});

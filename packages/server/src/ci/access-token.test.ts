import { CI_ACCESS_TOKEN_TTL_SECONDS } from "@latchkey/core";
import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { deriveIdentityKeys } from "../identity/keys.js";
import { mintStepUpProof } from "../api/step-up-proof.js";
import {
  CI_ACCESS_AUDIENCE,
  CI_ACCESS_TYP,
  mintCiAccessToken,
  verifyCiAccessToken,
  type CiAccessClaims,
} from "./access-token.js";

const keys = deriveIdentityKeys("a server secret for the CI access token tests");
const NOW = 1_800_000_000;
const at = (seconds: number) => new Date(seconds * 1000);

const claims: CiAccessClaims = {
  vaultId: "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e",
  org: null,
  generation: 3,
  environments: ["production"],
  name: "oidc:github:octo-org/octo-repo:refs/heads/main",
  run: {
    provider: "github",
    issuer: "https://token.actions.githubusercontent.com",
    repository: "octo-org/octo-repo",
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
    const other = deriveIdentityKeys("another server secret");
    expect(await verifyCiAccessToken(other.ciAccessKey, token, at(NOW))).toEqual({
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
    const payload = { org: null, gen: 3, env: [], name: "n", run: claims.run };
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
    const noRun = await mintCiAccessToken(keys.ciAccessKey, {
      ...claims,
      run: { ...claims.run, provider: "jenkins" as "github" },
    });
    expect(await verifyCiAccessToken(keys.ciAccessKey, noRun, at(NOW))).toEqual({
      ok: false,
      refusal: "invalid",
    });
    expect(await verifyCiAccessToken(keys.ciAccessKey, "x".repeat(5000), at(NOW))).toEqual({
      ok: false,
      refusal: "invalid",
    });
  });
});

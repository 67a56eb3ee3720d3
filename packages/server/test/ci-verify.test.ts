// The CI token verifier (src/ci/verify.ts) against real issuers on loopback (support/ci-issuer.ts), trusted the
// way the server trusts them, through its configured issuer list: GitHub- and GitLab-shaped tokens verify, and each
// forgery or out-of-bounds token is refused with LK_CI_TOKEN_INVALID naming the check, never quoting the token.
// The verifier's clock is the test's (no sleeping); the issuers' documents are fetched over real HTTP, counted.
import { createPublicKey, KeyObject, sign } from "node:crypto";
import { isLatchkeyError } from "@latchkey/core";
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { CiIssuer as TrustedIssuer } from "../src/ci/issuers.js";
import type { CiFetch } from "../src/ci/jwks.js";
import {
  CI_TOKEN_LEEWAY_SECONDS,
  CI_TOKEN_MAX_AGE_SECONDS,
  createCiTokenVerifier,
  type CiTokenCheck,
  type CiTokenVerifier,
  type ExpectedCiToken,
} from "../src/ci/verify.js";
import { startCiIssuer, TEST_CI_AUDIENCE, TEST_JWKS_PATH, type CiIssuer } from "./support/ci-issuer.js";

const START = new Date("2026-12-07T10:00:00.000Z");
const seconds = (n: number) => n * 1000;

let clock = START;
const now = () => clock;
const advance = (ms: number) => {
  clock = new Date(clock.getTime() + ms);
};

let github: CiIssuer;
let gitlab: CiIssuer;
/** A loopback server no configuration names: an attacker's issuer and key host. */
let attacker: CiIssuer;
/** Every URL the verifier fetched. */
const fetched: string[] = [];
const countingFetch: CiFetch = (url, init) => {
  fetched.push(url);
  return fetch(url, init);
};

let trusted: TrustedIssuer[];
let verifier: CiTokenVerifier;
const newVerifier = (issuers: readonly TrustedIssuer[] = trusted) =>
  createCiTokenVerifier({ issuers, fetch: countingFetch, now });

const fromGithub = (): ExpectedCiToken => ({ issuer: github.url, audience: TEST_CI_AUDIENCE });
const fromGitlab = (): ExpectedCiToken => ({ issuer: gitlab.url, audience: TEST_CI_AUDIENCE });

/** Asserts that `token` is refused by `check`, with a message containing `says`, quoting no part of the token. */
async function refused(
  token: string,
  expected: ExpectedCiToken,
  check: CiTokenCheck,
  says: string,
  by: CiTokenVerifier = verifier,
): Promise<void> {
  let error: unknown;
  try {
    await by.verify(token, expected);
  } catch (err) {
    error = err;
  }
  expect(isLatchkeyError(error, "LK_CI_TOKEN_INVALID"), String(error)).toBe(true);
  if (!isLatchkeyError(error)) return;
  expect(error.details).toEqual({ check });
  expect(error.message).toContain(says);
  const shown = JSON.stringify(error.toJSON());
  for (const part of token.split(".").filter((p) => p.length >= 8)) expect(shown).not.toContain(part);
}

/** A token signed by `key` (not the issuer's), with GitHub's claims from `issuer` and any header. */
async function forged(
  issuer: CiIssuer,
  key: CryptoKey | Uint8Array,
  header: Record<string, unknown>,
  claims: Record<string, unknown> = {},
): Promise<string> {
  const template = JSON.parse(
    Buffer.from((await issuer.mint()).split(".")[1]!, "base64url").toString("utf8"),
  ) as Record<string, unknown>;
  return new SignJWT({ ...template, jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({ alg: "RS256", ...header })
    .sign(key);
}

/** The issuer's published key for `kid`, as its JWKS serves it. */
async function publishedKey(issuer: CiIssuer, kid: string): Promise<JWK> {
  const set = (await (await fetch(`${issuer.url}${TEST_JWKS_PATH}`)).json()) as { keys: JWK[] };
  const key = set.keys.find((k) => k.kid === kid);
  if (key === undefined) throw new Error(`no key ${kid}`);
  return key;
}

beforeAll(async () => {
  [github, gitlab, attacker] = await Promise.all([
    startCiIssuer({ now }),
    startCiIssuer({ now }),
    startCiIssuer({ now }),
  ]);
  trusted = [
    { provider: "github", url: github.url },
    { provider: "gitlab", url: gitlab.url },
  ];
});

afterAll(async () => {
  await Promise.all([github.close(), gitlab.close(), attacker.close()]);
});

beforeEach(() => {
  clock = START;
  fetched.length = 0;
  // A new verifier has an empty key cache: each test counts its own fetches.
  verifier = newVerifier();
});

describe("CI token verification", () => {
  it("verifies a GitHub Actions token and hands back its claims, jti and times", async () => {
    const token = await github.mint({ environment: "production" });
    const verified = await verifier.verify(token, fromGithub());
    expect(verified).toMatchObject({
      provider: "github",
      issuer: github.url,
      issuedAt: START,
      expiresAt: new Date(START.getTime() + seconds(300)),
    });
    expect(verified.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(verified.claims).toMatchObject({
      repository: "octo-org/octo-repo",
      repository_id: "74",
      repository_owner_id: "65",
      ref: "refs/heads/main",
      environment: "production",
      event_name: "push",
      jti: verified.jti,
    });
    // Discovery, then the key set it names; nothing from the other issuers.
    expect(fetched).toEqual([
      `${github.url}/.well-known/openid-configuration`,
      `${github.url}${TEST_JWKS_PATH}`,
    ]);
  });

  it("verifies a GitLab CI ID token", async () => {
    const verified = await verifier.verify(await gitlab.mint({}, { shape: "gitlab" }), fromGitlab());
    expect(verified.provider).toBe("gitlab");
    expect(verified.claims).toMatchObject({
      project_path: "acme/app",
      project_id: "20",
      job_project_id: "20",
      namespace_id: "72",
      ref: "main",
      ref_protected: "true",
    });
  });

  it("verifies ES256 as well as RS256, with the key the kid names", async () => {
    const verified = await verifier.verify(await github.mint({}, { alg: "ES256" }), fromGithub());
    expect(verified.provider).toBe("github");
  });

  it("accepts an audience array that holds the expected audience", async () => {
    const token = await github.mint({ aud: ["https://other.example", TEST_CI_AUDIENCE] });
    await expect(verifier.verify(token, fromGithub())).resolves.toMatchObject({ provider: "github" });
  });

  describe("algorithms", () => {
    it("refuses HS256 signed with the issuer's public key as the secret", async () => {
      const jwk = await publishedKey(github, github.kid("RS256"));
      const pem = createPublicKey({ key: jwk, format: "jwk" })
        .export({ type: "spki", format: "pem" })
        .toString();
      for (const secret of [pem, JSON.stringify(jwk), jwk.n!]) {
        const token = await forged(github, new TextEncoder().encode(secret), {
          alg: "HS256",
          kid: github.kid(),
        });
        await refused(token, fromGithub(), "algorithm", "it is not signed with RS256 or ES256");
      }
    });

    it("refuses alg none, with or without a signature", async () => {
      const payload = (await github.mint()).split(".")[1]!;
      for (const alg of ["none", "None", "NONE"]) {
        const header = base64url.encode(JSON.stringify({ alg, typ: "JWT", kid: github.kid() }));
        await refused(`${header}.${payload}.`, fromGithub(), "algorithm", "not signed with RS256 or ES256");
        await refused(
          `${header}.${payload}.c2ln`,
          fromGithub(),
          "algorithm",
          "not signed with RS256 or ES256",
        );
      }
    });

    it("refuses PS256, RS512 and ES384 even when the key would fit", async () => {
      for (const alg of ["PS256", "RS512", "ES384"] as const) {
        const { privateKey } = await generateKeyPair(alg);
        const token = await forged(github, privateKey, { alg, kid: github.kid() });
        await refused(token, fromGithub(), "algorithm", "not signed with RS256 or ES256");
      }
    });

    it("refuses a token signed with an algorithm the kid's key is not for", async () => {
      // An ES256 signature under the RS256 key's kid: no key of the set is both.
      const { privateKey } = await generateKeyPair("ES256");
      const token = await forged(github, privateKey, { alg: "ES256", kid: github.kid("RS256") });
      await refused(token, fromGithub(), "key", "unknown signing key");
    });
  });

  describe("keys", () => {
    let attackerKey: { privateKey: CryptoKey; publicJwk: JWK };
    beforeAll(async () => {
      const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
      attackerKey = {
        privateKey,
        publicJwk: { ...(await exportJWK(publicKey)), kid: "attacker", alg: "RS256" },
      };
    });

    it("ignores a jwk header: the attacker's embedded key under its own kid is an unknown key", async () => {
      const token = await forged(github, attackerKey.privateKey, {
        kid: "attacker",
        jwk: attackerKey.publicJwk,
      });
      await refused(token, fromGithub(), "key", "unknown signing key");
    });

    it("ignores a jwk header: under the issuer's kid the issuer's key is used, and the signature fails", async () => {
      const token = await forged(github, attackerKey.privateKey, {
        kid: github.kid(),
        jwk: { ...attackerKey.publicJwk, kid: github.kid() },
      });
      await refused(token, fromGithub(), "signature", "its signature does not verify with the issuer's key");
    });

    it("accepts a jwk header that is the issuer's own published key (the key comes from the set, not the header)", async () => {
      const jwk = await publishedKey(github, github.kid());
      const token = await github.mint({}, { header: { jwk } });
      await expect(verifier.verify(token, fromGithub())).resolves.toMatchObject({ provider: "github" });
    });

    it("never fetches a jku or x5u, and refuses their keys", async () => {
      const before = attacker.requests.paths.length;
      const keyUrl = `${attacker.url}${TEST_JWKS_PATH}`;
      for (const header of [{ jku: keyUrl }, { x5u: keyUrl }, { jku: keyUrl, x5u: keyUrl, x5c: ["MIIB"] }]) {
        const token = await attacker.mint({ iss: github.url }, { header });
        await refused(token, fromGithub(), "key", "unknown signing key");
      }
      expect(attacker.requests.paths.length).toBe(before);
      expect(fetched.every((url) => url.startsWith(github.url))).toBe(true);
    });

    it("refuses a token whose header names no kid", async () => {
      const token = await github.mint({}, { header: { kid: undefined } });
      await refused(token, fromGithub(), "key", "its header names no signing key (kid)");
    });

    it("refetches on an unknown kid once, then not again within 60 s", async () => {
      await verifier.verify(await github.mint(), fromGithub());
      expect(github.requests.jwks).toBeGreaterThan(0);
      const base = { discovery: github.requests.discovery, jwks: github.requests.jwks };

      // Within a minute of the first fetch: an unknown kid fetches nothing.
      advance(seconds(30));
      await refused(await github.mint({}, { kid: "made-up-0" }), fromGithub(), "key", "unknown signing key");
      expect(github.requests).toMatchObject(base);

      advance(seconds(31));
      await refused(await github.mint({}, { kid: "made-up-1" }), fromGithub(), "key", "unknown signing key");
      expect(github.requests).toMatchObject({ discovery: base.discovery + 1, jwks: base.jwks + 1 });

      advance(seconds(10));
      for (let i = 2; i < 12; i++) {
        await refused(
          await github.mint({}, { kid: `made-up-${i}` }),
          fromGithub(),
          "key",
          "unknown signing key",
        );
      }
      expect(github.requests).toMatchObject({ discovery: base.discovery + 1, jwks: base.jwks + 1 });
      // Known keys go on verifying from the cache meanwhile.
      await verifier.verify(await github.mint(), fromGithub());
      expect(github.requests).toMatchObject({ discovery: base.discovery + 1, jwks: base.jwks + 1 });
    });

    it("shares one fetch between requests that miss at the same time", async () => {
      const base = github.requests.jwks;
      const tokens = await Promise.all(Array.from({ length: 8 }, () => github.mint()));
      await Promise.all(tokens.map((token) => verifier.verify(token, fromGithub())));
      expect(github.requests.jwks).toBe(base + 1);

      advance(seconds(61));
      const bogus = await Promise.all(
        Array.from({ length: 8 }, (_, i) => github.mint({}, { kid: `flood-${i}` })),
      );
      const results = await Promise.allSettled(bogus.map((token) => verifier.verify(token, fromGithub())));
      expect(results.every((r) => r.status === "rejected")).toBe(true);
      expect(github.requests.jwks).toBe(base + 2);
    });

    it("picks up a rotated key (new kid) with one refetch", async () => {
      const issuer = await startCiIssuer({ now });
      try {
        const own = newVerifier([{ provider: "github", url: issuer.url }]);
        const expected = { issuer: issuer.url, audience: TEST_CI_AUDIENCE };
        await own.verify(await issuer.mint(), expected);
        const oldKid = issuer.kid();
        await issuer.rotateKey({ retire: true });
        advance(seconds(61));
        const verified = await own.verify(await issuer.mint(), expected);
        expect(verified.provider).toBe("github");
        expect(issuer.requests.jwks).toBe(2);
        // The retired key is gone from the set now: its tokens are refused (no further fetch within the minute).
        await refused(await issuer.mint({}, { kid: oldKid }), expected, "key", "unknown signing key", own);
        expect(issuer.requests.jwks).toBe(2);
      } finally {
        await issuer.close();
      }
    });

    it("fetches the keys again after an hour even for a known kid", async () => {
      await verifier.verify(await github.mint(), fromGithub());
      const base = github.requests.jwks;
      advance(seconds(59 * 60));
      await verifier.verify(await github.mint(), fromGithub());
      expect(github.requests.jwks).toBe(base);
      advance(seconds(61));
      await verifier.verify(await github.mint(), fromGithub());
      expect(github.requests.jwks).toBe(base + 1);
    });
  });

  describe("issuer", () => {
    it("refuses a token whose iss differs from the expected issuer in case, a trailing slash or altogether", async () => {
      const upper = github.url.replace("http://", "HTTP://");
      for (const iss of [
        upper,
        `${github.url}/`,
        gitlab.url,
        "https://token.actions.githubusercontent.com",
      ]) {
        await refused(
          await github.mint({ iss }),
          fromGithub(),
          "issuer",
          `the token's issuer is not ${github.url}`,
        );
      }
      await refused(await github.mint({ iss: undefined }), fromGithub(), "claims", "it has no iss claim");
    });

    it("refuses an issuer the server was not configured with, fetching nothing", async () => {
      const stranger = { issuer: attacker.url, audience: TEST_CI_AUDIENCE };
      await refused(await attacker.mint(), stranger, "issuer-not-trusted", "is not one this server trusts");
      const gitlabCom = { issuer: "https://gitlab.com", audience: TEST_CI_AUDIENCE };
      await refused(
        await github.mint({ iss: "https://gitlab.com" }),
        gitlabCom,
        "issuer-not-trusted",
        "gitlab.com",
      );
      // The same token, but the verifier trusts only GitLab: GitHub's issuer is not configured.
      const gitlabOnly = newVerifier([{ provider: "gitlab", url: gitlab.url }]);
      await refused(
        await github.mint(),
        fromGithub(),
        "issuer-not-trusted",
        "not one this server trusts",
        gitlabOnly,
      );
      expect(fetched).toEqual([]);
      expect(attacker.requests.paths).toEqual([]);
    });

    it("refuses a token of another trusted issuer presented as this one's", async () => {
      // Signed by GitLab's key, claiming GitHub's issuer: GitHub's key set has no such kid.
      await refused(await gitlab.mint({ iss: github.url }), fromGithub(), "key", "unknown signing key");
    });

    it("refuses every key of an issuer whose discovery document names a jwks_uri off its host", async () => {
      for (const jwksUri of [
        `${attacker.url}${TEST_JWKS_PATH}`,
        "https://keys.example.net/.well-known/jwks",
        "file:///etc/passwd",
        "not a url",
      ]) {
        const hostile = await startCiIssuer({ now, discovery: (doc) => ({ ...doc, jwks_uri: jwksUri }) });
        try {
          const own = newVerifier([{ provider: "github", url: hostile.url }]);
          const error = await own
            .verify(await hostile.mint(), { issuer: hostile.url, audience: TEST_CI_AUDIENCE })
            .catch((err: unknown) => err);
          expect(isLatchkeyError(error, "LK_CI_ISSUER_FAILED"), String(error)).toBe(true);
          expect((error as Error).message).toMatch(
            /jwks_uri (that is not a URL|that is not http\(s\) on 127\.0\.0\.1)/,
          );
          expect(hostile.requests.jwks).toBe(0);
        } finally {
          await hostile.close();
        }
      }
      expect(attacker.requests.paths).toEqual([]);
    });

    it("refuses an issuer whose discovery document names another issuer", async () => {
      const hostile = await startCiIssuer({ now, discovery: (doc) => ({ ...doc, issuer: github.url }) });
      try {
        const own = newVerifier([{ provider: "github", url: hostile.url }]);
        const error = await own
          .verify(await hostile.mint(), { issuer: hostile.url, audience: TEST_CI_AUDIENCE })
          .catch((err: unknown) => err);
        expect(isLatchkeyError(error, "LK_CI_ISSUER_FAILED"), String(error)).toBe(true);
        expect((error as Error).message).toContain(`names another issuer than ${hostile.url}`);
      } finally {
        await hostile.close();
      }
    });

    it("serves an issuer under a path, the discovery document appended to it", async () => {
      const pathed = await startCiIssuer({ now, path: "/gitlab" });
      try {
        const own = newVerifier([{ provider: "gitlab", url: pathed.url }]);
        const token = await pathed.mint({}, { shape: "gitlab" });
        await expect(
          own.verify(token, { issuer: pathed.url, audience: TEST_CI_AUDIENCE }),
        ).resolves.toMatchObject({ provider: "gitlab", issuer: pathed.url });
        expect(pathed.requests.paths[0]).toBe("/gitlab/.well-known/openid-configuration");
      } finally {
        await pathed.close();
      }
    });
  });

  describe("audience", () => {
    it("refuses another audience, an array without it, a case variant or none", async () => {
      const says = `the token's audience is not ${TEST_CI_AUDIENCE}`;
      for (const aud of [
        "https://evil.example",
        ["https://a.example", "https://b.example"],
        TEST_CI_AUDIENCE.toUpperCase(),
        `${TEST_CI_AUDIENCE}/`,
        [],
      ]) {
        await refused(await github.mint({ aud }), fromGithub(), "audience", says);
      }
      await refused(await github.mint({ aud: undefined }), fromGithub(), "claims", "it has no aud claim");
    });
  });

  describe("times", () => {
    it("refuses a token expired beyond the 60 s leeway and accepts one within it", async () => {
      const token = await github.mint();
      const other = await github.mint();
      advance(seconds(300 + CI_TOKEN_LEEWAY_SECONDS - 1));
      await expect(verifier.verify(other, fromGithub())).resolves.toMatchObject({ provider: "github" });
      advance(seconds(2));
      await refused(token, fromGithub(), "expired", "the token expired");
    });

    it("refuses a token not valid yet beyond the leeway and accepts one within it", async () => {
      const iat = START.getTime() / 1000;
      await refused(await github.mint({ nbf: iat + 120 }), fromGithub(), "not-yet-valid", "is not valid yet");
      await expect(
        verifier.verify(await github.mint({ nbf: iat + 30 }), fromGithub()),
      ).resolves.toBeDefined();
    });

    it("refuses a token issued more than 15 minutes ago whatever its exp says", async () => {
      const iat = START.getTime() / 1000;
      const old = CI_TOKEN_MAX_AGE_SECONDS + CI_TOKEN_LEEWAY_SECONDS;
      const young = await github.mint({ iat: iat - old + 5, nbf: iat - old, exp: iat + 3600 });
      await expect(verifier.verify(young, fromGithub())).resolves.toBeDefined();
      const stale = await github.mint({ iat: iat - old - 5, nbf: iat - old - 10, exp: iat + 3600 });
      await refused(stale, fromGithub(), "too-old", "it was issued more than 15 minutes ago");
      await refused(await github.mint({ iat: undefined }), fromGithub(), "claims", "it has no iat claim");
    });

    it("refuses a token issued in the future, and one without exp", async () => {
      const iat = START.getTime() / 1000;
      await refused(await github.mint({ iat: iat + 120 }), fromGithub(), "issued-in-future", "in the future");
      await refused(await github.mint({ exp: undefined }), fromGithub(), "claims", "it has no exp claim");
      await refused(
        await github.mint({ exp: "soon" }),
        fromGithub(),
        "claims",
        "its exp claim is not a number",
      );
    });
  });

  describe("jti and size", () => {
    it("refuses a token without a jti, or with one that is not a string of 1 to 256 characters", async () => {
      await refused(await github.mint({ jti: undefined }), fromGithub(), "jti", "it has no jti");
      for (const jti of ["", "j".repeat(257), 12345, ["a"]]) {
        await refused(await github.mint({ jti }), fromGithub(), "jti", "its jti is not a string of 1 to 256");
      }
      await expect(
        verifier.verify(await github.mint({ jti: "j".repeat(256) }), fromGithub()),
      ).resolves.toMatchObject({ jti: "j".repeat(256) });
    });

    it("refuses a token longer than 16 KiB before parsing it, fetching nothing", async () => {
      const token = await github.mint({ padding: "p".repeat(16 * 1024) });
      await refused(token, fromGithub(), "size", "it is longer than 16 KiB");
      await refused("x".repeat(16 * 1024 + 1), fromGithub(), "size", "it is longer than 16 KiB");
      expect(fetched).toEqual([]);
    });

    it("refuses what is not a signed JWT", async () => {
      const token = await github.mint();
      const [header, payload, signature] = token.split(".") as [string, string, string];
      for (const bad of [
        "",
        "not-a-jwt",
        `${header}.${payload}`,
        `${header}.${payload}.${signature}.extra.part`,
        `!!!.${payload}.${signature}`,
      ]) {
        await refused(bad, fromGithub(), "format", "it is not a signed JWT");
      }
      await refused(`${header}.${payload}x.${signature}`, fromGithub(), "signature", "does not verify");
      // An extension the verifier does not know, marked critical: refused before the signature is looked at
      // (jose will not sign it, so it is put together by hand).
      const { privateKey } = await generateKeyPair("RS256", { extractable: true });
      const critHeader = base64url.encode(
        JSON.stringify({ alg: "RS256", kid: github.kid(), crit: ["x"], x: 1 }),
      );
      const input = `${critHeader}.${payload}`;
      const critSignature = sign("sha256", Buffer.from(input), KeyObject.from(privateKey)).toString(
        "base64url",
      );
      await refused(
        `${input}.${critSignature}`,
        fromGithub(),
        "format",
        "it is not a well-formed signed JWT",
      );
    });
  });
});

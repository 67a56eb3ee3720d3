// In-process tests of the SSO client with a fake context: the provider is a scripted fetch (discovery document,
// device and token endpoints) so each request the client makes, or does not make, is visible. The real provider
// runs in e2e/sso-login.test.ts.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LatchkeyError, type SsoSession } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import type { Spawn } from "../context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { deviceLogin } from "./device.js";
import {
  authorizationSecrets,
  browserLogin,
  refreshSsoSession,
  requireSsoSession,
  ssoAccount,
  type SsoTarget,
} from "./sso.js";

const ISSUER = "https://idp.example.test";
const TARGET: SsoTarget = { issuer: ISSUER, clientId: "lk-cli", profile: "default" };
const NOW = Date.UTC(2030, 0, 1);

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "lk-sso-unit-"));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** An unsigned-looking ID token: openid-client validates claims of token-endpoint ID tokens, not signatures (TLS). */
function idToken(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${part({ alg: "RS256", typ: "JWT" })}.${part(claims)}.${Buffer.from("sig").toString("base64url")}`;
}

const DISCOVERY = {
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/auth`,
  token_endpoint: `${ISSUER}/token`,
  device_authorization_endpoint: `${ISSUER}/device/auth`,
  revocation_endpoint: `${ISSUER}/revoke`,
  jwks_uri: `${ISSUER}/jwks`,
  response_types_supported: ["code"],
  code_challenge_methods_supported: ["S256"],
};

interface Scripted {
  /** Answers for POST /token, in order. */
  token?: (() => Response)[];
  discovery?: Record<string, unknown>;
}

function context(
  script: Scripted,
  extra: { spawn?: Spawn; stored?: Record<string, string>; random?: Uint8Array[] } = {},
) {
  const env = { LATCHKEY_HOME: home };
  const keystore = createMemoryKeystore(extra.stored ?? {});
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  const requests: { url: string; body: string }[] = [];
  const sleeps: number[] = [];
  let now = NOW;
  const tokenAnswers = [...(script.token ?? [])];
  const randoms = [...(extra.random ?? [])];
  const ctx = createTestContext({
    env,
    paths: resolvePaths(env),
    clock: {
      now: () => now,
      sleep: (ms) => {
        sleeps.push(ms);
        now += ms;
        return Promise.resolve();
      },
    },
    random: {
      bytes: (n) => {
        const next = randoms.shift();
        if (next === undefined || next.length !== n) throw new Error(`Unexpected call to random.bytes(${n})`);
        return next;
      },
    },
    fetch: (input, init) => new Promise<Response>((resolve) => resolve(answer(input, init))),
    keystore: () => Promise.resolve(resolution),
    ...(extra.spawn ? { spawn: extra.spawn } : {}),
  });
  function answer(input: Parameters<typeof fetch>[0], init: RequestInit | undefined): Response {
    const url = input instanceof Request ? input.url : input instanceof URL ? input.href : input;
    const body =
      init?.body instanceof URLSearchParams
        ? init.body.toString()
        : typeof init?.body === "string"
          ? init.body
          : "";
    requests.push({ url, body });
    if (url === `${ISSUER}/.well-known/openid-configuration`) return json(script.discovery ?? DISCOVERY);
    if (url === `${ISSUER}/device/auth`) {
      return json({
        device_code: "dev-code",
        user_code: "WXYZ-1234",
        verification_uri: `${ISSUER}/device`,
        expires_in: 600,
        interval: 5,
      });
    }
    if (url === `${ISSUER}/token`) {
      const next = tokenAnswers.shift();
      if (next === undefined) throw new Error("Unexpected token request");
      return next();
    }
    throw new Error(`Unexpected fetch ${url}`);
  }
  return { ctx, keystore, requests, sleeps };
}

function bytes(fill: number, length = 32): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

async function rejection(promise: Promise<unknown>): Promise<LatchkeyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof LatchkeyError)) throw new Error(`expected a LatchkeyError, got ${String(error)}`);
  return error;
}

describe("authorizationSecrets", () => {
  it("derives the S256 challenge of RFC 7636 Appendix B from 32 bytes of ctx.random", async () => {
    const octets = Uint8Array.from([
      116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214,
      191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ]);
    const { ctx } = context({}, { random: [octets, bytes(1), bytes(2)] });
    const secrets = authorizationSecrets(ctx);
    expect(secrets.codeVerifier).toBe("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    expect(secrets.codeChallenge).toBe("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    const { calculatePKCECodeChallenge } = await import("openid-client");
    expect(await calculatePKCECodeChallenge(secrets.codeVerifier)).toBe(secrets.codeChallenge);
    expect(secrets.state).toBe(Buffer.from(bytes(1)).toString("base64url"));
    expect(secrets.nonce).toBe(Buffer.from(bytes(2)).toString("base64url"));
  });
});

describe("browserLogin", () => {
  /** A spawn that plays a browser: it reads the authorization URL, then GETs the listener with `callback(url)`. */
  function browserSpawn(seen: URL[], callback: (authorization: URL) => string): Spawn {
    return async (_command, args) => {
      const authorization = new URL(args[0]!);
      seen.push(authorization);
      await fetch(callback(authorization));
      return { code: 0, signal: null, stdout: "", stderr: "", timedOut: false };
    };
  }

  it("sends PKCE S256, state and nonce, and makes no token request when the state comes back wrong", async () => {
    const seen: URL[] = [];
    const spawn = browserSpawn(seen, (a) => `${a.searchParams.get("redirect_uri")}?code=abc&state=forged`);
    const { ctx, requests } = context({}, { spawn, random: [bytes(7), bytes(8), bytes(9)] });
    const error = await rejection(browserLogin(ctx, TARGET));
    expect(error.code).toBe("LK_OAUTH_STATE_MISMATCH");

    const params = seen[0]!.searchParams;
    const verifier = Buffer.from(bytes(7)).toString("base64url");
    const { createHash } = await import("node:crypto");
    expect(params.get("code_challenge")).toBe(createHash("sha256").update(verifier).digest("base64url"));
    expect(params.get("code_challenge_method")).toBe("S256");
    expect(params.get("state")).toBe(Buffer.from(bytes(8)).toString("base64url"));
    expect(params.get("nonce")).toBe(Buffer.from(bytes(9)).toString("base64url"));
    expect(params.get("response_type")).toBe("code");
    expect(params.get("client_id")).toBe("lk-cli");
    expect(params.get("scope")).toBe("openid offline_access");
    expect(params.has("code_verifier")).toBe(false);
    expect(params.get("redirect_uri")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(requests.map((r) => r.url)).toEqual([`${ISSUER}/.well-known/openid-configuration`]);
  });

  it("ends on an error callback with LK_OAUTH_DENIED and no token request", async () => {
    const spawn = browserSpawn(
      [],
      (a) => `${a.searchParams.get("redirect_uri")}?error=access_denied&state=${a.searchParams.get("state")}`,
    );
    const { ctx, requests } = context({}, { spawn, random: [bytes(1), bytes(2), bytes(3)] });
    const error = await rejection(browserLogin(ctx, TARGET));
    expect(error.code).toBe("LK_OAUTH_DENIED");
    expect(requests.filter((r) => r.url.endsWith("/token"))).toEqual([]);
  });

  it("with noBrowser prints the URL instead of spawning, and times out with LK_OAUTH_TIMEOUT", async () => {
    const { ctx, requests } = context({}, { random: [bytes(1), bytes(2), bytes(3)] });
    const error = await rejection(browserLogin(ctx, TARGET, { noBrowser: true, timeoutMs: 10 }));
    expect(error.code).toBe("LK_OAUTH_TIMEOUT");
    expect(ctx.stderr.text()).toContain(`${ISSUER}/auth?`);
    expect(ctx.stderr.text()).toContain("code_challenge_method=S256");
    expect(requests.filter((r) => r.url.endsWith("/token"))).toEqual([]);
  });

  it("refuses a plain-http issuer that is not loopback before any request", async () => {
    const { ctx, requests } = context({});
    const error = await rejection(browserLogin(ctx, { ...TARGET, issuer: "http://idp.example.test" }));
    expect(error.code).toBe("LK_CONFIG_INVALID");
    expect(requests).toEqual([]);
  });

  it("refuses a discovery document that points an endpoint at plain http", async () => {
    const { ctx } = context({ discovery: { ...DISCOVERY, token_endpoint: "http://idp.example.test/token" } });
    expect((await rejection(browserLogin(ctx, TARGET))).code).toBe("LK_CONFIG_INVALID");
  });
});

describe("deviceLogin", () => {
  const granted = () =>
    json({
      access_token: "at-1",
      refresh_token: "rt-1",
      token_type: "Bearer",
      expires_in: 3600,
      id_token: idToken({
        iss: ISSUER,
        aud: "lk-cli",
        sub: "alice",
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 600,
      }),
    });
  const pending = () => json({ error: "authorization_pending" }, 400);
  const slowDown = () => json({ error: "slow_down" }, 400);

  it("prints the code, polls at `interval`, adds 5 s on slow_down, and stores the session", async () => {
    const { ctx, sleeps, keystore, requests } = context({ token: [pending, slowDown, pending, granted] });
    const { session } = await deviceLogin(ctx, TARGET);
    expect(ctx.stderr.text()).toContain(`open ${ISSUER}/device on any device and enter the code:`);
    expect(ctx.stderr.text()).toContain("WXYZ-1234");
    expect(sleeps).toEqual([5000, 5000, 10_000, 10_000]);
    expect(session.subject).toBe("alice");
    expect(session.expires_at).toBe(Math.floor((NOW + 30_000) / 1000) + 3600);
    const stored = JSON.parse((await keystore.get(ssoAccount(ISSUER)))!) as SsoSession;
    expect(stored).toMatchObject({
      access_token: "at-1",
      refresh_token: "rt-1",
      subject: "alice",
      client_id: "lk-cli",
    });
    const polls = requests.filter((r) => r.url.endsWith("/token"));
    expect(polls).toHaveLength(4);
    for (const poll of polls) {
      expect(new URLSearchParams(poll.body).get("grant_type")).toBe(
        "urn:ietf:params:oauth:grant-type:device_code",
      );
    }
  });

  it("stops on access_denied with LK_OAUTH_DENIED", async () => {
    const { ctx } = context({ token: [pending, () => json({ error: "access_denied" }, 400)] });
    expect((await rejection(deviceLogin(ctx, TARGET))).code).toBe("LK_OAUTH_DENIED");
  });

  it("stops with LK_OAUTH_TIMEOUT once the device code has expired, without polling past it", async () => {
    const answers = Array.from({ length: 200 }, () => pending);
    const { ctx, requests } = context({ token: answers });
    expect((await rejection(deviceLogin(ctx, TARGET))).code).toBe("LK_OAUTH_TIMEOUT");
    // expires_in 600 at interval 5: 119 polls fit before the deadline.
    expect(requests.filter((r) => r.url.endsWith("/token"))).toHaveLength(119);
  });
});

describe("requireSsoSession", () => {
  const session = (over: Partial<SsoSession>): string =>
    JSON.stringify({
      access_token: "at",
      expires_at: NOW / 1000 + 3600,
      subject: "alice",
      issuer: ISSUER,
      client_id: "lk-cli",
      ...over,
    });

  it("returns a valid session without a request", async () => {
    const { ctx, requests } = context({}, { stored: { [ssoAccount(ISSUER)]: session({}) } });
    expect((await requireSsoSession(ctx, { issuer: ISSUER })).subject).toBe("alice");
    expect(requests).toEqual([]);
  });

  it("is LK_SESSION_EXPIRED with the login hint when expired and without a refresh token", async () => {
    const { ctx, requests } = context(
      {},
      { stored: { [ssoAccount(ISSUER)]: session({ expires_at: NOW / 1000 - 1 }) } },
    );
    const error = await rejection(requireSsoSession(ctx, { issuer: ISSUER }));
    expect(error.code).toBe("LK_SESSION_EXPIRED");
    expect(error.hint).toContain("latchkey login sso");
    expect(requests).toEqual([]);
  });

  it("is LK_SESSION_EXPIRED when the provider answers invalid_grant to the refresh", async () => {
    const stored = { [ssoAccount(ISSUER)]: session({ expires_at: NOW / 1000 - 1, refresh_token: "rt-old" }) };
    const { ctx } = context({ token: [() => json({ error: "invalid_grant" }, 400)] }, { stored });
    expect((await rejection(requireSsoSession(ctx, { issuer: ISSUER }))).code).toBe("LK_SESSION_EXPIRED");
  });

  it("refreshes an expired session that has a refresh token, keeping the subject", async () => {
    const stored = { [ssoAccount(ISSUER)]: session({ expires_at: NOW / 1000 - 1, refresh_token: "rt-old" }) };
    const answer = () =>
      json({ access_token: "at-new", refresh_token: "rt-new", token_type: "Bearer", expires_in: 600 });
    const { ctx, keystore, requests } = context({ token: [answer] }, { stored });
    const next = await requireSsoSession(ctx, { issuer: ISSUER });
    expect(next).toMatchObject({ access_token: "at-new", refresh_token: "rt-new", subject: "alice" });
    expect(JSON.parse((await keystore.get(ssoAccount(ISSUER)))!)).toMatchObject({ refresh_token: "rt-new" });
    const refresh = new URLSearchParams(requests.find((r) => r.url.endsWith("/token"))!.body);
    expect(refresh.get("grant_type")).toBe("refresh_token");
    expect(refresh.get("refresh_token")).toBe("rt-old");
  });

  it("is LK_SESSION_EXPIRED when there is no session at all", async () => {
    const { ctx } = context({});
    expect((await rejection(requireSsoSession(ctx, { issuer: ISSUER }))).code).toBe("LK_SESSION_EXPIRED");
  });
});

describe("refreshSsoSession", () => {
  it("does not hand a caller whose token was refused that token from a refresh it joined that found it valid", async () => {
    const valid: SsoSession = {
      access_token: "at",
      refresh_token: "rt-old",
      expires_at: NOW / 1000 + 3600,
      subject: "alice",
      issuer: ISSUER,
      client_id: "lk-cli",
    };
    const answer = () =>
      json({ access_token: "at-new", refresh_token: "rt-new", token_type: "Bearer", expires_in: 600 });
    const { ctx, requests } = context(
      { token: [answer] },
      { stored: { [ssoAccount(ISSUER)]: JSON.stringify(valid) } },
    );
    // The first finds the stored session valid and returns it unrefreshed; the second, started while the first
    // runs, was refused "at" and must get another token.
    const [kept, replaced] = await Promise.all([
      refreshSsoSession(ctx, valid),
      refreshSsoSession(ctx, valid, 0, { replacing: "at" }),
    ]);
    expect(kept.access_token).toBe("at");
    expect(replaced.access_token).toBe("at-new");
    expect(requests.filter((r) => r.url.endsWith("/token"))).toHaveLength(1);
  });
});

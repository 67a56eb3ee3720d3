import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import {
  beginSignIn,
  endSession,
  finishSignIn,
  forgetDiscovery,
  PENDING_KEY,
  safeReturnTo,
  type AuthEnv,
} from "./auth.js";

const ORIGIN = "https://latchkey.example.test";
const ISSUER = `${ORIGIN}/oidc`;
const DISCOVERY = {
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/auth`,
  token_endpoint: `${ISSUER}/token`,
  end_session_endpoint: `${ISSUER}/session/end`,
};

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const idToken = (claims: Record<string, unknown>) => `${b64url({ alg: "EdDSA" })}.${b64url(claims)}.sig`;

/** A browser of its own: memory storage, a recorded navigation, a provider that answers `token`. */
function fakeEnv(token: (body: URLSearchParams) => Response = () => new Response("{}", { status: 400 })) {
  const stored = new Map<string, string>();
  const assigned: string[] = [];
  const tokenRequests: URLSearchParams[] = [];
  let counter = 0;
  const env: AuthEnv = {
    origin: ORIGIN,
    storage: {
      getItem: (key) => stored.get(key) ?? null,
      setItem: (key, value) => void stored.set(key, value),
      removeItem: (key) => void stored.delete(key),
    },
    randomBytes: (n) => new Uint8Array(n).fill(++counter),
    now: () => 1_800_000_000_000,
    assign: (url) => void assigned.push(url),
    fetch: (input, init) => {
      const url = input instanceof Request ? input.url : input.toString();
      if (url === `${ISSUER}/.well-known/openid-configuration`)
        return Promise.resolve(Response.json(DISCOVERY));
      if (url === DISCOVERY.token_endpoint) {
        const body = new URLSearchParams(typeof init?.body === "string" ? init.body : "");
        tokenRequests.push(body);
        return Promise.resolve(token(body));
      }
      return Promise.resolve(new Response("no", { status: 404 }));
    },
  };
  return { env, stored, assigned, tokenRequests };
}

afterEach(() => forgetDiscovery());

/** Starts a sign-in on `fake` and answers as the provider would: the callback's query. */
async function started(fake: ReturnType<typeof fakeEnv>, silent = false) {
  await beginSignIn(fake.env, { silent, returnTo: "/dashboard/vaults/x" });
  const url = new URL(fake.assigned.at(-1)!);
  return { url, state: url.searchParams.get("state")!, nonce: url.searchParams.get("nonce")! };
}

describe("beginSignIn", () => {
  it("sends the browser to the provider with PKCE S256 of a verifier kept only in sessionStorage", async () => {
    const fake = fakeEnv();
    const { url } = await started(fake);
    expect(`${url.origin}${url.pathname}`).toBe(DISCOVERY.authorization_endpoint);
    const params = Object.fromEntries(url.searchParams);
    expect(params).toMatchObject({
      client_id: "latchkey-dashboard",
      response_type: "code",
      redirect_uri: `${ORIGIN}/dashboard/callback`,
      scope: "openid email",
      code_challenge_method: "S256",
    });
    expect(params.prompt).toBeUndefined();
    const pending = JSON.parse(fake.stored.get(PENDING_KEY)!) as { verifier: string; state: string };
    expect(params.code_challenge).toBe(createHash("sha256").update(pending.verifier).digest("base64url"));
    expect(params.state).toBe(pending.state);
    // The verifier itself never leaves the browser before the token request.
    expect(url.href).not.toContain(pending.verifier);
  });

  it("asks with prompt=none when silent", async () => {
    const fake = fakeEnv();
    const { url } = await started(fake, true);
    expect(url.searchParams.get("prompt")).toBe("none");
  });

  it("refuses a provider whose discovery names another server", async () => {
    const fake = fakeEnv();
    fake.env.fetch = () =>
      Promise.resolve(Response.json({ ...DISCOVERY, token_endpoint: "https://evil.example.test/token" }));
    await expect(beginSignIn(fake.env, { silent: false, returnTo: "/dashboard/" })).rejects.toThrow(
      /another server/,
    );
    expect(fake.assigned).toEqual([]);
  });
});

describe("finishSignIn", () => {
  const goodTokens = (nonce: string) => ({
    access_token: "access-token-0123456789abcdefghij",
    token_type: "Bearer",
    expires_in: 900,
    id_token: idToken({ iss: ISSUER, aud: "latchkey-dashboard", nonce, exp: 1_800_003_600 }),
  });

  it("trades the code with the verifier, checks the ID token, keeps the tokens out of storage", async () => {
    let nonce = "";
    const fake = fakeEnv(() => Response.json(goodTokens(nonce)));
    const begun = await started(fake);
    nonce = begun.nonce;
    const outcome = await finishSignIn(fake.env, `?code=the-code&state=${begun.state}`);
    expect(outcome).toEqual({
      kind: "signed-in",
      session: { accessToken: "access-token-0123456789abcdefghij", expiresAt: 1_800_000_900_000 },
      returnTo: "/dashboard/vaults/x",
    });
    const sent = Object.fromEntries(fake.tokenRequests[0]!);
    expect(sent).toMatchObject({
      grant_type: "authorization_code",
      code: "the-code",
      client_id: "latchkey-dashboard",
      redirect_uri: `${ORIGIN}/dashboard/callback`,
    });
    expect(createHash("sha256").update(sent.code_verifier!).digest("base64url")).toBe(
      begun.url.searchParams.get("code_challenge"),
    );
    expect(fake.stored.size).toBe(0);
  });

  it("refuses a callback of another state, and one that comes twice", async () => {
    const fake = fakeEnv();
    const begun = await started(fake);
    expect((await finishSignIn(fake.env, `?code=c&state=other`)).kind).toBe("failed");
    // The pending sign-in was deleted by the first callback: the right state no longer works either.
    expect((await finishSignIn(fake.env, `?code=c&state=${begun.state}`)).kind).toBe("failed");
    expect(fake.tokenRequests).toEqual([]);
  });

  it("shows the sign-in button when a silent sign-in finds nobody signed in", async () => {
    const fake = fakeEnv();
    const begun = await started(fake, true);
    expect(await finishSignIn(fake.env, `?error=login_required&state=${begun.state}`)).toEqual({
      kind: "signed-out",
      returnTo: "/dashboard/vaults/x",
    });
  });

  it("refuses an ID token of another nonce, audience or issuer", async () => {
    for (const change of [
      { nonce: "other" },
      { aud: "latchkey-cli" },
      { iss: "https://evil.example.test/oidc" },
    ]) {
      let nonce = "";
      const fake = fakeEnv(() => {
        const tokens = goodTokens(nonce);
        const claims = { iss: ISSUER, aud: "latchkey-dashboard", nonce, exp: 1_800_003_600, ...change };
        return Response.json({ ...tokens, id_token: idToken(claims) });
      });
      const begun = await started(fake);
      nonce = begun.nonce;
      const outcome = await finishSignIn(fake.env, `?code=c&state=${begun.state}`);
      expect(outcome.kind, JSON.stringify(change)).toBe("failed");
    }
  });
});

describe("endSession", () => {
  it("goes to end_session naming the client and the dashboard, with no token in the URL", async () => {
    const fake = fakeEnv();
    await endSession(fake.env);
    const url = new URL(fake.assigned[0]!);
    expect(`${url.origin}${url.pathname}`).toBe(DISCOVERY.end_session_endpoint);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: "latchkey-dashboard",
      post_logout_redirect_uri: `${ORIGIN}/dashboard/`,
    });
  });
});

describe("safeReturnTo", () => {
  it("keeps dashboard paths and sends anything else home", () => {
    expect(safeReturnTo("/dashboard/vaults/x?tab=prod")).toBe("/dashboard/vaults/x?tab=prod");
    for (const bad of [
      "https://evil.example.test/",
      "//evil.example.test/dashboard/",
      "/oidc/auth",
      "/dashboard/callback?code=x",
    ])
      expect(safeReturnTo(bad), bad).toBe("/dashboard/");
  });
});

// Environment tokens in-process against a real oidc-provider on loopback: getAccessToken and authFetch with a
// context whose clock the test moves (so expiry needs no waiting), a memory keystore, and temp LATCHKEY_HOME and
// project directories. The CLI-as-a-process tests (32-process single-flight, traces, canaries) are in auth-cli.test.ts.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../packages/cli/src/context.js";
import type { KeystoreResolution } from "../packages/cli/src/keystore/resolve.js";
import { createMemoryKeystore } from "../packages/cli/src/keystore/memory.js";
import type { Keystore } from "../packages/cli/src/keystore/types.js";
import { resolvePaths } from "../packages/cli/src/paths.js";
import { authFetch } from "../packages/cli/src/oauth/fetch.js";
import { getAccessToken, parseCachedToken } from "../packages/cli/src/oauth/tokens.js";
import { createTestContext } from "../packages/cli/test/support/context.js";
import { tempDir } from "./support/cli.js";
import { startOidcProvider, TEST_USER, type OidcProvider } from "./support/oidc-provider.js";
import { startResourceServer, type ResourceServer } from "./support/resource-server.js";

let provider: OidcProvider;
let api: ResourceServer;

beforeAll(async () => {
  provider = await startOidcProvider();
  api = await startResourceServer({
    introspectionEndpoint: `${provider.issuer}/token/introspection`,
    client: provider.clients.confidential,
    requiredScopes: { "/admin": "api:write" },
  });
});
afterAll(async () => {
  await api?.stop();
  await provider?.stop();
});

interface Setup {
  ctx: Context & { stderr: { text(): string } };
  keystore: Keystore;
  clock: { now: number };
  root: string;
  project: string;
  cleanup(): Promise<void>;
}

let setup: Setup;

async function makeSetup(config: string, env: Record<string, string> = {}): Promise<Setup> {
  const tmp = await tempDir("lk-auth-");
  const home = join(tmp.path, "latchkey-home");
  const project = join(tmp.path, "project");
  await mkdir(home, { recursive: true });
  await mkdir(join(project, ".git"), { recursive: true });
  await writeFile(join(home, "config.toml"), config);
  const keystore = createMemoryKeystore();
  const clock = { now: Date.now() };
  const fullEnv = { LATCHKEY_HOME: home, HOME: tmp.path, ...env };
  const ctx = createTestContext({
    env: fullEnv,
    cwd: project,
    paths: resolvePaths(fullEnv),
    clock: { now: () => clock.now, sleep: () => Promise.resolve() },
    fetch: (...args) => globalThis.fetch(...args),
    keystore: () => Promise.resolve({ keystore, backend: "memory" } as unknown as KeystoreResolution),
  });
  return { ctx, keystore, clock, root: tmp.path, project, cleanup: tmp.cleanup };
}

function serviceEnv(extra = ""): string {
  return `
[environments.svc]
issuer = "${provider.issuer}"
client_id = "${provider.clients.confidential.id}"
client_secret_env = "SVC_SECRET"
grant = "client_credentials"
scopes = ["api:read"]
${extra}
`;
}

function passwordEnv(): string {
  return `
[environments.legacy]
issuer = "${provider.issuer}"
client_id = "${provider.clients.password.id}"
client_secret_env = "LEGACY_SECRET"
grant = "password"
username = "${TEST_USER.login}"
password_env = "LEGACY_PASSWORD"
scopes = "openid"
`;
}

async function expectLk(promise: Promise<unknown>, code: string): Promise<LatchkeyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LatchkeyError);
  expect((error as LatchkeyError).code).toBe(code);
  return error as LatchkeyError;
}

beforeEach(() => {
  provider.resetTokenRequests();
  provider.setAccessTokenTtl(3600);
});
afterEach(async () => {
  await setup?.cleanup();
});

describe("profiles", () => {
  it("keeps two profiles' tokens apart, with a per-profile environment over the global one", async () => {
    const config = `
[profiles.a]
[profiles.b]
[profiles.b.environments.svc]
issuer = "${provider.issuer}"
client_id = "${provider.clients.confidential.id}"
client_secret_env = "SVC_SECRET"
scopes = ["api:write"]
${serviceEnv()}`;
    setup = await makeSetup(config, { SVC_SECRET: provider.clients.confidential.secret });
    const a = await getAccessToken(setup.ctx, { profile: "a", env: "svc" });
    const b = await getAccessToken(setup.ctx, { profile: "b", env: "svc" });
    expect(a.token.scope).toBe("api:read");
    expect(b.token.scope).toBe("api:write");
    expect((await setup.keystore.list()).sort()).toEqual(["oauth:a:svc", "oauth:b:svc"]);
    expect(provider.tokenRequests()).toEqual({ client_credentials: 2 });
  });
});

describe("environment secrets", () => {
  it("reads the client secret from its variable", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    const result = await getAccessToken(setup.ctx, { profile: "default", env: "svc" });
    expect(result.source).toBe("acquired");
    expect(provider.tokenRequestLog()).toMatchObject([
      { grantType: "client_credentials", status: 200, clientId: "lk-service" },
    ]);
  });

  it("reads the client secret from .env.NAME in the project when the variable is unset", async () => {
    setup = await makeSetup(serviceEnv());
    await writeFile(
      join(setup.project, ".env.svc"),
      `# service secret\nSVC_SECRET="${provider.clients.confidential.secret}"\n`,
    );
    const result = await getAccessToken(setup.ctx, { profile: "default", env: "svc" });
    expect(result.token.access_token).not.toBe("");
    expect(provider.tokenRequests()).toEqual({ client_credentials: 1 });
  });

  it("fails naming the variable when neither has the secret, without any request", async () => {
    setup = await makeSetup(serviceEnv());
    const error = await expectLk(
      getAccessToken(setup.ctx, { profile: "default", env: "svc" }),
      "LK_OAUTH_SECRET_MISSING",
    );
    expect(error.message).toContain("SVC_SECRET");
    expect(error.message).toContain(".env.svc");
    expect(provider.tokenRequests()).toEqual({});
  });

  it("a wrong secret is LK_OAUTH_FAILED naming the environment", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: "not-the-secret" });
    const error = await expectLk(
      getAccessToken(setup.ctx, { profile: "default", env: "svc" }),
      "LK_OAUTH_FAILED",
    );
    expect(error.message).toContain('"svc"');
    expect(error.message).toContain("invalid_client");
    expect(error.message).not.toContain("not-the-secret");
  });
});

describe("grants", () => {
  it("client_credentials with a bare token_endpoint (no discovery)", async () => {
    const config = serviceEnv().replace(
      `issuer = "${provider.issuer}"`,
      `token_endpoint = "${provider.tokenEndpoint}"`,
    );
    setup = await makeSetup(config, { SVC_SECRET: provider.clients.confidential.secret });
    const result = await getAccessToken(setup.ctx, { profile: "default", env: "svc" });
    expect(result.token.token_type).toBe("Bearer");
    expect(provider.tokenRequests()).toEqual({ client_credentials: 1 });
  });

  it("sends resource (RFC 8707) and audience; the token's aud is the resource", async () => {
    setup = await makeSetup(
      serviceEnv('resource = "https://api.example.test/"\naudience = "https://api.example.test"'),
      {
        SVC_SECRET: provider.clients.confidential.secret,
      },
    );
    const { token } = await getAccessToken(setup.ctx, { profile: "default", env: "svc" });
    const [request] = provider.tokenRequestLog();
    expect(request).toMatchObject({
      resource: ["https://api.example.test/"],
      audience: "https://api.example.test",
      scope: "api:read",
    });
    const payload = JSON.parse(Buffer.from(token.access_token.split(".")[1]!, "base64url").toString()) as {
      aud: string;
    };
    expect(payload.aud).toBe("https://api.example.test/");
  });

  it("password grant: warns with RFC 9700, password only from the environment, refresh token kept", async () => {
    setup = await makeSetup(passwordEnv(), {
      LEGACY_SECRET: provider.clients.password.secret,
      LEGACY_PASSWORD: TEST_USER.password,
    });
    const result = await getAccessToken(setup.ctx, { profile: "default", env: "legacy" });
    expect(setup.ctx.stderr.text()).toMatch(/warning: .*password grant.*RFC 9700/s);
    expect(result.token.refresh_token).toBeTypeOf("string");
    expect(provider.tokenRequests()).toEqual({ password: 1 });
  });

  it("password grant without its variable fails naming it", async () => {
    setup = await makeSetup(passwordEnv(), { LEGACY_SECRET: provider.clients.password.secret });
    const error = await expectLk(
      getAccessToken(setup.ctx, { profile: "default", env: "legacy" }),
      "LK_OAUTH_SECRET_MISSING",
    );
    expect(error.message).toContain("LEGACY_PASSWORD");
    expect(provider.tokenRequests()).toEqual({});
  });
});

describe("cache, expiry and refresh", () => {
  it("reuses the cached token: no second request", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    const first = await getAccessToken(setup.ctx, { profile: "default", env: "svc" });
    const second = await getAccessToken(setup.ctx, { profile: "default", env: "svc" });
    expect(second.source).toBe("cache");
    expect(second.token.access_token).toBe(first.token.access_token);
    expect(provider.tokenRequests()).toEqual({ client_credentials: 1 });
  });

  it("re-acquires from 60 s before expiry (clock moved, no waiting)", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    const first = await getAccessToken(setup.ctx, { profile: "default", env: "svc" });
    setup.clock.now += (3600 - 61) * 1000;
    expect((await getAccessToken(setup.ctx, { profile: "default", env: "svc" })).source).toBe("cache");
    setup.clock.now += 2000;
    const renewed = await getAccessToken(setup.ctx, { profile: "default", env: "svc" });
    expect(renewed.source).toBe("acquired");
    expect(renewed.token.access_token).not.toBe(first.token.access_token);
    expect(provider.tokenRequests()).toEqual({ client_credentials: 2 });
  });

  it("refreshes with the refresh token and stores the rotated one", async () => {
    setup = await makeSetup(passwordEnv(), {
      LEGACY_SECRET: provider.clients.password.secret,
      LEGACY_PASSWORD: TEST_USER.password,
    });
    const first = await getAccessToken(setup.ctx, { profile: "default", env: "legacy" });
    setup.clock.now += 3600 * 1000;
    const second = await getAccessToken(setup.ctx, { profile: "default", env: "legacy" });
    expect(second.source).toBe("refreshed");
    expect(second.token.refresh_token).not.toBe(first.token.refresh_token);
    setup.clock.now += 3600 * 1000;
    const third = await getAccessToken(setup.ctx, { profile: "default", env: "legacy" });
    expect(third.source).toBe("refreshed");
    expect(provider.tokenRequests()).toEqual({ password: 1, refresh_token: 2 });
    expect(provider.tokenRequestLog().filter((r) => r.error !== undefined)).toEqual([]);
    expect(parseCachedToken(await setup.keystore.get("oauth:default:legacy"))?.refresh_token).toBe(
      third.token.refresh_token,
    );
  });

  it("invalid_grant on refresh (revoked refresh token) re-acquires with the unattended grant", async () => {
    setup = await makeSetup(passwordEnv(), {
      LEGACY_SECRET: provider.clients.password.secret,
      LEGACY_PASSWORD: TEST_USER.password,
    });
    const first = await getAccessToken(setup.ctx, { profile: "default", env: "legacy" });
    const revoke = await fetch(`${provider.issuer}/token/revocation`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${provider.clients.password.id}:${provider.clients.password.secret}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        token: first.token.refresh_token!,
        token_type_hint: "refresh_token",
      }).toString(),
    });
    expect(revoke.status).toBe(200);
    setup.clock.now += 3600 * 1000;
    const again = await getAccessToken(setup.ctx, { profile: "default", env: "legacy" });
    expect(again.source).toBe("acquired");
    expect(provider.tokenRequestLog().map((r) => [r.grantType, r.error ?? "ok"])).toEqual([
      ["password", "ok"],
      ["refresh_token", "invalid_grant"],
      ["password", "ok"],
    ]);
  });

  it("invalid_grant on refresh for an interactive grant clears the cache and fails clearly", async () => {
    setup = await makeSetup(`
[environments.human]
issuer = "${provider.issuer}"
client_id = "${provider.clients.native.id}"
grant = "authorization_code"
`);
    const expired = {
      access_token: "old",
      refresh_token: "not-a-live-refresh-token",
      expires_at: 1,
      token_type: "Bearer",
    };
    await setup.keystore.set("oauth:default:human", JSON.stringify(expired));
    const error = await expectLk(
      getAccessToken(setup.ctx, { profile: "default", env: "human" }),
      "LK_SESSION_EXPIRED",
    );
    expect(error.message).toContain('"human"');
    expect(await setup.keystore.get("oauth:default:human")).toBeNull();
    expect(provider.tokenRequestLog().map((r) => [r.grantType, r.error])).toEqual([
      ["refresh_token", "invalid_grant"],
    ]);
  });
});

describe("authFetch retry matrix", () => {
  const target = { profile: "default", env: "svc" };

  it("invalid_token (token revoked at the provider) → exactly 1 re-acquire and 1 retry", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    const { token } = await getAccessToken(setup.ctx, target);
    const basic = `Basic ${Buffer.from(`${provider.clients.confidential.id}:${provider.clients.confidential.secret}`).toString("base64")}`;
    const revoke = await fetch(`${provider.issuer}/token/revocation`, {
      method: "POST",
      headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: token.access_token }).toString(),
    });
    expect(revoke.status).toBe(200);
    provider.resetTokenRequests();
    const before = api.requests().length;
    const response = await authFetch(setup.ctx, target, `${api.url}/items`, { method: "POST", body: "a=1" });
    expect(response.status).toBe(200);
    const seen = api.requests().slice(before);
    expect(seen.map((r) => r.status)).toEqual([401, 200]);
    expect(seen[0]!.token).toBe(token.access_token);
    expect(seen[1]!.token).not.toBe(token.access_token);
    expect(seen[1]!.body).toBe("a=1");
    expect(provider.tokenRequests()).toEqual({ client_credentials: 1 });
  });

  it("insufficient_scope → no retry, no new token, LK_OAUTH_INSUFFICIENT_SCOPE naming the environment", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    await getAccessToken(setup.ctx, target);
    provider.resetTokenRequests();
    const before = api.requests().length;
    const error = await expectLk(
      authFetch(setup.ctx, target, `${api.url}/admin/users`),
      "LK_OAUTH_INSUFFICIENT_SCOPE",
    );
    expect(error.message).toContain('"svc"');
    expect(error.message).toContain("api:write");
    expect(api.requests().length - before).toBe(1);
    expect(provider.tokenRequests()).toEqual({});
  });

  it("401 twice → 2 requests in all and LK_OAUTH_TOKEN_REJECTED", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    const before = api.requests().length;
    api.force({ status: 401, wwwAuthenticate: 'Bearer error="invalid_token"' });
    try {
      const error = await expectLk(
        authFetch(setup.ctx, target, `${api.url}/items`),
        "LK_OAUTH_TOKEN_REJECTED",
      );
      expect(error.message).toContain('"svc"');
    } finally {
      api.force(null);
    }
    expect(api.requests().length - before).toBe(2);
    expect(provider.tokenRequests()).toEqual({ client_credentials: 2 });
  });

  it("401 without an error code is retried once like invalid_token", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    const before = api.requests().length;
    api.force({ status: 401, wwwAuthenticate: 'Bearer realm="test"' });
    try {
      await expectLk(authFetch(setup.ctx, target, `${api.url}/items`), "LK_OAUTH_TOKEN_REJECTED");
    } finally {
      api.force(null);
    }
    expect(api.requests().length - before).toBe(2);
  });

  it("a step-up challenge → no retry", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    const before = api.requests().length;
    api.force({
      status: 401,
      wwwAuthenticate: 'Bearer error="insufficient_user_authentication", acr_values="mfa"',
    });
    try {
      const error = await expectLk(
        authFetch(setup.ctx, target, `${api.url}/items`),
        "LK_OAUTH_INSUFFICIENT_SCOPE",
      );
      expect(error.message).toContain("acr_values mfa");
    } finally {
      api.force(null);
    }
    expect(api.requests().length - before).toBe(1);
    expect(provider.tokenRequests()).toEqual({ client_credentials: 1 });
  });

  it("a failed re-acquire → LK_OAUTH_FAILED naming the environment, no second request", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    await getAccessToken(setup.ctx, target);
    // The secret is rotated away under the cached token: the re-acquisition must fail.
    const broken = { ...setup.ctx, env: { ...setup.ctx.env, SVC_SECRET: "rotated-away" } } as Context;
    const before = api.requests().length;
    api.force({ status: 401, wwwAuthenticate: 'Bearer error="invalid_token"' });
    try {
      const error = await expectLk(authFetch(broken, target, `${api.url}/items`), "LK_OAUTH_FAILED");
      expect(error.message).toContain('"svc"');
    } finally {
      api.force(null);
    }
    expect(api.requests().length - before).toBe(1);
  });

  it("refuses plain http to a non-loopback host before sending anything", async () => {
    setup = await makeSetup(serviceEnv(), { SVC_SECRET: provider.clients.confidential.secret });
    await expectLk(authFetch(setup.ctx, target, "http://api.example.test/items"), "LK_CONFIG_INVALID");
    expect(provider.tokenRequests()).toEqual({});
  });
});

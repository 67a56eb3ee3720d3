// `latchkey auth token` and `latchkey auth fetch` as users run them: the built CLI as separate processes, the
// encrypted file keystore, a real oidc-provider on loopback counting its token requests, and a loopback resource
// server that validates tokens by introspection.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { collect } from "./support/cli.js";
import { startOidcProvider, TEST_USER, type OidcProvider } from "./support/oidc-provider.js";
import { allFiles, expectFailure, expectSuccess, tempProject, type TempProject } from "./support/project.js";
import { startResourceServer, type ResourceServer } from "./support/resource-server.js";

let provider: OidcProvider;
let api: ResourceServer;
let project: TempProject;

beforeAll(async () => {
  provider = await startOidcProvider();
  api = await startResourceServer({
    introspectionEndpoint: `${provider.issuer}/token/introspection`,
    client: provider.clients.confidential,
  });
});
afterAll(async () => {
  await api?.stop();
  await provider?.stop();
});
beforeEach(async () => {
  provider.resetTokenRequests();
  provider.setAccessTokenTtl(3600);
  project = await tempProject();
  await mkdir(project.latchkeyHome, { recursive: true });
  await writeFile(
    join(project.latchkeyHome, "config.toml"),
    `
[profiles.default]
default_environment = "svc"

[environments.svc]
issuer = "${provider.issuer}"
client_id = "${provider.clients.confidential.id}"
client_secret_env = "SVC_SECRET"
scopes = ["api:read"]

[environments.legacy]
issuer = "${provider.issuer}"
client_id = "${provider.clients.password.id}"
client_secret_env = "LEGACY_SECRET"
grant = "password"
username = "${TEST_USER.login}"
password_env = "LEGACY_PASSWORD"
`,
  );
});
afterEach(async () => {
  await project?.cleanup();
});

const secrets = (): Record<string, string> => ({
  SVC_SECRET: provider.clients.confidential.secret,
  LEGACY_SECRET: provider.clients.password.secret,
  LEGACY_PASSWORD: TEST_USER.password,
});

/** Every file under the project's temporary root that contains one of `canaries`, except the keystore's encrypted store. */
async function filesContaining(canaries: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  for (const file of await allFiles(project.root)) {
    if (file === join(project.latchkeyHome, "store.enc")) continue;
    const text = (await readFile(file)).toString("latin1");
    if (canaries.some((c) => text.includes(c))) hits.push(file);
  }
  return hits;
}

describe("latchkey auth token", () => {
  it("prints the token alone on stdout, then serves it from the keystore cache", async () => {
    const first = await project.cli(["auth", "token", "--env", "svc"], { env: secrets() });
    expectSuccess(first);
    expect(first.stdout).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const second = await project.cli(["auth", "token", "--json"], { env: secrets() });
    expectSuccess(second);
    const json = JSON.parse(second.stdout) as Record<string, string>;
    expect(json).toMatchObject({
      profile: "default",
      environment: "svc",
      token_type: "Bearer",
      source: "cache",
    });
    expect(json.access_token).toBe(first.stdout.trim());
    expect(provider.tokenRequests()).toEqual({ client_credentials: 1 });
    const listed = await project.cli(["keystore", "list"]);
    expect(listed.stdout).toContain("oauth:default:svc");
  });

  it("two profiles at once: --profile > LATCHKEY_PROFILE > latchkey.json, each with its own cache", async () => {
    const config = await readFile(join(project.latchkeyHome, "config.toml"), "utf8");
    await writeFile(
      join(project.latchkeyHome, "config.toml"),
      `${config}
[profiles.ci]
[profiles.ci.environments.svc]
issuer = "${provider.issuer}"
client_id = "${provider.clients.confidential.id}"
client_secret_env = "SVC_SECRET"
scopes = ["api:write"]
[profiles.other]
`,
    );
    await writeFile(join(project.dir, "latchkey.json"), '{ "profile": "ci" }\n');
    const scopeOf = async (args: string[], env: Record<string, string> = {}): Promise<string> => {
      const result = await project.cli(["auth", "token", "--env", "svc", "--json", ...args], {
        env: { ...secrets(), ...env },
      });
      expectSuccess(result);
      const json = JSON.parse(result.stdout) as { profile: string; scope: string };
      return `${json.profile}:${json.scope}`;
    };
    expect(await scopeOf([])).toBe("ci:api:write");
    expect(await scopeOf([], { LATCHKEY_PROFILE: "other" })).toBe("other:api:read");
    expect(await scopeOf(["--profile", "default"], { LATCHKEY_PROFILE: "other" })).toBe("default:api:read");
    const listed = await project.cli(["keystore", "list"]);
    expect(
      listed.stdout
        .split("\n")
        .filter((l) => l.startsWith("oauth:"))
        .sort(),
    ).toEqual(["oauth:ci:svc", "oauth:default:svc", "oauth:other:svc"]);
    expectFailure(
      await project.cli(["auth", "token", "--env", "svc", "--profile", "typo"], { env: secrets() }),
      "LK_CONFIG_INVALID",
    );
  });

  it("a short-lived token is not reused inside its last 60 s; a long-lived one is", async () => {
    provider.setAccessTokenTtl(45);
    const a = await project.cli(["auth", "token", "--env", "svc"], { env: secrets() });
    const b = await project.cli(["auth", "token", "--env", "svc"], { env: secrets() });
    expect(a.stdout).not.toBe(b.stdout);
    expect(provider.tokenRequests()).toEqual({ client_credentials: 2 });
    provider.setAccessTokenTtl(3600);
    const c = await project.cli(["auth", "token", "--env", "svc"], { env: secrets() });
    const d = await project.cli(["auth", "token", "--env", "svc"], { env: secrets() });
    expect(d.stdout).toBe(c.stdout);
    expect(provider.tokenRequests()).toEqual({ client_credentials: 3 });
  });

  it("an unreachable issuer is LK_OAUTH_FAILED naming the environment", async () => {
    await writeFile(
      join(project.latchkeyHome, "config.toml"),
      '[environments.down]\nissuer = "http://127.0.0.1:9"\nclient_id = "x"\nclient_secret_env = "SVC_SECRET"\n',
    );
    const result = await project.cli(["auth", "token", "--env", "down"], { env: secrets() });
    expectFailure(result, "LK_OAUTH_FAILED");
    expect(result.stderr).toContain('environment "down"');
  });

  it("a missing secret variable fails naming it, with no request", async () => {
    const result = await project.cli(["auth", "token", "--env", "svc"]);
    expectFailure(result, "LK_OAUTH_SECRET_MISSING");
    expect(result.stderr).toContain("SVC_SECRET");
    expect(provider.tokenRequests()).toEqual({});
  });

  it("reads the secret from .env.NAME in the project", async () => {
    await writeFile(join(project.dir, ".env.svc"), `SVC_SECRET=${provider.clients.confidential.secret}\n`);
    const result = await project.cli(["auth", "token", "--env", "svc"]);
    expectSuccess(result);
    expect(provider.tokenRequests()).toEqual({ client_credentials: 1 });
  });

  it("the password grant warns on stderr citing RFC 9700", async () => {
    const result = await project.cli(["auth", "token", "--env", "legacy"], { env: secrets() });
    expectSuccess(result);
    expect(result.stderr).toContain("RFC 9700");
    expect(provider.tokenRequests()).toEqual({ password: 1 });
  });

  it("an issuer on plain http off loopback is refused naming file and key", async () => {
    await writeFile(
      join(project.latchkeyHome, "config.toml"),
      '[environments.remote]\nissuer = "http://login.example.com"\nclient_id = "x"\nclient_secret_env = "SVC_SECRET"\n',
    );
    const result = await project.cli(["auth", "token", "--env", "remote"], { env: secrets() });
    expectFailure(result, "LK_CONFIG_INVALID");
    expect(result.stderr).toContain("config.toml at environments.remote.issuer");
    expect(result.stderr).toContain("https");
  });

  for (const [env, grant] of [
    ["svc", "client_credentials"],
    ["legacy", "refresh_token"],
  ] as const) {
    it(`32 concurrent processes on an expired ${env} cache make exactly 1 token request (${grant}), 0 invalid_grant`, async () => {
      // A token issued with a 30 s lifetime is already inside the 60 s expiry margin: the cache holds an expired token.
      provider.setAccessTokenTtl(30);
      expectSuccess(await project.cli(["auth", "token", "--env", env], { env: secrets() }));
      provider.setAccessTokenTtl(3600);
      provider.resetTokenRequests();

      // The first request is held at the provider so the other 31 processes reach the lock while it is taken. The
      // hold only makes the overlap near-certain; the assertions hold for any interleaving.
      const hold = provider.holdTokenRequests();
      const running = Promise.all(
        Array.from({ length: 32 }, () =>
          collect(project.start(["auth", "token", "--env", env], { env: secrets() })),
        ),
      );
      await hold.arrived;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      hold.release();
      const results = await running;
      for (const result of results) expectSuccess(result);
      expect(new Set(results.map((r) => r.stdout)).size).toBe(1);
      expect(provider.tokenRequests()).toEqual({ [grant]: 1 });
      expect(provider.tokenRequestLog().filter((r) => r.error !== undefined)).toEqual([]);
    });
  }
});

describe("latchkey auth fetch", () => {
  it("sends the token: body on stdout, status on stderr", async () => {
    const result = await project.cli(
      ["auth", "fetch", "--env", "svc", "-X", "PUT", "-H", "X-Trace: 1", "-d", "k=v", `${api.url}/things`],
      {
        env: secrets(),
      },
    );
    expectSuccess(result);
    expect(JSON.parse(result.stdout)).toEqual({ ok: true, method: "PUT", path: "/things", body: "k=v" });
    expect(result.stderr).toContain("HTTP 200");
    const fromStdin = await project.cli(["auth", "fetch", "-d", "@-", `${api.url}/posted`], {
      env: secrets(),
      input: '{"from":"stdin"}',
    });
    expectSuccess(fromStdin);
    expect(JSON.parse(fromStdin.stdout)).toMatchObject({ method: "POST", body: '{"from":"stdin"}' });
  });

  it("exits non-zero on HTTP >= 400, still printing the body", async () => {
    api.force({ status: 404 });
    try {
      const result = await project.cli(["auth", "fetch", `${api.url}/missing`], { env: secrets() });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("HTTP 404");
      expect(result.stdout).toContain("forced");
    } finally {
      api.force(null);
    }
  });

  it("refuses an Authorization header in argv", async () => {
    const result = await project.cli(["auth", "fetch", "-H", "Authorization: Bearer x", `${api.url}/x`], {
      env: secrets(),
    });
    expectFailure(result, "LK_TOKEN_IN_ARGV");
    expect(provider.tokenRequests()).toEqual({});
  });
});

describe("secrets stay out of traces and files", () => {
  it("-vv traces every request with tokens and secrets redacted, and no file but the encrypted store holds one", async () => {
    const canaries = [provider.clients.confidential.secret, provider.clients.password.secret];
    const outputs: string[] = [];
    const token = await project.cli(["-vv", "auth", "token", "--env", "svc"], { env: secrets() });
    expectSuccess(token);
    expect(token.stderr).toContain("> POST http://127.0.0.1");
    expect(token.stderr).toMatch(/authorization: Basic \[REDACTED\]/i);
    expect(token.stderr).toContain('"access_token":"[REDACTED]"');
    canaries.push(token.stdout.trim());
    outputs.push(token.stderr);

    // Expired cache: the password environment's refresh goes through the trace too, with both refresh tokens.
    const refreshToken = async (): Promise<string> => {
      const cache = await project.cli(["keystore", "get", "oauth:default:legacy"]);
      return (JSON.parse(cache.stdout) as { refresh_token: string }).refresh_token;
    };
    provider.setAccessTokenTtl(30);
    const legacy = await project.cli(["-vv", "auth", "token", "--env", "legacy"], { env: secrets() });
    expectSuccess(legacy);
    canaries.push(await refreshToken());
    provider.setAccessTokenTtl(3600);
    const refreshed = await project.cli(["-vv", "auth", "token", "--env", "legacy"], { env: secrets() });
    expectSuccess(refreshed);
    expect(refreshed.stderr).toContain("refresh_token=[REDACTED]");
    canaries.push(await refreshToken(), legacy.stdout.trim(), refreshed.stdout.trim());
    expect(new Set(canaries).size).toBe(canaries.length);
    outputs.push(legacy.stderr, refreshed.stderr);

    const fetched = await project.cli(["-vv", "auth", "fetch", "--env", "svc", `${api.url}/items`], {
      env: secrets(),
    });
    expectSuccess(fetched);
    expect(fetched.stderr).toMatch(/authorization: Bearer \[REDACTED\]/i);
    outputs.push(fetched.stderr, fetched.stdout);

    expect(canaries.every((c) => c.length >= 20)).toBe(true);

    for (const text of outputs)
      for (const canary of canaries) expect(text.includes(canary), "a secret in the trace").toBe(false);
    expect(await filesContaining(canaries)).toEqual([]);
  });
});

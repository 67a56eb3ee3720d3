// `auth status` and `logout sso` in-process with a fake context: a memory keystore holding an SSO session and
// environment caches in the shapes oauth/tokens.ts writes, a real config.toml in a temp LATCHKEY_HOME, and a
// scripted provider (fetch) whose revocation endpoint can be absent or failing.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { runCli } from "../cli.js";

const ISSUER = "https://idp.example.test";
const NOW = Date.UTC(2030, 0, 1);
const NOW_S = NOW / 1000;

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "lk-sso-cmd-"));
  await writeFile(
    join(home, "config.toml"),
    `[profiles.default]\nsso_issuer = "${ISSUER}"\nsso_client_id = "lk-cli"\n\n` +
      `[environments.alpha]\nissuer = "${ISSUER}"\nclient_id = "svc"\nclient_secret_env = "ALPHA_SECRET"\n\n` +
      `[environments.beta]\nissuer = "${ISSUER}"\nclient_id = "svc"\nclient_secret_env = "BETA_SECRET"\n\n` +
      `[profiles.default.environments.gamma]\nissuer = "${ISSUER}"\nclient_id = "svc"\nclient_secret_env = "G"\n`,
  );
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function context(stored: Record<string, string>, revocation: "offered" | "absent" | "failing" = "offered") {
  const env = { LATCHKEY_HOME: home };
  const keystore = createMemoryKeystore(stored);
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  const requests: { url: string; body: string }[] = [];
  const answer = (url: string): Response => {
    if (url === `${ISSUER}/.well-known/openid-configuration`) {
      return json({
        issuer: ISSUER,
        authorization_endpoint: `${ISSUER}/auth`,
        token_endpoint: `${ISSUER}/token`,
        ...(revocation === "absent" ? {} : { revocation_endpoint: `${ISSUER}/revoke` }),
      });
    }
    if (url === `${ISSUER}/revoke`) {
      return revocation === "failing"
        ? json({ error: "server_error" }, 500)
        : new Response(null, { status: 200 });
    }
    throw new Error(`Unexpected fetch ${url}`);
  };
  const ctx = createTestContext({
    env,
    paths: resolvePaths(env),
    clock: { now: () => NOW, sleep: () => Promise.reject(new Error("Unexpected call to clock.sleep")) },
    fetch: (input, init) =>
      new Promise<Response>((resolve) => {
        const url = input instanceof Request ? input.url : input instanceof URL ? input.href : input;
        requests.push({ url, body: init?.body instanceof URLSearchParams ? init.body.toString() : "" });
        resolve(answer(url));
      }),
    keystore: () => Promise.resolve(resolution),
  });
  return { ctx, keystore, requests };
}

const SESSION = JSON.stringify({
  access_token: "sso-at",
  refresh_token: "sso-rt",
  expires_at: NOW_S + 1800,
  subject: "alice",
  issuer: ISSUER,
  client_id: "lk-cli",
});

describe("latchkey auth status", () => {
  it("--json reports the session and each environment's cache: valid, expired, none", async () => {
    const { ctx, requests } = context({
      [`sso:${ISSUER}`]: SESSION,
      "oauth:default:alpha": JSON.stringify({
        access_token: "a",
        expires_at: NOW_S + 600,
        token_type: "Bearer",
      }),
      "oauth:default:beta": JSON.stringify({
        access_token: "b",
        refresh_token: "r",
        expires_at: NOW_S - 5,
        token_type: "Bearer",
      }),
      "oauth:other:gamma": JSON.stringify({
        access_token: "c",
        expires_at: NOW_S + 600,
        token_type: "Bearer",
      }),
    });
    expect(await runCli(["auth", "status", "--json"], ctx)).toBe(0);
    expect(JSON.parse(ctx.stdout.text())).toEqual({
      profile: "default",
      profileSource: "default",
      backend: "memory",
      sessions: [
        {
          issuer: ISSUER,
          subject: "alice",
          clientId: "lk-cli",
          state: "valid",
          expiresAt: new Date((NOW_S + 1800) * 1000).toISOString(),
          refreshable: true,
        },
      ],
      environments: [
        {
          name: "alpha",
          state: "valid",
          expiresAt: new Date((NOW_S + 600) * 1000).toISOString(),
          refreshable: false,
        },
        {
          name: "beta",
          state: "expired",
          expiresAt: new Date((NOW_S - 5) * 1000).toISOString(),
          refreshable: true,
        },
        { name: "gamma", state: "none" },
      ],
    });
    // Read-only for the environments, and a valid session needs no provider.
    expect(requests).toEqual([]);
    for (const value of ["sso-at", "sso-rt", '"a"', '"b"']) expect(ctx.stdout.text()).not.toContain(value);
  });

  it("prints a readable report without token values", async () => {
    const { ctx } = context({ [`sso:${ISSUER}`]: SESSION });
    expect(await runCli(["auth", "status"], ctx)).toBe(0);
    const out = ctx.stdout.text();
    expect(out).toContain("subject  alice");
    expect(out).toContain(`issuer   ${ISSUER}`);
    expect(out).toContain("backend  memory");
    expect(out).toMatch(/alpha\s+no cached token/);
    expect(out).not.toContain("sso-at");
  });

  it("fails with LK_SESSION_EXPIRED after the report when the session cannot be refreshed", async () => {
    const expired = JSON.stringify({
      ...JSON.parse(SESSION),
      refresh_token: undefined,
      expires_at: NOW_S - 1,
    });
    const { ctx } = context({ [`sso:${ISSUER}`]: expired });
    expect(await runCli(["auth", "status", "--json"], ctx)).toBe(1);
    expect(JSON.parse(ctx.stdout.text()).sessions[0].state).toBe("expired");
    expect(ctx.stderr.text()).toContain("LK_SESSION_EXPIRED");
    expect(ctx.stderr.text()).toContain("latchkey login sso");
  });
});

describe("latchkey logout sso", () => {
  it("revokes the refresh token, then the access token, then removes the session", async () => {
    const { ctx, keystore, requests } = context({ [`sso:${ISSUER}`]: SESSION });
    expect(await runCli(["logout", "sso"], ctx)).toBe(0);
    const revocations = requests
      .filter((r) => r.url.endsWith("/revoke"))
      .map((r) => new URLSearchParams(r.body));
    expect(revocations.map((p) => [p.get("token"), p.get("token_type_hint")])).toEqual([
      ["sso-rt", "refresh_token"],
      ["sso-at", "access_token"],
    ]);
    expect(await keystore.get(`sso:${ISSUER}`)).toBeNull();
  });

  it("clears local state and says so when the provider offers no revocation", async () => {
    const { ctx, keystore } = context({ [`sso:${ISSUER}`]: SESSION }, "absent");
    expect(await runCli(["logout", "sso"], ctx)).toBe(0);
    expect(ctx.stderr.text()).toContain("offers no revocation endpoint");
    expect(await keystore.get(`sso:${ISSUER}`)).toBeNull();
  });

  it("still clears local state, but fails, when revocation fails", async () => {
    const { ctx, keystore } = context({ [`sso:${ISSUER}`]: SESSION }, "failing");
    expect(await runCli(["logout", "sso"], ctx)).toBe(1);
    expect(ctx.stderr.text()).toContain("LK_SSO_FAILED");
    expect(await keystore.get(`sso:${ISSUER}`)).toBeNull();
  });

  it("refuses registry options given with `sso`", async () => {
    const { ctx } = context({});
    expect(await runCli(["login", "--github", "sso"], ctx)).toBe(2);
    expect(ctx.stderr.text()).toContain("`login sso` takes no registry options (got --github)");
    const second = context({});
    expect(await runCli(["login", "sso", "--token", "abc"], second.ctx)).toBe(2);
    expect(second.ctx.stderr.text()).not.toContain("abc");
  });
});

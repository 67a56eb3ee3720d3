// SSO against a real OpenID provider (oidc-provider on loopback, e2e/support/oidc-provider.ts), through the built
// CLI as a separate process. The browser is e2e/support/oidc-browser.ts: spawned by the CLI as $BROWSER, or driven
// by the test itself for --no-browser and the device flow. It fills the provider's real login and consent pages.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NO_DBUS, collect, isolatedEnv, runCli, startCli, tempDir, type CliResult } from "./support/cli.js";
import { TEST_USER, startOidcProvider, type OidcProvider } from "./support/oidc-provider.js";
import { browse, writeBrowserLauncher } from "./support/oidc-browser.js";

interface StoredSession {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  expires_at: number;
  subject: string;
  issuer: string;
  client_id: string;
}

let provider: OidcProvider;
let dir: { path: string; cleanup: () => Promise<void> };
let browser: string;
let counter = 0;

beforeAll(async () => {
  provider = await startOidcProvider();
  dir = await tempDir("lk-sso-");
  browser = await writeBrowserLauncher(dir.path);
});

afterAll(async () => {
  await provider?.stop();
  await dir?.cleanup();
});

/** A fresh machine per test: its own HOME, LATCHKEY_HOME and temp directory, the file keystore. */
function machine(extra: Record<string, string> = {}) {
  counter++;
  const home = join(dir.path, `home-${counter}`);
  const latchkeyHome = join(home, ".latchkey");
  const tmp = join(dir.path, `tmp-${counter}`);
  const browserLog = join(dir.path, `browser-${counter}.log`);
  const env = isolatedEnv({
    HOME: home,
    LATCHKEY_HOME: latchkeyHome,
    TMPDIR: tmp,
    LATCHKEY_KEYSTORE: "file",
    DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
    BROWSER: browser,
    OIDC_BROWSER_LOG: browserLog,
    ...extra,
  });
  return { home, latchkeyHome, tmp, env, browserLog };
}

async function prepare(m: ReturnType<typeof machine>): Promise<void> {
  const { mkdir } = await import("node:fs/promises");
  await mkdir(m.tmp, { recursive: true });
  await mkdir(m.latchkeyHome, { recursive: true, mode: 0o700 });
}

async function session(m: ReturnType<typeof machine>): Promise<StoredSession | null> {
  const result = await runCli(["keystore", "get", `sso:${provider.issuer}`], { env: m.env });
  if (result.code !== 0) return null;
  return JSON.parse(result.stdout) as StoredSession;
}

async function login(m: ReturnType<typeof machine>, ...args: string[]): Promise<CliResult> {
  // Program options (-v) come before the command: the CLI parses options positionally.
  const global = args.filter((a) => /^-v+$/.test(a));
  const own = args.filter((a) => !/^-v+$/.test(a));
  return runCli(
    [
      ...global,
      "login",
      "sso",
      "--issuer",
      provider.issuer,
      "--client-id",
      provider.clients.native.id,
      ...own,
    ],
    { env: m.env },
  );
}

/** Every file under the given roots whose bytes contain one of the needles, as "path: needle-index". */
async function filesContaining(roots: readonly string[], needles: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (path: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) {
        const text = (await readFile(full)).toString("latin1");
        needles.forEach((needle, i) => {
          if (text.includes(needle)) hits.push(`${full}: needle ${i}`);
        });
      }
    }
  };
  for (const root of roots) await walk(root);
  return hits;
}

/** Reads a child's stderr until `pattern` matches; returns the match. */
function waitForStderr(child: ReturnType<typeof startCli>, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let text = "";
    child.stderr!.setEncoding("utf8");
    const onData = (chunk: string): void => {
      text += chunk;
      const match = pattern.exec(text);
      if (match) {
        child.stderr!.off("data", onData);
        resolve(match);
      }
    };
    child.stderr!.on("data", onData);
    child.once("close", () => reject(new Error(`the CLI exited before printing ${pattern}: ${text}`)));
  });
}

beforeEach(() => provider.resetTokenRequests());

describe("latchkey login sso (authorization code + PKCE, loopback redirect)", () => {
  it("logs in through the browser and keeps the tokens only in the keystore", async () => {
    const m = machine();
    await prepare(m);
    const result = await login(m);
    expect(result.stderr).toContain(`Logged in to ${provider.issuer} as alice`);
    expect(result.code).toBe(0);

    const stored = await session(m);
    expect(stored).not.toBeNull();
    expect(stored!.subject).toBe(TEST_USER.login);
    expect(stored!.issuer).toBe(provider.issuer);
    expect(stored!.client_id).toBe(provider.clients.native.id);
    expect(stored!.access_token.length).toBeGreaterThan(20);
    expect(stored!.refresh_token?.length).toBeGreaterThan(20);
    expect(stored!.id_token?.split(".")).toHaveLength(3);
    expect(stored!.expires_at).toBeGreaterThan(Date.now() / 1000);

    // The provider saw exactly one code exchange, by the public client, with a PKCE verifier.
    const exchanges = provider.tokenRequestLog().filter((r) => r.grantType === "authorization_code");
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0]!.status).toBe(200);
    expect(exchanges[0]!.clientId).toBe(provider.clients.native.id);
    expect(exchanges[0]!.parameters).toEqual(
      expect.arrayContaining(["code", "code_verifier", "redirect_uri"]),
    );

    // The browser was spawned with the authorization URL and ended on the listener's page.
    const visits = (await readFile(m.browserLog, "utf8"))
      .trim()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(l) as {
            argv: string[];
            visited: string[];
            status: number;
            finalUrl: string;
          },
      );
    expect(visits).toHaveLength(1);
    expect(visits[0]!.argv).toEqual([`${provider.issuer}/auth`]);
    expect(visits[0]!.finalUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(visits[0]!.status).toBe(200);

    // Canaries: no token in any file of this machine (the file store is encrypted).
    const canaries = [stored!.access_token, stored!.refresh_token!, stored!.id_token!];
    expect(await filesContaining([m.home, m.latchkeyHome, m.tmp], canaries)).toEqual([]);
    expect(result.stdout + result.stderr).not.toContain(stored!.access_token);
  });

  it("--no-browser prints the URL, and a login finished from it is accepted", async () => {
    const m = machine({ BROWSER: "/nonexistent/never-spawned" });
    await prepare(m);
    const child = startCli(
      [
        "login",
        "sso",
        "--issuer",
        provider.issuer,
        "--client-id",
        provider.clients.native.id,
        "--no-browser",
      ],
      { env: m.env },
    );
    const [, url] = await waitForStderr(child, /\n {2}(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)\n/);
    const parsed = new URL(url!);
    expect(parsed.searchParams.get("code_challenge_method")).toBe("S256");
    expect(parsed.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(parsed.searchParams.get("state")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(parsed.searchParams.get("nonce")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(parsed.searchParams.get("redirect_uri")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const page = await browse(url!, { login: TEST_USER.login, password: TEST_USER.password });
    expect(page.status).toBe(200);
    const result = await collect(child);
    expect(result.code).toBe(0);
    expect((await session(m))?.subject).toBe("alice");
  });

  it("a callback with a forged state ends the login with no token request", async () => {
    const m = machine({ OIDC_BROWSER_MODE: "forge-state" });
    await prepare(m);
    const result = await login(m);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("LK_OAUTH_STATE_MISMATCH");
    expect(provider.tokenRequests()).toEqual({});
    expect(await session(m)).toBeNull();
  });

  it("an error callback (the user aborts at the provider) ends the login with no token request", async () => {
    const m = machine({ OIDC_BROWSER_MODE: "abort" });
    await prepare(m);
    const result = await login(m);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("LK_OAUTH_DENIED");
    expect(result.stderr).toContain("access_denied");
    expect(provider.tokenRequests()).toEqual({});
    expect(await session(m)).toBeNull();
  });

  it("gives up with LK_OAUTH_TIMEOUT when no callback arrives", async () => {
    const m = machine();
    await prepare(m);
    const result = await login(m, "--no-browser", "--timeout", "1");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("LK_OAUTH_TIMEOUT");
    expect(provider.tokenRequests()).toEqual({});
  });

  it("-vv traces the HTTP exchanges with code, verifier and tokens redacted", async () => {
    const m = machine();
    await prepare(m);
    const result = await login(m, "-vv");
    expect(result.code).toBe(0);
    const stored = (await session(m))!;
    expect(result.stderr).toContain(`> POST ${provider.issuer}/token`);
    expect(result.stderr).toMatch(/code_verifier=\[REDACTED\]/);
    expect(result.stderr).toMatch(/(^|&| )code=\[REDACTED\]/m);
    for (const secret of [stored.access_token, stored.refresh_token!, stored.id_token!]) {
      expect(result.stderr).not.toContain(secret);
    }
    expect(result.stderr).not.toMatch(/code_verifier=[A-Za-z0-9_-]{43}/);
  });
});

describe("latchkey login sso --device (RFC 8628)", () => {
  it("prints the verification URI and user code, and stores the session once the code is entered", async () => {
    const m = machine();
    await prepare(m);
    const child = startCli(
      ["login", "sso", "--device", "--issuer", provider.issuer, "--client-id", provider.clients.device.id],
      { env: m.env },
    );
    const [, uri, code] = await waitForStderr(
      child,
      /open (\S+) on any device and enter the code:\s+(\S+)\s/,
    );
    expect(uri).toBe(`${provider.issuer}/device`);
    const page = await browse(uri!, {
      login: TEST_USER.login,
      password: TEST_USER.password,
      userCode: code!,
    });
    expect(page.status).toBe(200);
    const result = await collect(child);
    expect(result.code).toBe(0);
    const stored = await session(m);
    expect(stored?.subject).toBe("alice");
    expect(stored?.client_id).toBe(provider.clients.device.id);
    const polls = provider.tokenRequestLog().filter((r) => r.grantType.endsWith("device_code"));
    expect(polls.at(-1)?.status).toBe(200);
    expect(
      polls.filter(
        (r) => r.error !== undefined && r.error !== "authorization_pending" && r.error !== "slow_down",
      ),
    ).toEqual([]);
  });
});

describe("latchkey auth status and logout sso", () => {
  async function loggedIn(): Promise<ReturnType<typeof machine>> {
    const m = machine();
    await prepare(m);
    await writeFile(
      join(m.latchkeyHome, "config.toml"),
      `[profiles.default]\nsso_issuer = "${provider.issuer}"\nsso_client_id = "${provider.clients.native.id}"\n\n` +
        `[environments.staging]\nissuer = "${provider.issuer}"\nclient_id = "${provider.clients.confidential.id}"\n` +
        `client_secret_env = "STAGING_SECRET"\n`,
    );
    const result = await runCli(["login", "sso"], { env: m.env });
    expect(result.code).toBe(0);
    return m;
  }

  it("auth status --json shows subject, issuer, expiry, backend and each environment's cache", async () => {
    const m = await loggedIn();
    const result = await runCli(["auth", "status", "--json"], { env: m.env });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      profile: string;
      backend: string;
      sessions: { issuer: string; subject: string; state: string; expiresAt: string; refreshable: boolean }[];
      environments: { name: string; state: string }[];
    };
    expect(report.profile).toBe("default");
    expect(report.backend).toBe("file");
    expect(report.sessions).toHaveLength(1);
    expect(report.sessions[0]).toMatchObject({
      issuer: provider.issuer,
      subject: "alice",
      state: "valid",
      refreshable: true,
    });
    expect(Date.parse(report.sessions[0]!.expiresAt)).toBeGreaterThan(Date.now());
    expect(report.environments).toEqual([{ name: "staging", state: "none" }]);
    const stored = (await session(m))!;
    expect(result.stdout).not.toContain(stored.access_token);
  });

  it("an expired session is refreshed (the rotated refresh token replaces the old one)", async () => {
    const m = await loggedIn();
    const before = (await session(m))!;
    const expired = { ...before, expires_at: Math.floor(Date.now() / 1000) - 10 };
    expect(
      (
        await runCli(["keystore", "set", `sso:${provider.issuer}`], {
          env: m.env,
          input: JSON.stringify(expired),
        })
      ).code,
    ).toBe(0);
    provider.resetTokenRequests();
    const result = await runCli(["auth", "status", "--json"], { env: m.env });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).sessions[0].state).toBe("refreshed");
    expect(provider.tokenRequests()).toEqual({ refresh_token: 1 });
    const after = (await session(m))!;
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(after.expires_at).toBeGreaterThan(Date.now() / 1000);
  });

  it("an expired session without a refresh token is LK_SESSION_EXPIRED with the login hint", async () => {
    const m = await loggedIn();
    const { refresh_token: _dropped, ...rest } = (await session(m))!;
    const expired = { ...rest, expires_at: Math.floor(Date.now() / 1000) - 10 };
    await runCli(["keystore", "set", `sso:${provider.issuer}`], {
      env: m.env,
      input: JSON.stringify(expired),
    });
    const result = await runCli(["auth", "status"], { env: m.env });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("LK_SESSION_EXPIRED");
    expect(result.stderr).toContain("latchkey login sso");
    expect(result.stdout).toContain("expired");
  });

  it("logout sso revokes at the provider (refresh then fails) and clears the local session", async () => {
    const m = await loggedIn();
    const stored = (await session(m))!;
    const result = await runCli(["logout", "sso"], { env: m.env });
    expect(result.stderr).toContain("revoked the refresh token and access token");
    expect(result.code).toBe(0);
    expect(await session(m)).toBeNull();
    const refresh = await fetch(provider.tokenEndpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: stored.refresh_token!,
        client_id: provider.clients.native.id,
      }),
    });
    expect(refresh.status).toBe(400);
    expect(((await refresh.json()) as { error: string }).error).toBe("invalid_grant");
    expect(await provider.provider.AccessToken.find(stored.access_token)).toBeUndefined();
    const status = await runCli(["auth", "status", "--json"], { env: m.env });
    expect(JSON.parse(status.stdout).sessions[0].state).toBe("none");
  });

  it("the registry login still works beside `login sso` (usage errors stay registry errors)", async () => {
    const m = machine();
    await prepare(m);
    const result = await runCli(["login", "--npm", "sso"], { env: m.env });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("LK_USAGE");
    const mixed = await runCli(["login", "sso", "--npm"], { env: m.env });
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain("LK_USAGE");
  });
});

describe("environments declared with an interactive grant (auth token through the SSO flows)", () => {
  async function configured(): Promise<ReturnType<typeof machine>> {
    const m = machine();
    await prepare(m);
    await writeFile(
      join(m.latchkeyHome, "config.toml"),
      `[environments.web]\nissuer = "${provider.issuer}"\nclient_id = "${provider.clients.native.id}"\n` +
        `grant = "authorization_code"\nscopes = ["openid"]\n\n` +
        `[environments.tv]\nissuer = "${provider.issuer}"\nclient_id = "${provider.clients.device.id}"\n` +
        `grant = "device_code"\nscopes = ["openid"]\n`,
    );
    return m;
  }

  it("authorization_code: the browser flow acquires the token once, then the cache serves it", async () => {
    const m = await configured();
    const first = await runCli(["auth", "token", "--env", "web"], { env: m.env });
    expect(first.stderr).toContain("Opening your browser");
    expect(first.code).toBe(0);
    const token = first.stdout.trim();
    expect(token.length).toBeGreaterThan(20);
    expect(provider.tokenRequests()).toEqual({ authorization_code: 1 });
    const second = await runCli(["auth", "token", "--env", "web"], { env: m.env });
    expect(second.stdout.trim()).toBe(token);
    expect(provider.tokenRequests()).toEqual({ authorization_code: 1 });
    const status = JSON.parse((await runCli(["auth", "status", "--json"], { env: m.env })).stdout) as {
      environments: { name: string; state: string }[];
    };
    expect(status.environments).toEqual([
      { name: "tv", state: "none" },
      expect.objectContaining({ name: "web", state: "valid" }),
    ]);
    expect(await filesContaining([m.home, m.latchkeyHome, m.tmp], [token])).toEqual([]);
  });

  it("device_code: the user code is entered in the browser and the token is printed", async () => {
    const m = await configured();
    const child = startCli(["auth", "token", "--env", "tv"], { env: m.env });
    const [, uri, code] = await waitForStderr(
      child,
      /open (\S+) on any device and enter the code:\s+(\S+)\s/,
    );
    await browse(uri!, { login: TEST_USER.login, password: TEST_USER.password, userCode: code! });
    const result = await collect(child);
    expect(result.code).toBe(0);
    expect(result.stdout.trim().length).toBeGreaterThan(20);
    expect(provider.tokenRequestLog().at(-1)).toMatchObject({
      grantType: "urn:ietf:params:oauth:grant-type:device_code",
      status: 200,
    });
  });
});

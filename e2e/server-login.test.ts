// Issue 6 point 3 as users run it: the built CLI (separate machines: one HOME and LATCHKEY_HOME each, the
// encrypted-file keystore) against the real `latchkey-server` process on SQLite and PostgreSQL. Browser login
// driven over HTTP by the scripted browser, device login, whoami asking the server on every call, logout revoking
// at the server, token-rotate, and the session errors (expired, revoked, none, server gone).
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import {
  assertBuilt,
  latchkey,
  loginCli,
  loginCliDevice,
  loginCliNoBrowser,
  newMachine,
  startServerWithUser,
  storedSession,
  tempDir,
  type Credentials,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./support/latchkey-server.js";

assertBuilt();

interface Session {
  access_token: string;
  refresh_token?: string;
  expires_at: number;
  subject: string;
  issuer: string;
  client_id: string;
}

function expectOk(result: ProcessResult, what: string): void {
  expect(result.code, `${what} failed:\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(0);
}

function expectCode(result: ProcessResult, code: string): void {
  expect(result.code, `expected ${code}:\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(1);
  expect(result.stderr).toContain(code);
}

describeEachDatabase("latchkey login / whoami / logout / token-rotate at a real server", (target) => {
  let server: LatchkeyServer;
  let root: { path: string; cleanup: () => Promise<void> };
  let machines = 0;
  const alice: Credentials = {
    email: "alice@example.com",
    password: `pw-${randomBytes(12).toString("base64url")}`,
  };

  beforeAll(async () => {
    const config = await target.fresh();
    root = await tempDir("lk-server-login-");
    server = await startServerWithUser(config, alice);
  });

  afterAll(async () => {
    await server?.stop();
    await root?.cleanup();
  });

  async function signedIn(): Promise<Machine> {
    const m = await newMachine(root.path, String(++machines));
    expectOk(await loginCli(m, server, alice), "latchkey login --server");
    return m;
  }

  async function session(m: Machine): Promise<Session> {
    const stored = (await storedSession(m, server)) as Session | null;
    expect(stored).not.toBeNull();
    return stored!;
  }

  /** GET /api/v1/me with a raw bearer token: what the server itself thinks of a token. */
  async function meStatus(token: string): Promise<number> {
    const response = await fetch(`${server.url}/api/v1/me`, {
      headers: {
        authorization: `Bearer ${token}`,
        "x-latchkey-request-id": randomBytes(16).toString("base64url"),
      },
    });
    await response.arrayBuffer();
    return response.status;
  }

  async function storeSession(m: Machine, value: Session): Promise<void> {
    expectOk(
      await latchkey(m, ["keystore", "set", `session:${server.url}`], { input: JSON.stringify(value) }),
      "keystore set",
    );
  }

  it("browser login records the server in the profile; plain `whoami` then asks that server", async () => {
    const m = await newMachine(root.path, String(++machines));
    await writeFile(join(m.latchkeyHome, "config.toml"), "# my settings\n[profiles.default]\n");
    const login = await loginCli(m, server, alice);
    expectOk(login, "latchkey login --server");
    expect(login.stderr).toContain(`Logged in to ${server.url} as ${alice.email}`);
    const config = await readFile(join(m.latchkeyHome, "config.toml"), "utf8");
    expect(config).toBe(`# my settings\n[profiles.default]\nserver = "${server.url}"\n`);
    const stored = await session(m);
    expect(stored).toMatchObject({ issuer: `${server.url}/oidc`, client_id: "latchkey-cli" });
    expect(typeof stored.refresh_token).toBe("string");

    const whoami = await latchkey(m, ["whoami"]);
    expectOk(whoami, "latchkey whoami");
    for (const part of [server.url, alice.email, stored.subject, "profile   default", "expires"])
      expect(whoami.stdout).toContain(part);
    const json = JSON.parse((await latchkey(m, ["whoami", "--json"])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({
      server: server.url,
      email: alice.email,
      userId: stored.subject,
      profile: "default",
      clientId: "latchkey-cli",
      keystore: "file",
    });
    expect(Date.parse(String(json.expiresAt))).toBeGreaterThan(Date.now());
    // Even the HTTP trace of -vv shows neither token.
    const traced = await latchkey(m, ["-vv", "whoami"]);
    expectOk(traced, "latchkey -vv whoami");
    expect(traced.stderr).toContain("/api/v1/me");
    for (const text of [login.stdout, login.stderr, whoami.stdout, whoami.stderr, traced.stderr]) {
      expect(text).not.toContain(alice.password);
      expect(text).not.toContain(stored.access_token);
      expect(text).not.toContain(String(stored.refresh_token));
    }
  });

  it("device login stores a working session", async () => {
    const m = await newMachine(root.path, String(++machines));
    const login = await loginCliDevice(m, server, alice);
    expectOk(login, "latchkey login --server --device");
    expect(login.prompt.verificationUri.startsWith(`${server.url}/oidc/`)).toBe(true);
    const whoami = await latchkey(m, ["whoami", "--json"]);
    expectOk(whoami, "whoami after device login");
    expect(JSON.parse(whoami.stdout)).toMatchObject({ email: alice.email });
    expect(await meStatus((await session(m)).access_token)).toBe(200);
  });

  it("--no-browser prints the login URL, spawns no browser, and the login completes when the URL is opened", async () => {
    const m = await newMachine(root.path, String(++machines));
    const login = await loginCliNoBrowser(m, server, alice);
    expectOk(login, "latchkey login --server --no-browser");
    expect(login.browserSpawned).toBe(false);
    expect(login.loginUrl.startsWith(`${server.url}/oidc/auth?`)).toBe(true);
    expect(new URL(login.loginUrl).searchParams.get("code_challenge_method")).toBe("S256");
    const whoami = await latchkey(m, ["whoami", "--json"]);
    expectOk(whoami, "whoami after a --no-browser login");
    expect(JSON.parse(whoami.stdout)).toMatchObject({ email: alice.email });
  });

  it("logout revokes at the server: the old access token is refused, whoami is LK_NOT_LOGGED_IN", async () => {
    const m = await signedIn();
    const before = await session(m);
    expect(await meStatus(before.access_token)).toBe(200);
    const logout = await latchkey(m, ["-vv", "logout"]);
    expectOk(logout, "latchkey logout");
    expect(logout.stderr).toContain("revoked the refresh token and access token at the server");
    // The revocation requests are traced with -vv, their token parameters redacted.
    expect(logout.stderr).toContain("/oidc/token/revocation");
    expect(logout.stderr).not.toContain(before.access_token);
    expect(logout.stderr).not.toContain(String(before.refresh_token));
    expect(await meStatus(before.access_token)).toBe(401);
    expect(await storedSession(m, server)).toBeNull();
    expectCode(await latchkey(m, ["whoami"]), "LK_NOT_LOGGED_IN");
    // The refresh token died with it: a copy of the old session cannot be revived.
    await storeSession(m, { ...before, expires_at: Math.floor(Date.now() / 1000) - 120 });
    expectCode(await latchkey(m, ["whoami"]), "LK_SESSION_EXPIRED");
  });

  it("token-rotate: a new access and refresh token; the old access token is refused, the new one works", async () => {
    const m = await signedIn();
    const before = await session(m);
    const rotate = await latchkey(m, ["token-rotate"]);
    expectOk(rotate, "latchkey token-rotate");
    const after = await session(m);
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(after.subject).toBe(before.subject);
    expect(await meStatus(before.access_token)).toBe(401);
    expect(await meStatus(after.access_token)).toBe(200);
    expectOk(await latchkey(m, ["whoami"]), "whoami after token-rotate");
    expect(rotate.stderr).not.toContain(after.access_token);
  });

  it("an expired session is refreshed silently; refused refresh or revoked grant → LK_SESSION_EXPIRED with the login hint", async () => {
    const m = await signedIn();
    const original = await session(m);
    // Expired locally, refresh token good: whoami renews the session without asking the user.
    await storeSession(m, { ...original, expires_at: Math.floor(Date.now() / 1000) - 120 });
    expectOk(await latchkey(m, ["whoami"]), "whoami with an expired access token");
    const renewed = await session(m);
    expect(renewed.access_token).not.toBe(original.access_token);

    // Expired and the refresh token refused.
    await storeSession(m, {
      ...renewed,
      expires_at: Math.floor(Date.now() / 1000) - 120,
      refresh_token: "bogus",
    });
    const refused = await latchkey(m, ["whoami"]);
    expectCode(refused, "LK_SESSION_EXPIRED");
    expect(refused.stderr).toContain("latchkey login");
    expect(refused.stderr).not.toContain("login sso");

    // Revoked at the server (the grant ended elsewhere): a valid-looking session is refused.
    await storeSession(m, renewed);
    const revoke = await fetch(`${server.url}/oidc/token/revocation`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        token: renewed.refresh_token!,
        token_type_hint: "refresh_token",
        client_id: "latchkey-cli",
      }),
    });
    expect(revoke.status).toBe(200);
    expectCode(await latchkey(m, ["whoami", "--json"]), "LK_SESSION_EXPIRED");
  });

  it("logout with the server gone clears the session locally, says so, and exits 1", async () => {
    const m = await signedIn();
    const dead = "http://127.0.0.1:9";
    const before = await session(m);
    // The same session, recorded for an address where nothing listens.
    expectOk(
      await latchkey(m, ["keystore", "set", `session:${dead}`], {
        input: JSON.stringify({ ...before, issuer: `${dead}/oidc` }),
      }),
      "keystore set",
    );
    const logout = await latchkey(m, ["logout", "--server", dead]);
    expectCode(logout, "LK_SERVER_UNREACHABLE");
    expect(logout.stderr).toContain("NOT revoked");
    expect(logout.stderr).toContain("the local session was removed");
    const list = await latchkey(m, ["keystore", "list"]);
    expect(list.stdout).not.toContain(`session:${dead}`);
    expect(list.stdout).toContain(`session:${server.url}`);
  });

  it("without a server the registry commands keep their behaviour, and server-only flags are refused", async () => {
    const m = await newMachine(root.path, String(++machines));
    expectCode(await latchkey(m, ["token-rotate"]), "LK_NOT_LOGGED_IN");
    const device = await latchkey(m, ["login", "--device"]);
    expect(device.code).toBe(2);
    expect(device.stderr).toContain("LK_USAGE");
    const mixed = await latchkey(m, ["login", "--server", server.url, "--npm"]);
    expect(mixed.code).toBe(2);
    const plain = await latchkey(m, ["logout"]);
    // The registry logout: no npmjs token stored.
    expect(plain.stderr).toContain("LK_TOKEN_MISSING");
    const insecure = await latchkey(m, ["login", "--server", "http://latchkey.example.com"]);
    expect(insecure.stderr).toContain("LK_CONFIG_INVALID");
  });
});

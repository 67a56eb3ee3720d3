// Which `login` / `logout` / `whoami` a command line means (server or registry), in-process: nothing here may
// reach the network (the test context's fetch throws), so every case is decided before a request. The flows
// themselves run against the real server in e2e/server-login.test.ts.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import type { Spawn } from "../context.js";
import { runCli } from "../cli.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-server-cmd-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function context(config: string | null, env: Record<string, string> = {}) {
  const home = join(root, `h${++n}`);
  await mkdir(home, { recursive: true });
  if (config !== null) await writeFile(join(home, "config.toml"), config);
  const fullEnv = { LATCHKEY_HOME: home, ...env };
  const keystore = createMemoryKeystore();
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  return createTestContext({
    env: fullEnv,
    paths: resolvePaths(fullEnv),
    clock: { now: () => Date.UTC(2030, 0, 1), sleep: () => Promise.resolve() },
    keystore: () => Promise.resolve(resolution),
  });
}

describe("server or registry", () => {
  it("refuses --server together with registry flags", async () => {
    const ctx = await context(null);
    expect(await runCli(["login", "--server", "https://lk.example.com", "--npm"], ctx)).toBe(2);
    expect(ctx.stderr.text()).toContain("LK_USAGE");
    expect(ctx.stderr.text()).toContain("--npm");
  });

  it("refuses server-only flags where no server is configured, and with registry flags", async () => {
    const ctx = await context(null);
    expect(await runCli(["login", "--device"], ctx)).toBe(2);
    expect(ctx.stderr.text()).toMatch(/--device needs a Latchkey server/);
    const other = await context(null);
    expect(await runCli(["login", "--no-browser", "--github"], other)).toBe(2);
    expect(other.stderr.text()).toContain("--no-browser is for a Latchkey server login");
  });

  it("takes the server from LATCHKEY_SERVER or the profile: no session there is LK_NOT_LOGGED_IN", async () => {
    const fromEnv = await context(null, { LATCHKEY_SERVER: "https://lk.example.com/" });
    expect(await runCli(["whoami"], fromEnv)).toBe(1);
    expect(fromEnv.stderr.text()).toContain("LK_NOT_LOGGED_IN");
    expect(fromEnv.stderr.text()).toContain("https://lk.example.com (profile default)");
    const fromProfile = await context(`[profiles.work]\nserver = "https://work.example.com"\n`);
    expect(await runCli(["whoami", "--profile", "work", "--json"], fromProfile)).toBe(1);
    expect(fromProfile.stderr.text()).toContain("You are not logged in to https://work.example.com");
  });

  it("whoami --json answers on stdout when logged out, at a server or at no registry; the error is JSON too", async () => {
    const server = await context(`[profiles.work]\nserver = "https://work.example.com"\n`);
    expect(await runCli(["whoami", "--profile", "work", "--json"], server)).toBe(1);
    expect(JSON.parse(server.stdout.text())).toEqual({
      loggedIn: false,
      server: "https://work.example.com",
      profile: "work",
    });
    expect(JSON.parse(server.stderr.text())).toMatchObject({ code: "LK_NOT_LOGGED_IN" });
    const registries = await context(null);
    expect(await runCli(["whoami", "--json"], registries)).toBe(1);
    expect(JSON.parse(registries.stdout.text())).toEqual({ registries: [] });
    expect(JSON.parse(registries.stderr.text())).toMatchObject({ code: "LK_TOKEN_MISSING" });
  });

  it("a browser login where no browser can open says so before anything starts, and points to --device", async () => {
    const environments: Record<string, string>[] = [
      {},
      { DISPLAY: ":0", PATH: "/nonexistent/latchkey-test-no-xdg-open" },
    ];
    for (const env of environments) {
      // The test context's fetch throws: reaching the server would be LK_INTERNAL, not this.
      const ctx = await context(null, env);
      expect(await runCli(["login", "--server", "https://lk.example.com"], ctx)).toBe(1);
      expect(ctx.stderr.text()).toContain("error LK_NO_BROWSER: No browser can be opened on this machine");
      expect(ctx.stderr.text()).toContain("--device");
    }
    const sso = await context(
      `[profiles.default]\nsso_issuer = "https://login.example.com"\nsso_client_id = "latchkey"\n`,
    );
    expect(await runCli(["login", "sso"], sso)).toBe(1);
    expect(sso.stderr.text()).toContain("LK_NO_BROWSER");
  });

  it("an unreachable server's hint is to check that it runs and its URL, not whoami (which fails the same way)", async () => {
    const ctx = createTestContext({
      ...(await context(null)),
      fetch: () => Promise.reject(new TypeError("fetch failed")),
    });
    expect(await runCli(["login", "--server", "https://lk.example.com", "--device"], ctx)).toBe(1);
    expect(ctx.stderr.text()).toContain("error LK_SERVER_UNREACHABLE");
    const hint = /hint: (.*)/.exec(ctx.stderr.text())?.[1] ?? "";
    expect(hint).toContain("server is running");
    expect(hint).not.toContain("whoami");
  });

  it("logout without a stored session at the server has nothing to do", async () => {
    const ctx = await context(`[profiles.default]\nserver = "https://lk.example.com"\n`);
    expect(await runCli(["logout"], ctx)).toBe(0);
    expect(ctx.stderr.text()).toContain("No session at https://lk.example.com is stored");
  });

  it("token-rotate without any server is LK_NOT_LOGGED_IN", async () => {
    const ctx = await context(null);
    expect(await runCli(["token-rotate"], ctx)).toBe(1);
    expect(ctx.stderr.text()).toContain("LK_NOT_LOGGED_IN");
  });

  it("refuses a plain-http server off loopback before anything is sent", async () => {
    const ctx = await context(null);
    expect(await runCli(["login", "--server", "http://lk.example.com"], ctx)).not.toBe(0);
    expect(ctx.stderr.text()).toContain("LK_CONFIG_INVALID");
  });

  it("leaves `login sso` alone: the server flags' defaults are not taken for parent options", async () => {
    const ctx = await context(null);
    // No issuer configured: the SSO command's own error, not a complaint about stray `login` options.
    expect(await runCli(["login", "sso"], ctx)).not.toBe(0);
    expect(ctx.stderr.text()).toContain("No SSO issuer");
    // -v is every command's own, not a registry option of `login`.
    const verbose = await context(null);
    expect(await runCli(["login", "-v", "sso"], verbose)).not.toBe(0);
    expect(verbose.stderr.text()).toContain("No SSO issuer");
    const flagged = await context(null);
    expect(await runCli(["login", "--device", "sso"], flagged)).toBe(2);
    expect(flagged.stderr.text()).toContain("takes no registry options (got --device)");
  });
});

describe("login at a server", () => {
  const server = "https://lk.example.com";
  const issuer = `${server}/oidc`;
  const discovery = {
    issuer,
    authorization_endpoint: `${issuer}/auth`,
    token_endpoint: `${issuer}/token`,
    device_authorization_endpoint: `${issuer}/device/auth`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ["code"],
    code_challenge_methods_supported: ["S256"],
  };

  it("on a callback with another login's state, hints at `latchkey login --server`, not `login sso`", async () => {
    const home = join(root, `h${++n}`);
    await mkdir(home, { recursive: true });
    const env = { LATCHKEY_HOME: home, BROWSER: "test-browser" };
    const resolution = {
      keystore: createMemoryKeystore(),
      backend: "memory",
    } as unknown as KeystoreResolution;
    const fetched: string[] = [];
    // The browser comes back to the CLI's listener with a state this login did not send.
    const spawn: Spawn = async (_command, args) => {
      const authorization = new URL(args[0]!);
      await fetch(`${authorization.searchParams.get("redirect_uri")}?code=abc&state=forged`);
      return { code: 0, signal: null, stdout: "", stderr: "", timedOut: false };
    };
    const ctx = createTestContext({
      env,
      paths: resolvePaths(env),
      clock: { now: () => Date.UTC(2030, 0, 1), sleep: () => Promise.resolve() },
      keystore: () => Promise.resolve(resolution),
      spawn,
      fetch: (input) => {
        const url = input instanceof Request ? input.url : input instanceof URL ? input.href : input;
        fetched.push(url);
        if (url !== `${issuer}/.well-known/openid-configuration`) throw new Error(`Unexpected fetch ${url}`);
        return Promise.resolve(
          new Response(JSON.stringify(discovery), { headers: { "content-type": "application/json" } }),
        );
      },
    });
    expect(await runCli(["login", "--server", server], ctx)).toBe(1);
    const stderr = ctx.stderr.text();
    expect(stderr).toContain("LK_OAUTH_STATE_MISMATCH");
    expect(stderr).toContain(`latchkey login --server ${server}\` again`);
    expect(stderr).not.toContain("login sso");
    // No code was exchanged.
    expect(fetched).toEqual([`${issuer}/.well-known/openid-configuration`]);
  });
});

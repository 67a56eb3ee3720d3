import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import {
  startNpmRegistry,
  type NpmRegistry,
  type NpmRegistryOptions,
} from "../../test/support/npm-registry.js";
import { runCli } from "../cli.js";
import type { Prompts, Spawn } from "../context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { readLoginRecords } from "../registry/config.js";

let root: string;
let home: string;
const registries: NpmRegistry[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-registry-cmd-"));
  home = join(root, "latchkey-home");
  await mkdir(join(root, "project"));
});
afterEach(async () => {
  await Promise.all(registries.splice(0).map((r) => r.close()));
  await rm(root, { recursive: true, force: true });
});

async function registry(options: NpmRegistryOptions = {}): Promise<NpmRegistry> {
  const r = await startNpmRegistry(options);
  registries.push(r);
  return r;
}

interface FetchCall {
  url: string;
  authorization: string | null;
}

interface Setup {
  env?: Record<string, string>;
  stored?: Record<string, string>;
  stdin?: string;
  tty?: boolean;
  prompts?: Partial<Prompts>;
  spawn?: Spawn;
}

function context(setup: Setup = {}) {
  const env = { LATCHKEY_HOME: home, ...setup.env };
  const keystore = createMemoryKeystore(setup.stored ?? {});
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  const fetches: FetchCall[] = [];
  const sleeps: number[] = [];
  let now = Date.UTC(2030, 0, 1);
  const ctx = createTestContext({
    env,
    paths: resolvePaths(env),
    cwd: join(root, "project"),
    stdin: {
      isTTY: setup.tty === true,
      readAll: () =>
        setup.stdin === undefined
          ? Promise.reject(new Error("Unexpected call to stdin.readAll"))
          : Promise.resolve(new TextEncoder().encode(setup.stdin)),
    },
    stderrTTY: setup.tty === true,
    fetch: (input, init) => {
      const headers = new Headers(init?.headers);
      const url = input instanceof Request ? input.url : input instanceof URL ? input.href : input;
      fetches.push({ url, authorization: headers.get("authorization") });
      return globalThis.fetch(input, init);
    },
    clock: {
      now: () => now,
      sleep: (ms) => {
        sleeps.push(ms);
        now += ms;
        return Promise.resolve();
      },
    },
    ...(setup.spawn ? { spawn: setup.spawn } : {}),
    ...(setup.prompts
      ? {
          prompts: {
            secret:
              setup.prompts.secret ?? (() => Promise.reject(new Error("Unexpected call to prompts.secret"))),
            confirm:
              setup.prompts.confirm ??
              (() => Promise.reject(new Error("Unexpected call to prompts.confirm"))),
          },
        }
      : {}),
    keystore: () => Promise.resolve(resolution),
  });
  return { ctx, keystore, fetches, sleeps };
}

describe("login", () => {
  it("stores a token from stdin after the registry's whoami accepts it", async () => {
    const r = await registry({ tokens: { npm_good: "alice" } });
    const { ctx, keystore, fetches } = context({ stdin: "npm_good\n" });
    expect(await runCli(["login", "--registry", r.url, "--token-stdin"], ctx)).toBe(0);
    const account = `registry:${r.url.replace("http:", "")}`;
    expect(await keystore.get(account)).toBe("npm_good");
    expect(ctx.stderr.text()).toContain(`Logged in to ${r.url} as alice.`);
    expect(ctx.stdout.text()).toBe("");
    expect(fetches).toEqual([{ url: `${r.url}-/whoami`, authorization: "Bearer npm_good" }]);
    expect(await readLoginRecords(ctx)).toEqual({ [r.url.replace("http:", "")]: { url: r.url } });
  });

  it("says when a higher source will shadow the token it just stored", async () => {
    const r = await registry({ tokens: { "stored-tok": "alice" } });
    await mkdir(home, { recursive: true });
    await writeFile(join(home, "config.toml"), `[registries."${r.url}"]\ntokenEnv = "TEAM_TOKEN"\n`);
    const { ctx, keystore } = context({ stdin: "stored-tok", env: { TEAM_TOKEN: "team" } });
    expect(await runCli(["login", "--registry", r.url, "--token-stdin"], ctx)).toBe(0);
    expect(await keystore.list()).toHaveLength(1);
    expect(ctx.stderr.text()).toContain(
      "Note: env TEAM_TOKEN comes before the stored token for this registry and will be used instead.",
    );
  });

  it("does not store a token the registry rejects", async () => {
    const r = await registry({ tokens: {} });
    const { ctx, keystore } = context({ stdin: "npm_bad_token_value" });
    expect(await runCli(["login", "--registry", r.url, "--token-stdin"], ctx)).toBe(1);
    expect(ctx.stderr.text()).toContain("error LK_TOKEN_INVALID");
    expect(ctx.stderr.text()).not.toContain("npm_bad_token_value");
    expect(await keystore.list()).toEqual([]);
  });

  it("stores nothing when the registry cannot confirm the token (404 from /-/whoami), and says what to check", async () => {
    const r = await registry({ whoami: false, tokens: { "unchecked-token": "alice" } });
    const { ctx, keystore } = context({ stdin: "unchecked-token" });
    expect(await runCli(["login", "--registry", r.url, "--token-stdin"], ctx)).toBe(1);
    const stderr = ctx.stderr.text();
    expect(stderr).toContain("error LK_TOKEN_UNVERIFIED");
    expect(stderr).toContain(
      `${r.url} could not confirm the token (the registry has no /-/whoami (HTTP 404))`,
    );
    expect(stderr).toContain("a wrong path answers 404 too");
    expect(stderr).toContain("--no-verify");
    expect(stderr).not.toContain("Logged in");
    expect(stderr).not.toContain("unchecked-token");
    expect(await keystore.list()).toEqual([]);
    expect(await readLoginRecords(ctx)).toEqual({});
  });

  it("stores a token unchecked only with --no-verify, asks no whoami, and says it is not verified", async () => {
    const r = await registry({ whoami: false });
    const { ctx, keystore, fetches } = context({ stdin: "unchecked-token" });
    expect(await runCli(["login", "--registry", r.url, "--token-stdin", "--no-verify"], ctx)).toBe(0);
    expect(await keystore.get(`registry:${r.url.replace("http:", "")}`)).toBe("unchecked-token");
    expect(fetches).toEqual([]);
    expect(ctx.stderr.text()).toContain(`Stored the token for ${r.url}, not verified (--no-verify).`);
    expect(ctx.stderr.text()).not.toContain("Logged in");
  });

  it("keeps a token the registry's own password login issued, though it has no /-/whoami to confirm it", async () => {
    const r = await registry({ whoami: false, webLogin: false, users: { alice: { password: "pw" } } });
    const { ctx, keystore } = context({ stdin: "pw\n" });
    expect(await runCli(["login", "--registry", r.url, "--user", "alice"], ctx)).toBe(0);
    expect(await keystore.get(`registry:${r.url.replace("http:", "")}`)).toBe(r.issued[0]);
    expect(ctx.stderr.text()).toContain("Note: the token could not be checked");
  });

  it("reads a token file and asks at a masked prompt on a terminal", async () => {
    const r = await registry({ tokens: { "file-token": "f", "prompt-token": "p" } });
    await writeFile(join(root, "token.txt"), "file-token\n");
    const fromFile = context();
    expect(
      await runCli(["login", "--registry", r.url, "--token-file", join(root, "token.txt")], fromFile.ctx),
    ).toBe(0);
    expect(await fromFile.keystore.list()).toHaveLength(1);
    const asked: string[] = [];
    const prompted = context({
      tty: true,
      prompts: {
        secret: (message) => {
          asked.push(message);
          return Promise.resolve("prompt-token");
        },
      },
    });
    expect(await runCli(["login", "--registry", r.url], prompted.ctx)).toBe(0);
    expect(asked).toEqual([`Token for ${r.url}`]);
    expect(prompted.ctx.stderr.text()).toContain("as p.");
  });

  it("says that a --token-file that is missing does not exist, not where LATCHKEY_HOME is", async () => {
    const r = await registry({ tokens: { "file-token": "f" } });
    const { ctx, keystore } = context();
    expect(await runCli(["login", "--registry", r.url, "--token-file", "missing.txt"], ctx)).toBe(1);
    expect(ctx.stderr.text()).toContain(`${join(ctx.cwd, "missing.txt")} does not exist.`);
    expect(ctx.stderr.text()).toContain("use --token-stdin");
    expect(ctx.stderr.text()).not.toContain("LATCHKEY_HOME");
    expect(await keystore.list()).toEqual([]);
  });

  it("refuses --token in every spelling without echoing the value", async () => {
    for (const argv of [
      ["login", "--token", "npm_argv_secret"],
      ["login", "--token=npm_argv_secret"],
      ["login", "--npm", "--token", "npm_argv_secret", "--web"],
    ]) {
      const { ctx } = context();
      expect(await runCli(argv, ctx)).toBe(2);
      expect(ctx.stderr.text()).toContain("error LK_TOKEN_IN_ARGV");
      expect(ctx.stderr.text()).toContain("--token-stdin");
      expect(ctx.stderr.text() + ctx.stdout.text()).not.toContain("npm_argv_secret");
    }
  });

  it("logs in through the browser with npm's web login, opening loginUrl with BROWSER", async () => {
    const r = await registry();
    const opened: string[][] = [];
    const spawn: Spawn = async (command, args) => {
      opened.push([command, ...args]);
      await globalThis.fetch(args[0]!);
      return { code: 0, signal: null, stdout: "", stderr: "", timedOut: false };
    };
    const { ctx, keystore } = context({ env: { BROWSER: "my-browser" }, spawn });
    expect(await runCli(["login", "--registry", r.url, "--web"], ctx)).toBe(0);
    expect(opened).toHaveLength(1);
    expect(opened[0]![0]).toBe("my-browser");
    expect(ctx.stderr.text()).toContain(opened[0]![1]!);
    expect(r.issued).toHaveLength(1);
    expect(await keystore.get(`registry:${r.url.replace("http:", "")}`)).toBe(r.issued[0]);
    expect(opened.flat().join(" ")).not.toContain(r.issued[0]!);
  });

  it("falls back to the classic login with a password when the registry has no web login", async () => {
    const r = await registry({ webLogin: false, users: { alice: { password: "pw-secret" } } });
    const { ctx, keystore } = context({ stdin: "pw-secret\n" });
    expect(await runCli(["login", "--registry", r.url, "--web", "--user", "alice"], ctx)).toBe(0);
    expect(ctx.stderr.text()).toContain("offers no web login; logging in as alice with a password instead");
    expect(await keystore.get(`registry:${r.url.replace("http:", "")}`)).toBe(r.issued[0]);
    const without = context();
    expect(await runCli(["login", "--registry", r.url, "--web"], without.ctx)).toBe(1);
    expect(without.ctx.stderr.text()).toContain("error LK_LOGIN_FAILED");
    expect(without.ctx.stderr.text()).toContain("--user NAME");
  });

  it("asks for a one-time password at the terminal", async () => {
    const r = await registry({ users: { alice: { password: "pw", otp: "654321" } } });
    const asked: string[] = [];
    const { ctx } = context({
      tty: true,
      prompts: {
        secret: (message) => {
          asked.push(message);
          return Promise.resolve(message.startsWith("One-time") ? "654321" : "pw");
        },
      },
    });
    expect(await runCli(["login", "--registry", r.url, "--user", "alice"], ctx)).toBe(0);
    expect(asked).toEqual([
      `Password for alice at ${r.url}`,
      "One-time password (two-factor authentication)",
    ]);
  });
});

describe("whoami", () => {
  it("never sends NPM_TOKEN to another registry", async () => {
    const r = await registry({ tokens: { "stored-token": "alice", "npm-canary-token": "wrong" } });
    const nerf = r.url.replace("http:", "");
    const { ctx, fetches } = context({
      env: { NPM_TOKEN: "npm-canary-token" },
      stored: { [`registry:${nerf}`]: "stored-token" },
    });
    expect(await runCli(["whoami", "--registry", r.url, "--json"], ctx)).toBe(0);
    expect(JSON.parse(ctx.stdout.text())).toMatchObject({
      user: "alice",
      source: "keystore",
      storage: "memory",
    });
    expect(fetches.every((f) => !String(f.authorization).includes("npm-canary-token"))).toBe(true);
    expect(fetches).toEqual([{ url: `${r.url}-/whoami`, authorization: "Bearer stored-token" }]);
    expect(r.requests.map((q) => q.authorization)).toEqual(["Bearer stored-token"]);
  });

  it("explains every source per registry", async () => {
    const r = await registry({ tokens: { "stored-token": "alice" } });
    const nerf = r.url.replace("http:", "");
    const { ctx } = context({
      env: { NPM_TOKEN: "x", GH_TOKEN: "y" },
      stored: { [`registry:${nerf}`]: "stored-token" },
    });
    expect(await runCli(["whoami", "--registry", r.url, "--explain"], ctx)).toBe(0);
    expect(ctx.stdout.text()).toBe(
      [
        r.url,
        "  user:    alice",
        "  source:  stored token (memory store)",
        "  storage: memory store",
        "  sources, in precedence order:",
        "    - env NPM_TOKEN: set, but only sent to registry.npmjs.org",
        "    - env GH_TOKEN: set, but only sent to npm.pkg.github.com",
        "    - credential provider: none configured",
        "    - host CLI: no host CLI serves this registry",
        `    ✓ keystore registry:${nerf}: stored in the memory store`,
        "",
      ].join("\n"),
    );
  });

  it("fails with LK_TOKEN_INVALID and the login hint when the registry rejects the token", async () => {
    const r = await registry({ tokens: {} });
    const nerf = r.url.replace("http:", "");
    const { ctx } = context({ stored: { [`registry:${nerf}`]: "revoked-token" } });
    expect(await runCli(["whoami", "--registry", r.url], ctx)).toBe(1);
    expect(ctx.stdout.text()).toBe("");
    expect(ctx.stderr.text()).toContain("error LK_TOKEN_INVALID");
    expect(ctx.stderr.text()).toContain(`latchkey login --registry ${r.url}`);
    expect(ctx.stderr.text()).not.toContain("revoked-token");
  });

  it("covers every registry with a token source when none is named", async () => {
    const a = await registry({ tokens: { ta: "alice" } });
    const b = await registry({ tokens: {} });
    await mkdir(home, { recursive: true });
    await writeFile(join(home, "config.toml"), `[registries."${b.url}"]\ntokenEnv = "B_TOKEN"\n`);
    const { ctx } = context({
      env: { B_TOKEN: "tb" },
      stored: { [`registry:${a.url.replace("http:", "")}`]: "ta", "sso:other": "x" },
    });
    // The stored registry's URL comes from its login record (a nerf dart has no scheme).
    const { updateLoginRecord } = await import("../registry/config.js");
    await updateLoginRecord(ctx, a.url.replace("http:", ""), a.url);
    expect(await runCli(["whoami", "--json"], ctx)).toBe(1);
    const out = JSON.parse(ctx.stdout.text()) as {
      registries: { registry: string; user: string | null; error?: { code: string } }[];
    };
    const byUrl = Object.fromEntries(out.registries.map((e) => [e.registry, e]));
    expect(byUrl[a.url]).toMatchObject({ user: "alice", source: "keystore" });
    expect(byUrl[b.url]).toMatchObject({
      user: null,
      source: "env",
      sourceName: "B_TOKEN",
      error: { code: "LK_TOKEN_INVALID" },
    });
    // --json: the failure is reported as JSON on stderr too.
    expect(JSON.parse(ctx.stderr.text())).toMatchObject({ code: "LK_TOKEN_INVALID" });
  });

  it("includes the known registries whose variables are set, a GitLab CI job's own instance among them", async () => {
    const asked: FetchCall[] = [];
    const { ctx } = context({
      env: {
        NPM_TOKEN: "npm-env",
        GITHUB_TOKEN: "gh-env",
        CI_JOB_TOKEN: "job-env",
        CI_SERVER_HOST: "git.example.com",
        CI_API_V4_URL: "https://git.example.com/api/v4",
      },
    });
    // These registries are on the internet; a stub answers for them as each would for a valid token.
    const stubbed = {
      ...ctx,
      fetch: (input: string | URL | Request, init?: RequestInit) => {
        const url = input instanceof Request ? input.url : input instanceof URL ? input.href : input;
        const authorization = new Headers(init?.headers).get("authorization");
        asked.push({ url, authorization });
        return Promise.resolve(
          Response.json({ username: `user-of-${authorization?.slice("Bearer ".length)}` }),
        );
      },
    };
    expect(await runCli(["whoami", "--json"], stubbed)).toBe(0);
    const out = JSON.parse(ctx.stdout.text()) as {
      registries: { registry: string; user: string; sourceName: string }[];
    };
    expect(out.registries.map((e) => [e.registry, e.user, e.sourceName])).toEqual([
      ["https://git.example.com/api/v4/packages/npm/", "user-of-job-env", "CI_JOB_TOKEN"],
      ["https://npm.pkg.github.com/", "user-of-gh-env", "GITHUB_TOKEN"],
      ["https://registry.npmjs.org/", "user-of-npm-env", "NPM_TOKEN"],
    ]);
    expect(asked).toEqual([
      { url: "https://git.example.com/api/v4/packages/npm/-/whoami", authorization: "Bearer job-env" },
      { url: "https://npm.pkg.github.com/-/whoami", authorization: "Bearer gh-env" },
      { url: "https://registry.npmjs.org/-/whoami", authorization: "Bearer npm-env" },
    ]);
  });

  it("says plainly when no registry has any token", async () => {
    const { ctx } = context();
    expect(await runCli(["whoami"], ctx)).toBe(1);
    expect(ctx.stderr.text()).toContain("error LK_TOKEN_MISSING");
  });
});

describe("a project's tokenEnv (a cloned repository naming where your environment goes)", () => {
  const SECRET = "aws-canary-0c1d2e";
  async function attack(): Promise<{ r: NpmRegistry; file: string }> {
    // The project's own registry, which would accept the secret as a token and so learn it.
    const r = await registry({ tokens: { [SECRET]: "mallory" } });
    const file = join(root, "project", "latchkey.json");
    await writeFile(
      file,
      `{\n  "registries": {\n    "${r.url}": {\n      "tokenEnv": "AWS_SECRET_ACCESS_KEY"\n    }\n  }\n}\n`,
    );
    return { r, file };
  }
  const leaked = (text: string) => text.includes(SECRET);

  it("whoami sends nothing, token prints nothing, until the user approves", async () => {
    const { r, file } = await attack();
    const env = { AWS_SECRET_ACCESS_KEY: SECRET };

    const listed = context({ env });
    expect(await runCli(["whoami"], listed.ctx)).toBe(1);
    const named = context({ env });
    expect(await runCli(["whoami", "--json", "--registry", r.url], named.ctx)).toBe(1);
    const printed = context({ env });
    expect(await runCli(["token", "--registry", r.url], printed.ctx)).toBe(1);
    for (const { ctx, fetches } of [listed, named, printed]) {
      expect(fetches).toEqual([]);
      expect(leaked(ctx.stdout.text() + ctx.stderr.text())).toBe(false);
      expect(ctx.stderr.text()).toContain("LK_TOKEN_ENV_NOT_APPROVED");
      expect(ctx.stderr.text()).toContain(`${file}:4`);
    }
    expect(r.requests).toEqual([]);

    // Approved once on a terminal, it is the registry's token like any other.
    const approving = context({ env, tty: true, prompts: { confirm: () => Promise.resolve(true) } });
    expect(await runCli(["token", "--registry", r.url], approving.ctx)).toBe(0);
    expect(approving.ctx.stdout.text()).toBe(SECRET);
    const after = context({ env });
    expect(await runCli(["whoami", "--json", "--registry", r.url], after.ctx)).toBe(0);
    expect(JSON.parse(after.ctx.stdout.text())).toMatchObject({ user: "mallory", source: "env" });
  });
});

describe("token and logout", () => {
  it("prints the token alone, with no newline added on a pipe, and LK_TOKEN_MISSING on stderr when there is none", async () => {
    const { ctx } = context({ env: { NPM_TOKEN: "npm-env-token" } });
    expect(await runCli(["token", "--npm"], ctx)).toBe(0);
    expect(ctx.stdout.text()).toBe("npm-env-token");
    expect(ctx.stderr.text()).toBe("");
    const missing = context({ stored: {} });
    expect(await runCli(["token", "--registry", "https://npm.example.com/"], missing.ctx)).toBe(1);
    expect(missing.ctx.stdout.text()).toBe("");
    expect(missing.ctx.stderr.text()).toContain(
      "error LK_TOKEN_MISSING: No token is available for https://npm.example.com/.",
    );
    const unnamed = context();
    expect(await runCli(["token"], unnamed.ctx)).toBe(2);
  });

  it("removes one stored token, or all with --all, and nothing else", async () => {
    const stored = {
      "registry://a.example/": "ta",
      "registry://b.example/npm/": "tb",
      "sso:https://issuer": "keep",
      "wrapping-key": "keep",
    };
    const { ctx, keystore } = context({ stored });
    expect(await runCli(["logout", "--registry", "https://a.example"], ctx)).toBe(0);
    expect(await keystore.list()).toEqual([
      "registry://b.example/npm/",
      "sso:https://issuer",
      "wrapping-key",
    ]);
    expect(await runCli(["logout", "--registry", "https://a.example"], ctx)).toBe(1);
    expect(ctx.stderr.text()).toContain("error LK_TOKEN_MISSING: No token is stored for https://a.example/.");
    expect(await runCli(["logout", "--all"], ctx)).toBe(0);
    expect(await keystore.list()).toEqual(["sso:https://issuer", "wrapping-key"]);
  });
});

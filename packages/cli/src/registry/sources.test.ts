import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LatchkeyError } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import type { Context, Spawn, SpawnResult } from "../context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import type { Keystore } from "../keystore/types.js";
import { spawnProcess } from "../node-context.js";
import { resolvePaths } from "../paths.js";
import { APPROVALS_FILE, declarationSha256 } from "../project/approvals.js";
import { HOST_CLI_TIMEOUT_MS } from "./host-cli.js";
import { resolveRegistryToken, type ProviderTokenClient } from "./sources.js";
import type { ProviderDeclaration, SourceCheck, TokenResolution } from "./types.js";

const NPM = "https://registry.npmjs.org/";
const GITHUB = "https://npm.pkg.github.com/";
const GITLAB = "https://gitlab.com/api/v4/packages/npm/";
const SELF_GITLAB = "https://git.example.com/api/v4/packages/npm/";
const CUSTOM = "https://npm.example.com/";

let root: string;
let home: string;
let project: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-sources-"));
  home = join(root, "latchkey-home");
  project = join(root, "project");
  await mkdir(home);
  await mkdir(project);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

interface SpawnCall {
  command: string;
  args: readonly string[];
  timeoutMs: number | undefined;
}

type FakeAnswer = Partial<SpawnResult> | { error: string };

/** A spawn for host CLIs: each program's answer is given by the test; anything else is unexpected. */
function fakeSpawn(answers: Record<string, FakeAnswer>, calls: SpawnCall[]): Spawn {
  return (command, args, options) => {
    calls.push({ command, args, timeoutMs: options?.timeoutMs });
    const answer = answers[command];
    if (answer === undefined) throw new Error(`Unexpected call to spawn ${command}`);
    if ("error" in answer) {
      return Promise.reject(
        Object.assign(new Error(`spawn ${command} ${answer.error}`), { code: answer.error }),
      );
    }
    return Promise.resolve({ code: 0, signal: null, stdout: "", stderr: "", timedOut: false, ...answer });
  };
}

interface Setup {
  env?: Record<string, string>;
  stored?: Record<string, string>;
  spawn?: Spawn;
  /** Omit to make any keystore use an unexpected call. */
  keystore?: boolean;
  /** stdin and stderr are terminals, and approval prompts get this answer (recorded in `prompts`). */
  confirm?: boolean;
  os?: NodeJS.Platform;
  cwd?: string;
}

function context(setup: Setup = {}): { ctx: Context; keystore: Keystore; prompts: string[] } {
  const env = { LATCHKEY_HOME: home, ...setup.env };
  const keystore = createMemoryKeystore(setup.stored ?? {});
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  const prompts: string[] = [];
  const tty = setup.confirm !== undefined;
  const ctx = createTestContext({
    env,
    paths: resolvePaths(env),
    cwd: setup.cwd ?? project,
    stdin: { isTTY: tty, readAll: () => Promise.reject(new Error("Unexpected stdin")) },
    stderrTTY: tty,
    clock: { now: () => Date.parse("2030-01-01T00:00:00Z"), sleep: () => Promise.resolve() },
    ...(setup.confirm === undefined
      ? {}
      : {
          prompts: {
            secret: () => Promise.reject(new Error("Unexpected secret prompt")),
            confirm: (message: string) => {
              prompts.push(message);
              return Promise.resolve(setup.confirm!);
            },
          },
        }),
    ...(setup.os === undefined
      ? {}
      : { platform: { nodeVersion: "24.0.0", uid: null, machineIdPaths: [], os: setup.os } }),
    ...(setup.spawn ? { spawn: setup.spawn } : {}),
    ...(setup.keystore === false ? {} : { keystore: () => Promise.resolve(resolution) }),
  });
  return { ctx, keystore, prompts };
}

function check(resolution: TokenResolution, source: SourceCheck["source"], name?: string): SourceCheck {
  const found = resolution.checks.find((c) => c.source === source && (name === undefined || c.name === name));
  if (found === undefined)
    throw new Error(`no ${source} ${name ?? ""} check in ${JSON.stringify(resolution.checks)}`);
  return found;
}

function winner(resolution: TokenResolution): SourceCheck | undefined {
  const won = resolution.checks.filter((c) => c.won);
  expect(won.length).toBeLessThanOrEqual(1);
  return won[0];
}

const none: ProviderTokenClient = { token: () => Promise.reject(new Error("Unexpected call to provider")) };

describe("precedence", () => {
  it("takes the command's input over everything, consulting nothing else", async () => {
    const { ctx } = context({ env: { NPM_TOKEN: "env-token" }, keystore: false });
    const r = await resolveRegistryToken(ctx, NPM, { input: "input-token", providers: none });
    expect(r).toMatchObject({
      token: "input-token",
      source: "input",
      nerfDart: "//registry.npmjs.org/",
      kind: "npm",
    });
    expect(winner(r)).toMatchObject({ source: "input" });
    expect(check(r, "env", "NPM_TOKEN").reason).toBe(
      "not consulted: the token given to this command comes first",
    );
    expect(check(r, "keystore").reason).toContain("not consulted");
  });

  it("takes NPM_TOKEN for registry.npmjs.org before the stored token, without touching the keystore", async () => {
    const { ctx } = context({ env: { NPM_TOKEN: "env-token" }, keystore: false });
    const r = await resolveRegistryToken(ctx, "//registry.npmjs.org/", { providers: none });
    expect(r).toMatchObject({ token: "env-token", source: "env" });
    expect(winner(r)).toEqual({ source: "env", name: "NPM_TOKEN", won: true, reason: "set" });
    expect(check(r, "keystore")).toEqual({
      source: "keystore",
      name: "keystore registry://registry.npmjs.org/",
      won: false,
      reason: "not consulted: env NPM_TOKEN comes first",
    });
  });

  it("never gives NPM_TOKEN to another registry, and says why", async () => {
    const { ctx } = context({
      env: { NPM_TOKEN: "npm-only" },
      stored: { "registry://npm.example.com/": "stored" },
    });
    const r = await resolveRegistryToken(ctx, CUSTOM, { providers: none });
    expect(r).toMatchObject({ token: "stored", source: "keystore" });
    expect(check(r, "env", "NPM_TOKEN")).toEqual({
      source: "env",
      name: "NPM_TOKEN",
      won: false,
      reason: "set, but only sent to registry.npmjs.org",
    });
    const lookalike = await resolveRegistryToken(ctx, "https://registry.npmjs.org.evil.example/", {
      providers: none,
    });
    expect(lookalike.token).toBeNull();
  });

  it("gives GitHub Packages GH_TOKEN before GITHUB_TOKEN, and neither to anyone else", async () => {
    const both = context({ env: { GH_TOKEN: "gh", GITHUB_TOKEN: "actions" }, keystore: false });
    const r = await resolveRegistryToken(both.ctx, GITHUB, { providers: none });
    expect(r).toMatchObject({ token: "gh", source: "env", kind: "github" });
    expect(check(r, "env", "GITHUB_TOKEN").reason).toBe("not consulted: env GH_TOKEN comes first");

    const actions = context({ env: { GITHUB_TOKEN: "actions" }, keystore: false });
    expect(
      (await resolveRegistryToken(actions.ctx, "https://npm.pkg.github.com/octo-org", { providers: none }))
        .token,
    ).toBe("actions");

    const elsewhere = context({ env: { GH_TOKEN: "gh", GITHUB_TOKEN: "actions" } });
    const other = await resolveRegistryToken(elsewhere.ctx, NPM, { providers: none });
    expect(other.token).toBeNull();
    expect(check(other, "env", "GH_TOKEN").reason).toBe("set, but only sent to npm.pkg.github.com");
    expect(check(other, "env", "GITHUB_TOKEN").reason).toBe("set, but only sent to npm.pkg.github.com");
  });

  it("gives gitlab.com GITLAB_TOKEN, then CI_JOB_TOKEN", async () => {
    const both = context({ env: { GITLAB_TOKEN: "pat", CI_JOB_TOKEN: "job" }, keystore: false });
    expect(await resolveRegistryToken(both.ctx, GITLAB, { providers: none })).toMatchObject({
      token: "pat",
      kind: "gitlab",
    });
    const job = context({ env: { CI_JOB_TOKEN: "job" }, keystore: false });
    const r = await resolveRegistryToken(job.ctx, "https://gitlab.com/api/v4/projects/42/packages/npm/", {
      providers: none,
    });
    expect(r).toMatchObject({ token: "job", source: "env" });
    expect(check(r, "env", "GITLAB_TOKEN").reason).toBe("not set");
  });

  it("does not send GitLab variables to a host that merely looks like GitLab", async () => {
    const spawnCalls: SpawnCall[] = [];
    const { ctx } = context({
      env: { GITLAB_TOKEN: "pat", CI_JOB_TOKEN: "job" },
      spawn: fakeSpawn({ glab: { code: 1 } }, spawnCalls),
    });
    const r = await resolveRegistryToken(ctx, SELF_GITLAB, { providers: none });
    expect(r.kind).toBe("gitlab");
    expect(r.token).toBeNull();
    expect(check(r, "env", "GITLAB_TOKEN").reason).toContain("git.example.com is not gitlab.com");
    expect(check(r, "env", "CI_JOB_TOKEN").reason).toContain("only sent to GitLab hosts you trust");
    // glab is asked only for the token it holds for that very host.
    expect(spawnCalls.map((c) => c.args)).toEqual([["config", "get", "token", "--host", "git.example.com"]]);
    expect(check(r, "host-cli").reason).toBe("glab has no token for git.example.com (exit 1)");
  });

  it("sends GitLab variables to a self-managed GitLab declared in the user's config.toml", async () => {
    await writeFile(join(home, "config.toml"), `[registries."${SELF_GITLAB}"]\nkind = "gitlab"\n`);
    const { ctx } = context({ env: { GITLAB_TOKEN: "pat" }, keystore: false });
    const r = await resolveRegistryToken(ctx, SELF_GITLAB, { providers: none });
    expect(r).toMatchObject({ token: "pat", source: "env", kind: "gitlab" });
  });

  it("does not let a project's declaration make a host a trusted GitLab", async () => {
    await writeFile(
      join(project, "latchkey.json"),
      JSON.stringify({ registries: { [SELF_GITLAB]: { tokenEnv: "PROJECT_TOKEN" } } }),
    );
    const { ctx } = context({
      env: { GITLAB_TOKEN: "pat" },
      stored: {},
      spawn: fakeSpawn({ glab: { code: 1 } }, []),
    });
    const r = await resolveRegistryToken(ctx, SELF_GITLAB, { providers: none });
    expect(r.token).toBeNull();
    expect(check(r, "env", "PROJECT_TOKEN").reason).toBe("not set");
    expect(check(r, "env", "GITLAB_TOKEN").reason).toContain("git.example.com is not gitlab.com");
  });

  it("sends CI_JOB_TOKEN only to the CI server that issued it", async () => {
    const onServer = context({
      env: { CI_JOB_TOKEN: "job", CI_SERVER_HOST: "git.example.com" },
      keystore: false,
    });
    expect((await resolveRegistryToken(onServer.ctx, SELF_GITLAB, { providers: none })).token).toBe("job");
    const toGitlabCom = context({
      env: { CI_JOB_TOKEN: "job", CI_SERVER_HOST: "git.example.com" },
      stored: {},
      spawn: fakeSpawn({ glab: { code: 1 } }, []),
    });
    const r = await resolveRegistryToken(toGitlabCom.ctx, GITLAB, { providers: none });
    expect(r.token).toBeNull();
    expect(check(r, "env", "CI_JOB_TOKEN").reason).toBe(
      "set, but only sent to the CI server that issued it (git.example.com)",
    );
  });

  it("uses a configured tokenEnv from config.toml, found the way the platform finds variables", async () => {
    await writeFile(join(home, "config.toml"), `[registries."${CUSTOM}"]\ntokenEnv = "example_token"\n`);
    // Windows ignores case in variable names; POSIX does not.
    const windows = context({ env: { EXAMPLE_TOKEN: "ex" }, keystore: false, os: "win32" });
    expect(await resolveRegistryToken(windows.ctx, CUSTOM, { providers: none })).toMatchObject({
      token: "ex",
      source: "env",
    });
    const linux = context({ env: { EXAMPLE_TOKEN: "ex" }, stored: {}, os: "linux" });
    const r = await resolveRegistryToken(linux.ctx, CUSTOM, { providers: none });
    expect(r.token).toBeNull();
    expect(check(r, "env", "example_token").reason).toBe("not set");
  });

  it("treats an empty or malformed variable as absent and goes on", async () => {
    const { ctx } = context({
      env: { NPM_TOKEN: "" },
      stored: { "registry://registry.npmjs.org/": "stored" },
    });
    const r = await resolveRegistryToken(ctx, NPM, { providers: none });
    expect(r).toMatchObject({ token: "stored", source: "keystore" });
    expect(check(r, "env", "NPM_TOKEN").reason).toBe("set but empty");
    const spaced = context({ env: { NPM_TOKEN: "two words" }, stored: {} });
    const s = await resolveRegistryToken(spaced.ctx, NPM, { providers: none });
    expect(s.token).toBeNull();
    expect(check(s, "env", "NPM_TOKEN").reason).toContain("not a usable token");
  });

  it("reports every source and a null token when none has one", async () => {
    const { ctx } = context({ stored: {} });
    const r = await resolveRegistryToken(ctx, CUSTOM, { providers: none });
    expect(r).toEqual({
      nerfDart: "//npm.example.com/",
      kind: "custom",
      token: null,
      source: null,
      expiresAt: null,
      checks: [
        { source: "provider", name: "credential provider", won: false, reason: "none configured" },
        { source: "host-cli", name: "host CLI", won: false, reason: "no host CLI serves this registry" },
        {
          source: "keystore",
          name: "keystore registry://npm.example.com/",
          won: false,
          reason: "nothing stored in the memory store",
        },
      ],
    });
  });

  it("with explain, still looks at the lower sources and says why they lost", async () => {
    const calls: SpawnCall[] = [];
    const { ctx } = context({
      env: { GH_TOKEN: "env-gh" },
      stored: { "registry://npm.pkg.github.com/": "stored" },
      spawn: fakeSpawn({ gh: { stdout: "gho_cli\n" } }, calls),
    });
    const r = await resolveRegistryToken(ctx, GITHUB, { explain: true, providers: none });
    expect(r.token).toBe("env-gh");
    expect(check(r, "host-cli").reason).toBe(
      "gh is logged in to github.com; not used: env GH_TOKEN comes first",
    );
    expect(check(r, "keystore").reason).toBe(
      "stored in the memory store; not used: env GH_TOKEN comes first",
    );
  });
});

describe("a tokenEnv declared by the project", () => {
  const EVIL = "https://evil.example/";
  const SECRET = "aws-canary-9f3c1e";
  const file = () => join(project, "latchkey.json");
  /** The attack: a cloned project routes the user's AWS secret to its own host as that host's token. */
  const declare = (dir = project, tokenEnv = "AWS_SECRET_ACCESS_KEY", url = EVIL) =>
    writeFile(
      join(dir, "latchkey.json"),
      `{\n  "registries": {\n    "${url}": {\n      "tokenEnv": "${tokenEnv}"\n    }\n  }\n}\n`,
    );
  const env = { AWS_SECRET_ACCESS_KEY: SECRET };

  it("is not used without approval: no token, and an error naming the file and line", async () => {
    await declare();
    const { ctx } = context({ env, stored: {} });
    const error = await resolveRegistryToken(ctx, EVIL, { providers: none }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LatchkeyError);
    expect(error).toMatchObject({ code: "LK_TOKEN_ENV_NOT_APPROVED" });
    const { message, hint } = error as LatchkeyError;
    expect(message).toContain(`${file()}:4`);
    expect(message).toContain("AWS_SECRET_ACCESS_KEY");
    expect(`${message} ${hint ?? ""}`).not.toContain(SECRET);

    const explained = await resolveRegistryToken(ctx, EVIL, { providers: none, explain: true });
    expect(explained.token).toBeNull();
    expect(check(explained, "env", "AWS_SECRET_ACCESS_KEY")).toMatchObject({ won: false });
    expect(check(explained, "env", "AWS_SECRET_ACCESS_KEY").reason).toContain(
      "set, but not used (LK_TOKEN_ENV_NOT_APPROVED)",
    );
    expect(JSON.stringify(explained)).not.toContain(SECRET);
  });

  it("does not hide a token a later source holds, and asks nothing while the variable is unset", async () => {
    await declare();
    const stored = context({ env, stored: { "registry://evil.example/": "stored" } });
    expect(await resolveRegistryToken(stored.ctx, EVIL, { providers: none })).toMatchObject({
      token: "stored",
      source: "keystore",
    });
    const unset = context({ stored: {}, confirm: true });
    const r = await resolveRegistryToken(unset.ctx, EVIL, { providers: none });
    expect(check(r, "env", "AWS_SECRET_ACCESS_KEY").reason).toBe("not set");
    expect(unset.prompts).toEqual([]);
  });

  it("asks once on a terminal; the approval is bound to the project path, the variable and the URL", async () => {
    await declare();
    const declined = context({ env, stored: {}, confirm: false });
    await expect(resolveRegistryToken(declined.ctx, EVIL, { providers: none })).rejects.toMatchObject({
      code: "LK_TOKEN_ENV_NOT_APPROVED",
      message: expect.stringContaining("declined"),
    });
    await expect(readFile(join(home, APPROVALS_FILE))).rejects.toMatchObject({ code: "ENOENT" });

    const asked = context({ env, confirm: true, keystore: false });
    expect(await resolveRegistryToken(asked.ctx, EVIL, { providers: none })).toMatchObject({
      token: SECRET,
      source: "env",
    });
    expect(asked.prompts).toHaveLength(1);
    expect(asked.prompts[0]).toContain(`The project at ${project} (latchkey.json, line 4)`);
    expect(asked.prompts[0]).toContain("AWS_SECRET_ACCESS_KEY");
    expect(asked.prompts[0]).toContain("evil.example");
    expect(asked.prompts[0]).not.toContain(SECRET);
    const doc = JSON.parse(await readFile(join(home, APPROVALS_FILE), "utf8"));
    expect(doc.approvals).toEqual([
      {
        project,
        kind: "tokenEnv",
        sha256: declarationSha256("tokenEnv", { registry: EVIL, tokenEnv: "AWS_SECRET_ACCESS_KEY" }),
        declaration: { registry: EVIL, tokenEnv: "AWS_SECRET_ACCESS_KEY" },
        approvedAt: "2030-01-01T00:00:00.000Z",
      },
    ]);

    // Later, without a terminal: used without asking.
    const later = context({ env, keystore: false });
    expect((await resolveRegistryToken(later.ctx, EVIL, { providers: none })).token).toBe(SECRET);

    // Another variable, another URL or another project path is another declaration.
    await declare(project, "AWS_SESSION_TOKEN");
    const other = context({ env: { AWS_SESSION_TOKEN: SECRET }, stored: {} });
    await expect(resolveRegistryToken(other.ctx, EVIL, { providers: none })).rejects.toMatchObject({
      code: "LK_TOKEN_ENV_NOT_APPROVED",
    });
    await declare(project, "AWS_SECRET_ACCESS_KEY", "https://evil2.example/");
    const moved = context({ env, stored: {} });
    await expect(
      resolveRegistryToken(moved.ctx, "https://evil2.example/", { providers: none }),
    ).rejects.toMatchObject({ code: "LK_TOKEN_ENV_NOT_APPROVED" });
    const clone = join(root, "clone");
    await mkdir(clone);
    await declare(clone);
    const cloned = context({ env, stored: {}, cwd: clone });
    await expect(resolveRegistryToken(cloned.ctx, EVIL, { providers: none })).rejects.toMatchObject({
      code: "LK_TOKEN_ENV_NOT_APPROVED",
    });
  });

  it("under CI is refused even when approved, unless the user's environment or config.toml allows it", async () => {
    await declare();
    await resolveRegistryToken(context({ env, confirm: true, keystore: false }).ctx, EVIL, {
      providers: none,
    });
    const ci = context({ env: { ...env, CI: "true" }, stored: {}, confirm: true });
    await expect(resolveRegistryToken(ci.ctx, EVIL, { providers: none })).rejects.toMatchObject({
      code: "LK_TOKEN_ENV_NOT_APPROVED",
      message: expect.stringContaining("CI is set"),
    });
    expect(ci.prompts).toEqual([]);
    // The older switch is for providers only.
    const providersOnly = context({
      env: { ...env, CI: "true", LATCHKEY_ALLOW_PROJECT_PROVIDERS: "1" },
      stored: {},
    });
    await expect(resolveRegistryToken(providersOnly.ctx, EVIL, { providers: none })).rejects.toMatchObject({
      code: "LK_TOKEN_ENV_NOT_APPROVED",
    });

    const allowed = context({
      env: { ...env, CI: "true", LATCHKEY_ALLOW_PROJECT_CREDENTIALS: "1" },
      keystore: false,
    });
    expect((await resolveRegistryToken(allowed.ctx, EVIL, { providers: none })).token).toBe(SECRET);

    await writeFile(join(home, "config.toml"), "[ci]\nallow_project_credentials = true\n");
    const configured = context({ env: { ...env, CI: "1" }, keystore: false });
    expect((await resolveRegistryToken(configured.ctx, EVIL, { providers: none })).token).toBe(SECRET);

    await writeFile(join(home, "config.toml"), '[ci]\nallow_project_credentials = "yes"\n');
    const invalid = context({ env: { ...env, CI: "1" }, stored: {} });
    await expect(resolveRegistryToken(invalid.ctx, EVIL, { providers: none })).rejects.toMatchObject({
      code: "LK_CONFIG_INVALID",
    });
    const invalidExplained = await resolveRegistryToken(invalid.ctx, EVIL, {
      providers: none,
      explain: true,
    });
    expect(check(invalidExplained, "env", "AWS_SECRET_ACCESS_KEY").reason).toContain("LK_CONFIG_INVALID");
  });

  it("is the user's to decide when config.toml declares the same registry", async () => {
    await declare();
    await writeFile(join(home, "config.toml"), `[registries."${EVIL}"]\n`);
    const { ctx } = context({ env, stored: {} });
    const r = await resolveRegistryToken(ctx, EVIL, { providers: none });
    expect(r.token).toBeNull();
    expect(r.checks.some((c) => c.name === "AWS_SECRET_ACCESS_KEY")).toBe(false);
  });
});

describe("host CLI", () => {
  it("uses `gh auth token` for GitHub Packages before the stored token, and never stores it", async () => {
    const calls: SpawnCall[] = [];
    const { ctx, keystore } = context({
      stored: { "registry://npm.pkg.github.com/": "stored" },
      spawn: fakeSpawn({ gh: { stdout: "gho_from_cli\n" } }, calls),
    });
    const r = await resolveRegistryToken(ctx, GITHUB, { providers: none });
    expect(r).toMatchObject({ token: "gho_from_cli", source: "host-cli" });
    expect(winner(r)).toEqual({
      source: "host-cli",
      name: "gh auth token",
      won: true,
      reason: "gh is logged in to github.com",
    });
    expect(calls).toEqual([
      { command: "gh", args: ["auth", "token", "--hostname", "github.com"], timeoutMs: HOST_CLI_TIMEOUT_MS },
    ]);
    expect(await keystore.list()).toEqual(["registry://npm.pkg.github.com/"]);
    expect(await keystore.get("registry://npm.pkg.github.com/")).toBe("stored");
  });

  it("asks glab for the GitLab host, self-managed ones by --host", async () => {
    await writeFile(
      join(home, "config.toml"),
      `[registries."https://git.example.com:8443/api/v4/packages/npm/"]\nkind = "gitlab"\n`,
    );
    const calls: SpawnCall[] = [];
    const { ctx } = context({ spawn: fakeSpawn({ glab: { stdout: "glpat-x\n" } }, calls), keystore: false });
    expect((await resolveRegistryToken(ctx, GITLAB, { providers: none })).token).toBe("glpat-x");
    expect(
      (
        await resolveRegistryToken(ctx, "https://git.example.com:8443/api/v4/packages/npm/", {
          providers: none,
        })
      ).source,
    ).toBe("host-cli");
    expect(calls.map((c) => c.args)).toEqual([
      ["config", "get", "token", "--host", "gitlab.com"],
      ["config", "get", "token", "--host", "git.example.com:8443"],
    ]);
  });

  it.each([
    [{ error: "ENOENT" }, "gh is not installed"],
    [{ error: "EACCES" }, "gh could not be started (EACCES)"],
    [{ timedOut: true, code: null, signal: "SIGKILL" }, "timed out after 3 s"],
    [{ code: 1, stderr: "no oauth token" }, "gh has no token for github.com (exit 1)"],
    [{ code: 0, stdout: "" }, "gh has no token for github.com"],
    [{ code: 0, stdout: "line one\nline two\n" }, "gh printed something that is not a single token"],
  ] as [FakeAnswer, string][])("skips gh that answers %j: %s", async (answer, reason) => {
    const { ctx } = context({
      stored: { "registry://npm.pkg.github.com/": "stored" },
      spawn: fakeSpawn({ gh: answer }, []),
    });
    const r = await resolveRegistryToken(ctx, GITHUB, { providers: none });
    expect(r).toMatchObject({ token: "stored", source: "keystore" });
    expect(check(r, "host-cli")).toEqual({ source: "host-cli", name: "gh auth token", won: false, reason });
  });
});

describe("credential provider", () => {
  const declare = async (argv: string[]): Promise<void> => {
    await writeFile(
      join(home, "config.toml"),
      `[registries."${CUSTOM}"]\nprovider = ${JSON.stringify(argv)}\n`,
    );
  };

  it("comes after the environment and before the host CLI and keystore, keeping expiresAt", async () => {
    await declare(["issuer"]);
    const asked: [ProviderDeclaration, string][] = [];
    const providers: ProviderTokenClient = {
      token: (decl, uri) => {
        asked.push([decl, uri]);
        return Promise.resolve({ token: "from-provider", expiresAt: "2030-01-01T00:00:00Z" });
      },
    };
    const { ctx } = context({ stored: { "registry://npm.example.com/": "stored" } });
    const r = await resolveRegistryToken(ctx, "//npm.example.com/", { providers });
    expect(r).toMatchObject({
      token: "from-provider",
      source: "provider",
      expiresAt: "2030-01-01T00:00:00Z",
    });
    expect(asked).toEqual([
      [{ argv: ["issuer"], declaredIn: "user", file: join(home, "config.toml") }, CUSTOM],
    ]);
    expect(check(r, "keystore").reason).toContain("not consulted: provider issuer comes first");
  });

  it("falls through when the provider has nothing or fails, and rethrows its error when nothing else has a token", async () => {
    await declare(["issuer"]);
    const empty: ProviderTokenClient = { token: () => Promise.resolve(null) };
    const stored = context({ stored: { "registry://npm.example.com/": "stored" } });
    const r = await resolveRegistryToken(stored.ctx, CUSTOM, { providers: empty });
    expect(r.source).toBe("keystore");
    expect(check(r, "provider").reason).toBe("the provider had no credential for this registry");

    const broken: ProviderTokenClient = {
      token: () =>
        Promise.reject(new LatchkeyError("LK_PROVIDER_FAILED", { message: "The provider exited with 2." })),
    };
    const withStored = await resolveRegistryToken(stored.ctx, CUSTOM, { providers: broken });
    expect(withStored.source).toBe("keystore");
    expect(check(withStored, "provider").reason).toBe(
      "failed (LK_PROVIDER_FAILED): The provider exited with 2.",
    );

    const nothing = context({ stored: {} });
    await expect(resolveRegistryToken(nothing.ctx, CUSTOM, { providers: broken })).rejects.toMatchObject({
      code: "LK_PROVIDER_FAILED",
    });
    const explained = await resolveRegistryToken(nothing.ctx, CUSTOM, { providers: broken, explain: true });
    expect(explained.token).toBeNull();
  });

  it("runs a real provider program through the provider client (registry/provider-client.ts)", async () => {
    const script = join(root, "provider.mjs");
    await writeFile(
      script,
      'const i = process.argv.indexOf("--registry-uri");\n' +
        'process.stdout.write(JSON.stringify({ token: "prov-" + new URL(process.argv[i + 1]).host, expiresAt: null }));\n',
    );
    await declare([process.execPath, script]);
    const env = { LATCHKEY_HOME: home };
    const ctx = createTestContext({
      env,
      paths: resolvePaths(env),
      cwd: project,
      spawn: spawnProcess,
      clock: { now: () => Date.now(), sleep: () => Promise.resolve() },
    });
    const r = await resolveRegistryToken(ctx, CUSTOM);
    expect(r).toMatchObject({ token: "prov-npm.example.com", source: "provider", expiresAt: null });
  });
});

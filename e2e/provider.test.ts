// The npm credential-provider protocol, both sides, with real processes: a provider script (a small node program
// written here, which logs every call) declared in the user's config.toml and in a project's latchkey.json, read
// by the built CLI's `token` and `whoami --explain` against a real registry (verdaccio, which accepts only the
// token the provider hands out); project approval on a real pseudo-terminal; CI refusal; and Latchkey's own
// `credential-provider` as the provider of a second Latchkey home.
import { spawn } from "node:child_process";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../packages/cli/test/support/context.js";
import { spawnProcess } from "../packages/cli/src/node-context.js";
import { resolvePaths } from "../packages/cli/src/paths.js";
import { resolveRegistryToken } from "../packages/cli/src/registry/sources.js";
import { CLI, NO_DBUS, collect, isolatedEnv, tempDir } from "./support/cli.js";
import { allFiles, tempProject, type TempProject } from "./support/project.js";
import { startOnTerminal } from "./support/pty.js";
import { startVerdaccio, type Verdaccio } from "./support/verdaccio.js";

let verdaccio: Verdaccio;
/** The registry's real token for alice: what the provider hands out. */
let token: string;

beforeAll(async () => {
  verdaccio = await startVerdaccio();
  token = await verdaccio.addUser("alice", "alice-password-1");
});
afterAll(() => verdaccio?.stop());

/**
 * Writes a provider program into `dir`: it logs each call to `calls.log`, answers for `registryUrl` with the
 * token from its own `token` file (0600) and an expiry an hour ahead, and exits 1 (no credential) for any other
 * registry.
 */
async function writeProvider(
  dir: string,
  registryUrl: string,
  secret: string,
): Promise<{ argv: string[]; calls: () => Promise<unknown[]> }> {
  await mkdir(dir, { recursive: true });
  const script = join(dir, "provider.mjs");
  await writeFile(join(dir, "token"), secret, { mode: 0o600 });
  await writeFile(
    script,
    `import { appendFileSync, readFileSync } from "node:fs";
const here = new URL(".", import.meta.url);
const args = process.argv.slice(2);
appendFileSync(new URL("calls.log", here), JSON.stringify({ args, depth: process.env.LATCHKEY_PROVIDER_DEPTH, cwd: process.cwd() }) + "\\n");
const uri = args[args.indexOf("--registry-uri") + 1];
if (uri !== ${JSON.stringify(registryUrl)}) {
  process.stderr.write("provider: no credential for that registry\\n");
  process.exit(1);
}
const token = readFileSync(new URL("token", here), "utf8");
process.stdout.write(JSON.stringify({ token, expiresAt: new Date(Date.now() + 3600_000).toISOString() }) + "\\n");
`,
  );
  const log = join(dir, "calls.log");
  return {
    argv: [process.execPath, script],
    calls: async () => {
      const text = await readFile(log, "utf8").catch(() => "");
      return text
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as unknown);
    },
  };
}

const tomlString = (s: string) => JSON.stringify(s);
const tomlArray = (argv: string[]) => `[${argv.map(tomlString).join(", ")}]`;

async function writeUserProvider(home: string, registryUrl: string, argv: string[]): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  await writeFile(
    join(home, "config.toml"),
    `[registries.${tomlString(registryUrl)}]\nprovider = ${tomlArray(argv)}\n`,
    { mode: 0o600 },
  );
}

async function writeProjectProvider(
  project: TempProject,
  registryUrl: string,
  argv: string[],
): Promise<void> {
  await writeFile(
    project.file,
    `${JSON.stringify({ registries: { [registryUrl]: { provider: argv } } }, null, 2)}\n`,
  );
}

/** Files under `root` (other than the provider fixture's own token file) whose bytes contain `needle`. */
async function filesContaining(root: string, needle: string, except: string[] = []): Promise<string[]> {
  const hits: string[] = [];
  for (const file of await allFiles(root)) {
    if (!except.includes(file) && (await readFile(file)).includes(needle)) hits.push(file);
  }
  return hits;
}

describe("latchkey credential-provider (the provider side)", () => {
  let project: TempProject;
  beforeEach(async () => {
    project = await tempProject();
  });
  afterEach(() => project.cleanup());

  it("prints the protocol's JSON answer alone on stdout, exit 0", async () => {
    expect(
      (await project.cli(["keystore", "set", `registry:${verdaccio.nerfDart}`], { input: token })).code,
    ).toBe(0);
    const result = await project.cli(["credential-provider", "--registry-uri", verdaccio.url]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${JSON.stringify({ token, expiresAt: null })}\n`);
    expect(result.stderr).toBe("");
  });

  it("exits 1 with an empty stdout when no source has a credential", async () => {
    const result = await project.cli([
      "credential-provider",
      "--registry-uri",
      "https://npm.nothing-here.example/",
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("error LK_TOKEN_MISSING");
  });

  it("exits 2 for usage errors and 3 for any other error", async () => {
    const missing = await project.cli(["credential-provider"]);
    expect([missing.code, missing.stdout]).toEqual([2, ""]);
    const notHttp = await project.cli(["credential-provider", "--registry-uri", "file:///etc/passwd"]);
    expect([notHttp.code, notHttp.stdout]).toEqual([2, ""]);
    expect(notHttp.stderr).toContain("LK_REGISTRY_INVALID");
    await writeFile(
      project.file,
      '{ "registries": { "https://npm.example.com/": { "provider": "a shell line" } } }\n',
    );
    const badConfig = await project.cli([
      "credential-provider",
      "--registry-uri",
      "https://npm.example.com/",
    ]);
    expect([badConfig.code, badConfig.stdout]).toEqual([3, ""]);
    expect(badConfig.stderr).toContain("LK_CONFIG_INVALID");
  });

  it("documents its exit codes in --help", async () => {
    const help = await project.cli(["credential-provider", "--help"]);
    expect(help.stdout).toMatch(/Exit codes:\n\s+0 .*\n\s+1 .*LK_TOKEN_MISSING.*\n\s+2 .*usage.*\n\s+3 /);
  });
});

describe("a provider declared in the user's config.toml", () => {
  let project: TempProject;
  beforeEach(async () => {
    project = await tempProject();
  });
  afterEach(() => project.cleanup());

  it("serves `latchkey token` and `whoami --explain`, one call per process, the token never on disk", async () => {
    const provider = await writeProvider(join(project.root, "provider"), verdaccio.url, token);
    await writeUserProvider(project.latchkeyHome, verdaccio.url, provider.argv);

    const printed = await project.cli(["token", "--registry", verdaccio.url]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(token);
    const calls = await provider.calls();
    expect(calls).toEqual([
      { args: ["--registry-uri", verdaccio.url], depth: "1", cwd: project.latchkeyHome },
    ]);

    // whoami asks the registry, which accepts only this token: the provider's answer is what was sent.
    const who = await project.cli(["whoami", "--explain", "--json", "--registry", verdaccio.url]);
    expect(who.code, who.stderr).toBe(0);
    const entry = JSON.parse(who.stdout);
    expect(entry).toMatchObject({ user: "alice", verified: true, source: "provider" });
    expect(entry.checks.find((c: { source: string }) => c.source === "provider")).toMatchObject({
      won: true,
    });
    // Nothing is kept between processes: the second process asked again.
    expect(await provider.calls()).toHaveLength(2);

    // Passed through as a provider itself, Latchkey keeps the expiry its own provider gave.
    const relayed = await project.cli(["credential-provider", "--registry-uri", verdaccio.url]);
    expect(relayed.code, relayed.stderr).toBe(0);
    const answer = JSON.parse(relayed.stdout) as { token: string; expiresAt: string };
    expect(answer.token).toBe(token);
    expect(answer.expiresAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(await provider.calls()).toHaveLength(3);

    // The token lives only in the provider's own file; Latchkey wrote it nowhere.
    const tokenFile = join(project.root, "provider", "token");
    expect(await filesContaining(project.root, token, [tokenFile])).toEqual([]);
  });

  it("one provider call serves every request of one process", async () => {
    const provider = await writeProvider(join(project.root, "provider"), verdaccio.url, token);
    await writeUserProvider(project.latchkeyHome, verdaccio.url, provider.argv);
    // The real process spawner and clock; anything else the resolution touched would throw.
    const env = { PATH: process.env.PATH, HOME: project.home, LATCHKEY_HOME: project.latchkeyHome };
    const ctx = createTestContext({
      env,
      paths: resolvePaths(env),
      cwd: project.dir,
      spawn: spawnProcess,
      clock: { now: () => Date.now(), sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
    });
    const resolutions = await Promise.all(
      Array.from({ length: 8 }, () => resolveRegistryToken(ctx, verdaccio.url)),
    );
    for (let i = 0; i < 8; i++) resolutions.push(await resolveRegistryToken(ctx, verdaccio.url));
    expect(new Set(resolutions.map((r) => r.token))).toEqual(new Set([token]));
    expect(resolutions.every((r) => r.source === "provider" && r.expiresAt !== null)).toBe(true);
    expect(await provider.calls()).toHaveLength(1);
  });
});

/** Runs the CLI on a pseudo-terminal, answering the approval prompt with `answer`. */
async function cliOnTerminal(
  project: TempProject,
  args: string[],
  answer: "y" | "n",
): Promise<{ code: number | null; output: string }> {
  const terminal = startOnTerminal(process.execPath, [CLI, ...args], {
    cwd: project.dir,
    env: { ...project.env(), TERM: "dumb" },
    columns: 200,
    rows: 50,
  });
  await terminal.waitFor("Allow this command for this project?");
  terminal.type(answer);
  const { code, output } = await terminal.exited;
  return { code, output };
}

describe("a provider declared in the project's latchkey.json", () => {
  let project: TempProject;
  let provider: Awaited<ReturnType<typeof writeProvider>>;
  // Relative to the project root, where a project's provider runs: the same argv wherever the project lives.
  const argv = [process.execPath, "tools/provider.mjs"];
  beforeEach(async () => {
    project = await tempProject();
    provider = await writeProvider(join(project.dir, "tools"), verdaccio.url, token);
    await writeProjectProvider(project, verdaccio.url, argv);
  });
  afterEach(() => project.cleanup());

  it("does not run until approved on a terminal; then runs without asking, bound to registry, argv and path", async () => {
    // No terminal: refused, the provider never ran, and the explanation says why.
    const refused = await project.cli(["token", "--registry", verdaccio.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("LK_PROVIDER_NOT_APPROVED");
    const explained = await project.cli(["whoami", "--explain", "--json", "--registry", verdaccio.url]);
    const check = JSON.parse(explained.stdout).checks.find(
      (c: { source: string }) => c.source === "provider",
    );
    expect(check.reason).toContain("LK_PROVIDER_NOT_APPROVED");
    expect(await provider.calls()).toEqual([]);

    // Declined on a terminal: still nothing runs, nothing is recorded.
    const declined = await cliOnTerminal(project, ["token", "--registry", verdaccio.url], "n");
    expect(declined.output).toContain('"tools/provider.mjs"');
    expect(declined.code).toBe(1);
    expect(await provider.calls()).toEqual([]);

    // Approved on a terminal: the provider runs from the project root, and the approval is kept 0600.
    const approved = await cliOnTerminal(project, ["token", "--registry", verdaccio.url], "y");
    expect(approved.code, approved.output).toBe(0);
    expect(approved.output).toContain(token);
    expect(await provider.calls()).toEqual([
      { args: ["--registry-uri", verdaccio.url], depth: "1", cwd: project.dir },
    ]);
    const approvals = JSON.parse(await readFile(join(project.latchkeyHome, "approvals.json"), "utf8"));
    expect(approvals.approvals).toEqual([
      expect.objectContaining({
        project: project.dir,
        kind: "provider",
        declaration: { registry: verdaccio.url, argv },
      }),
    ]);

    // Later processes without a terminal run it without asking.
    const later = await project.cli(["whoami", "--json", "--registry", verdaccio.url]);
    expect(later.code, later.stderr).toBe(0);
    expect(JSON.parse(later.stdout)).toMatchObject({ user: "alice", source: "provider" });
    expect(await provider.calls()).toHaveLength(2);

    // A changed command needs a new approval.
    await writeProjectProvider(project, verdaccio.url, [...argv, "--extra"]);
    expect((await project.cli(["token", "--registry", verdaccio.url])).code).toBe(1);
    expect(await provider.calls()).toHaveLength(2);

    // So does the same command for another registry: its answer would go there.
    const elsewhere = verdaccio.url.replace("//127.0.0.1:", "//localhost:");
    expect(elsewhere).not.toBe(verdaccio.url);
    await writeProjectProvider(project, elsewhere, argv);
    const moved = await project.cli(["token", "--registry", elsewhere]);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toContain("LK_PROVIDER_NOT_APPROVED");
    expect(await provider.calls()).toHaveLength(2);
  });

  it("a moved project needs a new approval", async () => {
    const approved = await cliOnTerminal(project, ["token", "--registry", verdaccio.url], "y");
    expect(approved.code, approved.output).toBe(0);
    const { rename } = await import("node:fs/promises");
    const moved = join(project.root, "work", "moved-app");
    await rename(project.dir, moved);
    project.dir = moved;
    // The same latchkey.json, the same argv, approved for the old path only.
    expect(JSON.parse(await readFile(project.file, "utf8")).registries[verdaccio.url].provider).toEqual(argv);
    const refused = await project.cli(["token", "--registry", verdaccio.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("LK_PROVIDER_NOT_APPROVED");
  });

  it("under CI=true is refused even when approved, unless LATCHKEY_ALLOW_PROJECT_PROVIDERS=1", async () => {
    expect((await cliOnTerminal(project, ["token", "--registry", verdaccio.url], "y")).code).toBe(0);
    const before = (await provider.calls()).length;
    const ci = await project.cli(["whoami", "--explain", "--json", "--registry", verdaccio.url], {
      env: { CI: "true" },
    });
    expect(ci.code).not.toBe(0);
    const check = JSON.parse(ci.stdout).checks.find((c: { source: string }) => c.source === "provider");
    expect(check.reason).toContain("CI is set");
    expect(await provider.calls()).toHaveLength(before);

    const allowed = await project.cli(["token", "--registry", verdaccio.url], {
      env: { CI: "true", LATCHKEY_ALLOW_PROJECT_PROVIDERS: "1" },
    });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toBe(token);
    expect(await provider.calls()).toHaveLength(before + 1);
  });
});

describe("Latchkey as the credential provider of another Latchkey home", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    dir = await tempDir("lk-e2e-provider-roundtrip-");
  });
  afterEach(() => dir.cleanup());

  it("home B reads the token home A stores, through `latchkey credential-provider`", async () => {
    const homeA = join(dir.path, "home-a");
    const homeB = join(dir.path, "home-b");
    const work = join(dir.path, "work");
    await mkdir(work);
    await mkdir(homeA, { mode: 0o700 });
    const base = { HOME: dir.path, LATCHKEY_KEYSTORE: "file", DBUS_SESSION_BUS_ADDRESS: NO_DBUS };
    const run = (home: string, args: string[], input = "") => {
      const child = spawn(process.execPath, [CLI, ...args], {
        cwd: work,
        env: isolatedEnv({ ...base, LATCHKEY_HOME: home }),
        stdio: ["pipe", "pipe", "pipe"],
      });
      child.stdin.end(input);
      return collect(child);
    };
    expect((await run(homeA, ["keystore", "set", `registry:${verdaccio.nerfDart}`], token)).code).toBe(0);
    // B's provider is A's Latchkey: `env` sets A's home for the child, argv only, no shell.
    await writeUserProvider(homeB, verdaccio.url, [
      "env",
      `LATCHKEY_HOME=${homeA}`,
      process.execPath,
      CLI,
      "credential-provider",
    ]);
    await chmod(join(homeB, "config.toml"), 0o600);

    const printed = await run(homeB, ["token", "--registry", verdaccio.url]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(token);
    const who = await run(homeB, ["whoami", "--json", "--registry", verdaccio.url]);
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ user: "alice", verified: true, source: "provider" });
    // B stored nothing; A's copy is in its encrypted file store only.
    expect((await run(homeB, ["keystore", "list"])).stderr).toContain("empty");
    expect(await filesContaining(dir.path, token)).toEqual([]);
  });

  it("a provider that calls itself stops at the depth limit instead of looping", async () => {
    const home = join(dir.path, "home");
    const work = join(dir.path, "work");
    await mkdir(work);
    await writeUserProvider(home, verdaccio.url, [process.execPath, CLI, "credential-provider"]);
    const child = spawn(
      process.execPath,
      [CLI, "whoami", "--explain", "--json", "--registry", verdaccio.url],
      {
        cwd: work,
        env: isolatedEnv({
          HOME: dir.path,
          LATCHKEY_HOME: home,
          LATCHKEY_KEYSTORE: "file",
          DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
        }),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const result = await collect(child);
    expect(result.code).not.toBe(0);
    const check = JSON.parse(result.stdout).checks.find((c: { source: string }) => c.source === "provider");
    expect(check.won).toBe(false);
  });
});

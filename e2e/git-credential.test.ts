// git clone and git push over HTTP with basic auth, through the built CLI as git's credential helper: a real git
// client, git's own http-backend behind a loopback server that demands the password for fetch and push alike,
// `latchkey setup git` writing the helper into a temporary HOME's global config, and the credential stored first
// with `latchkey git-credential store` on stdin. After each flow, every file under the test's directories is
// searched for the password (and for the Basic header that carries it), and so are the argv and environment of
// every server-side child and git's own trace of every command it ran (GIT_TRACE, GIT_TRACE_CURL).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, afterAll, describe, expect, it } from "vitest";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { CLI, NO_DBUS, collect, isolatedEnv, runCli, tempDir, type CliResult } from "./support/cli.js";
import { gitHttpBackendAvailable, startGitServer, type GitServer } from "./support/git-server.js";

const mustRun = process.env.CI === "true";
const git = gitHttpBackendAvailable();
const keychain = secretServiceAvailable();
if (!git.ok && !mustRun) console.warn(`skipping the git helper e2e suite: ${git.reason}`);
if (!keychain.ok && !mustRun) console.warn(`skipping the git helper keychain e2e: ${keychain.reason}`);

describe("git helper prerequisites", () => {
  it.runIf(mustRun)("are installed in CI (a skipped git suite is a failure there)", () => {
    expect(git.reason ?? "available").toBe("available");
    expect(keychain.reason ?? "available").toBe("available");
  });
});

const USER = "alice";

/** Everything one flow uses, under one temporary root that the canary search covers. */
interface Flow {
  readonly root: string;
  readonly home: string;
  readonly latchkeyHome: string;
  readonly serverRoot: string;
  readonly work: string;
  readonly traceFile: string;
  readonly curlTraceFile: string;
  readonly password: string;
  readonly server: GitServer;
  env(): Record<string, string | undefined>;
  latchkey(args: readonly string[], input?: string): Promise<CliResult>;
  git(args: readonly string[], cwd?: string): Promise<CliResult>;
  cleanup(): Promise<void>;
}

function run(
  command: string,
  args: readonly string[],
  options: { env: Record<string, string | undefined>; cwd: string },
): Promise<CliResult> {
  const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end();
  return collect(child);
}

async function startFlow(keystoreEnv: Record<string, string>): Promise<Flow> {
  const tmp = await tempDir("lk-e2e-git-");
  const root = tmp.path;
  const home = join(root, "home");
  const latchkeyHome = join(root, "latchkey-home");
  const serverRoot = join(root, "server");
  const work = join(root, "work");
  const traces = join(root, "traces");
  for (const dir of [home, serverRoot, work, traces]) await mkdir(dir, { recursive: true });
  // A fresh random password per flow: a hit can only come from this run.
  const password = `lk-canary-${randomBytes(12).toString("hex")}`;
  const env = (): Record<string, string | undefined> =>
    isolatedEnv({
      ...keystoreEnv,
      HOME: home,
      XDG_CONFIG_HOME: join(root, "xdg-config"),
      LATCHKEY_HOME: latchkeyHome,
      // Only the temporary HOME's config counts, git never prompts, and it traces every command it runs.
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_TERMINAL_PROMPT: "0",
      GIT_TRACE: join(traces, "git-trace.log"),
      GIT_TRACE_CURL: join(traces, "git-curl.log"),
      GIT_TRACE_CURL_NO_DATA: "1",
      GIT_AUTHOR_NAME: "Latchkey Test",
      GIT_AUTHOR_EMAIL: "test@latchkey.invalid",
      GIT_COMMITTER_NAME: "Latchkey Test",
      GIT_COMMITTER_EMAIL: "test@latchkey.invalid",
    });
  const gitRun = (args: readonly string[], cwd = root) => run("git", args, { env: env(), cwd });

  // The served repository: one commit on main, pushed to a bare repository under the project root.
  const seed = join(root, "seed");
  expect((await gitRun(["init", "-q", "-b", "main", seed])).code).toBe(0);
  await writeFile(join(seed, "README.md"), "served by git http-backend\n");
  expect((await gitRun(["add", "README.md"], seed)).code).toBe(0);
  expect((await gitRun(["commit", "-q", "-m", "initial"], seed)).code).toBe(0);
  expect((await gitRun(["clone", "-q", "--bare", seed, join(serverRoot, "repo.git")])).code).toBe(0);

  const server = await startGitServer({ projectRoot: serverRoot, username: USER, password });
  return {
    root,
    home,
    latchkeyHome,
    serverRoot,
    work,
    traceFile: join(traces, "git-trace.log"),
    curlTraceFile: join(traces, "git-curl.log"),
    password,
    server,
    env,
    latchkey: (args, input) =>
      runCli(args, { env: env(), cwd: work, ...(input === undefined ? {} : { input }) }),
    git: gitRun,
    cleanup: async () => {
      await server.close();
      await tmp.cleanup();
    },
  };
}

/** Regular files under `roots` whose bytes contain any of `needles` (sockets and links are not files to read). */
async function filesContaining(roots: readonly string[], needles: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile() && needles.some((needle) => readFileSync(path).includes(needle)))
        hits.push(path);
    }
  };
  for (const root of roots) if (existsSync(root)) await walk(root);
  return hits;
}

/** The forms a password takes on its way: itself, and inside an HTTP Basic header. */
function secretForms(password: string): string[] {
  return [password, Buffer.from(`${USER}:${password}`).toString("base64")];
}

/** Asserts the password is nowhere outside the keystore: files, server children's argv and env, git's traces. */
async function expectNoLeak(flow: Flow, password: string, extraRoots: readonly string[] = []): Promise<void> {
  const forms = secretForms(password);
  // Every file under the flow's root: HOME (git config), LATCHKEY_HOME (the keystore), the served and cloned
  // repositories, the traces. The file store's store.enc is encrypted, so it must not contain the text either.
  expect(await filesContaining([flow.root, ...extraRoots], forms)).toEqual([]);
  expect(existsSync(join(flow.home, ".git-credentials"))).toBe(false);
  // The trace is only evidence if it recorded the helper runs.
  const trace = await readFile(flow.traceFile, "utf8");
  expect(trace).toContain("git-credential get");
  for (const form of forms) expect(trace).not.toContain(form);
  for (const spawned of flow.server.spawns) {
    const text = JSON.stringify(spawned);
    for (const form of forms) expect(text).not.toContain(form);
  }
}

function helperRuns(trace: string, operation: string): number {
  return trace
    .split("\n")
    .filter((line) => line.includes("run_command") && line.includes(`git-credential ${operation}`)).length;
}

async function cloneAndPush(flow: Flow): Promise<void> {
  const clone = join(flow.work, "clone");
  const cloned = await flow.git(["clone", "-q", `${flow.server.origin}/repo.git`, clone]);
  expect(cloned.code, `${cloned.stderr}\n${flow.server.backendErrors()}`).toBe(0);
  expect(await readFile(join(clone, "README.md"), "utf8")).toBe("served by git http-backend\n");
  // git asked without credentials first, got the 401, then came back with the stored ones.
  expect(flow.server.requests.some((r) => r.status === 401)).toBe(true);
  expect(flow.server.requests.some((r) => r.status === 200 && r.user === USER)).toBe(true);
  expect(flow.server.spawns.length).toBeGreaterThan(0);

  await writeFile(join(clone, "pushed.txt"), "pushed through the latchkey helper\n");
  expect((await flow.git(["add", "pushed.txt"], clone)).code).toBe(0);
  expect((await flow.git(["commit", "-q", "-m", "pushed through latchkey"], clone)).code).toBe(0);
  const pushed = await flow.git(["push", "-q", "origin", "HEAD:main"], clone);
  expect(pushed.code, `${pushed.stderr}\n${flow.server.backendErrors()}`).toBe(0);
  expect(flow.server.requests.some((r) => r.path.endsWith("/git-receive-pack") && r.user === USER)).toBe(
    true,
  );
  const log = await flow.git([
    "--git-dir",
    join(flow.serverRoot, "repo.git"),
    "log",
    "-1",
    "--format=%s",
    "main",
  ]);
  expect(log.stdout.trim()).toBe("pushed through latchkey");
}

const storeInput = (flow: Flow, password: string) =>
  `protocol=http\nhost=${flow.server.host}\nusername=${USER}\npassword=${password}\n`;

describe.skipIf(!git.ok)("git over HTTP through `latchkey git-credential` (file store)", () => {
  let flow: Flow;
  afterEach(() => flow.cleanup());
  const fileStore = { LATCHKEY_KEYSTORE: "file", DBUS_SESSION_BUS_ADDRESS: NO_DBUS };

  it("clones and pushes with the stored credential, and the password is in no file, argv or trace", async () => {
    flow = await startFlow(fileStore);
    const setup = await flow.latchkey(["setup", "git", "--global", "--host", flow.server.origin]);
    expect(setup.code, setup.stderr).toBe(0);
    const configured = await flow.git([
      "config",
      "--global",
      "--get-all",
      `credential.${flow.server.origin}.helper`,
    ]);
    expect(configured.stdout).toBe(`\n!'${CLI}' git-credential\n`);

    const stored = await flow.latchkey(["git-credential", "store"], storeInput(flow, flow.password));
    expect(stored.code, stored.stderr).toBe(0);
    expect(stored.stdout + stored.stderr).toBe("");
    expect((await flow.latchkey(["keystore", "list"])).stdout).toBe(`git:http://${flow.server.host}\n`);

    await cloneAndPush(flow);
    const trace = await readFile(flow.traceFile, "utf8");
    // Clone and push each asked the helper and, on success, told it to store (unchanged, so not rewritten).
    expect(helperRuns(trace, "get")).toBeGreaterThanOrEqual(2);
    expect(helperRuns(trace, "store")).toBeGreaterThanOrEqual(2);
    expect(helperRuns(trace, "erase")).toBe(0);
    // git redacts the Authorization header in its curl trace; the trace shows it was sent.
    expect(await readFile(flow.curlTraceFile, "utf8")).toContain("Authorization: Basic <redacted>");
    await expectNoLeak(flow, flow.password);
  });

  it("fails with a wrong stored password, and git's rejection erases it; the right one then works", async () => {
    flow = await startFlow(fileStore);
    expect((await flow.latchkey(["setup", "git", "--global"])).code).toBe(0);
    const wrong = `lk-wrong-${randomBytes(12).toString("hex")}`;
    expect((await flow.latchkey(["git-credential", "store"], storeInput(flow, wrong))).code).toBe(0);

    const failed = await flow.git([
      "clone",
      "-q",
      `${flow.server.origin}/repo.git`,
      join(flow.work, "denied"),
    ]);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain("Authentication failed");
    expect(flow.server.requests.every((r) => r.status === 401)).toBe(true);
    expect(flow.server.requests.some((r) => r.sentCredentials)).toBe(true);
    expect(helperRuns(await readFile(flow.traceFile, "utf8"), "erase")).toBeGreaterThanOrEqual(1);
    // git sent `erase` with the password it had been given, which is the stored one: the entry is gone.
    expect((await flow.latchkey(["keystore", "list"])).stdout).toBe("");
    expect(existsSync(join(flow.work, "denied"))).toBe(false);

    expect((await flow.latchkey(["git-credential", "store"], storeInput(flow, flow.password))).code).toBe(0);
    await cloneAndPush(flow);
    await expectNoLeak(flow, flow.password);
    await expectNoLeak(flow, wrong);
  });

  it("does not answer for another port or plain http when the credential is for https", async () => {
    flow = await startFlow(fileStore);
    expect((await flow.latchkey(["setup", "git", "--global"])).code).toBe(0);
    // Stored for https on the server's port, and for http on another port: neither is the server's identity.
    const [, port] = flow.server.host.split(":");
    for (const host of [`127.0.0.1:${port}`, `127.0.0.1:${Number(port) + 1}`]) {
      const protocol = host.endsWith(`:${port}`) ? "https" : "http";
      const input = `protocol=${protocol}\nhost=${host}\nusername=${USER}\npassword=${flow.password}\n`;
      expect((await flow.latchkey(["git-credential", "store"], input)).code).toBe(0);
    }
    const failed = await flow.git([
      "clone",
      "-q",
      `${flow.server.origin}/repo.git`,
      join(flow.work, "denied"),
    ]);
    expect(failed.code).not.toBe(0);
    // The helper was asked and answered nothing, so git had no credentials to send at all.
    expect(flow.server.requests.length).toBeGreaterThan(0);
    expect(flow.server.requests.every((r) => r.status === 401 && !r.sentCredentials)).toBe(true);
    expect(helperRuns(await readFile(flow.traceFile, "utf8"), "get")).toBeGreaterThanOrEqual(1);
    await expectNoLeak(flow, flow.password);
  });
});

describe.skipIf(!git.ok || !keychain.ok)(
  "git over HTTP through `latchkey git-credential` (OS keychain)",
  () => {
    let session: SecretServiceSession;
    let flow: Flow;
    beforeAll(async () => {
      session = await startSecretService({ variant: "unlocked" });
    });
    afterAll(() => session.stop());
    afterEach(() => flow.cleanup());

    it("keeps the credential in the Secret Service and clones and pushes with it", async () => {
      flow = await startFlow({ ...session.env, LATCHKEY_KEYSTORE: "keyring" });
      expect((await flow.latchkey(["setup", "git"])).code).toBe(0);
      expect((await flow.latchkey(["git-credential", "store"], storeInput(flow, flow.password))).code).toBe(
        0,
      );
      const account = `git:http://${flow.server.host}`;
      expect(
        JSON.parse((await session.secretToolLookup({ service: "latchkey", username: account }))!),
      ).toEqual({
        username: USER,
        password: flow.password,
      });
      expect(existsSync(join(flow.latchkeyHome, "store.enc"))).toBe(false);

      await cloneAndPush(flow);
      // The private session's directories too: gnome-keyring keeps its keyring there, encrypted.
      const sessionDirs = ["HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"]
        .map((name) => session.env[name])
        .filter((dir): dir is string => dir !== undefined);
      expect(sessionDirs).toHaveLength(5);
      expect(readdirSync(join(session.env.XDG_DATA_HOME!, "keyrings"))).toContain("login.keyring");
      await expectNoLeak(flow, flow.password, sessionDirs);

      // git's rejection of exactly this credential removes it from the keychain.
      expect((await flow.latchkey(["git-credential", "erase"], storeInput(flow, flow.password))).code).toBe(
        0,
      );
      expect(await session.secretToolLookup({ service: "latchkey", username: account })).toBeNull();
    });
  },
);

// `latchkey exec` with the real npm (and yarn 1) against a real registry: verdaccio on loopback requiring
// authentication for every read and publish. The token comes from `latchkey login` (the classic user login) and
// lives only in the keystore (the encrypted file store here); every client run is traced with strace to prove the
// token never reaches any process's argv, and every file the flows leave behind is searched for it.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_DBUS, tempDir } from "./support/cli.js";
import {
  CLIENTS,
  OFFLINE_ENV,
  YARN1_OFFLINE_ENV,
  filesContaining,
  installClients,
  run,
  runTracedCli,
  straceAvailable,
  tracedArgvs,
  NODE,
  type RunResult,
} from "./support/package-managers.js";
import { allFiles, expectSuccess } from "./support/project.js";
import { startVerdaccio, type Verdaccio } from "./support/verdaccio.js";
import { CLI } from "./support/cli.js";

const suite = straceAvailable("npm-exec") ? describe : describe.skip;

const PASSWORD = "correct-horse-battery-staple-7";
const PKG = "@lk-test/pkg";

let verdaccio: Verdaccio;
let tmp: { path: string; cleanup: () => Promise<void> };
let home: string;
let path: string;
let token: string;
let traces = 0;

function env(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    PATH: path,
    HOME: home,
    LATCHKEY_HOME: join(tmp.path, "latchkey-home"),
    LATCHKEY_KEYSTORE: "file",
    DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
    TMPDIR: join(tmp.path, "tmp"),
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    ...OFFLINE_ENV,
    ...extra,
  };
}

/** Runs `latchkey …` under strace; the trace goes beside the projects, so the secret search covers it too. */
async function latchkey(
  args: readonly string[],
  cwd: string,
  input?: string,
): Promise<RunResult & { trace: string }> {
  const trace = join(tmp.path, "traces", `${++traces}.trace`);
  const result = await runTracedCli(args, {
    env: env(),
    cwd,
    traceFile: trace,
    ...(input === undefined ? {} : { input }),
  });
  return { ...result, trace };
}

/** Asserts that the trace saw `program` start (so it did follow the tree) and that no argv held the token. */
async function expectCleanArgv(trace: string, program: string): Promise<void> {
  const argvs = await tracedArgvs(trace);
  expect(
    argvs.some((line) => line.includes(program)),
    `${program} in ${argvs.join("\n")}`,
  ).toBe(true);
  expect(argvs.filter((line) => line.includes(token) || line.includes(PASSWORD))).toEqual([]);
}

async function project(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(tmp.path, "work", name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
}

suite("latchkey exec with npm and yarn 1, against verdaccio", () => {
  let publisher: string;

  beforeAll(async () => {
    verdaccio = await startVerdaccio();
    tmp = await tempDir("lk-e2e-npm-");
    home = join(tmp.path, "home");
    await mkdir(home);
    await mkdir(join(tmp.path, "tmp"));
    await mkdir(join(tmp.path, "traces"));
    path = await installClients(join(tmp.path, "bin"), [CLIENTS.npm11, CLIENTS.yarn1]);

    // The classic login: the password goes on stdin, verdaccio registers the user and answers with a token.
    const login = await run(NODE, [CLI, "login", "--registry", verdaccio.url, "--user", "alice"], {
      env: env(),
      cwd: home,
      input: PASSWORD,
    });
    expectSuccess(login);
    const printed = await run(NODE, [CLI, "token", "--registry", verdaccio.url], { env: env(), cwd: home });
    expectSuccess(printed);
    token = printed.stdout.trim();
    expect(token.length).toBeGreaterThan(20);

    publisher = await project("pkg", {
      "package.json": JSON.stringify({ name: PKG, version: "1.0.0", main: "index.js" }),
      "index.js": "module.exports = 'from verdaccio';\n",
      ".npmrc": `${PKG.split("/")[0]}:registry=${verdaccio.url}\n`,
    });
  });

  afterAll(async () => {
    await verdaccio?.stop();
    await tmp?.cleanup();
  });

  it("npm publish fails without Latchkey (the registry requires authentication)", async () => {
    const plain = await run("npm", ["publish"], { env: env(), cwd: publisher });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/E401|need auth|ENEEDAUTH/);
  });

  it(`publishes ${PKG} with npm ${CLIENTS.npm11.version} through latchkey exec, no token in argv`, async () => {
    const published = await latchkey(["exec", "--", "npm", "publish"], publisher);
    expectSuccess(published);
    expect(published.stdout).toContain(`+ ${PKG}@1.0.0`);
    await expectCleanArgv(published.trace, join(tmp.path, "bin", "npm"));
    // The project's .npmrc still names only the scope's registry.
    expect(await readFile(join(publisher, ".npmrc"), "utf8")).toBe(`@lk-test:registry=${verdaccio.url}\n`);

    const view = await latchkey(["exec", "--", "npm", "view", PKG, "version"], publisher);
    expectSuccess(view);
    expect(view.stdout.trim()).toBe("1.0.0");
  });

  it("npm install of the scoped package fails without Latchkey and works through latchkey exec", async () => {
    const app = await project("app", {
      "package.json": JSON.stringify({
        name: "app",
        version: "0.0.0",
        private: true,
        dependencies: { [PKG]: "1.0.0" },
      }),
      ".npmrc": `@lk-test:registry=${verdaccio.url}\n`,
    });
    const plain = await run("npm", ["install"], { env: env(), cwd: app });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/E401|authorization required/i);

    const installed = await latchkey(["exec", "--", "npm", "install"], app);
    expectSuccess(installed);
    await expectCleanArgv(installed.trace, join(tmp.path, "bin", "npm"));
    expect(await readFile(join(app, "node_modules", "@lk-test", "pkg", "index.js"), "utf8")).toContain(
      "from verdaccio",
    );
    expect(await readFile(join(app, ".npmrc"), "utf8")).toBe(`@lk-test:registry=${verdaccio.url}\n`);
    // Nothing wrote a user .npmrc either.
    await expect(readFile(join(home, ".npmrc"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it(`yarn ${CLIENTS.yarn1.version} installs through setup npmrc + exec, and not without exec`, async () => {
    const app = await project("yarn-app", {
      "package.json": JSON.stringify({
        name: "yarn-app",
        version: "0.0.0",
        private: true,
        dependencies: { [PKG]: "1.0.0" },
      }),
      ".npmrc": `@lk-test:registry=${verdaccio.url}\n`,
    });
    const setup = await latchkey(["setup", "npmrc"], app);
    expectSuccess(setup);
    const variable = setup.stdout.trim().split(/\s+/)[0]!;
    expect(variable).toMatch(/^LATCHKEY_TOKEN_127_0_0_1_\d+_[0-9A-F]{8}$/);
    expect(await readFile(join(home, ".npmrc"), "utf8")).toBe(
      `${verdaccio.nerfDart}:_authToken=\${${variable}}\n`,
    );

    const yarnArgs = ["install", "--non-interactive", "--cache-folder", join(tmp.path, "yarn-cache")];
    const plain = await run("yarn", yarnArgs, { env: env(YARN1_OFFLINE_ENV), cwd: app });
    expect(plain.code).not.toBe(0);
    // yarn 1 refuses an .npmrc whose ${VARIABLE} is unset: it fails closed, naming the variable.
    expect(`${plain.stdout}${plain.stderr}`).toContain(`Failed to replace env in config: \${${variable}}`);

    const trace = join(tmp.path, "traces", "yarn.trace");
    const installed = await runTracedCli(["exec", "--", "yarn", ...yarnArgs], {
      env: env(YARN1_OFFLINE_ENV),
      cwd: app,
      traceFile: trace,
    });
    expectSuccess(installed);
    await expectCleanArgv(trace, join(tmp.path, "bin", "yarn"));
    expect(await readFile(join(app, "node_modules", "@lk-test", "pkg", "index.js"), "utf8")).toContain(
      "from verdaccio",
    );
  });

  it("passes the program's exit code and its termination signal through", async () => {
    const code = await run(NODE, [CLI, "exec", "--", "sh", "-c", "exit 7"], { env: env(), cwd: home });
    expect(code.code).toBe(7);
    const signalled = await run(NODE, [CLI, "exec", "--", "sh", "-c", "kill -TERM $$"], {
      env: env(),
      cwd: home,
    });
    expect(signalled.signal).toBe("SIGTERM");
  });

  it("the argv check can fail: a traced argument is seen in a grandchild", async () => {
    const decoy = "decoy-not-a-token-1234567890";
    const trace = join(tmp.path, "traces", "decoy.trace");
    expectSuccess(
      await runTracedCli(["exec", "--", "sh", "-c", `true ${decoy}`], {
        env: env(),
        cwd: home,
        traceFile: trace,
      }),
    );
    const seen = (await tracedArgvs(trace)).filter((line) => line.includes(decoy));
    // latchkey's own argv, and the shell's two levels down.
    expect(seen).toHaveLength(2);
    expect(seen[1]).toMatch(/execve\("\/(usr\/)?bin\/sh", \["sh", "-c", "true decoy/);
  });

  it("leaves the token in no file: HOME, projects, caches, temp files, traces and verdaccio's storage", async () => {
    const hits = await filesContaining([tmp.path, verdaccio.dir], [token, PASSWORD]);
    expect(hits).toEqual([]);
    // The search covered what the flows wrote: the keystore's encrypted file, npm's cache (where the package's
    // tarball sits, compressed), yarn's cache and the traces.
    const files = await allFiles(tmp.path);
    expect(files).toContain(join(tmp.path, "latchkey-home", "store.enc"));
    expect(files.some((f) => f.startsWith(join(home, ".npm", "_cacache")))).toBe(true);
    expect(files.some((f) => f.startsWith(join(tmp.path, "yarn-cache")))).toBe(true);
    expect(files.filter((f) => f.endsWith(".trace")).length).toBeGreaterThan(3);
  });
});

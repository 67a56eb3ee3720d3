// `latchkey setup pnpm` with the real pnpm 10 and pnpm 12 against verdaccio (authentication required for every
// read): `latchkey login` stores the token, `setup pnpm` points each pnpm at a generated tokenHelper shim, and
// `pnpm install` of a scoped package then works with no token in any file or argv. Each install runs under strace,
// which records every program started below pnpm (the shim, `latchkey token`), and the test's whole tree is
// searched for the token afterwards.
import { lstat, mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, NO_DBUS, tempDir } from "./support/cli.js";
import {
  CLIENTS,
  NODE,
  OFFLINE_ENV,
  TEST_PACKAGE,
  filesContaining,
  installClients,
  run,
  runTraced,
  straceAvailable,
  tracedArgvs,
  type Client,
} from "./support/package-managers.js";
import { allFiles, expectSuccess } from "./support/project.js";
import { startVerdaccio, type Verdaccio } from "./support/verdaccio.js";

const suite = straceAvailable("pnpm-setup") ? describe : describe.skip;
const PASSWORD = "pnpm-setup-password-42";

let verdaccio: Verdaccio;
let tmp: { path: string; cleanup: () => Promise<void> };
let home: string;
let token: string;

function env(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    PATH: `${join(tmp.path, "bin-npm")}:${process.env.PATH ?? ""}`,
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

function latchkey(args: readonly string[], input?: string) {
  return run(NODE, [CLI, ...args], { env: env(), cwd: home, ...(input === undefined ? {} : { input }) });
}

/** A consumer project for one pnpm version, with caches and store of its own. */
async function consumer(
  client: Client,
  name: string,
): Promise<{ app: string; env: Record<string, string | undefined> }> {
  const base = join(tmp.path, name);
  const app = join(base, "app");
  await mkdir(app, { recursive: true });
  await writeFile(
    join(app, "package.json"),
    JSON.stringify({ name, version: "0.0.0", private: true, dependencies: { [TEST_PACKAGE]: "1.0.0" } }),
  );
  await writeFile(join(app, ".npmrc"), `@lk-test:registry=${verdaccio.url}\n`);
  const path = await installClients(join(base, "bin"), [client]);
  return {
    app,
    env: env({
      PATH: path,
      XDG_CACHE_HOME: join(base, "xdg", "cache"),
      XDG_DATA_HOME: join(base, "xdg", "data"),
      XDG_STATE_HOME: join(base, "xdg", "state"),
      XDG_CONFIG_HOME: join(base, "xdg", "config"),
    }),
  };
}

suite("latchkey setup pnpm with pnpm 10 and pnpm 12, against verdaccio", () => {
  beforeAll(async () => {
    verdaccio = await startVerdaccio();
    tmp = await tempDir("lk-e2e-pnpm-");
    home = join(tmp.path, "home");
    for (const dir of [home, join(tmp.path, "tmp"), join(tmp.path, "traces")]) await mkdir(dir);
    await installClients(join(tmp.path, "bin-npm"), [CLIENTS.npm11]);

    expectSuccess(await latchkey(["login", "--registry", verdaccio.url, "--user", "bob"], PASSWORD));
    const printed = await latchkey(["token", "--registry", verdaccio.url]);
    expectSuccess(printed);
    token = printed.stdout.trim();

    const pkg = join(tmp.path, "pkg");
    await mkdir(pkg);
    await writeFile(join(pkg, "package.json"), JSON.stringify({ name: TEST_PACKAGE, version: "1.0.0" }));
    await writeFile(join(pkg, "index.js"), "module.exports = 'from verdaccio';\n");
    await writeFile(join(pkg, ".npmrc"), `@lk-test:registry=${verdaccio.url}\n`);
    expectSuccess(await run(NODE, [CLI, "exec", "--", "npm", "publish"], { env: env(), cwd: pkg }));
  });

  afterAll(async () => {
    await verdaccio?.stop();
    await tmp?.cleanup();
  });

  it.each([
    ["pnpm 10", CLIENTS.pnpm10],
    ["pnpm 12", CLIENTS.pnpm12],
  ])("%s cannot install the package without Latchkey (control)", async (name, client) => {
    const { app, env: clientEnv } = await consumer(client, `control-${name.replace(" ", "")}`);
    const result = await run("pnpm", ["install"], { env: clientEnv, cwd: app });
    expect(result.code).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toMatch(/401|Unauthorized/);
  });

  it("writes one tokenHelper line into ~/.npmrc and a 0700 shim that holds no token; again changes nothing", async () => {
    await writeFile(join(home, ".npmrc"), "; kept\nsave-exact=true\n");
    const first = await latchkey(["setup", "pnpm", "--json"]);
    expectSuccess(first);
    const report = JSON.parse(first.stdout) as {
      registries: { registry: string; helper: string; change: string }[];
    };
    expect(report.registries).toHaveLength(1);
    const [entry] = report.registries;
    expect(entry).toMatchObject({ registry: verdaccio.nerfDart, change: "added" });
    expect(await readFile(join(home, ".npmrc"), "utf8")).toBe(
      `; kept\nsave-exact=true\n${verdaccio.nerfDart}:tokenHelper=${entry!.helper}\n`,
    );
    expect((await stat(entry!.helper)).mode & 0o777).toBe(0o700);
    const script = await readFile(entry!.helper, "utf8");
    // The shim runs the latchkey command by its path, on the first node on PATH: Node's own path is not written.
    expect(script).toContain(`token=$('${CLI}' token --registry '${verdaccio.url}')`);
    expect(script).not.toContain(NODE);
    expect(script).not.toContain(token);

    const before = await lstat(join(home, ".npmrc"));
    const again = await latchkey(["setup", "pnpm", "--json"]);
    expectSuccess(again);
    expect(JSON.parse(again.stdout).registries[0].change).toBe("unchanged");
    expect((await lstat(join(home, ".npmrc"))).mtimeMs).toBe(before.mtimeMs);
  });

  it.each([
    ["pnpm 10", CLIENTS.pnpm10],
    ["pnpm 12", CLIENTS.pnpm12],
  ])("%s installs the package through the tokenHelper; no token in any argv", async (name, client) => {
    const { app, env: clientEnv } = await consumer(client, `install-${name.replace(" ", "")}`);
    const trace = join(tmp.path, "traces", `${name.replace(" ", "")}.trace`);
    const result = await runTraced("pnpm", ["install"], { env: clientEnv, cwd: app, traceFile: trace });
    expectSuccess(result);
    expect(result.stdout).toContain(`${TEST_PACKAGE} 1.0.0`);
    expect(await readFile(join(app, "node_modules", "@lk-test", "pkg", "index.js"), "utf8")).toContain(
      "from verdaccio",
    );
    const argvs = await tracedArgvs(trace);
    // pnpm ran the shim, and the shim ran `latchkey token`: the token came from Latchkey, through stdout only.
    const shim = (await readdir(join(tmp.path, "latchkey-home", "bin")))[0]!;
    expect(argvs.some((line) => line.includes(shim))).toBe(true);
    expect(argvs.some((line) => line.includes(`"${CLI}", "token", "--registry"`))).toBe(true);
    expect(argvs.filter((line) => line.includes(token) || line.includes(PASSWORD))).toEqual([]);
    // The project's .npmrc is as it was.
    expect(await readFile(join(app, ".npmrc"), "utf8")).toBe(`@lk-test:registry=${verdaccio.url}\n`);
  });

  it("leaves the token in no file: HOME, projects, pnpm stores and caches, shims, traces, verdaccio's storage", async () => {
    expect(await filesContaining([tmp.path, verdaccio.dir], [token, PASSWORD])).toEqual([]);
    const files = await allFiles(tmp.path);
    expect(files).toContain(join(tmp.path, "latchkey-home", "store.enc"));
    expect(files.some((f) => f.includes(join("install-pnpm10", "xdg")))).toBe(true);
    expect(files.some((f) => f.includes(join("install-pnpm12", "xdg")))).toBe(true);
    expect(files.filter((f) => f.endsWith(".trace"))).toHaveLength(2);
  });
});

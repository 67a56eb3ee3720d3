// Real package managers for the registry suites: npm, pnpm 10, pnpm 12, yarn 1 and yarn 4, installed as
// devDependencies of the e2e workspace (npm aliases, exact versions) and run with the project's Node 24, so a test
// run downloads nothing. Also: a whole-tree search for secrets in files, and execve tracing to prove a secret never
// reached any process's argv.
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { allFiles } from "./project.js";
import { CLI, collect, tempDir, type CliResult } from "./cli.js";
import { startVerdaccio, type Verdaccio } from "./verdaccio.js";

/** An installed package's directory: the e2e workspace's own node_modules, else the hoisted root one. */
function packageDir(name: string): string {
  const candidates = ["../node_modules/", "../../node_modules/"].map((base) =>
    fileURLToPath(new URL(`${base}${name}/`, import.meta.url)),
  );
  const found = candidates.find((dir) => existsSync(join(dir, "package.json")));
  if (found === undefined)
    throw new Error(`${name} is not installed: run \`npm install\` at the repository root.`);
  return found;
}

/** The Node the project runs on (node_modules/node, 24.x), not the system's. */
export const NODE = join(packageDir("node"), "bin", "node");

/** A client: the executable that runs it, and its version as installed. */
export interface Client {
  /** The name the program is called by (its link on PATH). */
  readonly command: "npm" | "pnpm" | "yarn";
  /** What PATH's link points at: a script with a `#!/usr/bin/env node` line (NODE comes first on PATH), or pnpm
   * 12's native binary. */
  readonly executable: string;
  readonly version: string;
}

function client(alias: string, command: Client["command"], executable: string): Client {
  const dir = packageDir(alias);
  // Some packages' "exports" hide package.json from require.resolve, so it is read as a file.
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string };
  return {
    command,
    executable: executable.startsWith("/") ? executable : join(dir, executable),
    version: manifest.version,
  };
}

/** pnpm 12's native binary for this machine, from the optional dependency its wrapper package installs. */
function pnpmNativeBinary(): string {
  return join(packageDir(`@pnpm/exe.${process.platform}-${process.arch}`), "pnpm");
}

/** The clients, by the e2e workspace's devDependency alias. */
export const CLIENTS = {
  npm11: client("npm11", "npm", "bin/npm-cli.js"),
  pnpm10: client("pnpm10", "pnpm", "bin/pnpm.cjs"),
  pnpm12: client("pnpm12", "pnpm", pnpmNativeBinary()),
  yarn1: client("yarn1", "yarn", "bin/yarn.js"),
  yarn4: client("yarn4", "yarn", "bin/yarn.js"),
} as const;

/**
 * Links `dir/<command>` to each client, so `latchkey exec -- npm …` finds `npm` on PATH as on a developer's
 * machine. Links, not wrapper scripts: Debian's /bin/sh (dash) drops environment variables whose names are not
 * shell identifiers, such as `npm_config_//host/:_authToken`, so a shell script in between would hide them.
 * Returns the PATH to use: the links, NODE's directory, then the system's.
 */
export async function installClients(dir: string, clients: readonly Client[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const c of clients) {
    await rm(join(dir, c.command), { force: true });
    await symlink(c.executable, join(dir, c.command));
  }
  return [dir, dirname(NODE), "/usr/local/bin", "/usr/bin", "/bin"].join(":");
}

/**
 * Settings that keep the clients offline and quiet: no update checks, audits or telemetry (they would call the
 * public registry), yarn 4 with a node_modules tree and its cache in the project.
 */
export const OFFLINE_ENV: Readonly<Record<string, string>> = {
  npm_config_update_notifier: "false",
  npm_config_fund: "false",
  npm_config_audit: "false",
  YARN_ENABLE_TELEMETRY: "0",
  YARN_ENABLE_GLOBAL_CACHE: "false",
  YARN_NODE_LINKER: "node-modules",
};

/** yarn 1's own switch for its update check (yarn 4 rejects the variable as an unknown setting). */
export const YARN1_OFFLINE_ENV: Readonly<Record<string, string>> = { YARN_DISABLE_SELF_UPDATE_CHECK: "true" };

/** Whether strace can trace here; under CI=true its absence is an error, not a skip. */
export function straceAvailable(suite: string): boolean {
  const ok = spawnSync("strace", ["-V"]).status === 0 && process.platform === "linux";
  if (!ok && process.env.CI === "true")
    throw new Error(`${suite}: strace is required under CI=true (apt package strace)`);
  if (!ok) console.warn(`${suite}: skipped, strace is not installed`);
  return ok;
}

/** A process's outcome. */
export type RunResult = CliResult;

/** Runs a program to completion without a shell. */
export function run(
  command: string,
  args: readonly string[],
  options: { env: Record<string, string | undefined>; cwd: string; input?: string },
): Promise<RunResult> {
  const child = spawn(command, [...args], {
    env: options.env,
    cwd: options.cwd,
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.on("error", () => undefined);
  child.stdin.end(options.input ?? "");
  return collect(child);
}

/**
 * Runs a program under `strace -f -e trace=execve`, recording the argv of every program started below it in
 * `traceFile`. Environment blocks are not printed (strace shows only their size), so the trace holds no token.
 */
export function runTraced(
  command: string,
  args: readonly string[],
  options: { env: Record<string, string | undefined>; cwd: string; traceFile: string; input?: string },
): Promise<RunResult> {
  return run(
    "strace",
    [
      "-f",
      "-qq",
      "--seccomp-bpf",
      "-e",
      "trace=execve",
      "-s",
      "65536",
      "-o",
      options.traceFile,
      command,
      ...args,
    ],
    options,
  );
}

/**
 * Runs the built latchkey CLI under `strace -f -e trace=execve`, so every program started anywhere below it
 * (npm, node, pnpm's native binary, a tokenHelper shim, `latchkey token`) has its argv recorded in `traceFile`.
 * Environment blocks are not printed (strace shows only their size), so the trace itself holds no token.
 */
export function runTracedCli(
  args: readonly string[],
  options: { env: Record<string, string | undefined>; cwd: string; traceFile: string; input?: string },
): Promise<RunResult> {
  return runTraced(NODE, [CLI, ...args], options);
}

/** Every argv recorded in a trace, one string per successful execve. */
export async function tracedArgvs(traceFile: string): Promise<string[]> {
  const text = await readFile(traceFile, "utf8");
  return text.split("\n").filter((line) => /execve\(/.test(line) && / = 0$/.test(line));
}

/** The files under `roots` whose bytes contain any of `secrets`. */
export async function filesContaining(
  roots: readonly string[],
  secrets: readonly string[],
): Promise<string[]> {
  const hits: string[] = [];
  const needles = secrets.map((s) => Buffer.from(s));
  for (const root of roots) {
    for (const file of await allFiles(root)) {
      const bytes = await readFile(file).catch(() => null);
      if (bytes !== null && needles.some((n) => bytes.includes(n))) hits.push(file);
    }
  }
  return hits;
}

/** The scoped package the registry suites publish and install. */
export const TEST_PACKAGE = "@lk-test/pkg";
const TEST_SCOPE = "@lk-test";

/** Publishes TEST_PACKAGE@1.0.0 to `registryUrl` with npm, the token passed the way npm reads it from env. */
export async function publishTestPackage(
  root: string,
  registryUrl: string,
  nerf: string,
  token: string,
): Promise<void> {
  const dir = await mkdtemp(join(root, "publish-"));
  await mkdir(join(dir, "home"));
  await mkdir(join(dir, "pkg"));
  await writeFile(
    join(dir, "pkg", "package.json"),
    JSON.stringify({ name: TEST_PACKAGE, version: "1.0.0", main: "index.js" }),
  );
  await writeFile(join(dir, "pkg", "index.js"), "module.exports = 'from verdaccio';\n");
  await writeFile(join(dir, "pkg", ".npmrc"), `${TEST_SCOPE}:registry=${registryUrl}\n`);
  const result = await run(NODE, [CLIENTS.npm11.executable, "publish"], {
    cwd: join(dir, "pkg"),
    env: {
      PATH: `${dirname(NODE)}:/usr/bin:/bin`,
      HOME: join(dir, "home"),
      ...OFFLINE_ENV,
      [`npm_config_${nerf}:_authToken`]: token,
    },
  });
  if (result.code !== 0) throw new Error(`publishing ${TEST_PACKAGE} failed: ${result.stderr}`);
}

/** One install attempt in a sandbox of its own. */
export interface InstallAttempt {
  readonly result: RunResult;
  /** Whether TEST_PACKAGE landed in node_modules. */
  readonly installed: boolean;
  /** The sandbox: home/, app/, bin/, xdg/, tmp/. */
  readonly dir: string;
  /** stdout and stderr together, for messages. */
  readonly output: string;
}

/** What an install attempt starts from. */
export interface InstallAttemptOptions {
  readonly client: Client;
  readonly registryUrl: string;
  /** Extra lines for the project's .npmrc (after the scope's registry line). */
  readonly projectNpmrc?: string;
  /** The user's ~/.npmrc; none when absent. */
  readonly userNpmrc?: string;
  /** Other project files, e.g. .yarnrc.yml. */
  readonly files?: Record<string, string>;
  readonly env?: Record<string, string>;
  /** Arguments; default `install`. */
  readonly args?: readonly string[];
  /** Run this instead of the client directly (e.g. the latchkey CLI), with the client on PATH. */
  readonly via?: { command: string; args: readonly string[] };
}

/**
 * Installs TEST_PACKAGE with `client` in a fresh sandbox under `root`: a new HOME, XDG cache/data/state/config
 * directories and TMPDIR, so no cache from an earlier attempt can stand in for the registry's answer.
 */
export async function attemptInstall(root: string, options: InstallAttemptOptions): Promise<InstallAttempt> {
  const dir = await mkdtemp(join(root, "attempt-"));
  const app = join(dir, "app");
  for (const sub of ["home", "app", "xdg", "tmp"]) await mkdir(join(dir, sub));
  await writeFile(
    join(app, "package.json"),
    JSON.stringify({
      name: "app",
      version: "0.0.0",
      private: true,
      dependencies: { [TEST_PACKAGE]: "1.0.0" },
    }),
  );
  await writeFile(
    join(app, ".npmrc"),
    `${TEST_SCOPE}:registry=${options.registryUrl}\n${options.projectNpmrc ?? ""}`,
  );
  for (const [name, text] of Object.entries(options.files ?? {})) await writeFile(join(app, name), text);
  if (options.userNpmrc !== undefined) await writeFile(join(dir, "home", ".npmrc"), options.userNpmrc);
  const path = await installClients(join(dir, "bin"), [options.client]);
  const env = {
    PATH: path,
    HOME: join(dir, "home"),
    XDG_CACHE_HOME: join(dir, "xdg", "cache"),
    XDG_DATA_HOME: join(dir, "xdg", "data"),
    XDG_STATE_HOME: join(dir, "xdg", "state"),
    XDG_CONFIG_HOME: join(dir, "xdg", "config"),
    TMPDIR: join(dir, "tmp"),
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    ...OFFLINE_ENV,
    ...(options.client === CLIENTS.yarn1 ? YARN1_OFFLINE_ENV : {}),
    ...options.env,
  };
  const args = [...(options.args ?? ["install"])];
  const result =
    options.via === undefined
      ? await run(options.client.command, args, { env, cwd: app })
      : await run(options.via.command, [...options.via.args, options.client.command, ...args], {
          env,
          cwd: app,
        });
  return {
    result,
    installed: existsSync(join(app, "node_modules", "@lk-test", "pkg", "package.json")),
    dir,
    output: `${result.stdout}${result.stderr}`,
  };
}

/** A verdaccio holding the test package, a scratch directory and a publisher's token: the client-claims suites' setup. */
export interface ClaimsRegistry {
  readonly verdaccio: Verdaccio;
  readonly tmp: { path: string; cleanup: () => Promise<void> };
  readonly token: string;
}

/** Starts verdaccio, adds `user` and publishes the test package with that user's token. */
export async function startClaimsRegistry(
  prefix: string,
  user: string,
  password: string,
): Promise<ClaimsRegistry> {
  const verdaccio = await startVerdaccio();
  const tmp = await tempDir(prefix);
  const token = await verdaccio.addUser(user, password);
  await publishTestPackage(tmp.path, verdaccio.url, verdaccio.nerfDart, token);
  return { verdaccio, tmp, token };
}

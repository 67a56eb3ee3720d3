// Latchkey installed like any published CLI, as the README says: the tarballs of scripts/pack.mjs installed with
// `npm install -g --prefix` into a temporary prefix (their dependencies from the registry, @latchkey/core bundled),
// then run from another directory with only that prefix, a supported Node and the system's tools on PATH. The
// helpers `setup git` and `setup pnpm` write name the installed command, and `doctor` warns once it is gone.
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { copyFile, mkdir, readFile, readdir, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, NO_DBUS, collect, tempDir } from "./support/cli.js";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const version = (
  JSON.parse(readFileSync(join(root, "packages/cli/package.json"), "utf8")) as { version: string }
).version;

let temp: { path: string; cleanup: () => Promise<void> };
/** What the pack directory held once scripts/pack.mjs wrote to it. */
let packsLeft: string[];
const OTHERS = ["latchkey-cli-extra-1.0.0.tgz", "left-pad-1.3.0.tgz", "notes.txt"];
let prefix: string;
let home: string;
let work: string;

/** The environment of a user who installed Latchkey: the prefix's bin first, a supported Node, system tools. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: [join(prefix, "bin"), dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(":"),
    HOME: home,
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    GIT_CONFIG_NOSYSTEM: "1",
    DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
    ...extra,
  };
}

/** Runs a command found on the user's PATH (the installed ones included), in `cwd`, with `input` on stdin. */
function run(command: string, args: readonly string[], options: { cwd?: string; input?: string } = {}) {
  const child = spawn(command, args, {
    cwd: options.cwd ?? work,
    env: userEnv(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  // A program that exits without reading its input (git, once it has its answer) closes the pipe under the write:
  // that EPIPE is not the test's business, the exit code and output are.
  child.stdin.on("error", () => undefined);
  child.stdin.end(options.input ?? "");
  return collect(child);
}

beforeAll(async () => {
  temp = await tempDir("lk-install-");
  prefix = join(temp.path, "prefix");
  home = join(temp.path, "home");
  work = join(temp.path, "somewhere else");
  await Promise.all([mkdir(home), mkdir(work)]);
  // npm's own settings from an enclosing `npm test` (npm_config_*) would steer the install: left out.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
  // The user's other tarballs in DIR, beside an older one of ours that `npm install -g DIR/*.tgz` must not get.
  const packs = join(temp.path, "packs");
  await mkdir(packs);
  for (const name of [...OTHERS, "latchkey-cli-0.0.1.tgz", "latchkey-server-0.0.1-beta.1.tgz"])
    await writeFile(join(packs, name), "not ours to delete\n");
  const packed = await exec(process.execPath, [join(root, "scripts/pack.mjs"), "--out", packs], {
    cwd: root,
    env,
  });
  packsLeft = (await readdir(packs)).sort();
  const tarballs = packed.stdout.trim().split("\n");
  expect(tarballs.map((t) => t.slice(t.lastIndexOf("/") + 1))).toEqual([
    `latchkey-cli-${version}.tgz`,
    `latchkey-server-${version}.tgz`,
  ]);
  // The README's own install command, as a user types it in a clone whose packs/ holds what `npm run pack` made.
  // (Its spelling matters: npm reads `packs/x.tgz` without the ./ as a GitHub repository.)
  const clone = join(temp.path, "clone");
  await mkdir(join(clone, "packs"), { recursive: true });
  for (const tarball of tarballs)
    await copyFile(tarball, join(clone, "packs", tarball.slice(tarball.lastIndexOf("/") + 1)));
  const readme = await readFile(join(root, "README.md"), "utf8");
  const line = /^npm install && npm run pack && (npm install -g \S+)$/m.exec(readme);
  expect(line, "the README's install line").not.toBeNull();
  const command = line![1]!.replace(
    "npm install -g",
    `npm install -g --prefix '${prefix}' --no-audit --no-fund --prefer-offline`,
  );
  await exec("sh", ["-c", command], { cwd: clone, env, timeout: 280_000 });
}, 300_000);

afterAll(() => temp?.cleanup());

describe("scripts/pack.mjs --out DIR", () => {
  it("replaces our older tarballs in DIR and leaves every other file there", () => {
    expect(packsLeft).toEqual(
      [...OTHERS, `latchkey-cli-${version}.tgz`, `latchkey-server-${version}.tgz`].sort(),
    );
  });
});

describe("the installed latchkey and latchkey-server", () => {
  it("run from another directory on the user's PATH: --version, doctor, a secret stored and used", async () => {
    const shown = await run("latchkey", ["--version"]);
    expect(shown).toMatchObject({ code: 0, stdout: `${version}\n` });

    // doctor probes the keychain through @napi-rs/keyring, installed beside the CLI, and finds none here.
    const doctor = await run("latchkey", ["doctor"]);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toContain(`✓ Node ${process.versions.node}`);
    expect(doctor.stdout).toContain("No problems found.");

    // The fast path loads proper-lockfile from the install when it first writes.
    const project = join(work, "project");
    await mkdir(project);
    await writeFile(join(project, "package.json"), "{}\n");
    expect((await run("latchkey", ["env", "set", "GREETING"], { cwd: project, input: "hello" })).code).toBe(
      0,
    );
    const used = await run("latchkey", ["run", "--", "sh", "-c", 'printf %s "$GREETING"'], { cwd: project });
    expect(used).toMatchObject({ code: 0, stdout: "hello" });
  });

  it("latchkey-server runs with its own dependencies: help, and an account in a new SQLite database", async () => {
    const help = await run("latchkey-server", ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: latchkey-server");
    const created = await run(
      "latchkey-server",
      ["admin", "create-user", "me@example.com", "--data-dir", "data"],
      {
        input: "a passphrase long enough\n",
      },
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toContain("Created the account me@example.com.");
  });

  it("setup git and setup pnpm name the installed command, and git gets credentials through it", async () => {
    const command = join(prefix, "bin", "latchkey");
    expect((await run("latchkey", ["setup", "git"])).code).toBe(0);
    const helpers = await run("git", ["config", "--global", "--get-all", "credential.helper"]);
    expect(helpers.stdout).toBe(`\n!'${command}' git-credential\n`);
    expect(helpers.stdout).not.toContain(root);

    const credential = "protocol=https\nhost=git.example.com\nusername=me\npassword=install-test-password\n";
    expect((await run("git", ["credential", "approve"], { input: credential })).code).toBe(0);
    const filled = await run("git", ["credential", "fill"], {
      input: "protocol=https\nhost=git.example.com\n\n",
    });
    expect(filled.code, filled.stderr).toBe(0);
    expect(filled.stdout).toContain("password=install-test-password\n");

    const pnpm = await run("latchkey", ["setup", "pnpm", "--registry", "https://npm.example.com/", "--json"]);
    expect(pnpm.code, pnpm.stderr).toBe(0);
    const [written] = (JSON.parse(pnpm.stdout) as { registries: { helper: string }[] }).registries;
    const script = await readFile(written!.helper, "utf8");
    expect(script).toContain(`token=$('${command}' token --registry 'https://npm.example.com/')`);
    expect(script).not.toContain(root);
  });

  it("doctor warns when the command those helpers run is gone", async () => {
    // Latchkey uninstalled (or the prefix moved): git and pnpm are still set up to run it.
    await rename(prefix, `${prefix}.moved`);
    const child = spawn(process.execPath, [CLI, "doctor", "--json"], { cwd: work, env: userEnv() });
    const doctor = await collect(child);
    expect(doctor.code, doctor.stderr).toBe(0);
    const { warnings } = JSON.parse(doctor.stdout) as { warnings: { code: string; message: string }[] };
    const gone = join(prefix, "bin", "latchkey");
    expect(warnings.filter((w) => w.code === "LK_HELPER_STALE").map((w) => w.message)).toEqual([
      `git's credential.helper runs ${gone}, which no longer exists: git gets no credentials from Latchkey.`,
      expect.stringMatching(
        new RegExp(`pnpm's tokenHelper, runs ${gone.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")},`),
      ),
    ]);
  });
});

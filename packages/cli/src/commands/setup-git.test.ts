// `setup git` against real git (its own config files under a temporary HOME) and the real shell git runs helpers
// with: what git would execute is checked by running it, not by comparing strings.
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { spawnProcess } from "../node-context.js";
import { shellQuote } from "../shell-words.js";
import { credentialContext, gitHelperCommand, gitHelperPrograms, setupGit } from "./setup-git.js";

const exec = promisify(execFile);
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function temp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "lk-setup-git-"));
  dirs.push(dir);
  return dir;
}

/** A context whose spawn is the real one, with HOME (and so git's global config) in a temporary directory. */
async function gitContext(options: { cwd?: string; cliPath?: string } = {}) {
  const root = await temp();
  const home = join(root, "home");
  await mkdir(home);
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: join(root, "xdg"),
    GIT_CONFIG_NOSYSTEM: "1",
    LATCHKEY_HOME: join(root, "lk"),
  };
  const fresh = () =>
    createTestContext({
      env,
      cwd: options.cwd ?? root,
      spawn: spawnProcess,
      platform: {
        nodeVersion: process.versions.node,
        uid: null,
        machineIdPaths: [],
        cliPath: options.cliPath ?? "/opt/latchkey/bin/latchkey.mjs",
      },
    });
  const git = async (...args: string[]) =>
    (await exec("git", args, { env: { ...env }, cwd: options.cwd ?? root })).stdout;
  return { ctx: fresh(), fresh, root, home, git };
}

const helpersOf = async (git: (...args: string[]) => Promise<string>, ...args: string[]) =>
  (await git("config", ...args)).split("\n").slice(0, -1);

describe("shellQuote / gitHelperCommand", () => {
  it("survives the shell git runs helpers with: argv arrives intact, whatever the path contains", async () => {
    const dir = await temp();
    const odd = join(dir, 'it\'s a "dir" with $HOME `x` & spaces');
    await mkdir(odd);
    // Stands in for the installed command: prints the argv it was given, one per line.
    const cli = join(odd, "latchkey");
    await writeFile(cli, '#!/bin/sh\nfor a in "$0" "$@"; do printf "%s\\n" "$a"; done\n');
    await chmod(cli, 0o755);
    const helper = gitHelperCommand({ nodeVersion: "24", uid: null, machineIdPaths: [], cliPath: cli });
    expect(helper.startsWith("!")).toBe(true);
    // git runs the part after "!" with " <operation>" appended, through sh -c.
    const { stdout } = await exec("sh", ["-c", `${helper.slice(1)} get`]);
    expect(stdout.split("\n").slice(0, -1)).toEqual([cli, "git-credential", "get"]);
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
    // What `doctor` reads back: the programs it runs, also from the Node-and-script form of earlier versions.
    expect(gitHelperPrograms(helper)).toEqual([cli]);
    expect(gitHelperPrograms("!'/n/node' '/x/latchkey.mjs' git-credential")).toEqual([
      "/n/node",
      "/x/latchkey.mjs",
    ]);
    expect(gitHelperPrograms("!f() { echo password=x; }; f")).toBeNull();
    expect(gitHelperPrograms("store")).toBeNull();
  });

  it("names the command as it was started, never the Node running it", () => {
    // A global install runs as <prefix>/bin/latchkey, a symbolic link into lib/node_modules: the link is what
    // stays when Latchkey is reinstalled, and Node's path (process.execPath) is not written at all.
    const helper = gitHelperCommand({
      nodeVersion: "24",
      uid: null,
      machineIdPaths: [],
      cliPath: "/home/u/.local/bin/latchkey",
    });
    expect(helper).toBe("!'/home/u/.local/bin/latchkey' git-credential");
    expect(helper).not.toContain(process.execPath);
  });

  it("refuses to configure a helper it cannot name by absolute path", () => {
    for (const platform of [{}, { cliPath: "relative/latchkey.mjs" }, { cliPath: "/opt/x\nrm -rf ~" }]) {
      expect(() =>
        gitHelperCommand({ nodeVersion: "24", uid: null, machineIdPaths: [], ...platform }),
      ).toThrow(expect.objectContaining({ code: "LK_GIT_CONFIG_FAILED" }));
    }
  });
});

describe("credentialContext", () => {
  it("makes an https context from a host, http only when asked, lower-cased", () => {
    expect(credentialContext("Git.Example.com")).toBe("https://git.example.com");
    expect(credentialContext("git.example.com:8443")).toBe("https://git.example.com:8443");
    expect(credentialContext("http://127.0.0.1:8080/")).toBe("http://127.0.0.1:8080");
    expect(credentialContext("HTTPS://git.example.com")).toBe("https://git.example.com");
  });

  it.each([
    "https://git.example.com/org",
    "ssh://git.example.com",
    "me@git.example.com",
    "",
    "bücher.example",
  ])("refuses %j", (value) => {
    expect(() => credentialContext(value)).toThrow(expect.objectContaining({ code: "LK_USAGE" }));
  });
});

describe("setupGit", () => {
  it("resets the global helper list, adds Latchkey, and stays the same when run again", async () => {
    const { ctx, fresh, git, home } = await gitContext();
    await git("config", "--global", "credential.helper", "store");
    await git("config", "--global", "--add", "credential.helper", "!f() { echo password=tok-CANARY; }; f");
    expect(await setupGit(ctx, { scope: "global", json: false })).toBe(0);
    const helper = "!'/opt/latchkey/bin/latchkey.mjs' git-credential";
    expect(await helpersOf(git, "--global", "--get-all", "credential.helper")).toEqual(["", helper]);
    expect(ctx.stderr.text()).toContain("It replaces: store, a shell snippet.");
    // A helper snippet may embed a token: it is described, never printed.
    expect(ctx.stderr.text()).not.toContain("CANARY");
    expect(ctx.stdout.text()).toBe("");

    const again = fresh();
    expect(await setupGit(again, { scope: "global", json: true })).toBe(0);
    expect(await helpersOf(git, "--global", "--get-all", "credential.helper")).toEqual(["", helper]);
    expect(JSON.parse(again.stdout.text())).toEqual({
      scope: "global",
      key: "credential.helper",
      helper,
      hosts: "all",
      replaced: [],
    });
    expect(await readFile(join(home, ".gitconfig"), "utf8")).toContain("git-credential");
  });

  it("limits the helper to one host with --host", async () => {
    const { ctx, git } = await gitContext();
    expect(await setupGit(ctx, { scope: "global", host: "http://127.0.0.1:8080", json: false })).toBe(0);
    expect(
      await helpersOf(git, "--global", "--get-all", "credential.http://127.0.0.1:8080.helper"),
    ).toHaveLength(2);
    // git resolves the helper list for a URL from the context: Latchkey for that host, nothing elsewhere.
    expect(
      await helpersOf(git, "--get-urlmatch", "credential.helper", "http://127.0.0.1:8080/repo.git"),
    ).toEqual(["!'/opt/latchkey/bin/latchkey.mjs' git-credential"]);
    await expect(
      git("config", "--get-urlmatch", "credential.helper", "http://127.0.0.1:8081/"),
    ).rejects.toThrow();
  });

  it("writes the repository's config with --local, and fails clearly outside a repository", async () => {
    const outside = await gitContext();
    await expect(setupGit(outside.ctx, { scope: "local", json: false })).rejects.toMatchObject({
      code: "LK_GIT_CONFIG_FAILED",
    });

    const repo = join(await temp(), "repo");
    await exec("git", ["init", "-q", repo]);
    const { ctx, git } = await gitContext({ cwd: repo });
    expect(await setupGit(ctx, { scope: "local", json: false })).toBe(0);
    expect(await helpersOf(git, "--local", "--get-all", "credential.helper")).toHaveLength(2);
    await expect(git("config", "--global", "--get-all", "credential.helper")).rejects.toThrow();
  });

  it("reports a missing git as LK_GIT_CONFIG_FAILED", async () => {
    const { ctx } = await gitContext();
    const noGit = { ...ctx, env: { ...ctx.env, PATH: "/nonexistent" } };
    await expect(setupGit(noGit, { scope: "global", json: false })).rejects.toMatchObject({
      code: "LK_GIT_CONFIG_FAILED",
    });
  });
});

// `latchkey doctor` run as a new user meets it, through the built CLI: a LATCHKEY_HOME that cannot be created is
// a problem (not "No problems found" before every write fails), and the directories Latchkey itself makes under
// its code cache are not flagged when that cache lies inside LATCHKEY_HOME.
import { spawn } from "node:child_process";
import { chmod, mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CLI, NO_DBUS, collect, runCli, tempDir } from "./support/cli.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function root(): Promise<string> {
  const dir = await tempDir("lk-doctor-e2e-");
  cleanups.push(dir.cleanup);
  return dir.path;
}

describe("latchkey doctor", () => {
  it("reports a LATCHKEY_HOME whose parent is read-only as a problem with a hint, exit 1", async () => {
    const dir = await root();
    const readOnly = join(dir, "read-only");
    await mkdir(readOnly);
    await chmod(readOnly, 0o555);
    const home = join(readOnly, "latchkey");
    const env = {
      PATH: process.env.PATH,
      HOME: dir,
      LATCHKEY_HOME: home,
      LATCHKEY_KEYSTORE: "file",
      DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
      NO_COLOR: "1",
    };
    // Root writes through any mode bits, so as root the CLI runs as nobody, as a user would meet it.
    const asUser =
      process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    if (asUser.length > 0) await chmod(dir, 0o755);
    const [command, ...args] = [...asUser, process.execPath, CLI, "doctor"];
    const result = await collect(spawn(command, args, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] }));
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toContain(`✗ LATCHKEY_HOME ${home}: cannot be created`);
    expect(result.stdout).toContain(
      `✗ LK_FILE_IO: LATCHKEY_HOME ${home} does not exist and cannot be created: ${readOnly} is not writable by you.`,
    );
    expect(result.stdout).toContain(`hint: Create it as someone who can (mkdir -m 700 '${home}'`);
    expect(result.stdout).not.toContain("No problems found");
  });

  it("does not flag the compile-cache directories Latchkey made when LATCHKEY_HOME is $HOME", async () => {
    const dir = await root();
    await chmod(dir, 0o700);
    const env = {
      PATH: process.env.PATH,
      HOME: dir,
      LATCHKEY_HOME: dir,
      LATCHKEY_KEYSTORE: "file",
      DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
      NO_COLOR: "1",
    };
    // Any command of the full CLI turns on Node's compile cache under ~/.cache/latchkey/node.
    expect((await runCli(["--help"], { env, cwd: dir, umask: "022" })).code).toBe(0);
    const doctor = await runCli(["doctor", "--json"], { env, cwd: dir, umask: "022" });
    const report = JSON.parse(doctor.stdout) as {
      problems: { message: string }[];
      codeCache: { state: string };
    };
    expect(report.codeCache.state).toBe("in-use");
    expect(report.problems).toEqual([]);
    expect(doctor.code).toBe(0);
    // And what Node made there is private: the launcher gave its directories 0700 (files are Node's 0600).
    const compileCache = join(dir, ".cache", "latchkey", "node");
    const made = [compileCache, ...(await readdir(compileCache)).map((name) => join(compileCache, name))];
    expect(made.length).toBeGreaterThan(1);
    for (const path of made) expect(((await stat(path)).mode & 0o777).toString(8), path).toBe("700");
  });
});

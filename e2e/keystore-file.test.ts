// The encrypted file store as users meet it: the built CLI on a machine with no reachable keychain.
import { lstat, readFile, readdir, stat, symlink, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NO_DBUS, isolatedEnv, runCli, tempDir } from "./support/cli.js";

let dir: { path: string; cleanup: () => Promise<void> };
let home: string;
let env: Record<string, string | undefined>;

beforeEach(async () => {
  dir = await tempDir("lk-e2e-file-");
  home = join(dir.path, "latchkey-home");
  env = isolatedEnv({ HOME: dir.path, LATCHKEY_HOME: home, DBUS_SESSION_BUS_ADDRESS: NO_DBUS });
});
afterEach(() => dir.cleanup());

async function allFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) out.push(...(await allFiles(path)));
    else out.push(path);
  }
  return out;
}

describe("with no D-Bus", () => {
  it("doctor shows the file store chosen as a degraded fallback, with the honest sentence", async () => {
    const text = await runCli(["doctor"], { env });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("encrypted file store (no OS keychain is reachable) — degraded");
    expect(text.stdout).toContain("does not protect it from other processes running as your user");
    const json = await runCli(["doctor", "--json"], { env });
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(true);
    expect(report.keystore).toMatchObject({ backend: "file", reason: "fallback", degraded: true });
    expect(report.keystore.keyringError.code).toBe("LK_KEYRING_UNREACHABLE");
  });

  it("keeps a canary secret nowhere in plaintext under LATCHKEY_HOME", async () => {
    const canary = "lk-canary-5b1d7e0c-plaintext-must-never-appear";
    const set = await runCli(["keystore", "set", "registry://npm.example/"], { env, input: `${canary}\n` });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout + set.stderr).not.toContain(canary);
    const get = await runCli(["keystore", "get", "registry://npm.example/"], { env });
    expect(get.stdout).toBe(canary);
    const files = await allFiles(home);
    expect(files.map((f) => f.slice(home.length + 1)).sort()).toEqual(["store.enc", "store.key"]);
    for (const file of files) {
      const bytes = await readFile(file);
      expect(bytes.includes(Buffer.from(canary)), file).toBe(false);
      expect(bytes.includes(Buffer.from("npm.example")), file).toBe(false);
    }
  });

  for (const umask of ["000", "002", "022"]) {
    it(`writes 0600 files in a 0700 home under umask ${umask}`, async () => {
      const r = await runCli(["keystore", "set", "a"], { env, input: "v", umask });
      expect(r.code, r.stderr).toBe(0);
      expect((await stat(home)).mode & 0o777).toBe(0o700);
      for (const name of ["store.enc", "store.key"])
        expect((await stat(join(home, name))).mode & 0o777).toBe(0o600);
    });
  }

  it("uses Argon2id over LATCHKEY_PASSPHRASE, and a wrong one leaves the store untouched", async () => {
    const withPass = { ...env, LATCHKEY_PASSPHRASE: "a long passphrase" };
    expect((await runCli(["keystore", "set", "a"], { env: withPass, input: "secret-a" })).code).toBe(0);
    const report = JSON.parse((await runCli(["doctor", "--json"], { env: withPass })).stdout);
    expect(report.keystore.fileStore).toEqual({ exists: true, protection: "passphrase" });
    const before = await readFile(join(home, "store.enc"));
    const wrong = { ...env, LATCHKEY_PASSPHRASE: "not the passphrase" };
    const failed = await runCli(["keystore", "set", "b"], { env: wrong, input: "secret-b" });
    expect(failed.code).toBe(4);
    expect(failed.stderr).toContain("LK_STORE_DECRYPT_FAILED");
    expect(failed.stderr).not.toContain("not the passphrase");
    expect(await readFile(join(home, "store.enc"))).toEqual(before);
    expect((await runCli(["keystore", "get", "a"], { env: withPass })).stdout).toBe("secret-a");
  });

  it("refuses to write through a planted symlink and leaves its target untouched", async () => {
    expect((await runCli(["keystore", "set", "a"], { env, input: "v" })).code).toBe(0);
    const target = join(dir.path, "elsewhere.txt");
    await writeFile(target, "do not touch", { mode: 0o644 });
    const store = join(home, "store.enc");
    await writeFile(join(dir.path, "saved.enc"), await readFile(store));
    await (await import("node:fs/promises")).rm(store);
    await symlink(target, store);
    const r = await runCli(["keystore", "set", "b"], { env, input: "v2" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("LK_FILE_SYMLINK");
    expect(r.stderr).toContain(store);
    expect(await readFile(target, "utf8")).toBe("do not touch");
    expect((await stat(target)).mode & 0o777).toBe(0o644);
    expect((await lstat(store)).isSymbolicLink()).toBe(true);
  });

  it("doctor exits 1 and gives a hint for a readable store and a symlink under LATCHKEY_HOME", async () => {
    expect((await runCli(["keystore", "set", "a"], { env, input: "v" })).code).toBe(0);
    await chmod(join(home, "store.key"), 0o644);
    await symlink("/etc/hostname", join(home, "config.toml"));
    const r = await runCli(["doctor"], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("LK_FILE_PERMISSIONS");
    expect(r.stdout).toContain(`chmod 600 '${join(home, "store.key")}'`);
    expect(r.stdout).toContain("LK_FILE_SYMLINK");
    const report = JSON.parse((await runCli(["doctor", "--json"], { env })).stdout);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p: { code: string }) => p.code).sort()).toEqual([
      "LK_FILE_PERMISSIONS",
      "LK_FILE_SYMLINK",
    ]);
  });
});

describe("CLI basics", () => {
  it("prints its version and help", async () => {
    const version = await runCli(["--version"], { env });
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    const help = await runCli(["--help"], { env });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("doctor");
    expect(help.stdout).toContain("LATCHKEY_KEYSTORE");
  });

  it("reports usage errors from the catalogue with exit code 2", async () => {
    const r = await runCli(["no-such-command"], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("LK_USAGE");
    expect(r.stderr).toContain("hint:");
  });

  it("refuses a value on the command line (it would show in ps)", async () => {
    const r = await runCli(["keystore", "set", "a", "secret-in-argv"], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("LK_USAGE");
    expect(r.stderr).not.toContain("secret-in-argv");
  });

  it("reports a missing entry with its code and hint", async () => {
    const r = await runCli(["keystore", "get", "nope"], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/LK_SECRET_NOT_FOUND: No keystore entry named nope\.\n {2}hint: /);
  });

  it("rejects an unknown LATCHKEY_KEYSTORE with a hint", async () => {
    const r = await runCli(["keystore", "list"], { env: { ...env, LATCHKEY_KEYSTORE: "vault" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("LK_CONFIG_INVALID");
  });
});

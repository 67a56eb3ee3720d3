import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import { bundleFsModules, fsChildScript } from "../../test/support/fs-bundle.js";
import {
  checkPrivate,
  ensurePrivateDir,
  readFileSafe,
  removeFileSafe,
  writeFileAtomic,
  writeNewPrivateFile,
} from "./safe-file.js";

const posixOnly = process.platform === "win32" ? it.skip : it;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-safe-file-"));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

async function modeOf(path: string): Promise<number> {
  return (await lstat(path)).mode & 0o7777;
}

async function tempFilesIn(path: string): Promise<string[]> {
  return (await readdir(path)).filter((name) => name.includes(".tmp-"));
}

async function expectCode(promise: Promise<unknown>, code: string, pathInMessage: string): Promise<void> {
  const err: unknown = await promise.then(
    () => new Error("expected a rejection"),
    (e: unknown) => e,
  );
  expect(isLatchkeyError(err) ? err.code : err).toBe(code);
  expect((err as Error).message).toContain(pathInMessage);
}

describe("writeFileAtomic", () => {
  it("writes the data as a 0600 file and leaves no temp file", async () => {
    const file = join(dir, "store.enc");
    await writeFileAtomic(file, "secret bytes");
    expect(await readFile(file, "utf8")).toBe("secret bytes");
    expect(await modeOf(file)).toBe(0o600);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("replaces an existing 0644 file with a 0600 one", async () => {
    const file = join(dir, "config.toml");
    await writeFile(file, "old");
    await chmod(file, 0o644);
    await writeFileAtomic(file, new TextEncoder().encode("new"));
    expect(await readFile(file, "utf8")).toBe("new");
    expect(await modeOf(file)).toBe(0o600);
  });

  it("applies an explicit mode exactly", async () => {
    const file = join(dir, "latchkey.json");
    await writeFileAtomic(file, "{}", { mode: 0o640 });
    expect(await modeOf(file)).toBe(0o640);
  });

  posixOnly("refuses a symlink at the target and leaves the link's target untouched", async () => {
    const outside = join(dir, "outside.txt");
    await writeFile(outside, "victim");
    await chmod(outside, 0o644);
    const link = join(dir, "store.enc");
    await symlink(outside, link);

    await expectCode(writeFileAtomic(link, "attacker-visible"), "LK_FILE_SYMLINK", link);
    expect(await readFile(outside, "utf8")).toBe("victim");
    expect(await modeOf(outside)).toBe(0o644);
    expect(await readlink(link)).toBe(outside);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  posixOnly("refuses a dangling symlink without creating its target", async () => {
    const link = join(dir, "store.enc");
    const wouldBeCreated = join(dir, "created-through-link");
    await symlink(wouldBeCreated, link);
    await expectCode(writeFileAtomic(link, "x"), "LK_FILE_SYMLINK", link);
    await expect(lstat(wouldBeCreated)).rejects.toMatchObject({ code: "ENOENT" });
  });

  posixOnly("refuses a symlinked parent directory", async () => {
    const outsideDir = join(dir, "outside");
    await mkdir(outsideDir);
    const linkedDir = join(dir, "home");
    await symlink(outsideDir, linkedDir);
    const file = join(linkedDir, "store.enc");

    await expectCode(writeFileAtomic(file, "x"), "LK_FILE_SYMLINK", linkedDir);
    expect(await readdir(outsideDir)).toEqual([]);
  });

  it("fails with LK_FILE_IO when the directory does not exist", async () => {
    const file = join(dir, "missing", "store.enc");
    await expectCode(writeFileAtomic(file, "x"), "LK_FILE_IO", file);
  });

  it("refuses a directory at the target", async () => {
    const target = join(dir, "vaults");
    await mkdir(target);
    await expectCode(writeFileAtomic(target, "x"), "LK_FILE_IO", target);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("removes the temp file and keeps the old content when the rename fails", async () => {
    const file = join(dir, "store.enc");
    await writeFileAtomic(file, "old");
    // safe-file reaches the promise API through fs.promises at call time, so a spy there sees its rename.
    vi.spyOn(fs.promises, "rename").mockRejectedValueOnce(
      Object.assign(new Error("injected"), { code: "EXDEV", syscall: "rename" }),
    );

    await expectCode(writeFileAtomic(file, "new"), "LK_FILE_IO", file);
    expect(await readFile(file, "utf8")).toBe("old");
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("removes the temp file when writing the data fails", async () => {
    const file = join(dir, "store.enc");
    await expect(writeFileAtomic(file, 42 as unknown as string)).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });

  describe("under different umasks", () => {
    let bundleDir: string;
    beforeAll(async () => {
      bundleDir = await mkdtemp(join(tmpdir(), "latchkey-fs-bundle-"));
      await bundleFsModules(bundleDir);
    });
    afterAll(async () => {
      await rm(bundleDir, { recursive: true, force: true });
    });

    posixOnly.each(["000", "002", "022"])("umask %s: files are 0600 and created dirs 0700", async (octal) => {
      const umask = Number.parseInt(octal, 8);
      const result = await runChild([bundleDir, "umask", octal, dir]);
      expect(result).toEqual({ code: 0, stderr: "" });
      // The control entries prove the child really ran under this umask.
      expect(await modeOf(join(dir, "control-file"))).toBe(0o666 & ~umask);
      expect(await modeOf(join(dir, "control-dir"))).toBe(0o777 & ~umask);
      expect(await modeOf(join(dir, "home"))).toBe(0o700);
      expect(await modeOf(join(dir, "home", "vaults"))).toBe(0o700);
      expect(await modeOf(join(dir, "home", "vaults", "vault.enc"))).toBe(0o600);
      expect(await tempFilesIn(join(dir, "home", "vaults"))).toEqual([]);
    });
  });
});

function runChild(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [fsChildScript, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, stderr }));
  });
}

describe("ensurePrivateDir", () => {
  it("creates missing directories as 0700", async () => {
    const home = join(dir, "a", "b", "home");
    await ensurePrivateDir(home);
    for (const path of [join(dir, "a"), join(dir, "a", "b"), home]) expect(await modeOf(path)).toBe(0o700);
    await ensurePrivateDir(home);
    expect(await modeOf(home)).toBe(0o700);
  });

  it("tightens an existing 0755 directory to 0700", async () => {
    const home = join(dir, "home");
    await mkdir(home);
    await chmod(home, 0o755);
    await ensurePrivateDir(home);
    expect(await modeOf(home)).toBe(0o700);
  });

  posixOnly("refuses when the directory is a symlink, leaving the target's mode alone", async () => {
    const outside = join(dir, "outside");
    await mkdir(outside);
    await chmod(outside, 0o755);
    const link = join(dir, "home");
    await symlink(outside, link);

    await expectCode(ensurePrivateDir(link), "LK_FILE_SYMLINK", link);
    expect(await modeOf(outside)).toBe(0o755);
  });

  posixOnly("refuses to create inside a symlinked parent", async () => {
    const outside = join(dir, "outside");
    await mkdir(outside);
    const link = join(dir, "home");
    await symlink(outside, link);

    await expectCode(ensurePrivateDir(join(link, "vaults")), "LK_FILE_SYMLINK", link);
    await expectCode(ensurePrivateDir(join(link, "vaults", "deeper")), "LK_FILE_SYMLINK", link);
    expect(await readdir(outside)).toEqual([]);
  });

  it("refuses a regular file in place of the directory", async () => {
    const file = join(dir, "home");
    await writeFile(file, "");
    await expectCode(ensurePrivateDir(file), "LK_FILE_IO", file);
  });
});

describe("writeNewPrivateFile", () => {
  it("creates a 0600 file with the data, even under umask 000", async () => {
    const file = join(dir, "KEY");
    const previous = process.umask(0);
    try {
      await writeNewPrivateFile(file, "value");
    } finally {
      process.umask(previous);
    }
    expect(await readFile(file, "utf8")).toBe("value");
    expect(await modeOf(file)).toBe(0o600);
  });

  it("refuses a path that exists, leaving it as it was", async () => {
    const file = join(dir, "KEY");
    await writeFile(file, "before");
    await expectCode(writeNewPrivateFile(file, "after"), "LK_FILE_IO", file);
    expect(await readFile(file, "utf8")).toBe("before");
  });

  posixOnly("never writes through a symbolic link", async () => {
    const target = join(dir, "target");
    const link = join(dir, "KEY");
    await symlink(target, link);
    await expect(writeNewPrivateFile(link, "value")).rejects.toThrow();
    expect(fs.existsSync(target)).toBe(false);
  });
});

describe("readFileSafe", () => {
  it("returns the bytes, or null when the file does not exist", async () => {
    const file = join(dir, "store.enc");
    expect(await readFileSafe(file)).toBeNull();
    await writeFileAtomic(file, "abc");
    expect(Buffer.from((await readFileSafe(file)) ?? []).toString("utf8")).toBe("abc");
  });

  posixOnly("refuses a symlink", async () => {
    const outside = join(dir, "outside.txt");
    await writeFile(outside, "not yours");
    const link = join(dir, "store.enc");
    await symlink(outside, link);
    await expectCode(readFileSafe(link), "LK_FILE_SYMLINK", link);
  });

  it("refuses a directory", async () => {
    await expectCode(readFileSafe(dir), "LK_FILE_IO", dir);
  });

  posixOnly("refuses a FIFO without blocking on it", async () => {
    const fifo = join(dir, "store.enc");
    if (spawnSync("mkfifo", [fifo]).status !== 0) return;
    await expectCode(readFileSafe(fifo), "LK_FILE_IO", fifo);
  });
});

describe("removeFileSafe", () => {
  it("reports whether something was removed", async () => {
    const file = join(dir, "store.enc");
    await writeFileAtomic(file, "x");
    expect(await removeFileSafe(file)).toBe(true);
    expect(await removeFileSafe(file)).toBe(false);
  });

  posixOnly("removes a symlink itself, not its target", async () => {
    const outside = join(dir, "outside.txt");
    await writeFile(outside, "keep");
    const link = join(dir, "store.enc");
    await symlink(outside, link);
    expect(await removeFileSafe(link)).toBe(true);
    expect(await readFile(outside, "utf8")).toBe("keep");
  });
});

describe("checkPrivate", () => {
  it("returns null for a missing path", async () => {
    expect(await checkPrivate(join(dir, "missing"))).toBeNull();
  });

  posixOnly("accepts a 0600 file and a 0700 directory", async () => {
    const file = join(dir, "store.enc");
    await writeFileAtomic(file, "x");
    await chmod(dir, 0o700);
    expect(await checkPrivate(file)).toMatchObject({ path: file, kind: "file", mode: 0o600, problems: [] });
    expect(await checkPrivate(dir)).toMatchObject({ path: dir, kind: "dir", mode: 0o700, problems: [] });
  });

  posixOnly("reports a 0644 file and a 0755 directory", async () => {
    const file = join(dir, "config.toml");
    await writeFile(file, "");
    await chmod(file, 0o644);
    await chmod(dir, 0o755);
    expect((await checkPrivate(file))?.problems).toEqual([
      "mode 0644 is readable by group and others (want 0600)",
    ]);
    expect((await checkPrivate(dir))?.problems).toEqual([
      "mode 0755 is readable and searchable by group and others (want 0700)",
    ]);
  });

  posixOnly("names every kind of access a mode grants", async () => {
    const file = join(dir, "store.enc");
    await writeFile(file, "");
    await chmod(file, 0o602);
    expect((await checkPrivate(file))?.problems).toEqual(["mode 0602 is writable by others (want 0600)"]);
    await chmod(file, 0o670);
    expect((await checkPrivate(file))?.problems).toEqual([
      "mode 0670 is readable, writable and executable by group (want 0600)",
    ]);
  });

  posixOnly("reports a symlink without following it", async () => {
    const outside = join(dir, "outside.txt");
    await writeFileAtomic(outside, "x");
    const link = join(dir, "store.enc");
    await symlink(outside, link);
    const report = await checkPrivate(link);
    expect(report?.kind).toBe("symlink");
    expect(report?.problems).toEqual(["is a symbolic link"]);
  });

  it.runIf(process.getuid?.() === 0)("reports a file owned by another user", async () => {
    const file = join(dir, "store.enc");
    await writeFileAtomic(file, "x");
    await chown(file, 4242, 4242);
    expect((await checkPrivate(file))?.problems).toEqual(["owned by uid 4242, not you (uid 0)"]);
  });
});

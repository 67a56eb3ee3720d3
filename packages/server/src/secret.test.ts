import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkDataDir, loadServerSecret, SECRET_FILE } from "./secret.js";

let dir: string;
const random = (n: number) => new Uint8Array(randomBytes(n));

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-secret-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadServerSecret", () => {
  it("creates a 256-bit secret with mode 0600 whatever the umask, then reuses it", async () => {
    const old = process.umask(0o000);
    try {
      const first = await loadServerSecret({ env: {}, dataDir: dir, randomBytes: random });
      expect(first.source).toBe("file-created");
      expect(Buffer.from(first.secret, "base64url")).toHaveLength(32);
      expect((await stat(join(dir, SECRET_FILE))).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(old);
    }
    const file = (await readFile(join(dir, SECRET_FILE), "utf8")).trim();
    const second = await loadServerSecret({ env: {}, dataDir: dir, randomBytes: random });
    expect(second).toEqual({ secret: file, source: "file" });
  });

  it("gives every concurrent first start the same secret", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () => loadServerSecret({ env: {}, dataDir: dir, randomBytes: random })),
    );
    expect(new Set(results.map((r) => r.secret)).size).toBe(1);
    expect(results.filter((r) => r.source === "file-created")).toHaveLength(1);
  });

  it("prefers LATCHKEY_SERVER_SECRET and writes nothing", async () => {
    const secret = "x".repeat(40);
    const got = await loadServerSecret({
      env: { LATCHKEY_SERVER_SECRET: secret },
      dataDir: dir,
      randomBytes: random,
    });
    expect(got).toEqual({ secret, source: "env" });
    await expect(stat(join(dir, SECRET_FILE))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a short LATCHKEY_SERVER_SECRET without echoing it", async () => {
    const err = await loadServerSecret({
      env: { LATCHKEY_SERVER_SECRET: "short-value" },
      dataDir: dir,
      randomBytes: random,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "LK_CONFIG_INVALID" });
    expect(String((err as Error).message)).not.toContain("short-value");
  });

  it("refuses a secret file other users can read", async () => {
    await writeFile(join(dir, SECRET_FILE), "s".repeat(43));
    await chmod(join(dir, SECRET_FILE), 0o644);
    await expect(loadServerSecret({ env: {}, dataDir: dir, randomBytes: random })).rejects.toMatchObject({
      code: "LK_FILE_PERMISSIONS",
    });
  });

  it("refuses a secret file that is a symbolic link, leaving its target alone", async () => {
    const target = join(dir, "elsewhere");
    await writeFile(target, "t".repeat(43), { mode: 0o600 });
    await symlink(target, join(dir, SECRET_FILE));
    await expect(loadServerSecret({ env: {}, dataDir: dir, randomBytes: random })).rejects.toMatchObject({
      code: "LK_FILE_SYMLINK",
    });
  });

  it("refuses a data directory that is a symbolic link", async () => {
    await mkdir(join(dir, "real"));
    await symlink(join(dir, "real"), join(dir, "link"));
    await expect(checkDataDir(join(dir, "link"))).rejects.toMatchObject({ code: "LK_FILE_SYMLINK" });
    await expect(checkDataDir(join(dir, "real"))).resolves.toBeUndefined();
    await expect(checkDataDir(join(dir, "missing"), { allowMissing: true })).resolves.toBeUndefined();
    // The hint names the server's --data-dir, not the catalogue's default one (about the CLI's LATCHKEY_HOME).
    await expect(checkDataDir(join(dir, "missing"))).rejects.toMatchObject({
      code: "LK_FILE_IO",
      hint: expect.stringContaining("--data-dir"),
    });
  });
});

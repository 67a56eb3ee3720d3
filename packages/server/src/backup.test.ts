import { randomBytes } from "node:crypto";
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { backup, backupFiles, restore, type BackupDeps } from "./backup.js";
import { openDatabase, SQLITE_FILE } from "./db/index.js";
import { MIGRATIONS, migrateToLatest } from "./db/migrations.js";
import { loadEscrowKey, recordEscrowKey } from "./escrow-key.js";
import { loadServerSecret } from "./secret.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "latchkey-backup-"));
  dirs.push(dir);
  return dir;
}

function deps(dataDir: string, overrides: Partial<BackupDeps> = {}): BackupDeps & { err: string[] } {
  const err: string[] = [];
  return {
    err,
    env: {},
    dataDir,
    stderr: { write: (t: string) => err.push(t) },
    randomBytes: (n) => randomBytes(n),
    now: () => new Date("2026-12-07T10:00:00Z"),
    runTool: () => Promise.reject(new Error("no tool in this test")),
    ...overrides,
  };
}

/** A migrated server data directory with one account, its secret and its escrow key (recorded). */
async function serverDir(
  email = "ada@example.test",
): Promise<{ dir: string; secret: string; escrow: string }> {
  const dir = await tempDir();
  const database = await openDatabase({ dataDir: dir });
  try {
    await migrateToLatest(database.db);
    await database.db
      .insertInto("users")
      .values({ id: "u1", email, created_at: "2026-01-01T00:00:00Z" })
      .execute();
    const secretDeps = { env: {}, dataDir: dir, randomBytes: (n: number) => randomBytes(n) };
    const { secret } = await loadServerSecret(secretDeps);
    const { key } = await loadEscrowKey(secretDeps);
    await recordEscrowKey(database.db, key);
    const escrow = (await readFile(join(dir, "escrow.key"), "utf8")).trim();
    return { dir, secret, escrow };
  } finally {
    await database.close();
  }
}

function emails(dir: string): string[] {
  const db = new DatabaseSync(join(dir, SQLITE_FILE), { readOnly: true });
  try {
    return (db.prepare("select email from users order by email").all() as Array<{ email: string }>).map(
      (r) => r.email,
    );
  } finally {
    db.close();
  }
}

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

describe("admin backup and restore (SQLite)", () => {
  it("writes a 0600 copy and manifest without the secrets, and restores it into a fresh directory", async () => {
    const { dir, secret, escrow } = await serverDir();
    const file = join(await tempDir(), "latchkey.backup");
    const d = deps(dir);
    const manifest = await backup(file, { force: false, includeSecret: false }, d);
    const files = backupFiles(file);
    expect(await mode(files.dump)).toBe(0o600);
    expect(await mode(files.manifest)).toBe(0o600);
    await expect(lstat(files.secrets)).rejects.toMatchObject({ code: "ENOENT" });
    expect(JSON.parse(await readFile(files.manifest, "utf8"))).toEqual({
      format: 1,
      serverVersion: expect.stringMatching(/^\d+\.\d+\.\d+/) as unknown,
      migrations: Object.keys(MIGRATIONS),
      createdAt: "2026-12-07T10:00:00.000Z",
      database: "sqlite",
      includesSecrets: false,
    });
    expect(manifest.migrations).toEqual(Object.keys(MIGRATIONS));
    expect(d.err.join("")).toMatch(/not in it/);
    // Neither secret is in anything the backup wrote, in any spelling the files keep it.
    for (const path of [files.dump, files.manifest]) {
      const bytes = await readFile(path);
      expect(bytes.includes(secret)).toBe(false);
      expect(bytes.includes(escrow)).toBe(false);
    }

    const target = join(await tempDir(), "restored");
    const r = deps(target);
    await restore(file, { force: false }, r);
    expect(emails(target)).toEqual(["ada@example.test"]);
    expect(await mode(join(target, SQLITE_FILE))).toBe(0o600);
    expect(r.err.join("")).toMatch(/old LATCHKEY_SERVER_SECRET and LATCHKEY_ESCROW_KEY/);
    expect(r.err.join("")).toMatch(/refuses to start/);
    await expect(lstat(join(target, "server-secret"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses to overwrite an existing file without --force, and replaces a symbolic link itself with it", async () => {
    const { dir } = await serverDir();
    const out = await tempDir();
    const file = join(out, "b.sqlite");
    await writeFile(file, "precious");
    await expect(backup(file, { force: false, includeSecret: false }, deps(dir))).rejects.toMatchObject({
      code: "LK_BACKUP_EXISTS",
    });
    expect(await readFile(file, "utf8")).toBe("precious");
    await expect(lstat(`${file}.manifest.json`)).rejects.toMatchObject({ code: "ENOENT" });

    const victim = join(out, "victim");
    await writeFile(victim, "untouched");
    const linked = join(out, "linked.sqlite");
    await symlink(victim, linked);
    await expect(backup(linked, { force: false, includeSecret: false }, deps(dir))).rejects.toMatchObject({
      code: "LK_BACKUP_EXISTS",
    });
    await backup(linked, { force: true, includeSecret: false }, deps(dir));
    expect(await readFile(victim, "utf8")).toBe("untouched");
    expect((await lstat(linked)).isFile()).toBe(true);
    expect(await mode(linked)).toBe(0o600);
    // No temp file is left beside it.
    const { readdir } = await import("node:fs/promises");
    expect((await readdir(out)).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("with --include-secret writes both secrets 0600 beside it, and restore puts them back 0600", async () => {
    const { dir, secret, escrow } = await serverDir();
    const file = join(await tempDir(), "with-secrets");
    const d = deps(dir);
    await backup(file, { force: false, includeSecret: true }, d);
    const files = backupFiles(file);
    expect(await mode(files.secrets)).toBe(0o600);
    expect(JSON.parse(await readFile(files.secrets, "utf8"))).toEqual({
      serverSecret: secret,
      escrowKey: escrow,
    });
    expect(JSON.parse(await readFile(files.manifest, "utf8"))).toMatchObject({ includesSecrets: true });
    expect((await readFile(files.dump)).includes(secret)).toBe(false);
    expect(d.err.join("")).toContain(files.secrets);
    expect(d.err.join("")).not.toContain(secret);

    const target = join(await tempDir(), "restored");
    const r = deps(target);
    await restore(file, { force: false }, r);
    expect((await readFile(join(target, "server-secret"), "utf8")).trim()).toBe(secret);
    expect((await readFile(join(target, "escrow.key"), "utf8")).trim()).toBe(escrow);
    expect(await mode(join(target, "server-secret"))).toBe(0o600);
    expect(await mode(join(target, "escrow.key"))).toBe(0o600);
    expect(r.err.join("")).not.toContain(secret);
  });

  it("refuses an escrow key other than the one the database records", async () => {
    const { dir } = await serverDir();
    const file = join(await tempDir(), "b");
    const other = Buffer.from(randomBytes(32)).toString("base64");
    await expect(
      backup(file, { force: false, includeSecret: true }, deps(dir, { env: { LATCHKEY_ESCROW_KEY: other } })),
    ).rejects.toMatchObject({ code: "LK_CONFIG_INVALID" });
    await expect(lstat(file)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a non-empty target without --force, replaces it with --force, and refuses one in use", async () => {
    const source = await serverDir("from-backup@example.test");
    const file = join(await tempDir(), "b");
    await backup(file, { force: false, includeSecret: false }, deps(source.dir));
    const existing = await serverDir("already-there@example.test");

    await expect(restore(file, { force: false }, deps(existing.dir))).rejects.toMatchObject({
      code: "LK_RESTORE_NOT_EMPTY",
    });
    expect(emails(existing.dir)).toEqual(["already-there@example.test"]);

    // A running server holds the file open: never replaced under it, --force or not.
    const held = new DatabaseSync(join(existing.dir, SQLITE_FILE));
    held.exec("PRAGMA journal_mode = WAL");
    held.exec("insert into server_meta (key, value) values ('held', 'yes')");
    try {
      await expect(restore(file, { force: true }, deps(existing.dir))).rejects.toMatchObject({
        code: "LK_RESTORE_IN_USE",
      });
    } finally {
      held.close();
    }
    expect(emails(existing.dir)).toEqual(["already-there@example.test"]);

    await restore(file, { force: true }, deps(existing.dir));
    expect(emails(existing.dir)).toEqual(["from-backup@example.test"]);
  });

  it("refuses a backup from a newer server, a damaged file and a missing manifest", async () => {
    const { dir } = await serverDir();
    const out = await tempDir();
    const file = join(out, "b");
    await backup(file, { force: false, includeSecret: false }, deps(dir));
    const good = join(out, "good");
    await backup(good, { force: false, includeSecret: false }, deps(dir));

    const newer = new DatabaseSync(file);
    newer.exec(
      "insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '2027-01-01T00:00:00Z')",
    );
    newer.close();
    const target = join(await tempDir(), "t");
    await expect(restore(file, { force: false }, deps(target))).rejects.toMatchObject({
      code: "LK_BACKUP_TOO_NEW",
    });
    await expect(lstat(join(target, SQLITE_FILE))).rejects.toMatchObject({ code: "ENOENT" });

    const damaged = join(out, "damaged");
    const bytes = await readFile(good);
    // Every page after the first gets a b-tree page header no page can have; the file header still opens.
    for (let page = 4096; page < bytes.length; page += 4096) bytes.fill(0x55, page, page + 8);
    await writeFile(damaged, bytes);
    await writeFile(`${damaged}.manifest.json`, await readFile(`${good}.manifest.json`));
    await expect(restore(damaged, { force: false }, deps(target))).rejects.toMatchObject({
      code: "LK_BACKUP_INVALID",
    });
    await expect(lstat(join(target, SQLITE_FILE))).rejects.toMatchObject({ code: "ENOENT" });

    await mkdir(join(out, "bare"));
    await writeFile(join(out, "bare", "x"), await readFile(good));
    await expect(restore(join(out, "bare", "x"), { force: false }, deps(target))).rejects.toMatchObject({
      code: "LK_BACKUP_INVALID",
    });
  });
});

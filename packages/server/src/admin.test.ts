import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { ADMIN_USAGE, runAdmin, type AdminDeps } from "./admin.js";
import { openDatabase } from "./db/index.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function deps(
  password: string | (() => never),
): AdminDeps & { out: string[]; err: string[]; asked: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const asked: string[] = [];
  return {
    out,
    err,
    asked,
    env: {},
    cwd: "/",
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
    readPassword: (prompt) => {
      asked.push(prompt);
      return typeof password === "string" ? Promise.resolve(password) : password();
    },
    randomBytes: (n) => randomBytes(n),
  };
}

describe("latchkey-server admin", () => {
  it("prints its help, which says the TOTP URI is a secret", async () => {
    const d = deps("x");
    expect(await runAdmin(["--help"], d)).toBe(0);
    expect(d.out.join("")).toBe(ADMIN_USAGE);
    expect(ADMIN_USAGE).toMatch(/it IS the secret/);
    expect(ADMIN_USAGE).toMatch(/never an argument/);
    expect(ADMIN_USAGE).toMatch(/12 to 1024 characters/);
  });

  it.each([
    [["frobnicate", "a@b.c"]],
    [["create-user"]],
    [["create-user", "a@b.c", "extra"]],
    [["--password", "x"]],
    [["outbox", "a@b.c"]],
    [["create-user", "a@b.c", "--json"]],
    [["outbox", "--limit", "0"]],
  ])("refuses %j with LK_USAGE", async (argv) => {
    await expect(runAdmin(argv, deps("x"))).rejects.toMatchObject({ code: "LK_USAGE" });
  });

  it("checks the email before asking for the password", async () => {
    const d = deps(() => {
      throw new Error("must not be asked");
    });
    await expect(runAdmin(["create-user", "nope"], d)).rejects.toMatchObject({ code: "LK_EMAIL_INVALID" });
    expect(d.asked).toEqual([]);
  });

  it("creates the account in the data directory's database, printing its id on stdout", async () => {
    const dir = await mkdtemp(join(tmpdir(), "latchkey-admin-"));
    dirs.push(dir);
    const d = deps("a long enough password");
    expect(await runAdmin(["create-user", "Zoe@Example.test", "--data-dir", dir], d)).toBe(0);
    expect(d.asked).toEqual(["Password for Zoe@Example.test: "]);
    const database = await openDatabase({ dataDir: dir });
    try {
      const row = await database.db.selectFrom("users").select(["id", "email"]).executeTakeFirstOrThrow();
      expect(row.email).toBe("zoe@example.test");
      expect(d.out.join("")).toBe(`${row.id}\n`);
    } finally {
      await database.close();
    }
    expect(d.err.join("") + d.out.join("")).not.toContain("a password");
  });

  it("lists the data directory's outbox", async () => {
    const dir = await mkdtemp(join(tmpdir(), "latchkey-admin-"));
    dirs.push(dir);
    const d = deps(() => {
      throw new Error("must not be asked");
    });
    expect(await runAdmin(["outbox", "--data-dir", dir], d)).toBe(0);
    expect(d.out.join("")).toBe("The outbox is empty.\n");
    const j = deps("x");
    expect(await runAdmin(["outbox", "--json", "--data-dir", dir], j)).toBe(0);
    expect(JSON.parse(j.out.join(""))).toEqual({ notices: [] });
    expect(ADMIN_USAGE).toMatch(/admin outbox \[--json\]/);
  });
});

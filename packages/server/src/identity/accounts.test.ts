import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../db/index.js";
import { migrateToLatest } from "../db/migrations.js";
import {
  createAccount,
  enrollTotp,
  normalizeEmail,
  totpCode,
  verifyPassword,
  verifyTotp,
} from "./accounts.js";
import { findAccountByEmail } from "./data.js";
import { deriveIdentityKeys } from "./keys.js";

describe("normalizeEmail", () => {
  it("trims and lowercases", () => {
    expect(normalizeEmail("  Alice@Example.COM \n")).toBe("alice@example.com");
  });
  it.each([
    "",
    "alice",
    "@example.com",
    "alice@",
    "a b@example.com",
    "alice@example",
    "a@b@c.d",
    "a\u0000@b.c",
    // Invisible and bidirectional format characters: an account could otherwise be named like another in member
    // lists ("al\u200bice@corp.com" shows as alice@corp.com).
    "al\u200bice@corp.com",
    "alice@corp.com\u202e",
    "\u2066alice@corp.com",
    "alice@corp\u200f.com",
    "alice\ufeff@corp.com",
    "ali\u00adce@corp.com",
  ])("refuses %j with LK_EMAIL_INVALID", (email) => {
    expect(() => normalizeEmail(email)).toThrow(expect.objectContaining({ code: "LK_EMAIL_INVALID" }));
  });
});

describe("accounts on SQLite", () => {
  let dir: string;
  let database: OpenDatabase;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "latchkey-accounts-"));
    database = await openDatabase({ dataDir: dir });
    await migrateToLatest(database.db);
  });
  afterEach(async () => {
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("stores an Argon2id hash and checks passwords against it", async () => {
    const deps = { db: database.db, now: () => new Date(), randomId: randomUUID };
    await createAccount(deps, { email: "Bob@Example.test", password: "s3cret passphrase", via: "admin" });
    const bob = (await findAccountByEmail(database.db, "bob@example.test"))!;
    expect(bob.password_hash).toMatch(/^\$argon2id\$/);
    expect(await verifyPassword(bob, "s3cret passphrase")).toBe(true);
    expect(await verifyPassword(bob, "s3cret passphrasE")).toBe(false);
    expect(await verifyPassword(bob, "")).toBe(false);
    await expect(
      createAccount(deps, { email: "BOB@example.test", password: "another password", via: "admin" }),
    ).rejects.toMatchObject({
      code: "LK_ACCOUNT_EXISTS",
    });
    // New passwords: 12 characters (code points) at the least, 1024 at the most.
    for (const password of ["", "eleven char", "ünf 🔑🔑🔑🔑🔑🔑🔑", "x".repeat(1025)]) {
      await expect(
        createAccount(deps, { email: "c@example.test", password, via: "admin" }),
      ).rejects.toMatchObject({ code: "LK_PASSWORD_INVALID" });
    }
    await createAccount(deps, { email: "c@example.test", password: "twelve chars", via: "signup" });
  });

  it("accepts a TOTP code once: a replay within its window is refused", async () => {
    let now = new Date("2026-01-01T00:00:10Z");
    const deps = { db: database.db, now: () => now, randomId: randomUUID };
    const keys = deriveIdentityKeys("accounts-test-secret-0123456789abcdefgh");
    await createAccount(deps, { email: "t@example.test", password: "t's password", via: "admin" });
    const { uri, secret } = await enrollTotp({ ...deps, keys, issuerName: "Latchkey" }, "t@example.test");
    expect(uri).toContain(`secret=${secret}`);
    const account = async () => (await findAccountByEmail(database.db, "t@example.test"))!;
    expect((await account()).totp_secret).not.toContain(secret);
    const code = totpCode(secret, now);
    expect(await verifyTotp({ db: database.db, keys, now: () => now }, await account(), "12345")).toBe(false);
    expect(await verifyTotp({ db: database.db, keys, now: () => now }, await account(), code)).toBe(true);
    expect(await verifyTotp({ db: database.db, keys, now: () => now }, await account(), code)).toBe(false);
    // The next step's code is good once too; one step of drift is tolerated, three are not.
    now = new Date(now.getTime() + 30_000);
    expect(
      await verifyTotp({ db: database.db, keys, now: () => now }, await account(), totpCode(secret, now)),
    ).toBe(true);
    const far = new Date(now.getTime() + 90_000);
    expect(
      await verifyTotp({ db: database.db, keys, now: () => now }, await account(), totpCode(secret, far)),
    ).toBe(false);
  });
});

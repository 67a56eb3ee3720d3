// A wrong password costs the same work whether or not the email has an account, on both databases: the sign-in
// of an unknown email (or of an account without a password) verifies the password against a decoy hash made by
// the same injected hasher, so its answer cannot be told apart by how long it takes. Checked through the hasher
// the app is given, never by timing.
import { CLI_CLIENT_ID } from "@latchkey/core";
import * as oidc from "openid-client";
import { afterEach, expect, it } from "vitest";
import { openDatabase } from "../src/db/index.js";
import { migrateToLatest } from "../src/db/migrations.js";
import { argon2Hasher, type PasswordHasher } from "../src/identity/accounts.js";
import type { UserCredentials } from "../src/identity/migration.js";
import { describeEachDatabase } from "./databases.js";
import { buildTestApp, createTestUser } from "./support/identity.js";

/** Argon2id, recording every hash it makes and every hash it checks a password against. */
function recordingHasher(): PasswordHasher & { made: string[]; checked: string[] } {
  const made: string[] = [];
  const checked: string[] = [];
  return {
    made,
    checked,
    async hash(password) {
      const hashed = await argon2Hasher.hash(password);
      made.push(hashed);
      return hashed;
    },
    verify(hash, password) {
      checked.push(hash);
      return argon2Hasher.verify(hash, password);
    },
  };
}

/** The Argon2 variant, version and cost parameters of a PHC string: everything but salt and digest. */
const parameters = (phc: string): string => phc.split("$").slice(0, 4).join("$");

describeEachDatabase("sign-in without account enumeration", (target) => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it("verifies the password of an unknown email, or of an account without one, like an account's", async () => {
    const database = await openDatabase(await target.fresh());
    closers.push(() => database.close());
    await migrateToLatest(database.db);
    const hasher = recordingHasher();
    const { app } = buildTestApp({ db: database.db, hasher });
    closers.push(() => app.close());
    const alice = await createTestUser(database.db, "alice@example.test", "alice's password");
    const nopass = await createTestUser(database.db, "nopass@example.test", "to be removed");
    const users = database.db.withTables<UserCredentials>();
    await users.updateTable("users").set({ password_hash: null }).where("id", "=", nopass.userId).execute();
    const stored = await users
      .selectFrom("users")
      .select("password_hash")
      .where("id", "=", alice.userId)
      .executeTakeFirstOrThrow();
    const aliceHash = stored.password_hash!;

    const query = new URLSearchParams({
      client_id: CLI_CLIENT_ID,
      response_type: "code",
      scope: "openid",
      redirect_uri: "http://127.0.0.1:49152/callback",
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: "S256",
    });
    const started = await app.inject({ method: "GET", url: `/oidc/auth?${query.toString()}` });
    const cookie = [started.headers["set-cookie"] ?? []]
      .flat()
      .map((c) => c.split(";")[0])
      .join("; ");
    const login = async (email: string, password: string) => {
      const res = await app.inject({
        method: "POST",
        url: `${String(started.headers.location)}/login`,
        headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
        payload: new URLSearchParams({ email, password }).toString(),
      });
      return { status: res.statusCode, page: res.body.replaceAll(email, "EMAIL") };
    };

    const existing = await login(alice.email, "wrong password");
    expect(existing.status).toBe(401);
    expect(hasher.checked).toEqual([aliceHash]);

    const unknown = await login("nobody@example.test", "wrong password");
    expect(unknown).toEqual(existing);
    // One verification too, against a hash the injected hasher made, with the parameters of real hashes.
    expect(hasher.checked).toHaveLength(2);
    const decoy = hasher.checked[1]!;
    expect(hasher.made).toEqual([decoy]);
    expect(parameters(decoy)).toBe(parameters(aliceHash));

    const withoutPassword = await login(nopass.email, "wrong password");
    expect(withoutPassword).toEqual(existing);
    // The decoy is made once and checked every time.
    expect(hasher.checked).toEqual([aliceHash, decoy, decoy]);
    expect(hasher.made).toEqual([decoy]);

    // The right password still signs in.
    expect((await login(alice.email, alice.password)).status).toBe(303);
  });
});

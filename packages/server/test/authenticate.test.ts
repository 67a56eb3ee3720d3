// identity.authenticate reads the access token, its grant and its account in one statement; these tests tamper
// with the stored rows the ways that must make a token fail (expiry, client, grant, account, format, kind) and
// check, for every case, that the answer is the one oidc-provider's own models give (AccessToken.find,
// Grant.find, then the users row): the path authenticate took before it joined the rows itself.
import { CLI_CLIENT_ID } from "@latchkey/core";
import { afterEach, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../src/db/index.js";
import { migrateToLatest } from "../src/db/migrations.js";
import { findAccountById } from "../src/identity/data.js";
import type { Identity } from "../src/identity/identity.js";
import { describeEachDatabase } from "./databases.js";
import { buildTestApp, createTestUser, mintAccessToken, type TestUser } from "./support/identity.js";

describeEachDatabase("authenticate", (target) => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  interface Setup {
    database: OpenDatabase;
    identity: Identity;
    user: TestUser;
  }

  const setup = async (): Promise<Setup> => {
    const database = await openDatabase(await target.fresh());
    closers.push(() => database.close());
    await migrateToLatest(database.db);
    const { app, identity } = buildTestApp({ db: database.db });
    closers.push(() => app.close());
    const user = await createTestUser(database.db, "auth@example.test", "a password for auth");
    return { database, identity, user };
  };

  /** The verdict of oidc-provider's models on `token`, with the same checks authenticate makes. */
  const reference = async (s: Setup, token: string): Promise<string | null> => {
    const provider = s.identity.provider();
    const found = await provider.AccessToken.find(token);
    if (
      !found ||
      found.isExpired ||
      found.exp === undefined ||
      found.clientId !== CLI_CLIENT_ID ||
      !found.accountId ||
      !found.grantId
    )
      return null;
    const grant = await provider.Grant.find(found.grantId);
    if (!grant || grant.accountId !== found.accountId) return null;
    const account = await findAccountById(s.database.db, found.accountId);
    return account ? account.id : null;
  };

  const expectVerdict = async (s: Setup, token: string, userId: string | null): Promise<void> => {
    expect(await reference(s, token)).toBe(userId);
    const who = await s.identity.authenticate(token);
    expect(who?.userId ?? null).toBe(userId);
  };

  const row = async (s: Setup, kind: string, id: string) =>
    s.database.db
      .selectFrom("oidc_models")
      .selectAll()
      .where("kind", "=", kind)
      .where("id", "=", id)
      .executeTakeFirstOrThrow();

  const editPayload = async (
    s: Setup,
    kind: string,
    id: string,
    edit: (payload: Record<string, unknown>) => void,
  ): Promise<void> => {
    const payload = JSON.parse((await row(s, kind, id)).payload) as Record<string, unknown>;
    edit(payload);
    await s.database.db
      .updateTable("oidc_models")
      .set({ payload: JSON.stringify(payload) })
      .where("kind", "=", kind)
      .where("id", "=", id)
      .execute();
  };

  const grantOf = async (s: Setup, token: string): Promise<string> => {
    const grantId = (await row(s, "AccessToken", token)).grant_id;
    if (grantId === null) throw new Error("token without grant");
    return grantId;
  };

  it("answers the token's owner, client and expiry for a live token", async () => {
    const s = await setup();
    const token = await mintAccessToken(s.identity, { userId: s.user.userId });
    await expectVerdict(s, token, s.user.userId);
    const who = await s.identity.authenticate(token);
    expect(who).toEqual({
      userId: s.user.userId,
      email: "auth@example.test",
      clientId: CLI_CLIENT_ID,
      grantId: await grantOf(s, token),
      expiresAt: expect.any(Number),
    });
    expect(who!.expiresAt - Math.floor(Date.now() / 1000)).toBeGreaterThan(800);
    await expectVerdict(s, "x".repeat(43), null);
    expect(await s.identity.authenticate("not a token")).toBeNull();
  });

  it("refuses expired tokens: by the row's expiry and by the payload's exp", async () => {
    const s = await setup();
    const stale = await mintAccessToken(s.identity, { userId: s.user.userId, expiresInSeconds: -5 });
    await expectVerdict(s, stale, null);
    // The row's own expiry still ahead, the payload's exp just passed (inside oidc-provider's clock tolerance,
    // so only the isExpired check catches it).
    const token = await mintAccessToken(s.identity, { userId: s.user.userId });
    await editPayload(s, "AccessToken", token, (p) => (p.exp = Math.floor(Date.now() / 1000) - 1));
    await expectVerdict(s, token, null);
    // Long expired by exp, row kept forever.
    const kept = await mintAccessToken(s.identity, { userId: s.user.userId });
    await s.database.db.updateTable("oidc_models").set({ expires_at: null }).where("id", "=", kept).execute();
    await editPayload(s, "AccessToken", kept, (p) => (p.exp = Math.floor(Date.now() / 1000) - 3600));
    await expectVerdict(s, kept, null);
  });

  it("refuses a token issued to another client, of another format or kind, or without account or grant", async () => {
    const s = await setup();
    const edits: ((p: Record<string, unknown>) => void)[] = [
      (p) => (p.clientId = "someone-else"),
      (p) => (p.format = "jwt"),
      (p) => (p.jwt = "x.y.z"),
      (p) => (p.kind = "RefreshToken"),
      (p) => delete p.accountId,
      (p) => (p.exp = "tomorrow"),
    ];
    for (const edit of edits) {
      const token = await mintAccessToken(s.identity, { userId: s.user.userId });
      await editPayload(s, "AccessToken", token, edit);
      await expectVerdict(s, token, null);
    }
  });

  it("refuses a token whose grant is destroyed, expired or another account's", async () => {
    const s = await setup();
    const other = await createTestUser(s.database.db, "other@example.test", "the other password");

    const destroyed = await mintAccessToken(s.identity, { userId: s.user.userId });
    await s.database.db
      .deleteFrom("oidc_models")
      .where("kind", "=", "Grant")
      .where("id", "=", await grantOf(s, destroyed))
      .execute();
    await expectVerdict(s, destroyed, null);

    const expired = await mintAccessToken(s.identity, { userId: s.user.userId });
    await s.database.db
      .updateTable("oidc_models")
      .set({ expires_at: Math.floor(Date.now() / 1000) - 1 })
      .where("kind", "=", "Grant")
      .where("id", "=", await grantOf(s, expired))
      .execute();
    await expectVerdict(s, expired, null);

    const foreign = await mintAccessToken(s.identity, { userId: s.user.userId });
    await editPayload(s, "Grant", await grantOf(s, foreign), (p) => (p.accountId = other.userId));
    await expectVerdict(s, foreign, null);
  });

  it("refuses the token of a deleted account, and keeps the other accounts' tokens working", async () => {
    const s = await setup();
    const gone = await createTestUser(s.database.db, "gone@example.test", "a password that goes");
    const token = await mintAccessToken(s.identity, { userId: gone.userId });
    const kept = await mintAccessToken(s.identity, { userId: s.user.userId });
    await expectVerdict(s, token, gone.userId);
    // Its audit rows (account creation) reference it; the server has no account deletion yet, so do it by hand.
    await s.database.db.deleteFrom("audit_events").where("user_id", "=", gone.userId).execute();
    await s.database.db.deleteFrom("users").where("id", "=", gone.userId).execute();
    await expectVerdict(s, token, null);
    await expectVerdict(s, kept, s.user.userId);
  });

  it("follows the payload's grant when the grant_id column says otherwise (the provider's path decides)", async () => {
    const s = await setup();
    const token = await mintAccessToken(s.identity, { userId: s.user.userId });
    await s.database.db
      .updateTable("oidc_models")
      .set({ grant_id: "not-the-grant" })
      .where("kind", "=", "AccessToken")
      .where("id", "=", token)
      .execute();
    await expectVerdict(s, token, s.user.userId);
    await s.database.db
      .deleteFrom("oidc_models")
      .where("kind", "=", "Grant")
      .where("id", "=", (await row(s, "AccessToken", token)).payload.match(/"grantId":"([^"]+)"/)![1]!)
      .execute();
    await expectVerdict(s, token, null);
  });
});

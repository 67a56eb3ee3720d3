// Who wrapped an organisation vault key, on SQLite and PostgreSQL: a share names the sharer's own sharing key and
// the server refuses one that is not the caller's registered key; every wrapped key it writes records the sharer
// (account and public key) and the share's version; a pull answers them, and a key without them (written before
// the server recorded sharers) is answered as missing and counted stale. The member-side checks are the CLI's.
import { randomUUID } from "node:crypto";
import {
  fromBase64,
  generateX25519KeyPair,
  openEnvelope,
  orgMembersResponseSchema,
  orgPullResponseSchema,
  sharingKeyFingerprint,
  syncBlobContext,
  toBase64,
  utf8Decode,
} from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../src/db/index.js";
import { MIGRATIONS, migrateToLatest } from "../src/db/migrations.js";
import { replaceSharingKey } from "../src/sharing-keys/data.js";
import { describeEachDatabase } from "./databases.js";
import {
  call,
  callWithProof,
  makeOrg,
  newMember,
  orgPushBody,
  shareBody,
  unwrapFor,
  type Member,
} from "./org-support.js";
import { newVaultKey, openMigrated, startSyncServer, type Caller, type SyncServer } from "./sync-support.js";

describeEachDatabase("who wrapped an organisation vault key", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  let owner: Member;
  let maintainer: Member;
  let member: Member;
  /** A maintainer whose account has registered no sharing key. */
  let keyless: Caller;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    owner = await newMember(server, database.db);
    maintainer = await newMember(server, database.db);
    member = await newMember(server, database.db);
    keyless = await server.caller();
    await makeOrg(server, owner, "authors", [
      [maintainer, "maintainer"],
      [member, "member"],
      [keyless, "maintainer"],
    ]);
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  const team = (): Member[] => [owner, maintainer, member];
  const vaultPath = (vaultId: string) => `/authors/vaults/${vaultId}`;

  /** What a share could have changed: the copy's rows, the audit rows and the organisation's row. */
  async function snapshot(vaultId: string) {
    const db = database.db;
    return {
      heads: await db.selectFrom("org_vault_heads").selectAll().where("vault_id", "=", vaultId).execute(),
      versions: await db
        .selectFrom("org_vault_versions")
        .selectAll()
        .where("vault_id", "=", vaultId)
        .execute(),
      keys: await db.selectFrom("vault_org_keys").selectAll().where("vault_id", "=", vaultId).execute(),
      audit: await db.selectFrom("audit_events").select("id").orderBy("id").execute(),
      org: await db.selectFrom("orgs").selectAll().where("slug", "=", "authors").execute(),
    };
  }

  /** A pull by `who`, checked against core's schema of the answer. */
  async function pull(who: Member, vaultId: string) {
    const answer = await call(app, who.token, "GET", vaultPath(vaultId));
    expect(answer.statusCode, answer.body).toBe(200);
    return orgPullResponseSchema.parse(answer.json());
  }

  it("refuses a share whose sender key is not the caller's registered sharing key, writing nothing", async () => {
    const vaultId = randomUUID();
    const vaultKey = newVaultKey();
    const before = await snapshot(vaultId);
    const stranger = await generateX25519KeyPair();
    const strangerFingerprint = await sharingKeyFingerprint(stranger.publicKey);
    // Another member's registered key (a stolen maintainer token naming a key the server knows), and a key the
    // server has never seen.
    for (const senderFingerprint of [owner.fingerprint, strangerFingerprint]) {
      const body = await shareBody(maintainer, "authors", vaultId, 0, vaultKey, team());
      const refused = await call(app, maintainer.token, "PUT", `${vaultPath(vaultId)}/share`, {
        ...body,
        senderFingerprint,
      });
      expect([refused.statusCode, refused.json().code]).toEqual([409, "LK_SHARING_KEY_MISMATCH"]);
      expect(refused.json().message).toMatch(/nothing was written/);
      expect(await snapshot(vaultId)).toEqual(before);
    }
    // A maintainer whose account has no registered key shares nothing either, whatever key it names.
    const keys = await generateX25519KeyPair();
    const unregistered: Member = {
      ...keyless,
      keys,
      fingerprint: await sharingKeyFingerprint(keys.publicKey),
    };
    const noKey = await call(
      app,
      keyless.token,
      "PUT",
      `${vaultPath(vaultId)}/share`,
      await shareBody(unregistered, "authors", vaultId, 0, vaultKey, team()),
    );
    expect([noKey.statusCode, noKey.json().code]).toEqual([409, "LK_SHARING_KEY_MISMATCH"]);
    expect(await snapshot(vaultId)).toEqual(before);
    // Positive control: the same share naming the caller's own key is stored.
    const shared = await call(
      app,
      maintainer.token,
      "PUT",
      `${vaultPath(vaultId)}/share`,
      await shareBody(maintainer, "authors", vaultId, 0, vaultKey, team()),
    );
    expect([shared.statusCode, shared.json().version]).toEqual([200, 1]);
  });

  it("answers who wrapped the key and its key version: kept by pushes, moved by a share", async () => {
    const vaultId = randomUUID();
    const vaultKey = newVaultKey();
    const share = async (by: Member, base: number, plaintext: string) => {
      const shared = await call(
        app,
        by.token,
        "PUT",
        `${vaultPath(vaultId)}/share`,
        await shareBody(by, "authors", vaultId, base, vaultKey, team(), plaintext),
      );
      expect(shared.statusCode, shared.body).toBe(200);
    };
    const sharerOf = (who: Member) => ({
      userId: who.userId,
      email: who.email,
      publicKey: toBase64(who.keys.publicKey),
      fingerprint: who.fingerprint,
    });
    const open = async (who: Member, answer: Awaited<ReturnType<typeof pull>>) =>
      utf8Decode(
        await openEnvelope(
          await unwrapFor(who, "authors", answer),
          fromBase64(answer.encryptedBlob),
          syncBlobContext(vaultId, answer.version),
        ),
      );

    await share(maintainer, 0, '{"API_KEY":"v1"}');
    for (const who of team()) {
      const answer = await pull(who, vaultId);
      expect(answer).toMatchObject({ version: 1, keyVersion: 1, wrappedBy: sharerOf(maintainer) });
      // The answer is enough to open the key from the sharer named, under the share's context.
      expect(await open(who, answer)).toBe('{"API_KEY":"v1"}');
    }

    // A member's push keeps the wrapped keys, so their key version stays the share's.
    const pushed = await call(
      app,
      member.token,
      "PUT",
      vaultPath(vaultId),
      await orgPushBody(vaultId, 1, vaultKey, '{"API_KEY":"v2"}'),
    );
    expect(pushed.json().version).toBe(2);
    const afterPush = await pull(member, vaultId);
    expect(afterPush).toMatchObject({ version: 2, keyVersion: 1, wrappedBy: sharerOf(maintainer) });
    expect(await open(member, afterPush)).toBe('{"API_KEY":"v2"}');

    // Another maintainer's share: the key version is the share's new version, and the sharer is the new one.
    await share(owner, 2, '{"API_KEY":"v3"}');
    const afterShare = await pull(member, vaultId);
    expect(afterShare).toMatchObject({ version: 3, keyVersion: 3, wrappedBy: sharerOf(owner) });
    expect(await open(member, afterShare)).toBe('{"API_KEY":"v3"}');
    const stored = await database.db
      .selectFrom("vault_org_keys")
      .select(["user_id", "wrapped_by", "wrapped_by_key", "key_version"])
      .where("vault_id", "=", vaultId)
      .execute();
    expect(stored.map((r) => ({ ...r, key_version: Number(r.key_version) }))).toEqual(
      expect.arrayContaining(
        team().map((m) => ({
          user_id: m.userId,
          wrapped_by: owner.userId,
          wrapped_by_key: toBase64(owner.keys.publicKey),
          key_version: 3,
        })),
      ),
    );
    expect(stored).toHaveLength(3);
  });

  it("keeps the key a share was made from after the sharer rotates, and a null email once the sharer is gone", async () => {
    const vaultId = randomUUID();
    const sharer = await newMember(server, database.db);
    await makeOrg(server, sharer, `gone-${vaultId.slice(0, 8)}`, [[member, "member"]]);
    const slug = `gone-${vaultId.slice(0, 8)}`;
    const shared = await call(
      app,
      sharer.token,
      "PUT",
      `/${slug}/vaults/${vaultId}/share`,
      await shareBody(sharer, slug, vaultId, 0, newVaultKey(), [sharer, member]),
    );
    expect(shared.statusCode).toBe(200);
    // The sharer's registered key changes: the wrap is still from the old one, which the member must use.
    const next = await generateX25519KeyPair();
    expect(
      await replaceSharingKey(database.db, {
        userId: sharer.userId,
        fromFingerprint: sharer.fingerprint,
        publicKey: toBase64(next.publicKey),
        fingerprint: await sharingKeyFingerprint(next.publicKey),
        at: new Date().toISOString(),
      }),
    ).toBe(true);
    const pulled = async () => {
      const answer = await call(app, member.token, "GET", `/${slug}/vaults/${vaultId}`);
      expect(answer.statusCode, answer.body).toBe(200);
      return orgPullResponseSchema.parse(answer.json());
    };
    expect((await pulled()).wrappedBy).toEqual({
      userId: sharer.userId,
      email: sharer.email,
      role: "owner",
      publicKey: toBase64(sharer.keys.publicKey),
      fingerprint: sharer.fingerprint,
    });
    // A sharer whose account no longer exists (no foreign key holds the row to it): named without an email.
    const vanished = randomUUID();
    await database.db
      .updateTable("vault_org_keys")
      .set({ wrapped_by: vanished })
      .where("vault_id", "=", vaultId)
      .execute();
    expect((await pulled()).wrappedBy).toMatchObject({ userId: vanished, email: null, role: null });
  });

  it("answers the sharer's role now: a maintainer's, a plain member's once demoted, null once removed", async () => {
    // What a member's CLI refuses a key on (copy.ts checkSharer): a removed or demoted member's wrap, which a
    // lying server or the member could otherwise keep serving under the copy's current key version.
    const vaultId = randomUUID();
    const slug = `role-${vaultId.slice(0, 8)}`;
    const sharer = await newMember(server, database.db);
    await makeOrg(server, owner, slug, [
      [sharer, "maintainer"],
      [member, "member"],
    ]);
    const shared = await call(
      app,
      sharer.token,
      "PUT",
      `/${slug}/vaults/${vaultId}/share`,
      await shareBody(sharer, slug, vaultId, 0, newVaultKey(), [owner, sharer, member]),
    );
    expect(shared.statusCode, shared.body).toBe(200);
    const sharerRole = async () => {
      const answer = await call(app, member.token, "GET", `/${slug}/vaults/${vaultId}`);
      expect(answer.statusCode, answer.body).toBe(200);
      const { wrappedBy } = orgPullResponseSchema.parse(answer.json());
      expect(wrappedBy.userId).toBe(sharer.userId);
      return wrappedBy.role;
    };
    expect(await sharerRole()).toBe("maintainer");

    const demoted = await callWithProof(
      server,
      owner.token,
      "org:member:role",
      "PATCH",
      `/${slug}/members/${sharer.userId}`,
      { role: "member" },
    );
    expect(demoted.statusCode, demoted.body).toBe(200);
    expect(await sharerRole()).toBe("member");

    const removed = await callWithProof(
      server,
      owner.token,
      "org:member:remove",
      "DELETE",
      `/${slug}/members/${sharer.userId}`,
    );
    expect(removed.statusCode, removed.body).toBe(200);
    // The member's own key (wrapped by the removed sharer) is still there: the role says whose it is now.
    expect(await sharerRole()).toBeNull();
  });

  it("answers a key without its sharer (written before the server recorded sharers) as missing, and stale", async () => {
    const vaultId = randomUUID();
    const vaultKey = newVaultKey();
    const shared = await call(
      app,
      maintainer.token,
      "PUT",
      `${vaultPath(vaultId)}/share`,
      await shareBody(maintainer, "authors", vaultId, 0, vaultKey, team()),
    );
    expect(shared.statusCode).toBe(200);
    const members = async () => {
      const answer = await call(app, owner.token, "GET", "/authors/members");
      expect(answer.statusCode).toBe(200);
      const detail = orgMembersResponseSchema.parse(answer.json());
      const of = detail.members.find((m) => m.userId === member.userId)!;
      return { state: of.keys.find((k) => k.vaultId === vaultId)?.state, needsShare: of.needsShare };
    };
    expect(await members()).toEqual({ state: "current", needsShare: false });

    // The member's row as a server before migration 0014 wrote it: the same wrapped key, no author.
    const row = await database.db
      .selectFrom("vault_org_keys")
      .selectAll()
      .where("vault_id", "=", vaultId)
      .where("user_id", "=", member.userId)
      .executeTakeFirstOrThrow();
    await database.db
      .deleteFrom("vault_org_keys")
      .where("vault_id", "=", vaultId)
      .where("user_id", "=", member.userId)
      .execute();
    await database.db
      .insertInto("vault_org_keys")
      .values({
        vault_id: row.vault_id,
        org_id: row.org_id,
        user_id: row.user_id,
        wrapped_key: row.wrapped_key,
        key_fingerprint: row.key_fingerprint,
        created_at: row.created_at,
      })
      .execute();

    const refused = await call(app, member.token, "GET", vaultPath(vaultId));
    expect([refused.statusCode, refused.json().code]).toEqual([409, "LK_ORG_VAULT_KEY_MISSING"]);
    expect(refused.body).not.toContain(row.wrapped_key);
    expect(await members()).toEqual({ state: "stale", needsShare: true });
    // The others' rows have their sharer, so they still pull.
    expect((await pull(owner, vaultId)).keyVersion).toBe(1);

    // A maintainer's share again gives it a sharer: pulled, current.
    const again = await call(
      app,
      maintainer.token,
      "PUT",
      `${vaultPath(vaultId)}/share`,
      await shareBody(maintainer, "authors", vaultId, 1, vaultKey, team()),
    );
    expect(again.json().version).toBe(2);
    expect(await pull(member, vaultId)).toMatchObject({
      keyVersion: 2,
      wrappedBy: { userId: maintainer.userId },
    });
    expect(await members()).toEqual({ state: "current", needsShare: false });
  });

  describe("the migration", () => {
    it("leaves the wrapped keys a database held before it without a sharer or key version", async () => {
      const opened = await openDatabase(await target.fresh());
      try {
        const db = opened.db;
        const names = Object.keys(MIGRATIONS);
        const ours = names.findIndex((name) => name.endsWith("_org_key_authors"));
        expect(ours).toBeGreaterThan(0);
        const before = Object.fromEntries(Object.entries(MIGRATIONS).slice(0, ours));
        await migrateToLatest(db, before);
        const at = new Date().toISOString();
        await db
          .insertInto("users")
          .values({ id: "u1", email: "old@example.test", created_at: at })
          .execute();
        await db
          .insertInto("orgs")
          .values({ id: "o1", slug: "old", name: "old", created_at: at, updated_at: at })
          .execute();
        await db
          .insertInto("vault_org_keys")
          .values({
            vault_id: "v1",
            org_id: "o1",
            user_id: "u1",
            wrapped_key: "w",
            key_fingerprint: "f",
            created_at: at,
          })
          .execute();
        expect(await migrateToLatest(db)).toContain(names[ours]);
        expect(
          await db
            .selectFrom("vault_org_keys")
            .select(["wrapped_key", "wrapped_by", "wrapped_by_key", "key_version"])
            .execute(),
        ).toEqual([{ wrapped_key: "w", wrapped_by: null, wrapped_by_key: null, key_version: null }]);
      } finally {
        await opened.close();
      }
    });
  });
});

// A sharing-key rotation with organisations, on SQLite and PostgreSQL: the rotating member's wrapped keys go in every
// organisation (nobody else's), the audit log gets vault.public_key_rotated and one impact row per organisation
// (readable by the organisation's log), the account and each organisation's owners and admins get notices, and
// the member shows as needing a share. All of it in one transaction: a failure part way leaves the key, the wrapped
// keys, the audit log, the outbox and the step-up proof as they were.
import { randomUUID } from "node:crypto";
import {
  generateX25519KeyPair,
  sharingKeyFingerprint,
  SHARING_KEY_PATH,
  STEP_UP_HEADER,
  toBase64,
  type SharingKeyImpactResponse,
  type SharingKeyRotateResponse,
} from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import { recordStepUpUse } from "../src/api/data.js";
import { SHARING_KEY_HOOKS } from "../src/app.js";
import type { OpenDatabase } from "../src/db/index.js";
import { createSharingKeyService, type StepUpSpend } from "../src/sharing-keys/service.js";
import { describeEachDatabase } from "./databases.js";
import { call, makeOrg, newMember, shareBody, type Member } from "./org-support.js";
import { stepUpProofFor } from "./support/step-up.js";
import { newVaultKey, openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

describeEachDatabase("sharing-key rotation with organisations", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  /**
   * Two organisations, each with an owner, an admin and a vault shared with everyone; `rotating` is a member of
   * both. Slugs are unique per call so that tests share a database.
   */
  async function twoOrgs() {
    const tag = randomUUID().slice(0, 8);
    const rotating = await newMember(server, database.db);
    const orgs = [];
    for (const name of ["acme", "beta"]) {
      const slug = `${name}-${tag}`;
      const owner = await newMember(server, database.db);
      const admin = await newMember(server, database.db);
      const maintainer = await newMember(server, database.db);
      await makeOrg(server, owner, slug, [
        [admin, "admin"],
        [maintainer, "maintainer"],
        [rotating, "member"],
      ]);
      const vaultId = randomUUID();
      const everyone: Member[] = [owner, admin, maintainer, rotating];
      const shared = await call(
        app,
        maintainer.token,
        "PUT",
        `/${slug}/vaults/${vaultId}/share`,
        await shareBody(maintainer, slug, vaultId, 0, newVaultKey(), everyone),
      );
      expect(shared.statusCode, shared.body).toBe(200);
      orgs.push({ slug, owner, admin, maintainer, vaultId });
    }
    return { rotating, orgs };
  }

  const keysOf = (userId: string) =>
    database.db
      .selectFrom("vault_org_keys")
      .select(["org_id", "vault_id"])
      .where("user_id", "=", userId)
      .execute();
  const countKeys = async () =>
    Number(
      (
        await database.db
          .selectFrom("vault_org_keys")
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const auditOf = (userId: string) =>
    database.db
      .selectFrom("audit_events")
      .select(["action", "org_id", "metadata"])
      .where("user_id", "=", userId)
      .where("action", "in", ["vault.public_key_rotated", "org.member_sharing_key_rotated"])
      .orderBy("action")
      .orderBy("org_id")
      .execute();
  const outbox = () => database.db.selectFrom("outbox").select(["recipient", "kind", "subject"]).execute();

  async function newKey() {
    const { publicKey } = await generateX25519KeyPair();
    return { publicKey: toBase64(publicKey), fingerprint: await sharingKeyFingerprint(publicKey) };
  }

  it("drops the member's wrapped keys in every organisation, audits per organisation, and tells the right people", async () => {
    const { rotating, orgs } = await twoOrgs();
    const others = await Promise.all(orgs.map((org) => keysOf(org.owner.userId)));
    expect((await keysOf(rotating.userId)).length).toBe(2);

    const impact = await call(app, rotating.token, "GET", `${SHARING_KEY_PATH}/impact`);
    expect(impact.statusCode).toBe(200);
    const expectedOrgs = orgs.map((org) => ({
      orgId: expect.any(String) as string,
      slug: org.slug,
      vaults: [{ vaultId: org.vaultId, name: "team-project" }],
    }));
    expect(impact.json<SharingKeyImpactResponse>().orgs).toEqual(expectedOrgs);

    const outboxBefore = (await outbox()).length;
    const next = await newKey();
    const proof = await stepUpProofFor(server.identity, rotating.token, "vault:public-key:rotate");
    const rotated = await call(
      app,
      rotating.token,
      "POST",
      `${SHARING_KEY_PATH}/rotate`,
      { publicKey: next.publicKey },
      {
        [STEP_UP_HEADER]: proof,
      },
    );
    expect(rotated.statusCode, rotated.body).toBe(200);
    expect(rotated.json<SharingKeyRotateResponse>()).toEqual({
      ...next,
      previousFingerprint: rotating.fingerprint,
      rotated: true,
      orgs: expectedOrgs,
      wrappedKeysDeleted: 2,
    });

    expect(await keysOf(rotating.userId)).toEqual([]);
    // Nobody else's keys went.
    expect(await Promise.all(orgs.map((org) => keysOf(org.owner.userId)))).toEqual(others);

    const audit = await auditOf(rotating.userId);
    expect(audit.map((row) => row.action)).toEqual([
      "org.member_sharing_key_rotated",
      "org.member_sharing_key_rotated",
      "vault.public_key_rotated",
    ]);
    expect(audit[2]!.org_id).toBeNull();
    expect(JSON.parse(audit[2]!.metadata)).toMatchObject({
      fingerprint: next.fingerprint,
      previousFingerprint: rotating.fingerprint,
      orgs: 2,
      wrappedKeysDeleted: 2,
      stepUp: "password",
    });
    const impactRows = audit.slice(0, 2);
    expect(impactRows.every((row) => row.org_id !== null)).toBe(true);
    // Each organisation's log shows its own impact row to its maintainers.
    for (const org of orgs) {
      const log = await call(app, org.maintainer.token, "GET", `/${org.slug}/log`);
      expect(log.statusCode, log.body).toBe(200);
      const entries = log.json<{ entries: { action: string; actor: { userId: string } }[] }>().entries;
      expect(entries.filter((e) => e.action === "org.member_sharing_key_rotated")).toEqual([
        expect.objectContaining({ actor: expect.objectContaining({ userId: rotating.userId }) }),
      ]);
    }

    const notices = (await outbox()).slice(outboxBefore);
    expect(notices.filter((n) => n.kind === "security").map((n) => n.recipient)).toEqual([rotating.email]);
    const impactTo = notices.filter((n) => n.kind === "impact").map((n) => n.recipient);
    expect(impactTo.sort()).toEqual(orgs.flatMap((org) => [org.owner.email, org.admin.email]).sort());
    // Members and maintainers are not told; the text names slugs, never a key.
    for (const notice of notices) {
      expect(notice.subject).not.toContain(next.publicKey);
      expect([orgs[0]!.maintainer.email, orgs[1]!.maintainer.email]).not.toContain(notice.recipient);
    }

    // The organisations now see the member as needing a share, and the member's pull has no key.
    const members = await call(app, orgs[0]!.owner.token, "GET", `/${orgs[0]!.slug}/members`);
    const listed = members
      .json<{ members: { userId: string; needsShare: boolean; sharingKeyFingerprint: string | null }[] }>()
      .members.find((m) => m.userId === rotating.userId);
    expect(listed).toMatchObject({ needsShare: true, sharingKeyFingerprint: next.fingerprint });
    const pull = await call(app, rotating.token, "GET", `/${orgs[0]!.slug}/vaults/${orgs[0]!.vaultId}`);
    expect([pull.statusCode, pull.json<{ code: string }>().code]).toEqual([409, "LK_ORG_VAULT_KEY_MISSING"]);
  });

  it("a failure part way leaves everything as it was, the proof unspent", async () => {
    const { rotating } = await twoOrgs();
    const before = {
      key: await database.db
        .selectFrom("user_public_keys")
        .selectAll()
        .where("user_id", "=", rotating.userId)
        .executeTakeFirstOrThrow(),
      keys: await countKeys(),
      audit: await auditOf(rotating.userId),
      outbox: (await outbox()).length,
    };
    // Every audit row gets the same id: the first (vault.public_key_rotated) is written, after the key was
    // replaced and the wrapped keys deleted; the second (the first organisation's impact row) fails on the
    // primary key, a real failure of the database in the middle of the transaction.
    const sameId = randomUUID();
    const service = createSharingKeyService({
      db: database.db,
      now: () => new Date(),
      randomId: () => sameId,
      ...SHARING_KEY_HOOKS,
    });
    const jti = randomUUID();
    const spend: StepUpSpend = {
      method: "password",
      record: (trx) =>
        recordStepUpUse(trx, {
          jti,
          userId: rotating.userId,
          scope: "vault:public-key:rotate",
          usedAt: new Date().toISOString(),
          expiresAt: new Date(Date.now() + 300_000).toISOString(),
        }),
    };
    const next = await newKey();
    await expect(
      service.rotate(
        { userId: rotating.userId, email: rotating.email, ip: "192.0.2.7" },
        next.publicKey,
        spend,
      ),
    ).rejects.toThrow(/database: insert audit event failed/);

    expect(
      await database.db
        .selectFrom("user_public_keys")
        .selectAll()
        .where("user_id", "=", rotating.userId)
        .executeTakeFirstOrThrow(),
    ).toEqual(before.key);
    expect(await countKeys()).toBe(before.keys);
    expect((await keysOf(rotating.userId)).length).toBe(2);
    expect(await auditOf(rotating.userId)).toEqual(before.audit);
    expect((await outbox()).length).toBe(before.outbox);
    expect(
      await database.db.selectFrom("step_up_uses").select("jti").where("jti", "=", jti).executeTakeFirst(),
    ).toBeUndefined();

    // The same rotation then goes through whole.
    const ok = createSharingKeyService({
      db: database.db,
      now: () => new Date(),
      randomId: randomUUID,
      ...SHARING_KEY_HOOKS,
    });
    const done = await ok.rotate(
      { userId: rotating.userId, email: rotating.email, ip: "192.0.2.7" },
      next.publicKey,
      spend,
    );
    expect(done).toMatchObject({ kind: "rotated", wrappedKeysDeleted: 2 });
    expect(await keysOf(rotating.userId)).toEqual([]);
  });
});

// The organisation routes end to end through the real app on SQLite and PostgreSQL: organisations and roles, the
// last owner, sharing a vault with keys wrapped per member (real X25519 keys; each member unwraps and opens the
// blob), pushes with versions and conflicts as for personal copies, the removal of a member (step-up proof, keys
// deleted, their pull refused, the offboarding report), and who reads which audit log.
import { randomUUID } from "node:crypto";
import { fromBase64, openEnvelope, syncBlobContext, utf8Decode } from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { deleteUserKeys, listUserKeys, orgNoticeRecipients } from "../src/orgs/data.js";
import { createOrgService } from "../src/orgs/service.js";
import { findSharingKeys } from "../src/sharing-keys/data.js";
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
  type PulledKey,
} from "./org-support.js";
import { stepUpProofFor } from "./support/step-up.js";
import { newVaultKey, openMigrated, pushBody, startSyncServer, type SyncServer } from "./sync-support.js";

describeEachDatabase("organisation routes", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  let owner: Member;
  let admin: Member;
  let maintainer: Member;
  let member: Member;
  let outsider: Member;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    owner = await newMember(server, database.db);
    admin = await newMember(server, database.db);
    maintainer = await newMember(server, database.db);
    member = await newMember(server, database.db);
    outsider = await newMember(server, database.db);
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  const removalProof = (token: string) =>
    stepUpProofFor(server.identity, token, "org:member:remove").then((proof) => ({
      "x-latchkey-step-up": proof,
    }));

  const count = async (table: "vault_org_keys" | "org_vault_heads" | "org_members" | "audit_events") =>
    Number(
      (
        await database.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );

  describe("organisations and roles", () => {
    it("creates an organisation owned by its creator, lists it, and hides it from others", async () => {
      const created = await call(app, owner.token, "POST", "", { slug: "acme", name: "Acme Inc." });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toEqual({
        org: { slug: "acme", name: "Acme Inc.", role: "owner", createdAt: expect.any(String) },
        memberCount: 1,
        vaultCount: 0,
      });
      expect((await call(app, owner.token, "GET", "")).json()).toEqual({
        orgs: [{ slug: "acme", name: "Acme Inc.", role: "owner", createdAt: expect.any(String) }],
      });
      const taken = await call(app, outsider.token, "POST", "", { slug: "acme" });
      expect([taken.statusCode, taken.json().code]).toEqual([409, "LK_ORG_EXISTS"]);
      const hidden = await call(app, outsider.token, "GET", "/acme");
      const absent = await call(app, outsider.token, "GET", "/no-such-org");
      expect([hidden.statusCode, hidden.json().code]).toEqual([404, "LK_ORG_NOT_FOUND"]);
      expect(hidden.body).toBe(absent.body);
      expect((await call(app, outsider.token, "GET", "")).json()).toEqual({ orgs: [] });
    });

    it("adds members by email with the roles their adder may give, and names the role a refusal needed", async () => {
      const add = (as: Member, who: Member, role: string) =>
        callWithProof(server, as.token, "org:member:add", "POST", "/acme/members", {
          email: who.email.toUpperCase(),
          role,
        });
      expect((await add(owner, admin, "admin")).statusCode).toBe(201);
      const byAdmin = await add(admin, maintainer, "maintainer");
      expect(byAdmin.statusCode).toBe(201);
      expect(byAdmin.json().member).toMatchObject({ userId: maintainer.userId, role: "maintainer" });
      const ownerByAdmin = await add(admin, member, "owner");
      expect(ownerByAdmin.statusCode).toBe(403);
      expect(ownerByAdmin.json()).toMatchObject({ code: "LK_ORG_FORBIDDEN" });
      expect(ownerByAdmin.json().message).toMatch(/needs the role owner .*yours is admin/);
      const byMaintainer = await add(maintainer, member, "member");
      expect(byMaintainer.json().message).toMatch(/needs the role admin .*yours is maintainer/);
      expect((await add(admin, member, "member")).statusCode).toBe(201);
      expect((await add(admin, member, "member")).json().code).toBe("LK_MEMBER_EXISTS");
      const nobody = await callWithProof(server, admin.token, "org:member:add", "POST", "/acme/members", {
        email: "nobody@example.test",
        role: "member",
      });
      expect([nobody.statusCode, nobody.json().code]).toEqual([404, "LK_ACCOUNT_NOT_FOUND"]);
      expect((await call(app, member.token, "GET", "/acme")).json()).toMatchObject({ memberCount: 4 });
    });

    it("never leaves an organisation without an owner, and keeps owners the owners' to manage", async () => {
      const demoteSelf = await callWithProof(
        server,
        owner.token,
        "org:member:role",
        "PATCH",
        `/acme/members/${owner.userId}`,
        {
          role: "admin",
        },
      );
      expect([demoteSelf.statusCode, demoteSelf.json().code]).toEqual([409, "LK_ORG_LAST_OWNER"]);
      const removeSelf = await call(
        app,
        owner.token,
        "DELETE",
        `/acme/members/${owner.userId}`,
        undefined,
        await removalProof(owner.token),
      );
      expect([removeSelf.statusCode, removeSelf.json().code]).toEqual([409, "LK_ORG_LAST_OWNER"]);
      const adminOnOwner = await callWithProof(
        server,
        admin.token,
        "org:member:role",
        "PATCH",
        `/acme/members/${owner.userId}`,
        {
          role: "member",
        },
      );
      expect([adminOnOwner.statusCode, adminOnOwner.json().code]).toEqual([403, "LK_ORG_FORBIDDEN"]);
      // With a second owner the first may step down; the second then cannot.
      expect(
        (
          await callWithProof(
            server,
            owner.token,
            "org:member:role",
            "PATCH",
            `/acme/members/${admin.userId}`,
            { role: "owner" },
          )
        ).statusCode,
      ).toBe(200);
      expect(
        (
          await callWithProof(
            server,
            owner.token,
            "org:member:role",
            "PATCH",
            `/acme/members/${owner.userId}`,
            { role: "admin" },
          )
        ).statusCode,
      ).toBe(200);
      const last = await callWithProof(
        server,
        admin.token,
        "org:member:role",
        "PATCH",
        `/acme/members/${admin.userId}`,
        { role: "admin" },
      );
      expect(last.json().code).toBe("LK_ORG_LAST_OWNER");
      // Back to the cast of the other tests.
      expect(
        (
          await callWithProof(
            server,
            admin.token,
            "org:member:role",
            "PATCH",
            `/acme/members/${owner.userId}`,
            { role: "owner" },
          )
        ).statusCode,
      ).toBe(200);
      expect(
        (
          await callWithProof(
            server,
            owner.token,
            "org:member:role",
            "PATCH",
            `/acme/members/${admin.userId}`,
            { role: "admin" },
          )
        ).statusCode,
      ).toBe(200);
      const unknown = await callWithProof(
        server,
        owner.token,
        "org:member:role",
        "PATCH",
        `/acme/members/${outsider.userId}`,
        {
          role: "member",
        },
      );
      expect([unknown.statusCode, unknown.json().code]).toEqual([404, "LK_MEMBER_NOT_FOUND"]);
    });
  });

  describe("organisation vaults", () => {
    const vaultId = randomUUID();
    const vaultKey = newVaultKey();
    let team: Member[];

    beforeAll(() => {
      team = [owner, admin, maintainer, member];
    });

    const open = async (who: Member, answer: Record<string, unknown>) => {
      const key = await unwrapFor(who, "acme", answer as unknown as PulledKey);
      const blob = fromBase64(answer.encryptedBlob as string);
      return utf8Decode(await openEnvelope(key, blob, syncBlobContext(vaultId, answer.version as number)));
    };

    it("shares a vault with every member: each pulls it and opens it with their own wrapped key", async () => {
      const notYet = await call(app, member.token, "GET", `/acme/vaults/${vaultId}`);
      expect([notYet.statusCode, notYet.json().code]).toEqual([404, "LK_ORG_VAULT_NOT_SHARED"]);
      const byMember = await call(
        app,
        member.token,
        "PUT",
        `/acme/vaults/${vaultId}/share`,
        await shareBody(member, "acme", vaultId, 0, vaultKey, team),
      );
      expect([byMember.statusCode, byMember.json().code]).toEqual([403, "LK_ORG_FORBIDDEN"]);
      const shared = await call(
        app,
        maintainer.token,
        "PUT",
        `/acme/vaults/${vaultId}/share`,
        await shareBody(maintainer, "acme", vaultId, 0, vaultKey, team, '{"API_KEY":"v1"}'),
      );
      expect(shared.statusCode).toBe(200);
      expect(shared.json()).toEqual({ vaultId, version: 1, createdAt: expect.any(String) });
      for (const who of team) {
        const pulled = await call(app, who.token, "GET", `/acme/vaults/${vaultId}`);
        expect(pulled.statusCode).toBe(200);
        expect(pulled.json()).toMatchObject({
          vaultId,
          version: 1,
          fingerprint: who.fingerprint,
          schema: null,
        });
        expect(await open(who, pulled.json())).toBe('{"API_KEY":"v1"}');
      }
      // A member's first pull of a version is one audit row; pulling it again writes none.
      const pulls = () =>
        database.db
          .selectFrom("audit_events")
          .select(["version", "count"])
          .where("action", "=", "org.vault.pull")
          .where("user_id", "=", member.userId)
          .execute();
      expect(await pulls()).toEqual([{ version: 1, count: 1 }]);
      expect((await call(app, member.token, "GET", `/acme/vaults/${vaultId}`)).statusCode).toBe(200);
      expect(await pulls()).toEqual([{ version: 1, count: 1 }]);
      const outside = await call(app, outsider.token, "GET", `/acme/vaults/${vaultId}`);
      expect([outside.statusCode, outside.json().code]).toEqual([404, "LK_ORG_NOT_FOUND"]);
      const list = await call(app, member.token, "GET", "/acme/vaults");
      expect(list.json()).toEqual({
        vaults: [{ vaultId, name: "team-project", version: 1, updatedAt: expect.any(String) }],
      });
    });

    it("refuses a share naming a non-member or a sharing key the member does not have, writing nothing", async () => {
      const before = { keys: await count("vault_org_keys"), audit: await count("audit_events") };
      const withOutsider = await call(
        app,
        maintainer.token,
        "PUT",
        `/acme/vaults/${vaultId}/share`,
        await shareBody(maintainer, "acme", vaultId, 1, vaultKey, [...team, outsider]),
      );
      expect([withOutsider.statusCode, withOutsider.json().code]).toEqual([409, "LK_ORG_MEMBERS_CHANGED"]);
      const body = await shareBody(maintainer, "acme", vaultId, 1, vaultKey, team);
      const keys = body.wrappedKeys as { fingerprint: string }[];
      keys[0]!.fingerprint = outsider.fingerprint;
      const staleKey = await call(app, maintainer.token, "PUT", `/acme/vaults/${vaultId}/share`, body);
      expect(staleKey.json().code).toBe("LK_ORG_MEMBERS_CHANGED");
      expect({ keys: await count("vault_org_keys"), audit: await count("audit_events") }).toEqual(before);
      expect((await call(app, member.token, "GET", `/acme/vaults/${vaultId}`)).json().version).toBe(1);
    });

    it("pushes versions as the personal copies do: base + 1, 409 with the current version, no reset", async () => {
      const pushed = await call(
        app,
        member.token,
        "PUT",
        `/acme/vaults/${vaultId}`,
        await orgPushBody(vaultId, 1, vaultKey, '{"API_KEY":"v2"}'),
      );
      expect(pushed.json()).toEqual({ vaultId, version: 2, createdAt: expect.any(String) });
      // A stale base, a fresh base, and a share from 0 over the copy: each a conflict naming version 2.
      for (const [path, body] of [
        [`/acme/vaults/${vaultId}`, await orgPushBody(vaultId, 1, vaultKey)],
        [`/acme/vaults/${vaultId}`, await orgPushBody(vaultId, 0, vaultKey)],
        [`/acme/vaults/${vaultId}/share`, await shareBody(maintainer, "acme", vaultId, 0, vaultKey, team)],
      ] as const) {
        const refused = await call(app, maintainer.token, "PUT", path, body);
        expect(refused.statusCode, path).toBe(409);
        expect(refused.json()).toMatchObject({ code: "LK_VAULT_CONFLICT", currentVersion: 2 });
      }
      const elsewhere = await call(
        app,
        member.token,
        "PUT",
        `/acme/vaults/${randomUUID()}`,
        await orgPushBody(vaultId, 1, vaultKey),
      );
      expect(elsewhere.json().code).toBe("LK_ORG_VAULT_NOT_SHARED");
      // Each member sees the newest version only, and the history holds each version once.
      const pulled = await call(app, admin.token, "GET", `/acme/vaults/${vaultId}`);
      expect(await open(admin, pulled.json())).toBe('{"API_KEY":"v2"}');
      const history = await database.db
        .selectFrom("org_vault_versions")
        .select("version")
        .where("vault_id", "=", vaultId)
        .orderBy("version")
        .execute();
      expect(history.map((r) => Number(r.version))).toEqual([1, 2]);
    });

    it("keeps the organisation copy and a personal copy of one vault id apart, logs included", async () => {
      // The owner pushes a personal copy of the same vault id; neither copy moves the other.
      const personal = await call(
        app,
        owner.token,
        "PUT",
        `/api/v1/vaults/${vaultId}`,
        pushBody("QUFBQQ==", 0),
      );
      expect(personal.json().version).toBe(1);
      expect((await call(app, owner.token, "GET", `/acme/vaults/${vaultId}`)).json().version).toBe(2);
      const log = await call(app, owner.token, "GET", `/api/v1/vaults/${vaultId}/log`);
      expect(log.json().entries.map((e: { action: string }) => e.action)).toEqual(["vault.push"]);
      // The organisation's log of the vault has the share, the push and the pulls, and no personal row.
      const orgLog = await call(app, maintainer.token, "GET", `/acme/vaults/${vaultId}/log`);
      const actions = orgLog.json().entries.map((e: { action: string }) => e.action);
      expect(actions).toContain("org.vault.share");
      expect(actions).toContain("org.vault.push");
      expect(actions).toContain("org.vault.pull");
      expect(actions).not.toContain("vault.push");
      // The personal log is its owner's alone.
      const foreign = await call(app, maintainer.token, "GET", `/api/v1/vaults/${vaultId}/log`);
      expect([foreign.statusCode, foreign.json().code]).toEqual([404, "LK_VAULT_NOT_SYNCED"]);
      const byMember = await call(app, member.token, "GET", `/acme/vaults/${vaultId}/log`);
      expect([byMember.statusCode, byMember.json().code]).toEqual([403, "LK_ORG_FORBIDDEN"]);
      expect((await call(app, member.token, "GET", "/acme/log")).statusCode).toBe(403);
      expect((await call(app, maintainer.token, "GET", "/acme/log?limit=5")).json().entries).toHaveLength(5);
    });

    it("shows who needs a share: a member added later, and one without a sharing key", async () => {
      const late = await newMember(server, database.db);
      const keyless = await server.caller();
      await callWithProof(server, owner.token, "org:member:add", "POST", "/acme/members", {
        email: late.email,
        role: "member",
      });
      await callWithProof(server, owner.token, "org:member:add", "POST", "/acme/members", {
        email: keyless.email,
        role: "member",
      });
      const listed = (await call(app, member.token, "GET", "/acme/members")).json();
      const byId = new Map(listed.members.map((m: { userId: string }) => [m.userId, m]));
      expect(byId.get(member.userId)).toMatchObject({
        needsShare: false,
        sharingKeyFingerprint: member.fingerprint,
        keys: [{ vaultId, state: "current" }],
      });
      expect(byId.get(late.userId)).toMatchObject({
        needsShare: true,
        keys: [{ vaultId, state: "missing" }],
      });
      expect(byId.get(keyless.userId)).toMatchObject({ needsShare: false, sharingKeyFingerprint: null });
      const missing = await call(app, late.token, "GET", `/acme/vaults/${vaultId}`);
      expect([missing.statusCode, missing.json().code]).toEqual([409, "LK_ORG_VAULT_KEY_MISSING"]);
      // The public keys a maintainer wraps for: the members with a sharing key.
      const keys = (await call(app, maintainer.token, "GET", "/acme/public-keys")).json().keys;
      expect(keys.map((k: { userId: string }) => k.userId).sort()).toEqual(
        [...team, late].map((m) => m.userId).sort(),
      );
      // Sharing again gives the late member access.
      const again = await call(
        app,
        maintainer.token,
        "PUT",
        `/acme/vaults/${vaultId}/share`,
        await shareBody(maintainer, "acme", vaultId, 2, vaultKey, [...team, late], '{"API_KEY":"v2"}'),
      );
      expect(again.json().version).toBe(3);
      expect(await open(late, (await call(app, late.token, "GET", `/acme/vaults/${vaultId}`)).json())).toBe(
        '{"API_KEY":"v2"}',
      );
    });

    it("removes a member only with a step-up proof: their keys go, their pull is refused, the report says what they had", async () => {
      const path = `/acme/members/${member.userId}`;
      const keysBefore = await count("vault_org_keys");
      const stolen = await call(app, admin.token, "DELETE", path);
      expect([stolen.statusCode, stolen.json().code]).toEqual([403, "LK_STEP_UP_REQUIRED"]);
      const otherScope = await call(app, admin.token, "DELETE", path, undefined, {
        "x-latchkey-step-up": await stepUpProofFor(server.identity, admin.token, "vault:pair"),
      });
      expect(otherScope.json().code).toBe("LK_STEP_UP_REQUIRED");
      const othersProof = await call(
        app,
        admin.token,
        "DELETE",
        path,
        undefined,
        await removalProof(owner.token),
      );
      expect(othersProof.json().code).toBe("LK_STEP_UP_REQUIRED");
      expect(await count("vault_org_keys")).toBe(keysBefore);
      expect((await call(app, member.token, "GET", `/acme/vaults/${vaultId}`)).statusCode).toBe(200);

      const proof = await removalProof(admin.token);
      const removed = await call(app, admin.token, "DELETE", path, undefined, proof);
      expect(removed.statusCode).toBe(200);
      expect(removed.json()).toEqual({
        removed: { userId: member.userId, email: member.email, role: "member", addedAt: expect.any(String) },
        vaults: [
          {
            vaultId,
            name: "team-project",
            version: 3,
            lastPulledAt: expect.any(String),
            lastPulledVersion: 3,
            ciPolicy: null,
          },
        ],
        ciPoliciesDisabled: [],
      });
      const theirKeys = await database.db
        .selectFrom("vault_org_keys")
        .select("vault_id")
        .where("user_id", "=", member.userId)
        .execute();
      expect(theirKeys).toEqual([]);
      const refused = await call(app, member.token, "GET", `/acme/vaults/${vaultId}`);
      expect([refused.statusCode, refused.json().code]).toEqual([404, "LK_ORG_NOT_FOUND"]);
      const pushRefused = await call(
        app,
        member.token,
        "PUT",
        `/acme/vaults/${vaultId}`,
        await orgPushBody(vaultId, 3, vaultKey),
      );
      expect(pushRefused.json().code).toBe("LK_ORG_NOT_FOUND");
      // The same proof a second time: spent.
      await callWithProof(server, owner.token, "org:member:add", "POST", "/acme/members", {
        email: member.email,
        role: "member",
      });
      const replay = await call(app, admin.token, "DELETE", path, undefined, proof);
      expect([replay.statusCode, replay.json().code]).toEqual([403, "LK_STEP_UP_REQUIRED"]);
      expect(replay.json().message).toMatch(/already used/);
      // Re-added, they hold no key until a maintainer shares again.
      expect((await call(app, member.token, "GET", `/acme/vaults/${vaultId}`)).json().code).toBe(
        "LK_ORG_VAULT_KEY_MISSING",
      );
      const log = (await call(app, owner.token, "GET", "/acme/log")).json().entries;
      expect(log.find((e: { action: string }) => e.action === "org.member.remove")).toMatchObject({
        actor: { userId: admin.userId },
        metadata: { memberUserId: member.userId, wrappedKeysDeleted: 1, stepUp: "password" },
      });
    });

    it("lets exactly one of several pushes from one base through, the others told the new version", async () => {
      const base = (await call(app, owner.token, "GET", `/acme/vaults/${vaultId}`)).json().version as number;
      const bodies = await Promise.all(team.map(() => orgPushBody(vaultId, base, vaultKey)));
      const answers = await Promise.all(
        team.map((who, i) => call(app, who.token, "PUT", `/acme/vaults/${vaultId}`, bodies[i])),
      );
      const statuses = answers.map((a) => a.statusCode).sort();
      expect(statuses).toEqual([200, 409, 409, 409]);
      for (const refused of answers.filter((a) => a.statusCode === 409)) {
        expect(refused.json()).toMatchObject({ code: "LK_VAULT_CONFLICT", currentVersion: base + 1 });
      }
      const history = await database.db
        .selectFrom("org_vault_versions")
        .select("version")
        .where("vault_id", "=", vaultId)
        .orderBy("version")
        .execute();
      expect(history.map((r) => Number(r.version))).toEqual(
        Array.from({ length: base + 1 }, (_, v) => v + 1),
      );
      // The winner's blob is the one every member now pulls.
      const winner = answers.findIndex((a) => a.statusCode === 200);
      const pulled = (await call(app, owner.token, "GET", `/acme/vaults/${vaultId}`)).json();
      expect(pulled.encryptedBlob).toBe(bodies[winner]!.encryptedBlob);
    });

    it("unshares a vault (maintainer) and deletes an organisation (owner only), keeping its audit rows", async () => {
      expect((await call(app, member.token, "DELETE", `/acme/vaults/${vaultId}`)).statusCode).toBe(403);
      const unshared = await call(app, maintainer.token, "DELETE", `/acme/vaults/${vaultId}`);
      expect(unshared.json()).toEqual({ vaultId, wrappedKeysRemoved: 4 });
      expect((await callWithProof(server, admin.token, "org:delete", "DELETE", "/acme")).json().code).toBe(
        "LK_ORG_FORBIDDEN",
      );
      const auditBefore = await count("audit_events");
      const deleted = await callWithProof(server, owner.token, "org:delete", "DELETE", "/acme");
      expect(deleted.json()).toEqual({ slug: "acme", membersRemoved: 6, vaultsRemoved: 0 });
      expect(await count("audit_events")).toBe(auditBefore + 1);
      expect(await count("org_members")).toBe(0);
      expect((await call(app, owner.token, "GET", "/acme")).json().code).toBe("LK_ORG_NOT_FOUND");
    });
  });

  it("never moves an organisation copy's version backwards: a share after an unshare continues above it", async () => {
    const [boss, mate] = await Promise.all([1, 2].map(() => newMember(server, database.db)));
    await makeOrg(server, boss!, "resharing", [[mate!, "member"]]);
    const vaultId = randomUUID();
    const path = `/resharing/vaults/${vaultId}`;
    const oldKey = newVaultKey();
    const team = [boss!, mate!];
    const rows = async (
      table: "org_vault_heads" | "vault_org_keys" | "org_vault_versions" | "org_vault_unshared",
    ) =>
      (await database.db.selectFrom(table).select("vault_id").where("vault_id", "=", vaultId).execute())
        .length;
    // What a member's CLI does with a pull (sync/pull.ts): it refuses a version below the highest it has seen.
    let highestSeen = 0;
    const memberPull = async () => {
      const answer = await call(app, mate!.token, "GET", path);
      if (answer.statusCode === 200) {
        const { version } = answer.json<{ version: number }>();
        expect(version, "the member's CLI would refuse this version as a rollback").toBeGreaterThanOrEqual(
          highestSeen,
        );
        highestSeen = version;
      }
      return answer;
    };

    expect(
      (
        await call(
          app,
          boss!.token,
          "PUT",
          `${path}/share`,
          await shareBody(boss!, "resharing", vaultId, 0, oldKey, team),
        )
      ).json(),
    ).toMatchObject({ version: 1 });
    for (const base of [1, 2]) {
      expect(
        (await call(app, mate!.token, "PUT", path, await orgPushBody(vaultId, base, oldKey))).statusCode,
      ).toBe(200);
    }
    expect((await memberPull()).json()).toMatchObject({ version: 3 });

    // Unshared: the blob, history and every wrapped key are gone; nobody pulls it and no push brings it back.
    const unshared = await call(app, boss!.token, "DELETE", path);
    expect(unshared.json()).toEqual({ vaultId, wrappedKeysRemoved: 2 });
    expect([
      await rows("org_vault_heads"),
      await rows("vault_org_keys"),
      await rows("org_vault_versions"),
    ]).toEqual([0, 0, 0]);
    for (const who of team) {
      const refused = await call(app, who.token, "GET", path);
      expect([refused.statusCode, refused.json().code]).toEqual([404, "LK_ORG_VAULT_NOT_SHARED"]);
    }
    const revived = await call(app, mate!.token, "PUT", path, await orgPushBody(vaultId, 3, oldKey));
    expect([revived.statusCode, revived.json().code]).toEqual([404, "LK_ORG_VAULT_NOT_SHARED"]);
    expect((await call(app, mate!.token, "GET", "/resharing/vaults")).json()).toEqual({ vaults: [] });
    const unshareRow = await database.db
      .selectFrom("audit_events")
      .select("version")
      .where("action", "=", "org.vault.unshare")
      .where("vault_id", "=", vaultId)
      .executeTakeFirstOrThrow();
    expect(Number(unshareRow.version)).toBe(3);

    // A share starting over at version 1, or from a base it was not unshared at, is a conflict naming version 3.
    for (const base of [0, 2]) {
      const stale = await call(
        app,
        boss!.token,
        "PUT",
        `${path}/share`,
        await shareBody(boss!, "resharing", vaultId, base, oldKey, team),
      );
      expect([stale.statusCode, stale.json().code, stale.json().currentVersion]).toEqual([
        409,
        "LK_VAULT_CONFLICT",
        3,
      ]);
    }
    expect(await rows("org_vault_heads")).toBe(0);

    // Shared again from version 3 with a new key: version 4, which the member's CLI takes as newer, and opens.
    const newKey = newVaultKey();
    const reshared = await call(
      app,
      boss!.token,
      "PUT",
      `${path}/share`,
      await shareBody(boss!, "resharing", vaultId, 3, newKey, team, '{"API_KEY":"again"}'),
    );
    expect([reshared.statusCode, reshared.json().version]).toEqual([200, 4]);
    const pulled = await memberPull();
    expect(pulled.statusCode).toBe(200);
    expect(pulled.json().version).toBeGreaterThan(3);
    const opened = await openEnvelope(
      await unwrapFor(mate!, "resharing", pulled.json()),
      fromBase64(pulled.json().encryptedBlob as string),
      syncBlobContext(vaultId, 4),
    );
    expect(utf8Decode(opened)).toBe('{"API_KEY":"again"}');
    // Its first pull is audited afresh (the version was never pulled before).
    const pulls = await database.db
      .selectFrom("audit_events")
      .select("version")
      .where("action", "=", "org.vault.pull")
      .where("vault_id", "=", vaultId)
      .orderBy("version")
      .execute();
    expect(pulls.map((r) => Number(r.version))).toEqual([3, 4]);
    // Pushes continue from there; a second unshare and share continue above that.
    expect(
      (await call(app, mate!.token, "PUT", path, await orgPushBody(vaultId, 4, newKey))).json().version,
    ).toBe(5);
    expect((await call(app, boss!.token, "DELETE", path)).statusCode).toBe(200);
    expect(
      (
        await call(
          app,
          boss!.token,
          "PUT",
          `${path}/share`,
          await shareBody(boss!, "resharing", vaultId, 5, newKey, team),
        )
      ).json().version,
    ).toBe(6);
    expect((await memberPull()).json().version).toBe(6);

    // Deleting the organisation deletes what an unshare kept.
    expect((await call(app, boss!.token, "DELETE", path)).statusCode).toBe(200);
    expect(await rows("org_vault_unshared")).toBe(1);
    expect((await callWithProof(server, boss!.token, "org:delete", "DELETE", "/resharing")).statusCode).toBe(
      200,
    );
    expect(await rows("org_vault_unshared")).toBe(0);
  });

  it("calls the removal hook inside the removal's transaction: a failing hook leaves the member and keys", async () => {
    const events: unknown[] = [];
    let fail = true;
    const service = createOrgService({
      db: database.db,
      now: () => new Date(),
      randomId: randomUUID,
      sharingKeys: findSharingKeys,
      onMemberRemoved: (_trx, event) => {
        events.push(event);
        return fail ? Promise.reject(new Error("outbox down")) : Promise.resolve();
      },
    });
    const boss = await newMember(server, database.db);
    const leaver = await newMember(server, database.db);
    await makeOrg(server, boss, "hooked", [[leaver, "member"]]);
    const actor = { userId: boss.userId, email: boss.email, clientId: "test", ip: "127.0.0.1" };
    const spend = {
      scope: "org:member:remove" as const,
      method: "password",
      record: () => Promise.resolve(true),
    };
    await expect(service.removeMember(actor, "hooked", leaver.userId, spend)).rejects.toThrow("outbox down");
    expect((await call(app, leaver.token, "GET", "/hooked")).statusCode).toBe(200);
    fail = false;
    expect((await service.removeMember(actor, "hooked", leaver.userId, spend)).kind).toBe("ok");
    expect((await call(app, leaver.token, "GET", "/hooked")).statusCode).toBe(404);
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({
      slug: "hooked",
      removedUserId: leaver.userId,
      actorUserId: boss.userId,
    });
  });

  it("lists and deletes one account's wrapped keys across organisations, and names each one's owners and admins", async () => {
    const [boss, deputy, rotating] = await Promise.all([1, 2, 3].map(() => newMember(server, database.db)));
    await makeOrg(server, boss!, "alpha", [
      [deputy!, "admin"],
      [rotating!, "maintainer"],
    ]);
    await makeOrg(server, rotating!, "beta");
    const [a, b] = [randomUUID(), randomUUID()];
    const key = newVaultKey();
    const team = [boss!, deputy!, rotating!];
    expect(
      (
        await call(
          app,
          boss!.token,
          "PUT",
          `/alpha/vaults/${a}/share`,
          await shareBody(boss!, "alpha", a, 0, key, team),
        )
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await call(
          app,
          rotating!.token,
          "PUT",
          `/beta/vaults/${b}/share`,
          await shareBody(rotating!, "beta", b, 0, key, [rotating!]),
        )
      ).statusCode,
    ).toBe(200);
    const listed = await listUserKeys(database.db, rotating!.userId);
    expect(listed.map((k) => [k.slug, k.vaultId, k.vaultName])).toEqual([
      ["alpha", a, "team-project"],
      ["beta", b, "team-project"],
    ]);
    const recipients = await orgNoticeRecipients(
      database.db,
      listed.map((k) => k.orgId),
      ["owner", "admin"],
    );
    expect(recipients.map((r) => [r.slug, r.emails])).toEqual([
      ["alpha", [boss!.email, deputy!.email].sort()],
      ["beta", [rotating!.email]],
    ]);
    expect(await deleteUserKeys(database.db, rotating!.userId)).toBe(2);
    expect(await listUserKeys(database.db, rotating!.userId)).toEqual([]);
    expect((await listUserKeys(database.db, boss!.userId)).map((k) => k.vaultId)).toEqual([a]);
  });
});

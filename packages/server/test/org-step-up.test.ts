// Step-up proofs and the add limit on the organisation changes that give access or power, or end everything: adding
// a member (`org:member:add`), changing a role (`org:member:role`) and deleting the organisation (`org:delete`), on
// SQLite and PostgreSQL through the real app. A stolen bearer token (no proof), a proof of another scope or
// another account, and a proof spent before are all 403 LK_STEP_UP_REQUIRED with nothing written; a change the
// server refuses (404, 409) leaves its proof unspent; audit rows name the step-up method; one account makes at
// most MEMBER_ADD_LIMIT adds an hour, unknown emails counted, the next a 429 with Retry-After.
import { randomUUID } from "node:crypto";
import type { StepUpScope } from "@latchkey/core";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { MEMBER_ADD_LIMIT } from "../src/orgs/service.js";
import { describeEachDatabase } from "./databases.js";
import { call, callWithProof, makeOrg, newMember, stepUpHeader, type Member } from "./org-support.js";
import { stepUpProofFor } from "./support/step-up.js";
import { openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

/** Every scope that is not `scope`. */
const OTHER_SCOPES = (scope: StepUpScope): StepUpScope[] =>
  (
    [
      "org:member:add",
      "org:member:role",
      "org:member:remove",
      "org:delete",
      "vault:pair",
      "vault:public-key:set",
    ] as const
  ).filter((s) => s !== scope);

describeEachDatabase("organisation changes behind a step-up", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let owner: Member;
  let admin: Member;
  let member: Member;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    owner = await newMember(server, database.db);
    admin = await newMember(server, database.db);
    member = await newMember(server, database.db);
    await makeOrg(server, owner, "acme", [
      [admin, "admin"],
      [member, "member"],
    ]);
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  /** Everything a refused change must leave as it was. */
  async function snapshot(): Promise<string> {
    const db = database.db;
    const orgs = await db.selectFrom("orgs").select(["id", "slug"]).orderBy("id").execute();
    const members = await db
      .selectFrom("org_members")
      .selectAll()
      .orderBy("org_id")
      .orderBy("user_id")
      .execute();
    const audits = await db.selectFrom("audit_events").select("id").orderBy("id").execute();
    const outbox = await db.selectFrom("outbox").select("id").orderBy("id").execute();
    const spent = await db.selectFrom("step_up_uses").select("jti").orderBy("jti").execute();
    return JSON.stringify({ orgs, members, audits, outbox, spent });
  }

  const refusedStepUp = (res: LightMyRequestResponse, scope: StepUpScope, why: RegExp) => {
    expect([res.statusCode, res.json().code], res.body).toEqual([403, "LK_STEP_UP_REQUIRED"]);
    expect(res.json().message).toContain(`"${scope}"`);
    expect(res.json().message).toMatch(why);
  };

  /** The three changes, each as `as` with `headers`, on the organisation `slug`. */
  const changes = (slug: string, newcomer: string) =>
    [
      {
        scope: "org:member:add" as const,
        send: (as: Member, headers: Record<string, string>) =>
          call(server.app, as.token, "POST", `/${slug}/members`, { email: newcomer, role: "admin" }, headers),
      },
      {
        scope: "org:member:role" as const,
        send: (as: Member, headers: Record<string, string>) =>
          call(
            server.app,
            as.token,
            "PATCH",
            `/${slug}/members/${member.userId}`,
            { role: "admin" },
            headers,
          ),
      },
      {
        scope: "org:delete" as const,
        send: (as: Member, headers: Record<string, string>) =>
          call(server.app, as.token, "DELETE", `/${slug}`, undefined, headers),
      },
    ] as const;

  /** The adds `who` has counted against the limit in the current window. */
  const addsCounted = async (who: Member): Promise<number> => {
    const row = await database.db
      .selectFrom("account_action_counts")
      .select("count")
      .where("user_id", "=", who.userId)
      .where("action", "=", MEMBER_ADD_LIMIT.action)
      .executeTakeFirst();
    return Number(row?.count ?? 0);
  };

  it("a stolen bearer token alone can neither add a member, change a role nor delete the organisation", async () => {
    const newcomer = await server.caller();
    const before = await snapshot();
    const countedBefore = await addsCounted(owner);
    for (const change of changes("acme", newcomer.email)) {
      refusedStepUp(await change.send(owner, {}), change.scope, /carries none/);
    }
    expect(await snapshot()).toBe(before);
    // Nothing was counted against the add limit either: the proof is checked first.
    expect(await addsCounted(owner)).toBe(countedBefore);
  });

  it("refuses a proof of any other scope, and another account's proof, writing nothing", async () => {
    const newcomer = await server.caller();
    const before = await snapshot();
    for (const change of changes("acme", newcomer.email)) {
      for (const other of OTHER_SCOPES(change.scope)) {
        const res = await change.send(owner, await stepUpHeader(server, owner.token, other));
        refusedStepUp(res, change.scope, /for another action/);
      }
      // The admin's proof of the right scope, sent with the owner's token.
      const borrowed = await change.send(owner, await stepUpHeader(server, admin.token, change.scope));
      expect(borrowed.json().code).toBe("LK_STEP_UP_REQUIRED");
    }
    expect(await snapshot()).toBe(before);
  });

  it("spends a proof once, and only on a change that happens; the audit row names the method", async () => {
    await makeOrg(server, owner, "spend");
    const [first, second] = [await server.caller(), await server.caller()];
    const add = (email: string, headers: Record<string, string>) =>
      call(server.app, owner.token, "POST", "/spend/members", { email, role: "member" }, headers);

    // Refused adds (an unknown email, an existing member) leave the proof good for the add that happens.
    const addProof = await stepUpHeader(server, owner.token, "org:member:add");
    expect((await add(`nobody-${randomUUID()}@example.test`, addProof)).json().code).toBe(
      "LK_ACCOUNT_NOT_FOUND",
    );
    expect((await add(owner.email, addProof)).json().code).toBe("LK_MEMBER_EXISTS");
    expect((await add(first.email, addProof)).statusCode).toBe(201);
    const before = await snapshot();
    refusedStepUp(await add(second.email, addProof), "org:member:add", /already used/);
    expect(await snapshot()).toBe(before);

    // A role change refused as the last owner's leaves the proof good; the change it then makes spends it.
    const roleProof = await stepUpHeader(server, owner.token, "org:member:role");
    const role = (userId: string, to: string) =>
      call(server.app, owner.token, "PATCH", `/spend/members/${userId}`, { role: to }, roleProof);
    expect((await role(owner.userId, "admin")).json().code).toBe("LK_ORG_LAST_OWNER");
    expect((await role(first.userId, "maintainer")).statusCode).toBe(200);
    refusedStepUp(await role(first.userId, "admin"), "org:member:role", /already used/);

    // A deletion of an organisation that is not there leaves it good; the deletion spends it.
    await makeOrg(server, owner, "spend-2");
    const deleteProof = {
      "x-latchkey-step-up": await stepUpProofFor(server.identity, owner.token, "org:delete", {
        method: "password+totp",
      }),
    };
    const remove = (slug: string) =>
      call(server.app, owner.token, "DELETE", `/${slug}`, undefined, deleteProof);
    expect((await remove("no-such-org")).json().code).toBe("LK_ORG_NOT_FOUND");
    expect((await remove("spend")).statusCode).toBe(200);
    refusedStepUp(await remove("spend-2"), "org:delete", /already used/);
    expect((await call(server.app, owner.token, "GET", "/spend-2")).statusCode).toBe(200);

    const rows = await database.db
      .selectFrom("audit_events")
      .select(["action", "metadata"])
      .where("user_id", "=", owner.userId)
      .where("action", "in", ["org.member.add", "org.member.role", "org.delete"])
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    const spendRows = rows
      .map((r) => ({ action: r.action, metadata: JSON.parse(r.metadata) as Record<string, unknown> }))
      .filter((r) => r.metadata.slug === "spend" || r.metadata.memberUserId === first.userId);
    expect(spendRows.map((r) => [r.action, r.metadata.stepUp])).toEqual([
      ["org.member.add", "password"],
      ["org.member.role", "password"],
      ["org.delete", "password+totp"],
    ]);
  });

  describe("the add limit", () => {
    it(`lets one account make ${MEMBER_ADD_LIMIT.limit} adds an hour, unknown emails counted, in every organisation together`, async () => {
      const busy = await newMember(server, database.db);
      const deputy = await newMember(server, database.db);
      await makeOrg(server, busy, "busy-1");
      await makeOrg(server, busy, "busy-2");
      const add = (as: Member, slug: string, email: string) =>
        callWithProof(server, as.token, "org:member:add", "POST", `/${slug}/members`, {
          email,
          role: "member",
        });

      // The adds of busy's makeOrg above were none (no members): every add here counts from 1.
      for (let i = 1; i < MEMBER_ADD_LIMIT.limit; i++) {
        const probe = await add(busy, "busy-1", `probe-${i}-${randomUUID()}@example.test`);
        expect([probe.statusCode, probe.json().code]).toEqual([404, "LK_ACCOUNT_NOT_FOUND"]);
      }
      expect((await add(busy, "busy-1", deputy.email)).statusCode).toBe(201);

      const late = await server.caller();
      const before = await snapshot();
      const limited = await add(busy, "busy-2", late.email);
      expect([limited.statusCode, limited.json().code]).toEqual([429, "LK_RATE_LIMITED"]);
      expect(limited.json().message).toContain(`${MEMBER_ADD_LIMIT.limit} member additions within an hour`);
      const retryAfter = Number(limited.headers["retry-after"]);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      // Nothing written, the proof not spent.
      expect(await snapshot()).toBe(before);
      expect((await add(busy, "busy-1", late.email)).statusCode).toBe(429);

      // The limit is the acting account's: another admin of the same organisation adds as before.
      expect(
        (
          await callWithProof(
            server,
            busy.token,
            "org:member:role",
            "PATCH",
            `/busy-1/members/${deputy.userId}`,
            {
              role: "admin",
            },
          )
        ).statusCode,
      ).toBe(200);
      expect((await add(deputy, "busy-1", late.email)).statusCode).toBe(201);
    });
  });
});

// At least one owner always remains, also under concurrency. Through the real app on SQLite and PostgreSQL: the last
// two owners of an organisation step down, or remove each other, at the same moment, round after round — exactly
// one of the two changes succeeds and one owner remains. On PostgreSQL also the exact interleaving that a check
// without the organisation's row lock lets through: both changes are held at their first write until both wait,
// then released together; their checks must not both pass.
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { createOrgService, type OrgActor, type StepUpSpend } from "../src/orgs/service.js";
import { findSharingKeys } from "../src/sharing-keys/data.js";
import { describeEachDatabase } from "./databases.js";
import { call, callWithProof, makeOrg, newMember, type Member } from "./org-support.js";
import { stepUpProofFor } from "./support/step-up.js";
import { openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

const ROUNDS = 12;

describeEachDatabase("the last owner", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  let first: Member;
  let second: Member;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    first = await newMember(server, database.db);
    second = await newMember(server, database.db);
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  async function owners(slug: string): Promise<string[]> {
    const rows = await database.db
      .selectFrom("org_members as m")
      .innerJoin("orgs as o", "o.id", "m.org_id")
      .select("m.user_id")
      .where("o.slug", "=", slug)
      .where("m.role", "=", "owner")
      .execute();
    return rows.map((r) => r.user_id);
  }

  it("lets exactly one of two simultaneous changes of the last two owners through, round after round", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const slug = `race-${round}`;
      await makeOrg(server, first, slug, [[second, "owner"]]);
      // Even rounds: both step down. Odd rounds: one steps down while the other removes them.
      const requests =
        round % 2 === 0
          ? [
              callWithProof(
                server,
                first.token,
                "org:member:role",
                "PATCH",
                `/${slug}/members/${first.userId}`,
                { role: "admin" },
              ),
              callWithProof(
                server,
                second.token,
                "org:member:role",
                "PATCH",
                `/${slug}/members/${second.userId}`,
                { role: "member" },
              ),
            ]
          : [
              callWithProof(
                server,
                first.token,
                "org:member:role",
                "PATCH",
                `/${slug}/members/${first.userId}`,
                { role: "maintainer" },
              ),
              call(app, second.token, "DELETE", `/${slug}/members/${second.userId}`, undefined, {
                "x-latchkey-step-up": await stepUpProofFor(
                  server.identity,
                  second.token,
                  "org:member:remove",
                ),
              }),
            ];
      const answers = await Promise.all(requests);
      const statuses = answers.map((a) => a.statusCode).sort();
      expect(statuses, `round ${round}`).toEqual([200, 409]);
      expect(answers.find((a) => a.statusCode === 409)!.json().code).toBe("LK_ORG_LAST_OWNER");
      expect(await owners(slug), `round ${round}`).toHaveLength(1);
    }
    console.log(
      `[org-last-owner] ${target.kind}: ${ROUNDS} rounds, each 1 change through and 1 LK_ORG_LAST_OWNER`,
    );
  });

  if (target.kind === "postgres") {
    it("refuses the second of two demotions held at their first write and released together", async () => {
      const service = createOrgService({
        db: database.db,
        now: () => new Date(),
        randomId: randomUUID,
        sharingKeys: findSharingKeys,
      });
      const actor = (m: Member): OrgActor => ({
        userId: m.userId,
        email: m.email,
        clientId: "test",
        ip: "::1",
      });
      // The routes' step-up is not what this holds up: a proof that is always good.
      const spend = (): StepUpSpend => ({
        scope: "org:member:role",
        method: "password",
        record: () => Promise.resolve(true),
      });
      const slug = "held";
      await makeOrg(server, first, slug, [[second, "owner"]]);
      const orgId = (
        await database.db.selectFrom("orgs").select("id").where("slug", "=", slug).executeTakeFirstOrThrow()
      ).id;
      const waiting = async (): Promise<number> => {
        const rows = await sql<{ n: string }>`
          select count(*) as n from pg_stat_activity
          where wait_event_type = 'Lock' and datname = current_database()`.execute(database.db);
        return Number(rows.rows[0]?.n ?? 0);
      };
      let both: Promise<{ kind: string }[]> | undefined;
      // A third transaction holds the organisation's row and its members' rows: each demotion stops at its first
      // write (the organisation's row lock, or without it the member row it updates) until both are waiting; the
      // third then commits and releases them together.
      await database.db.transaction().execute(async (trx) => {
        await trx
          .updateTable("orgs")
          .set({ updated_at: new Date().toISOString() })
          .where("id", "=", orgId)
          .execute();
        await trx
          .updateTable("org_members")
          .set((eb) => ({ role: eb.ref("role") }))
          .where("org_id", "=", orgId)
          .execute();
        both = Promise.all([
          service.setRole(actor(first), slug, first.userId, "admin", spend()),
          service.setRole(actor(second), slug, second.userId, "admin", spend()),
        ]);
        while ((await waiting()) < 2) await new Promise((resolve) => setTimeout(resolve, 5));
      });
      const outcomes = await both!;
      expect(outcomes.map((o) => o.kind).sort()).toEqual(["last-owner", "ok"]);
      expect(await owners(slug)).toHaveLength(1);
    });
  }
});

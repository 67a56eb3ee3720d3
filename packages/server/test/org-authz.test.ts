// The organisation authorization matrix: every organisation route × every role (owner, admin, maintainer, member) ×
// (the caller's own organisation, another organisation they have that role in, no membership at all) on SQLite and
// PostgreSQL, through the real app with real accounts and tokens. Exactly the cells of the table below succeed; in
// the others the answer is 403 LK_ORG_FORBIDDEN (a member whose role is too weak) or a 404 that reads exactly as
// for an organisation that does not exist, and nothing in the database moves. The expected table is written out
// here, not read from the server's permission table, so loosening one permission there fails this test. The
// owner's row is the positive control: the same requests with the strongest role succeed on every route.
import { randomUUID } from "node:crypto";
import type { OrgRole, StepUpScope } from "@latchkey/core";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import {
  call,
  callWithProof,
  makeOrg,
  newMember,
  orgPushBody,
  shareBody,
  stepUpHeader,
  type Member,
} from "./org-support.js";
import { newVaultKey, openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

const ROLES: readonly OrgRole[] = ["owner", "admin", "maintainer", "member"];
type Relation = "own org" | "other org" | "no membership";
const RELATIONS: readonly Relation[] = ["own org", "other org", "no membership"];

/** Every route, with the roles that may call it in their own organisation (written out, never computed). */
const EXPECTED = {
  "create org": ["owner", "admin", "maintainer", "member"],
  "list orgs": ["owner", "admin", "maintainer", "member"],
  "get org": ["owner", "admin", "maintainer", "member"],
  "delete org": ["owner"],
  "list members": ["owner", "admin", "maintainer", "member"],
  "add member": ["owner", "admin"],
  "set role": ["owner", "admin"],
  "remove member": ["owner", "admin"],
  "public keys": ["owner", "admin", "maintainer"],
  "list vaults": ["owner", "admin", "maintainer", "member"],
  pull: ["owner", "admin", "maintainer", "member"],
  push: ["owner", "admin", "maintainer", "member"],
  share: ["owner", "admin", "maintainer"],
  unshare: ["owner", "admin", "maintainer"],
  "vault log": ["owner", "admin", "maintainer"],
  "org log": ["owner", "admin", "maintainer"],
  "org audit": ["owner", "admin", "maintainer"],
} as const satisfies Record<string, readonly OrgRole[]>;
type Route = keyof typeof EXPECTED;
/** The audit row each change writes (the routes not named write none). */
const AUDITED: Partial<Record<Route, string>> = {
  "create org": "org.create",
  "delete org": "org.delete",
  "add member": "org.member.add",
  "set role": "org.member.role",
  "remove member": "org.member.remove",
  pull: "org.vault.pull",
  push: "org.vault.push",
  share: "org.vault.share",
  unshare: "org.vault.unshare",
};
/** Routes with no organisation in their path: every account may call them, whatever its memberships. */
const UNSCOPED: readonly Route[] = ["create org", "list orgs"];

describeEachDatabase("organisation authorization matrix", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  /** The members of the organisation under test, by role, and of the other organisation. */
  const own = new Map<OrgRole, Member>();
  const other = new Map<OrgRole, Member>();
  let loner: Member;
  /** A member of the organisation under test whose role and membership the member routes change. */
  let victim: Member;
  const vaultId = randomUUID();
  const vaultKey = newVaultKey();

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    for (const role of ROLES) {
      own.set(role, await newMember(server, database.db));
      other.set(role, await newMember(server, database.db));
    }
    loner = await newMember(server, database.db);
    victim = await newMember(server, database.db);
    await makeOrg(
      server,
      other.get("owner")!,
      "other",
      ROLES.filter((r) => r !== "owner").map((r) => [other.get(r)!, r] as const),
    );
    await setUp();
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  const team = (): Member[] => [...own.values(), victim];
  const ownerOf = () => own.get("owner")!;

  /** The organisation under test as every cell starts from: its members, the victim a member, one shared vault. */
  async function setUp(): Promise<void> {
    await makeOrg(server, ownerOf(), "target", [
      ...ROLES.filter((r) => r !== "owner").map((r) => [own.get(r)!, r] as const),
      [victim, "member"],
    ]);
    const shared = await call(
      app,
      ownerOf().token,
      "PUT",
      `/target/vaults/${vaultId}/share`,
      await shareBody(ownerOf(), "target", vaultId, 0, vaultKey, team()),
    );
    expect(shared.statusCode).toBe(200);
  }

  /** The version a push or share continues from: the copy's, or the one it was unshared at. */
  async function version(): Promise<number> {
    const db = database.db;
    const org = await db
      .selectFrom("orgs")
      .select("id")
      .where("slug", "=", "target")
      .executeTakeFirstOrThrow();
    const head = await db
      .selectFrom("org_vault_heads")
      .select("version")
      .where("org_id", "=", org.id)
      .where("vault_id", "=", vaultId)
      .executeTakeFirst();
    const unshared = await db
      .selectFrom("org_vault_unshared")
      .select("version")
      .where("org_id", "=", org.id)
      .where("vault_id", "=", vaultId)
      .executeTakeFirst();
    return Number(head?.version ?? unshared?.version ?? 0);
  }

  /** The request of `route` by `caller`, well formed and, for a permitted caller, one that succeeds. */
  async function send(route: Route, caller: Member, newcomer: string): Promise<LightMyRequestResponse> {
    const base = "/target";
    const vault = `${base}/vaults/${vaultId}`;
    const as = (
      method: Parameters<typeof call>[2],
      path: string,
      body?: unknown,
      headers?: Record<string, string>,
    ) => call(app, caller.token, method, path, body, headers);
    // Each caller's own fresh proof: what the matrix checks is the role, not the step-up (org-step-up.test.ts).
    const proof = (scope: StepUpScope) => stepUpHeader(server, caller.token, scope);
    switch (route) {
      case "create org":
        return as("POST", "", { slug: `o-${randomUUID().slice(0, 8)}` });
      case "list orgs":
        return as("GET", "");
      case "get org":
        return as("GET", base);
      case "delete org":
        return as("DELETE", base, undefined, await proof("org:delete"));
      case "list members":
        return as("GET", `${base}/members`);
      case "add member":
        return as(
          "POST",
          `${base}/members`,
          { email: newcomer, role: "member" },
          await proof("org:member:add"),
        );
      case "set role":
        return as(
          "PATCH",
          `${base}/members/${victim.userId}`,
          { role: "maintainer" },
          await proof("org:member:role"),
        );
      case "remove member":
        return as("DELETE", `${base}/members/${victim.userId}`, undefined, await proof("org:member:remove"));
      case "public keys":
        return as("GET", `${base}/public-keys`);
      case "list vaults":
        return as("GET", `${base}/vaults`);
      case "pull":
        return as("GET", vault);
      case "push":
        return as("PUT", vault, await orgPushBody(vaultId, await version(), vaultKey));
      case "share":
        return as(
          "PUT",
          `${vault}/share`,
          await shareBody(caller, "target", vaultId, await version(), vaultKey, team()),
        );
      case "unshare":
        return as("DELETE", vault);
      case "vault log":
        return as("GET", `${vault}/log`);
      case "org log":
        return as("GET", `${base}/log?limit=10`);
      case "org audit":
        return as("GET", `${base}/audit?limit=10&vault=${vaultId}`);
    }
  }

  /** Puts back what a successful `route` changed, so every cell starts from the same organisation. */
  async function restore(route: Route): Promise<void> {
    const owner = ownerOf();
    switch (route) {
      case "delete org":
        return setUp();
      case "set role":
        expect(
          (
            await callWithProof(
              server,
              owner.token,
              "org:member:role",
              "PATCH",
              `/target/members/${victim.userId}`,
              { role: "member" },
            )
          ).statusCode,
        ).toBe(200);
        return;
      case "remove member":
        expect(
          (
            await callWithProof(server, owner.token, "org:member:add", "POST", "/target/members", {
              email: victim.email,
              role: "member",
            })
          ).statusCode,
        ).toBe(201);
        return;
      case "unshare":
        expect(
          (
            await call(
              app,
              owner.token,
              "PUT",
              `/target/vaults/${vaultId}/share`,
              await shareBody(owner, "target", vaultId, await version(), vaultKey, team()),
            )
          ).statusCode,
        ).toBe(200);
        return;
      default:
        return;
    }
  }

  async function auditIds(): Promise<string[]> {
    return (await database.db.selectFrom("audit_events").select("id").execute()).map((r) => r.id);
  }

  /** Everything a refused request must leave as it was. */
  async function snapshot(): Promise<string> {
    const db = database.db;
    const orgs = await db.selectFrom("orgs").select(["id", "slug", "name"]).orderBy("id").execute();
    const members = await db
      .selectFrom("org_members")
      .selectAll()
      .orderBy("org_id")
      .orderBy("user_id")
      .execute();
    const heads = await db.selectFrom("org_vault_heads").selectAll().orderBy("vault_id").execute();
    const keys = await db.selectFrom("vault_org_keys").selectAll().orderBy("user_id").execute();
    const versions = await db.selectFrom("org_vault_versions").select(["vault_id", "version"]).execute();
    const unshared = await db.selectFrom("org_vault_unshared").selectAll().orderBy("vault_id").execute();
    const audits = await db.selectFrom("audit_events").select("id").execute();
    return JSON.stringify({
      orgs,
      members,
      heads,
      keys,
      versions: versions.length,
      unshared,
      audits: audits.length,
    });
  }

  function callerOf(relation: Relation, role: OrgRole): Member {
    if (relation === "own org") return own.get(role)!;
    if (relation === "other org") return other.get(role)!;
    return loner;
  }

  it("lets exactly the permitted cells succeed, and changes nothing in the others", async () => {
    const absent = await call(app, loner.token, "GET", "/no-such-org");
    expect(absent.statusCode).toBe(404);
    const lines: string[] = [];
    let successes = 0;
    let expectedSuccesses = 0;
    for (const route of Object.keys(EXPECTED) as Route[]) {
      const allowed: readonly OrgRole[] = EXPECTED[route];
      for (const relation of RELATIONS) {
        for (const role of ROLES) {
          const permitted = UNSCOPED.includes(route) || (relation === "own org" && allowed.includes(role));
          const cell = `${route} × ${role} × ${relation}`;
          // An account to add, made before the snapshot (making it writes rows of its own).
          const newcomer = route === "add member" ? (await server.caller()).email : "";
          const before = permitted ? null : await snapshot();
          const auditBefore = await auditIds();
          const res = await send(route, callerOf(relation, role), newcomer);
          const ok = res.statusCode >= 200 && res.statusCode < 300;
          lines.push(`${cell}: ${res.statusCode}`);
          if (ok) successes++;
          if (permitted) {
            expectedSuccesses++;
            expect(ok, `${cell} answered ${res.statusCode} ${res.body}`).toBe(true);
            expect(res.headers["x-latchkey-signature"], cell).toBeDefined();
            // Every change is one audit row of the organisation's; a read writes none (a first pull may).
            const written = (await auditIds()).filter((id) => !auditBefore.includes(id));
            const action = AUDITED[route];
            if (action === undefined) expect(written, cell).toEqual([]);
            else if (action === "org.vault.pull") expect(written.length, cell).toBeLessThanOrEqual(1);
            else {
              expect(written, cell).toHaveLength(1);
              const row = await database.db
                .selectFrom("audit_events")
                .select(["action", "org_id", "user_id"])
                .where("id", "=", written[0]!)
                .executeTakeFirstOrThrow();
              expect(row, cell).toMatchObject({ action, user_id: callerOf(relation, role).userId });
              expect(row.org_id, cell).not.toBeNull();
            }
            await restore(route);
            continue;
          }
          expect(ok, `${cell} succeeded`).toBe(false);
          if (relation === "own org") {
            expect(res.statusCode, cell).toBe(403);
            expect(res.json(), cell).toMatchObject({ code: "LK_ORG_FORBIDDEN" });
            expect(res.json().message, cell).toContain(`yours is ${role}`);
          } else {
            // Not a member: the very answer an organisation that does not exist gets.
            expect(res.statusCode, cell).toBe(404);
            expect(res.body, cell).toBe(absent.body);
          }
          expect(await snapshot(), cell).toBe(before);
        }
      }
    }
    console.log(
      `[org-authz] ${target.kind}: ${lines.length} cells, ${successes} successes (${expectedSuccesses} permitted)`,
    );
    expect(lines).toHaveLength(Object.keys(EXPECTED).length * ROLES.length * RELATIONS.length);
    expect(successes).toBe(expectedSuccesses);
  });

  it("positive control: the organisation's owner succeeds on every route", async () => {
    for (const route of Object.keys(EXPECTED) as Route[]) {
      const res = await send(route, ownerOf(), (await server.caller()).email);
      expect(res.statusCode, `${route}: ${res.body}`).toBeLessThan(300);
      await restore(route);
    }
  });
});

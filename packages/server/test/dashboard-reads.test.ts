// The dashboard's read routes on SQLite and PostgreSQL, through the real app with real accounts and tokens: the
// personal vault list (GET /api/v1/vaults), the paged audit logs (a personal vault's, an organisation's, the
// account's) with their filters and keyset pages, and each member's last pull in GET /orgs/:slug/members.
import { randomUUID } from "node:crypto";
import type { AuditPageResponse, OrgMembersResponse, VaultListResponse } from "@latchkey/core";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import { insertAudit } from "../src/audit/data.js";
import { openDatabase, type OpenDatabase } from "../src/db/index.js";
import { MIGRATIONS, migrateToLatest } from "../src/db/migrations.js";
import { describeEachDatabase } from "./databases.js";
import { call, makeOrg, newMember, orgPushBody, shareBody, type Member } from "./org-support.js";
import {
  injectedSignature,
  newVaultKey,
  openMigrated,
  pushBody,
  sealBlob,
  startSyncServer,
  type Caller,
  type SyncServer,
} from "./sync-support.js";

const CANARY = `canary-${randomUUID()}`;

describeEachDatabase("dashboard read routes", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  let alice: Member;
  let bob: Member;
  let carol: Member;
  let mallory: Caller;
  const aliceVault = randomUUID();
  const otherVault = randomUUID();
  const malloryVault = randomUUID();
  const blobs: string[] = [];
  let orgId: string;

  const get = (caller: Caller, path: string): Promise<LightMyRequestResponse> =>
    call(app, caller.token, "GET", path);

  /** Pushes `vaultId` from `baseVersion` with a blob sealing the canary, keeping the blob to look for later. */
  async function push(caller: Caller, vaultId: string, baseVersion: number): Promise<void> {
    const blob = await sealBlob(
      newVaultKey(),
      vaultId,
      baseVersion + 1,
      `{"env":{"default":{"K":"${CANARY}"}}}`,
    );
    blobs.push(blob);
    const body = pushBody(blob, baseVersion);
    blobs.push(body.wrappedKey as string);
    const res = await call(app, caller.token, "PUT", `/api/v1/vaults/${vaultId}`, body);
    expect(res.statusCode, res.body).toBe(200);
  }

  /** Every answer body of the suite holds no blob, no wrapped key and no value. */
  function expectNoSecret(res: LightMyRequestResponse): void {
    expect(res.body).not.toContain(CANARY);
    for (const blob of blobs) expect(res.body).not.toContain(blob);
  }

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    alice = await newMember(server, database.db, `alice-${randomUUID()}@example.test`);
    bob = await newMember(server, database.db, `bob-${randomUUID()}@example.test`);
    carol = await newMember(server, database.db, `carol-${randomUUID()}@example.test`);
    mallory = await server.caller(`mallory-${randomUUID()}@example.test`);
    await push(alice, aliceVault, 0);
    await push(alice, aliceVault, 1);
    await push(alice, otherVault, 0);
    await push(mallory, malloryVault, 0);
    await makeOrg(server, alice, "acme", [
      [bob, "member"],
      [carol, "maintainer"],
    ]);
    const shared = await call(
      app,
      alice.token,
      "PUT",
      `/acme/vaults/${aliceVault}/share`,
      await shareBody(alice, "acme", aliceVault, 0, newVaultKey(), [alice, bob, carol]),
    );
    expect(shared.statusCode, shared.body).toBe(200);
    // An organisation alice is not in holds a copy of her other vault's id: it must never be named to her.
    await makeOrg(server, mallory, "elsewhere");
    const mallorySharer = await newMember(server, database.db);
    await makeOrg(server, mallorySharer, "hidden");
    const hidden = await call(
      app,
      mallorySharer.token,
      "PUT",
      `/hidden/vaults/${otherVault}/share`,
      await shareBody(mallorySharer, "hidden", otherVault, 0, newVaultKey(), [mallorySharer]),
    );
    expect(hidden.statusCode, hidden.body).toBe(200);
    orgId = (
      await database.db.selectFrom("orgs").select("id").where("slug", "=", "acme").executeTakeFirstOrThrow()
    ).id;
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  it("lists the caller's personal vaults with their organisations' copies, signed, and nobody else's", async () => {
    const res = await get(alice, "/api/v1/vaults");
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, res));
    const { vaults } = res.json<VaultListResponse>();
    expect(vaults.map((v) => [v.vaultId, v.version, v.orgs])).toEqual(
      [
        [aliceVault, 2, ["acme"]],
        [otherVault, 1, []],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    expect(vaults.every((v) => v.name === "demo-project" && !Number.isNaN(Date.parse(v.updatedAt)))).toBe(
      true,
    );
    expectNoSecret(res);
    const theirs = await get(mallory, "/api/v1/vaults");
    expect(theirs.json<VaultListResponse>().vaults.map((v) => v.vaultId)).toEqual([malloryVault]);
    const none = await get(bob, "/api/v1/vaults");
    expect(none.json<VaultListResponse>()).toEqual({ vaults: [] });
  });

  it("pages a personal vault's log newest first, filters it, and answers 404 to anyone but its owner", async () => {
    const res = await get(alice, `/api/v1/vaults/${aliceVault}/audit`);
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, res));
    const page = res.json<AuditPageResponse>();
    // Two pushes; the organisation's rows of the same vault id belong to the organisation's log.
    expect(page.entries.map((e) => [e.action, e.version])).toEqual([
      ["vault.push", 2],
      ["vault.push", 1],
    ]);
    expect(page.entries[0]).toMatchObject({
      vaultId: aliceVault,
      actor: { userId: alice.userId, email: alice.email },
      environment: null,
      count: 1,
    });
    expect(page.nextCursor).toBeNull();
    expectNoSecret(res);

    const absent = await get(alice, `/api/v1/vaults/${randomUUID()}/audit`);
    expect(absent.statusCode).toBe(404);
    const other = await get(mallory, `/api/v1/vaults/${aliceVault}/audit`);
    expect(other.statusCode).toBe(404);
    expect(other.body).toBe(absent.body);
    expect(other.headers["x-latchkey-signature"]).toBeUndefined();
  });

  it("filters by action, user, environment and time range, alone and together", async () => {
    const vaultId = randomUUID();
    await push(alice, vaultId, 0);
    const at = (minute: number) => new Date(Date.UTC(2031, 0, 1, 0, minute)).toISOString();
    const rows: {
      id: string;
      action: string;
      environment?: string;
      minute: number;
      userId: string | null;
    }[] = [
      { id: randomUUID(), action: "vault.ci.pull", environment: "production", minute: 1, userId: null },
      { id: randomUUID(), action: "vault.ci.pull", environment: "staging", minute: 2, userId: null },
      { id: randomUUID(), action: "vault.ci.pull", environment: "production", minute: 3, userId: null },
      { id: randomUUID(), action: "vault.rewrap", minute: 4, userId: alice.userId },
      { id: randomUUID(), action: "vault.ci.enable", minute: 5, userId: alice.userId },
    ];
    for (const row of rows) {
      await insertAudit(database.db, {
        id: row.id,
        userId: row.userId,
        action: row.action,
        vaultId,
        version: 1,
        createdAt: at(row.minute),
        metadata:
          row.environment === undefined ? { environments: ["production"] } : { environment: row.environment },
      });
    }
    const ids = async (query: string): Promise<string[]> => {
      const res = await get(alice, `/api/v1/vaults/${vaultId}/audit?${query}`);
      expect(res.statusCode, `${query}: ${res.body}`).toBe(200);
      return res.json<AuditPageResponse>().entries.map((e) => e.id);
    };
    const id = (minute: number) => rows.find((r) => r.minute === minute)!.id;
    expect(await ids("action=vault.ci.pull")).toEqual([id(3), id(2), id(1)]);
    // Only the rows that record an environment (CI pulls) match one; the policy's list of them is not one.
    expect(await ids("environment=production")).toEqual([id(3), id(1)]);
    expect(await ids("environment=staging&action=vault.ci.pull")).toEqual([id(2)]);
    expect(await ids(`user=${alice.userId.toUpperCase()}&from=${at(0)}`)).toEqual([id(5), id(4)]);
    // `from` inclusive, `to` exclusive, any zone.
    expect(await ids(`from=${at(2)}&to=${at(4)}`)).toEqual([id(3), id(2)]);
    expect(await ids(`from=${encodeURIComponent("2031-01-01T02:02:00+02:00")}&to=${at(3)}`)).toEqual([id(2)]);
    expect(await ids(`action=vault.ci.pull&environment=production&from=${at(2)}`)).toEqual([id(3)]);
    expect(await ids("action=vault.pull")).toEqual([]);
    const page = await get(alice, `/api/v1/vaults/${vaultId}/audit?action=vault.ci.pull&limit=1`);
    expect(page.json<AuditPageResponse>().entries[0]).toMatchObject({
      environment: "production",
      actor: null,
      metadata: { environment: "production" },
    });
  });

  it("refuses a malformed query with a 400 that quotes nothing of it", async () => {
    for (const query of [
      "action=Vault.Push",
      "action=a&action=b",
      `environment=${encodeURIComponent(`x y ${CANARY}`)}`,
      "user=nobody",
      "from=yesterday",
      `from=${new Date(2031, 1, 2).toISOString()}&to=${new Date(2031, 1, 1).toISOString()}`,
      "limit=0",
      "limit=51",
      `cursor=${CANARY}`,
      `cursor=${Buffer.from(JSON.stringify(["not a time", "x"])).toString("base64url")}`,
      `cursor=${Buffer.from(JSON.stringify(["2031-01-01T00:00:00.000Z"])).toString("base64url")}`,
      `vault=${aliceVault}`,
      `${CANARY}=1`,
    ]) {
      const res = await get(alice, `/api/v1/vaults/${aliceVault}/audit?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json(), query).toMatchObject({ code: "LK_SERVER_ERROR" });
      expect(res.body, query).not.toContain(CANARY);
    }
  });

  it("pages by keyset: every row once, in order, while rows are written between the pages", async () => {
    const vaultId = randomUUID();
    await push(alice, vaultId, 0);
    // Rows from before now, many sharing a millisecond: the order within one is by id, and a page may end inside
    // one.
    const times = Array.from(
      { length: 30 },
      (_, i) => new Date(Date.UTC(2020, 0, 1, 0, 0, 0, Math.floor(i / 4))),
    );
    for (const time of times) {
      await insertAudit(database.db, {
        id: randomUUID(),
        userId: alice.userId,
        action: "vault.rewrap",
        vaultId,
        version: 1,
        createdAt: time.toISOString(),
        metadata: {},
      });
    }
    const before = await database.db
      .selectFrom("audit_events")
      .select(["id", "created_at"])
      .where("vault_id", "=", vaultId)
      .where("org_id", "is", null)
      .execute();
    const seen: { id: string; createdAt: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    let written = 0;
    do {
      const query: string = cursor === null ? "limit=7" : `limit=7&cursor=${cursor}`;
      const res = await get(alice, `/api/v1/vaults/${vaultId}/audit?${query}`);
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<AuditPageResponse>();
      expect(page.entries.length).toBeLessThanOrEqual(7);
      seen.push(...page.entries.map((e) => ({ id: e.id, createdAt: e.createdAt })));
      cursor = page.nextCursor;
      pages++;
      // Between pages: a newer row (a push, now), and rows in the very millisecond the last page ended in, on
      // both sides of its id (one sorts before the cursor, one after).
      await push(alice, vaultId, 1 + written);
      written++;
      const last = seen[seen.length - 1]!;
      for (const id of ["00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"]) {
        await insertAudit(database.db, {
          id: `${id.slice(0, -4)}${String(pages).padStart(4, "0")}`,
          userId: alice.userId,
          action: "vault.rewrap",
          vaultId,
          version: 1,
          createdAt: last.createdAt,
          metadata: {},
        });
      }
    } while (cursor !== null && pages < 100);
    const ids = seen.map((s) => s.id);
    expect(new Set(ids).size, "no row twice").toBe(ids.length);
    for (const row of before) expect(ids, "no row of the log skipped").toContain(row.id);
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1]!, seen[i]!];
      expect(a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id), `order at ${i}`).toBe(
        true,
      );
    }
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(before.length / 7));
  });

  it("answers the organisation's log to maintainers and above, filtered by vault and member", async () => {
    const pulled = await get(bob, `/acme/vaults/${aliceVault}`);
    expect(pulled.statusCode).toBe(200);
    const res = await get(carol, "/acme/audit");
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(carol.token, res));
    const actions = res.json<AuditPageResponse>().entries.map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(["org.create", "org.member.add", "org.vault.share", "org.vault.pull"]),
    );
    expectNoSecret(res);

    const bobs = (await get(alice, `/acme/audit?user=${bob.userId}`)).json<AuditPageResponse>().entries;
    expect(bobs.map((e) => [e.action, e.vaultId, e.actor?.email])).toEqual([
      ["org.vault.pull", aliceVault, bob.email],
    ]);
    const vaultRows = (await get(alice, `/acme/audit?vault=${aliceVault}`)).json<AuditPageResponse>().entries;
    expect(vaultRows.map((e) => e.action).sort()).toEqual(["org.vault.pull", "org.vault.share"]);
    expect((await get(alice, `/acme/audit?vault=${otherVault}`)).json<AuditPageResponse>().entries).toEqual(
      [],
    );

    const member = await get(bob, "/acme/audit");
    expect(member.statusCode).toBe(403);
    expect(member.json()).toMatchObject({ code: "LK_ORG_FORBIDDEN" });
    const outsider = await get(mallory, "/acme/audit");
    expect(outsider.statusCode).toBe(404);
    expect(outsider.body).toBe((await get(mallory, "/no-such-org/audit")).body);
  });

  it("answers the account's own events only: no vault's, no organisation's, nobody else's", async () => {
    const at = new Date(Date.UTC(2033, 0, 1)).toISOString();
    for (const [userId, action] of [
      [alice.userId, "pairing.create"],
      [alice.userId, "step_up.granted"],
      [mallory.userId, "pairing.create"],
    ] as const) {
      await insertAudit(database.db, {
        id: randomUUID(),
        userId,
        action,
        vaultId: null,
        version: null,
        createdAt: at,
        metadata: { ip: "127.0.0.1" },
      });
    }
    const res = await get(alice, "/api/v1/account/audit");
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, res));
    const entries = res.json<AuditPageResponse>().entries;
    // The account's creation is one of its own events too.
    expect(entries.map((e) => e.action).sort()).toEqual([
      "account.create",
      "pairing.create",
      "step_up.granted",
    ]);
    expect(entries.every((e) => e.actor?.userId === alice.userId && e.vaultId === null)).toBe(true);
    const filtered = await get(alice, "/api/v1/account/audit?action=pairing.create");
    expect(filtered.json<AuditPageResponse>().entries).toHaveLength(1);
    const theirs = (await get(mallory, "/api/v1/account/audit")).json<AuditPageResponse>().entries;
    expect(theirs.map((e) => e.action)).toEqual(["pairing.create", "account.create"]);
  });

  it("shows each member's last pull of each vault to maintainers and above, and not to members", async () => {
    const vaultId = randomUUID();
    const key = newVaultKey();
    const shared = await call(app, alice.token, "PUT", `/acme/vaults/${vaultId}/share`, {
      ...(await shareBody(alice, "acme", vaultId, 0, key, [alice, bob, carol])),
      name: "pulled-project",
    });
    expect(shared.statusCode, shared.body).toBe(200);
    expect((await get(bob, `/acme/vaults/${vaultId}`)).statusCode).toBe(200);
    const pushed = await call(
      app,
      alice.token,
      "PUT",
      `/acme/vaults/${vaultId}`,
      await orgPushBody(vaultId, 1, key),
    );
    expect(pushed.statusCode, pushed.body).toBe(200);
    expect((await get(bob, `/acme/vaults/${vaultId}`)).statusCode).toBe(200);
    const firstV2 = await database.db
      .selectFrom("audit_events")
      .select("created_at")
      .where("org_id", "=", orgId)
      .where("vault_id", "=", vaultId)
      .where("user_id", "=", bob.userId)
      .where("version", "=", 2)
      .where("action", "=", "org.vault.pull")
      .executeTakeFirstOrThrow();
    // Pulling the same version again writes no row, so the last pull stays the first pull of that version.
    expect((await get(bob, `/acme/vaults/${vaultId}`)).statusCode).toBe(200);

    const keyOf = (answer: OrgMembersResponse, member: Caller) =>
      answer.members.find((m) => m.userId === member.userId)!.keys.find((k) => k.vaultId === vaultId)!;
    for (const auditor of [alice, carol]) {
      const res = await get(auditor, "/acme/members");
      expect(res.statusCode).toBe(200);
      const answer = res.json<OrgMembersResponse>();
      expect(keyOf(answer, bob)).toEqual({
        vaultId,
        state: "current",
        lastPulledAt: firstV2.created_at,
        lastPulledVersion: 2,
      });
      expect(keyOf(answer, carol)).toEqual({
        vaultId,
        state: "current",
        lastPulledAt: null,
        lastPulledVersion: null,
      });
      expectNoSecret(res);
    }
    const asMember = (await get(bob, "/acme/members")).json<OrgMembersResponse>();
    expect(keyOf(asMember, bob)).toEqual({ vaultId, state: "current" });
  });

  it("fills in the environment of rows written before the column, as the writer does now", async () => {
    const config = await target.fresh();
    const opened = await openDatabase(config);
    try {
      const names = Object.keys(MIGRATIONS);
      const before = Object.fromEntries(
        names.slice(0, names.indexOf("0017_audit_pages")).map((name) => [name, MIGRATIONS[name]!]),
      );
      await migrateToLatest(opened.db, before);
      const rows = [
        ["r1", { environment: "production", keys: 2 }],
        ["r2", { environments: ["production"] }],
        ["r3", { environment: 7 }],
        ["r4", {}],
      ] as const;
      for (const [id, metadata] of rows) {
        await opened.db
          .insertInto("audit_events")
          .values({
            id,
            user_id: null,
            action: "vault.ci.pull",
            vault_id: null,
            version: null,
            created_at: new Date().toISOString(),
            metadata: JSON.stringify(metadata),
          })
          .execute();
      }
      await migrateToLatest(opened.db);
      const after = await opened.db
        .selectFrom("audit_events")
        .select(["id", "environment"])
        .orderBy("id")
        .execute();
      expect(after).toEqual([
        { id: "r1", environment: "production" },
        { id: "r2", environment: null },
        { id: "r3", environment: null },
        { id: "r4", environment: null },
      ]);
    } finally {
      await opened.close();
    }
  });
});

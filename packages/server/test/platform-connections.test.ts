// Platform connections (docs/platforms.md, "Connections"), on both databases: the personal and organisation
// GET/POST …/platforms, DELETE …/platforms/:name and PUT …/platforms/:name/status routes, who may use each (the
// permissions matrix), their audit rows, a credential sealed so that the server never holds it open, and the
// connections' deletion with an organisation's copy.
import {
  ORGS_PATH,
  platformConnectionResponseSchema,
  platformCredentialContext,
  platformDisconnectResponseSchema,
  platformListResponseSchema,
  sealEnvelope,
  syncBlobContext,
  toBase64,
  utf8Encode,
  type OrgRole,
  type PlatformConnectRequest,
} from "@latchkey/core";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import { call, callWithProof, makeOrg, newMember, shareBody, type Member } from "./org-support.js";
import {
  newVaultKey,
  openMigrated,
  pushBody,
  sealBlob,
  startSyncServer,
  type Caller,
  type SyncServer,
} from "./sync-support.js";

const DOCUMENT = '{"production":{"API_KEY":"platform-doc-value"}}';
const CANARY = "lk-platform-credential-canary-7f3a9c";

describeEachDatabase("platform connections", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
  });
  afterAll(async () => {
    await server.close();
    await database.close();
  });

  const db = () => database.db;
  const request = (
    who: Caller,
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    payload?: unknown,
  ): Promise<LightMyRequestResponse> => call(server.app, who.token, method, path, payload);
  const refused = (res: LightMyRequestResponse, status: number, code: string): void => {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.json<{ code: string }>().code).toBe(code);
  };
  const rows = (vaultId: string) =>
    db().selectFrom("platform_connections").selectAll().where("vault_id", "=", vaultId).execute();
  const audits = async (vaultId: string, action: string) =>
    (
      await db()
        .selectFrom("audit_events")
        .select(["metadata", "version", "org_id"])
        .where("vault_id", "=", vaultId)
        .where("action", "=", action)
        .execute()
    ).map((row) => ({ ...(JSON.parse(row.metadata) as Record<string, unknown>), version: row.version }));

  /**
   * A connect body as the CLI makes one: the credential sealed with the copy's key under the connection's id, and
   * that key's version (a personal copy's, and an organisation copy's first share's: 1).
   */
  async function connectBody(
    vaultId: string,
    vaultKey: Uint8Array,
    name = "web-prod",
    keyVersion = 1,
  ): Promise<PlatformConnectRequest> {
    const id = crypto.randomUUID();
    const sealed = await sealEnvelope(vaultKey, utf8Encode(CANARY), platformCredentialContext(vaultId, id));
    return {
      id,
      name,
      environment: "production",
      config: { platform: "fly", app: "acme-web" },
      sealedCredential: toBase64(sealed),
      keyVersion,
    };
  }

  const status = (version: number, outcome = "ok") => ({
    operation: "push",
    version,
    added: 2,
    changed: 1,
    removed: 0,
    outcome,
    message: null,
  });

  async function personalCopy(owner: Caller) {
    const vaultId = crypto.randomUUID();
    const vaultKey = newVaultKey();
    const pushed = await request(owner, "PUT", `/api/v1/vaults/${vaultId}`, {
      ...pushBody(await sealBlob(vaultKey, vaultId, 1, DOCUMENT), 0),
    });
    expect(pushed.statusCode, pushed.body).toBe(200);
    return { vaultId, vaultKey, path: `/api/v1/vaults/${vaultId}/platforms` };
  }

  it("connects, lists, records a push and disconnects a personal copy's connection, with an audit row each", async () => {
    const owner = await server.caller();
    const { vaultId, vaultKey, path } = await personalCopy(owner);
    const body = await connectBody(vaultId, vaultKey);

    const made = await request(owner, "POST", path, body);
    expect(made.statusCode, made.body).toBe(201);
    const answer = platformConnectionResponseSchema.parse(made.json());
    expect(answer).toMatchObject({
      vaultId,
      org: null,
      connection: {
        id: body.id,
        name: "web-prod",
        platform: "fly",
        environment: "production",
        config: body.config,
        sealedCredential: body.sealedCredential,
        createdBy: owner.email,
        lastPush: null,
      },
    });

    // The name is the copy's once; a second connect of it writes nothing.
    refused(
      await request(owner, "POST", path, { ...(await connectBody(vaultId, vaultKey)) }),
      409,
      "LK_PLATFORM_NAME_TAKEN",
    );
    expect(await rows(vaultId)).toHaveLength(1);

    const recorded = await request(owner, "PUT", `${path}/web-prod/status`, status(1));
    expect(recorded.statusCode, recorded.body).toBe(200);
    expect(platformConnectionResponseSchema.parse(recorded.json()).connection.lastPush).toMatchObject({
      version: 1,
      added: 2,
      changed: 1,
      removed: 0,
      outcome: "ok",
      message: null,
      pushedBy: owner.email,
    });
    // A pull is audited and leaves the last push as it was.
    const pulled = await request(owner, "PUT", `${path}/web-prod/status`, {
      ...status(1),
      operation: "pull",
      added: 5,
    });
    expect(platformConnectionResponseSchema.parse(pulled.json()).connection.lastPush?.added).toBe(2);
    // A version the copy does not have is refused.
    expect((await request(owner, "PUT", `${path}/web-prod/status`, status(2))).statusCode).toBe(400);

    const listed = platformListResponseSchema.parse((await request(owner, "GET", path)).json());
    expect(listed.connections.map((c) => c.name)).toEqual(["web-prod"]);

    const gone = await request(owner, "DELETE", `${path}/web-prod`);
    expect(gone.statusCode, gone.body).toBe(200);
    expect(platformDisconnectResponseSchema.parse(gone.json())).toEqual({ disconnected: true });
    expect(await rows(vaultId)).toEqual([]);
    refused(await request(owner, "DELETE", `${path}/web-prod`), 404, "LK_PLATFORM_NOT_CONNECTED");
    refused(
      await request(owner, "PUT", `${path}/web-prod/status`, status(1)),
      404,
      "LK_PLATFORM_NOT_CONNECTED",
    );

    const connectId = { connectionId: body.id, name: "web-prod", platform: "fly", environment: "production" };
    expect(await audits(vaultId, "platform.connect")).toEqual([
      expect.objectContaining({ ...connectId, version: 1 }),
    ]);
    expect(await audits(vaultId, "platform.push")).toEqual([
      expect.objectContaining({ ...connectId, added: 2, changed: 1, removed: 0, outcome: "ok", version: 1 }),
    ]);
    expect(await audits(vaultId, "platform.pull")).toEqual([
      expect.objectContaining({ ...connectId, added: 5 }),
    ]);
    expect(await audits(vaultId, "platform.disconnect")).toEqual([expect.objectContaining(connectId)]);
  });

  it("answers another user's vault as the pull does, and a copy never pushed likewise: 404, nothing written", async () => {
    const owner = await server.caller();
    const stranger = await server.caller();
    const { vaultId, vaultKey, path } = await personalCopy(owner);
    const body = await connectBody(vaultId, vaultKey);
    refused(await request(stranger, "POST", path, body), 404, "LK_VAULT_NOT_SYNCED");
    refused(await request(stranger, "GET", path), 404, "LK_VAULT_NOT_SYNCED");
    expect((await request(owner, "POST", path, body)).statusCode).toBe(201);
    refused(await request(stranger, "DELETE", `${path}/web-prod`), 404, "LK_VAULT_NOT_SYNCED");
    refused(await request(stranger, "PUT", `${path}/web-prod/status`, status(1)), 404, "LK_VAULT_NOT_SYNCED");
    expect(await rows(vaultId)).toHaveLength(1);
    const never = crypto.randomUUID();
    refused(
      await request(owner, "POST", `/api/v1/vaults/${never}/platforms`, await connectBody(never, vaultKey)),
      404,
      "LK_VAULT_NOT_SYNCED",
    );
  });

  it("a personal copy's key never changes: a connection naming another key version is refused (409), nothing stored", async () => {
    const owner = await server.caller();
    const { vaultId, vaultKey, path } = await personalCopy(owner);
    const second = await request(owner, "PUT", `/api/v1/vaults/${vaultId}`, {
      ...pushBody(await sealBlob(vaultKey, vaultId, 2, DOCUMENT), 1),
    });
    expect(second.statusCode, second.body).toBe(200);
    // Version 2 of the copy is sealed with the same key, still the key of version 1.
    refused(
      await request(owner, "POST", path, await connectBody(vaultId, vaultKey, "web-prod", 2)),
      409,
      "LK_VAULT_KEY_STALE",
    );
    expect(await rows(vaultId)).toEqual([]);
    expect(await audits(vaultId, "platform.connect")).toEqual([]);
    expect((await request(owner, "POST", path, await connectBody(vaultId, vaultKey))).statusCode).toBe(201);
  });

  it("refuses bodies that are not the schema's, naming the field, and never echoes the credential", async () => {
    const owner = await server.caller();
    const { vaultId, vaultKey, path } = await personalCopy(owner);
    const good = await connectBody(vaultId, vaultKey);
    for (const bad of [
      { ...good, name: "Web Prod" },
      { ...good, config: { platform: "fly", app: "acme web" } },
      { ...good, config: { platform: "nowhere" } },
      { ...good, sealedCredential: `${CANARY}!` },
      { ...good, credential: CANARY },
      { ...good, id: "not-a-uuid" },
      { ...good, keyVersion: 0 },
      { ...good, keyVersion: undefined },
    ]) {
      const res = await request(owner, "POST", path, bad);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.body).not.toContain(CANARY);
    }
    expect(await rows(vaultId)).toEqual([]);
  });

  it("stores the credential sealed: the canary is in no column of the table or of the audit log", async () => {
    const owner = await server.caller();
    const { vaultId, vaultKey, path } = await personalCopy(owner);
    expect(
      (await request(owner, "POST", path, await connectBody(vaultId, vaultKey, "canary"))).statusCode,
    ).toBe(201);
    const stored = JSON.stringify(await rows(vaultId));
    const audit = JSON.stringify(
      await db().selectFrom("audit_events").selectAll().where("vault_id", "=", vaultId).execute(),
    );
    expect(stored).toContain("canary");
    for (const text of [stored, audit]) {
      expect(text).not.toContain(CANARY);
      expect(text).not.toContain(Buffer.from(CANARY).toString("base64"));
    }
  });

  describe("organisation copies", () => {
    const members = {} as Record<OrgRole, Member>;

    beforeAll(async () => {
      for (const role of ["owner", "admin", "maintainer", "member"] as const)
        members[role] = await newMember(server, db());
    });

    async function sharedCopy() {
      const slug = `pl-${crypto.randomUUID().slice(0, 8)}`;
      await makeOrg(server, members.owner, slug, [
        [members.admin, "admin"],
        [members.maintainer, "maintainer"],
        [members.member, "member"],
      ]);
      const vaultId = crypto.randomUUID();
      const vaultKey = newVaultKey();
      const everyone = Object.values(members);
      const shared = await call(
        server.app,
        members.maintainer.token,
        "PUT",
        `/${slug}/vaults/${vaultId}/share`,
        {
          ...(await shareBody(members.maintainer, slug, vaultId, 0, vaultKey, everyone)),
          encryptedBlob: toBase64(
            await sealEnvelope(vaultKey, utf8Encode(DOCUMENT), syncBlobContext(vaultId, 1, slug)),
          ),
        },
      );
      expect(shared.statusCode, shared.body).toBe(200);
      return { slug, vaultId, vaultKey, path: `${ORGS_PATH}/${slug}/vaults/${vaultId}/platforms` };
    }

    // Who may do what: read and record from member up, connect and disconnect from maintainer up.
    const MATRIX: Record<OrgRole, { read: boolean; record: boolean; manage: boolean }> = {
      owner: { read: true, record: true, manage: true },
      admin: { read: true, record: true, manage: true },
      maintainer: { read: true, record: true, manage: true },
      member: { read: true, record: true, manage: false },
    };

    for (const role of ["owner", "admin", "maintainer", "member"] as const) {
      it(`the permissions matrix: ${role}`, async () => {
        const allowed = MATRIX[role];
        const who = members[role];
        const { slug, vaultId, vaultKey, path } = await sharedCopy();

        const connected = await request(who, "POST", path, await connectBody(vaultId, vaultKey, "mine"));
        if (allowed.manage) expect(connected.statusCode, connected.body).toBe(201);
        else refused(connected, 403, "LK_ORG_FORBIDDEN");
        expect(await rows(vaultId)).toHaveLength(allowed.manage ? 1 : 0);

        // A maintainer's connection for the rest.
        const theirs = await request(
          members.maintainer,
          "POST",
          path,
          await connectBody(vaultId, vaultKey, "theirs"),
        );
        expect(theirs.statusCode, theirs.body).toBe(201);
        expect(platformConnectionResponseSchema.parse(theirs.json()).org).toBe(slug);

        const listed = await request(who, "GET", path);
        expect(listed.statusCode, listed.body).toBe(allowed.read ? 200 : 403);

        const recorded = await request(who, "PUT", `${path}/theirs/status`, status(1));
        expect(recorded.statusCode, recorded.body).toBe(allowed.record ? 200 : 403);

        const removed = await request(who, "DELETE", `${path}/theirs`);
        if (allowed.manage) expect(removed.statusCode, removed.body).toBe(200);
        else refused(removed, 403, "LK_ORG_FORBIDDEN");
        expect((await rows(vaultId)).map((r) => r.name).includes("theirs")).toBe(!allowed.manage);

        const [push] = await audits(vaultId, "platform.push");
        expect(push).toMatchObject({ name: "theirs", orgId: expect.any(String) });
      });
    }

    it("refuses a connection sealed with a key the copy no longer has (409 LK_VAULT_KEY_STALE): nothing stored", async () => {
      const { slug, vaultId, vaultKey: oldKey, path } = await sharedCopy();
      const everyone = Object.values(members);
      // A rotation: version 2 sealed with a new key, wrapped for every member at key version 2.
      const newKey = newVaultKey();
      const rotated = await call(
        server.app,
        members.maintainer.token,
        "PUT",
        `/${slug}/vaults/${vaultId}/share`,
        await shareBody(members.maintainer, slug, vaultId, 1, newKey, everyone),
      );
      expect(rotated.statusCode, rotated.body).toBe(200);

      // A maintainer whose copy is still version 1's seals with the old key, which a removed member may hold.
      const stale = await request(
        members.maintainer,
        "POST",
        path,
        await connectBody(vaultId, oldKey, "stale"),
      );
      refused(stale, 409, "LK_VAULT_KEY_STALE");
      expect(stale.body).toContain("version 2");
      // A key version ahead of the copy's is no better.
      refused(
        await request(members.maintainer, "POST", path, await connectBody(vaultId, newKey, "ahead", 3)),
        409,
        "LK_VAULT_KEY_STALE",
      );
      expect(await rows(vaultId)).toEqual([]);
      expect(await audits(vaultId, "platform.connect")).toEqual([]);

      const current = await request(
        members.maintainer,
        "POST",
        path,
        await connectBody(vaultId, newKey, "current", 2),
      );
      expect(current.statusCode, current.body).toBe(201);
      expect((await rows(vaultId)).map((r) => r.name)).toEqual(["current"]);
    });

    it("refuses someone outside the organisation (404) and a copy the organisation does not have", async () => {
      const { slug, vaultId, vaultKey, path } = await sharedCopy();
      const outsider = await newMember(server, db());
      refused(await request(outsider, "GET", path), 404, "LK_ORG_NOT_FOUND");
      refused(
        await request(outsider, "POST", path, await connectBody(vaultId, vaultKey)),
        404,
        "LK_ORG_NOT_FOUND",
      );
      const other = crypto.randomUUID();
      refused(
        await request(members.maintainer, "GET", `${ORGS_PATH}/${slug}/vaults/${other}/platforms`),
        404,
        "LK_ORG_VAULT_NOT_SHARED",
      );
      // The personal route does not reach the organisation's copy.
      refused(
        await request(members.maintainer, "GET", `/api/v1/vaults/${vaultId}/platforms`),
        404,
        "LK_VAULT_NOT_SYNCED",
      );
    });

    it("an unshare deletes the copy's connections, and the organisation's deletion deletes all of its connections", async () => {
      const first = await sharedCopy();
      expect(
        (
          await request(
            members.maintainer,
            "POST",
            first.path,
            await connectBody(first.vaultId, first.vaultKey),
          )
        ).statusCode,
      ).toBe(201);
      const unshared = await call(
        server.app,
        members.maintainer.token,
        "DELETE",
        `/${first.slug}/vaults/${first.vaultId}`,
      );
      expect(unshared.statusCode, unshared.body).toBe(200);
      expect(await rows(first.vaultId)).toEqual([]);
      expect(await audits(first.vaultId, "platform.disconnect")).toEqual([
        expect.objectContaining({ cause: "org.vault.unshare", name: "web-prod" }),
      ]);

      const second = await sharedCopy();
      expect(
        (
          await request(
            members.maintainer,
            "POST",
            second.path,
            await connectBody(second.vaultId, second.vaultKey),
          )
        ).statusCode,
      ).toBe(201);
      const deleted = await callWithProof(
        server,
        members.owner.token,
        "org:delete",
        "DELETE",
        `/${second.slug}`,
      );
      expect(deleted.statusCode, deleted.body).toBe(200);
      expect(await rows(second.vaultId)).toEqual([]);
      expect(await audits(second.vaultId, "platform.disconnect")).toEqual([
        expect.objectContaining({ cause: "org.delete" }),
      ]);
    });
  });
});

// A rotation of an organisation copy's vault key re-seals its platform connections' credentials in the share
// (docs/platforms.md, "Connections"), on both databases: the share's `platformCredentials` replace every sealed
// credential in the share's transaction, with `platform.reseal` audit rows; a connection the rotating machine could
// not open is deleted; and a set of ids that is not exactly the copy's connections (one missing, one extra, one of
// another copy) is refused with 409 LK_PLATFORM_CONNECTIONS_CHANGED, leaving the version, the keys and the
// credentials as they were.
import {
  ORGS_PATH,
  openEnvelope,
  platformCredentialContext,
  sealEnvelope,
  syncBlobContext,
  toBase64,
  fromBase64,
  utf8Decode,
  utf8Encode,
  type PlatformCredentialsReseal,
} from "@latchkey/core";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import { call, makeOrg, newMember, shareBody, type Member } from "./org-support.js";
import { newVaultKey, openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

const DOCUMENT = '{"production":{"API_KEY":"reseal-doc-value"}}';
const CANARY = "lk-reseal-credential-canary-4d1e0b";

describeEachDatabase("platform credentials re-sealed by a rotation", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  const team = {} as { maintainer: Member; member: Member; owner: Member };

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    team.owner = await newMember(server, database.db);
    team.maintainer = await newMember(server, database.db);
    team.member = await newMember(server, database.db);
  });
  afterAll(async () => {
    await server.close();
    await database.close();
  });

  const db = () => database.db;
  const everyone = () => [team.owner, team.maintainer, team.member];
  const refused = (res: LightMyRequestResponse, status: number, code: string): void => {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.json<{ code: string }>().code).toBe(code);
  };
  const rows = async (vaultId: string) =>
    (
      await db()
        .selectFrom("platform_connections")
        .select(["id", "name", "sealed_credential"])
        .where("vault_id", "=", vaultId)
        .orderBy("name")
        .execute()
    ).map((r) => ({ id: r.id, name: r.name, sealed: r.sealed_credential }));
  const audits = async (vaultId: string, action: string) =>
    (
      await db()
        .selectFrom("audit_events")
        .select(["metadata", "version"])
        .where("vault_id", "=", vaultId)
        .where("action", "=", action)
        .execute()
    ).map((row) => ({ ...(JSON.parse(row.metadata) as Record<string, unknown>), version: row.version }));
  /** The copy's version, and the key version of every member's wrapped key. */
  const state = async (vaultId: string) => ({
    version: (
      await db()
        .selectFrom("org_vault_heads")
        .select("version")
        .where("vault_id", "=", vaultId)
        .executeTakeFirstOrThrow()
    ).version,
    keyVersions: (
      await db().selectFrom("vault_org_keys").select("key_version").where("vault_id", "=", vaultId).execute()
    ).map((k) => Number(k.key_version)),
  });

  const seal = async (key: Uint8Array, vaultId: string, id: string): Promise<string> =>
    toBase64(await sealEnvelope(key, utf8Encode(`${CANARY}-${id}`), platformCredentialContext(vaultId, id)));
  const opens = async (key: Uint8Array, vaultId: string, id: string, sealed: string): Promise<boolean> => {
    try {
      const plain = await openEnvelope(key, fromBase64(sealed), platformCredentialContext(vaultId, id));
      return utf8Decode(plain) === `${CANARY}-${id}`;
    } catch {
      return false;
    }
  };

  /** A shared copy with the connections `names`, each credential sealed with the copy's first key. */
  async function copyWithConnections(...names: string[]) {
    const slug = `rs-${crypto.randomUUID().slice(0, 8)}`;
    await makeOrg(server, team.owner, slug, [
      [team.maintainer, "maintainer"],
      [team.member, "member"],
    ]);
    const vaultId = crypto.randomUUID();
    const vaultKey = newVaultKey();
    const shared = await share(slug, vaultId, 0, vaultKey);
    expect(shared.statusCode, shared.body).toBe(200);
    const path = `${ORGS_PATH}/${slug}/vaults/${vaultId}/platforms`;
    const ids: Record<string, string> = {};
    for (const name of names) {
      const id = crypto.randomUUID();
      ids[name] = id;
      const made = await call(server.app, team.maintainer.token, "POST", path, {
        id,
        name,
        environment: "production",
        config: { platform: "fly", app: `app-${name}` },
        sealedCredential: await seal(vaultKey, vaultId, id),
        // The first share's key.
        keyVersion: 1,
      });
      expect(made.statusCode, made.body).toBe(201);
    }
    return { slug, vaultId, vaultKey, ids };
  }

  /** A share of version baseVersion + 1 sealed with `vaultKey`, by `who`, with `platformCredentials` if given. */
  async function share(
    slug: string,
    vaultId: string,
    baseVersion: number,
    vaultKey: Uint8Array,
    platformCredentials?: PlatformCredentialsReseal,
    who: Member = team.maintainer,
  ): Promise<LightMyRequestResponse> {
    return call(server.app, who.token, "PUT", `/${slug}/vaults/${vaultId}/share`, {
      ...(await shareBody(who, slug, vaultId, baseVersion, vaultKey, everyone())),
      encryptedBlob: toBase64(
        await sealEnvelope(vaultKey, utf8Encode(DOCUMENT), syncBlobContext(vaultId, baseVersion + 1, slug)),
      ),
      ...(platformCredentials === undefined ? {} : { platformCredentials }),
    });
  }

  it("a rotation's share replaces every sealed credential with the one sealed under the new key, audited", async () => {
    const { slug, vaultId, vaultKey, ids } = await copyWithConnections("api", "web");
    const newKey = newVaultKey();
    const resealed = [
      { id: ids.api!, sealedCredential: await seal(newKey, vaultId, ids.api!) },
      { id: ids.web!, sealedCredential: await seal(newKey, vaultId, ids.web!) },
    ];
    const rotated = await share(slug, vaultId, 1, newKey, { resealed, dropped: [] });
    expect(rotated.statusCode, rotated.body).toBe(200);
    expect(rotated.json()).toMatchObject({ version: 2 });

    const after = await rows(vaultId);
    expect(after.map((r) => r.name)).toEqual(["api", "web"]);
    for (const row of after) {
      expect(await opens(newKey, vaultId, row.id, row.sealed)).toBe(true);
      expect(await opens(vaultKey, vaultId, row.id, row.sealed)).toBe(false);
    }
    const audited = await audits(vaultId, "platform.reseal");
    expect(audited).toHaveLength(2);
    expect(audited).toEqual(
      expect.arrayContaining(
        ["api", "web"].map((name) =>
          expect.objectContaining({
            connectionId: ids[name],
            name,
            platform: "fly",
            environment: "production",
            version: 2,
            orgId: expect.any(String),
          }),
        ),
      ),
    );
    // The audit rows name the connections, never a credential.
    const log = JSON.stringify(
      await db().selectFrom("audit_events").selectAll().where("vault_id", "=", vaultId).execute(),
    );
    expect(log).not.toContain(CANARY);
    for (const { sealedCredential } of resealed) expect(log).not.toContain(sealedCredential);
  });

  it("a credential the rotating machine could not open is dropped: its connection is deleted, audited", async () => {
    const { slug, vaultId, ids } = await copyWithConnections("api", "lost");
    const newKey = newVaultKey();
    const rotated = await share(slug, vaultId, 1, newKey, {
      resealed: [{ id: ids.api!, sealedCredential: await seal(newKey, vaultId, ids.api!) }],
      dropped: [ids.lost!],
    });
    expect(rotated.statusCode, rotated.body).toBe(200);
    expect((await rows(vaultId)).map((r) => r.name)).toEqual(["api"]);
    expect(await audits(vaultId, "platform.disconnect")).toEqual([
      expect.objectContaining({
        connectionId: ids.lost,
        name: "lost",
        cause: "org.vault.share",
        reason: "credential-unreadable",
        version: 2,
      }),
    ]);
    expect(await audits(vaultId, "platform.reseal")).toEqual([
      expect.objectContaining({ connectionId: ids.api }),
    ]);
  });

  describe("a set of ids that is not the copy's connections is refused, and nothing changes", () => {
    const cases: [string, (ids: Record<string, string>, foreign: string) => string[]][] = [
      ["one missing (made since the machine listed them)", (ids) => [ids.api!]],
      ["one extra (disconnected since)", (ids) => [ids.api!, ids.web!, crypto.randomUUID()]],
      ["one of another copy", (ids, foreign) => [ids.api!, foreign]],
      ["none at all, on a copy with connections", () => []],
    ];
    for (const [what, idsOf] of cases) {
      it(what, async () => {
        const { slug, vaultId, vaultKey, ids } = await copyWithConnections("api", "web");
        const elsewhere = await copyWithConnections("other");
        const before = { rows: await rows(vaultId), state: await state(vaultId) };
        const newKey = newVaultKey();
        const resealed = await Promise.all(
          idsOf(ids, elsewhere.ids.other!).map(async (id) => ({
            id,
            sealedCredential: await seal(newKey, vaultId, id),
          })),
        );
        refused(
          await share(slug, vaultId, 1, newKey, { resealed, dropped: [] }),
          409,
          "LK_PLATFORM_CONNECTIONS_CHANGED",
        );
        expect(await rows(vaultId)).toEqual(before.rows);
        expect(await state(vaultId)).toEqual(before.state);
        for (const row of before.rows) expect(await opens(vaultKey, vaultId, row.id, row.sealed)).toBe(true);
        expect(await audits(vaultId, "platform.reseal")).toEqual([]);
        expect(await audits(vaultId, "org.vault.share")).toHaveLength(1);
        // The other copy's connection is untouched too.
        expect(await rows(elsewhere.vaultId)).toHaveLength(1);
        expect(await audits(elsewhere.vaultId, "platform.reseal")).toEqual([]);
      });
    }

    it("a dropped id that is not the copy's, and an id named twice (400)", async () => {
      const { slug, vaultId, ids } = await copyWithConnections("api");
      const before = await rows(vaultId);
      const newKey = newVaultKey();
      const api = { id: ids.api!, sealedCredential: await seal(newKey, vaultId, ids.api!) };
      refused(
        await share(slug, vaultId, 1, newKey, { resealed: [api], dropped: [crypto.randomUUID()] }),
        409,
        "LK_PLATFORM_CONNECTIONS_CHANGED",
      );
      const twice = await share(slug, vaultId, 1, newKey, { resealed: [api], dropped: [ids.api!] });
      expect(twice.statusCode, twice.body).toBe(400);
      expect(twice.body).toContain("platformCredentials");
      expect(await rows(vaultId)).toEqual(before);
      expect((await state(vaultId)).version).toBe(1);
    });
  });

  it("takes whoever may rotate: a plain member's share is refused (403) and changes nothing", async () => {
    const { slug, vaultId, ids } = await copyWithConnections("api");
    const before = await rows(vaultId);
    const newKey = newVaultKey();
    refused(
      await share(
        slug,
        vaultId,
        1,
        newKey,
        {
          resealed: [{ id: ids.api!, sealedCredential: await seal(newKey, vaultId, ids.api!) }],
          dropped: [],
        },
        team.member,
      ),
      403,
      "LK_ORG_FORBIDDEN",
    );
    expect(await rows(vaultId)).toEqual(before);
  });

  it("a share without platformCredentials leaves the connections as they are", async () => {
    const { slug, vaultId, vaultKey } = await copyWithConnections("api");
    const before = await rows(vaultId);
    const again = await share(slug, vaultId, 1, vaultKey);
    expect(again.statusCode, again.body).toBe(200);
    expect(await rows(vaultId)).toEqual(before);
  });
});

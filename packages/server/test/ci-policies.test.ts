// CI policies and their escrows (docs/ci.md "Policies" and "Escrow"), on both databases: GET /api/v1/ci/config, the
// personal and organisation GET/PUT/DELETE …/ci routes with their step-up proof and permissions, the escrow check
// of every push and share to a copy with CI, and the policies' deletion with the copy.
import {
  CI_PATH,
  ciConfigResponseSchema,
  ciDisableResponseSchema,
  ciPolicyResponseSchema,
  orgMemberRemoveResponseSchema,
  ORGS_PATH,
  pushResponseSchema,
  sealEnvelope,
  STEP_UP_HEADER,
  syncBlobContext,
  toBase64,
  utf8Encode,
  wrapKeyForRecipient,
  fromBase64,
  type CiPolicy,
  type StepUpScope,
} from "@latchkey/core";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEscrowedCopy } from "../src/ci/escrow.js";
import { escrowKeyFrom } from "../src/escrow-key.js";
import { findCiPolicy } from "../src/ci/policies-data.js";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import {
  call,
  callWithProof,
  makeOrg,
  newMember,
  orgPushBody,
  shareBody,
  type Member,
} from "./org-support.js";
import { stepUpProofFor } from "./support/step-up.js";
import { TEST_ESCROW_KEY } from "./support/identity.js";
import {
  newVaultKey,
  openMigrated,
  pushBody,
  sealBlob,
  startSyncServer,
  type Caller,
  type SyncServer,
} from "./sync-support.js";

const GITHUB = "https://token.actions.githubusercontent.com";
const GITLAB = "https://gitlab.example.test";

const policy = (overrides: Partial<CiPolicy> = {}): CiPolicy => ({
  provider: "github",
  issuer: GITHUB,
  repository: "acme/web",
  repositoryId: "123456",
  ownerId: "7890",
  branches: ["main", "release/*"],
  environments: ["production"],
  allowForks: false,
  protectedRefsOnly: false,
  audience: "http://127.0.0.1:8787",
  ...overrides,
});

const DOCUMENT = '{"production":{"API_KEY":"ci-canary-value"}}';

describeEachDatabase("CI policies", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database, {
      ciIssuers: [
        { provider: "github", url: GITHUB },
        { provider: "gitlab", url: GITLAB },
      ],
    });
  });
  afterAll(async () => {
    await server.close();
    await database.close();
  });

  const db = () => database.db;
  const proof = (who: Caller, scope: StepUpScope = "vault:ci:enable") =>
    stepUpProofFor(server.identity, who.token, scope);
  const escrowFor = async (vaultKey: Uint8Array) => ({
    escrowedKey: await wrapKeyForRecipient(vaultKey, TEST_ESCROW_KEY.publicKey),
    escrowKeyFingerprint: TEST_ESCROW_KEY.fingerprint,
  });
  const request = (
    who: Caller,
    method: "GET" | "PUT" | "DELETE",
    path: string,
    payload?: unknown,
    stepUp?: string,
  ): Promise<LightMyRequestResponse> =>
    call(
      server.app,
      who.token,
      method,
      path,
      payload,
      stepUp === undefined ? {} : { [STEP_UP_HEADER]: stepUp },
    );
  const refused = (res: LightMyRequestResponse, status: number, code: string): void => {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.json<{ code: string }>().code).toBe(code);
  };
  const policyRows = (vaultId: string) =>
    db().selectFrom("ci_policies").selectAll().where("vault_id", "=", vaultId).execute();
  const auditActions = async (vaultId: string, action: string) =>
    (
      await db()
        .selectFrom("audit_events")
        .select(["action", "metadata"])
        .where("vault_id", "=", vaultId)
        .where("action", "=", action)
        .execute()
    ).map((row) => JSON.parse(row.metadata) as Record<string, unknown>);

  /** A personal copy at version 1 sealed with a fresh vault key. */
  async function personalCopy(owner: Caller): Promise<{ vaultId: string; vaultKey: Uint8Array }> {
    const vaultId = crypto.randomUUID();
    const vaultKey = newVaultKey();
    const pushed = await request(owner, "PUT", `/api/v1/vaults/${vaultId}`, {
      ...pushBody(await sealBlob(vaultKey, vaultId, 1, DOCUMENT), 0),
    });
    expect(pushed.statusCode, pushed.body).toBe(200);
    return { vaultId, vaultKey };
  }

  const personalPath = (vaultId: string) => `/api/v1/vaults/${vaultId}/ci`;

  async function enablePersonal(owner: Caller, vaultId: string, vaultKey: Uint8Array) {
    const res = await request(
      owner,
      "PUT",
      personalPath(vaultId),
      { policy: policy(), escrow: await escrowFor(vaultKey) },
      await proof(owner),
    );
    expect(res.statusCode, res.body).toBe(200);
    return res;
  }

  it("GET /ci/config names the escrow key, the trusted issuers and the default audience", async () => {
    const alice = await server.caller();
    const res = await request(alice, "GET", `${CI_PATH}/config`);
    expect(res.statusCode, res.body).toBe(200);
    const config = ciConfigResponseSchema.parse(res.json());
    expect(fromBase64(config.escrowPublicKey)).toEqual(TEST_ESCROW_KEY.publicKey);
    expect(config.escrowKeyFingerprint).toBe(TEST_ESCROW_KEY.fingerprint);
    expect(config.issuers).toEqual([
      { provider: "github", issuer: GITHUB },
      { provider: "gitlab", issuer: GITLAB },
    ]);
    expect(config.defaultAudience).toBe("http://127.0.0.1:8787");
  });

  it("enables, shows and disables CI on a personal copy; the disable deletes the escrow's row", async () => {
    const alice = await server.caller();
    const { vaultId, vaultKey } = await personalCopy(alice);
    refused(await request(alice, "GET", personalPath(vaultId)), 404, "LK_CI_NOT_ENABLED");

    const enabled = ciPolicyResponseSchema.parse((await enablePersonal(alice, vaultId, vaultKey)).json());
    expect(enabled).toMatchObject({ vaultId, org: null, policy: policy(), escrowVersion: 1 });
    expect(enabled.escrowKeyFingerprint).toBe(TEST_ESCROW_KEY.fingerprint);
    expect(enabled.enabledBy).toBe(alice.email);

    const shown = await request(alice, "GET", personalPath(vaultId));
    expect(ciPolicyResponseSchema.parse(shown.json())).toEqual(enabled);
    const [row] = await policyRows(vaultId);
    expect(row).toMatchObject({
      user_id: alice.userId,
      org_id: null,
      escrow_key_fingerprint: TEST_ESCROW_KEY.fingerprint,
    });
    const [audit] = await auditActions(vaultId, "vault.ci.enable");
    expect(audit).toMatchObject({
      provider: "github",
      repository: "acme/web",
      repositoryId: "123456",
      stepUp: "password",
    });
    // The escrowed key is never in an audit row.
    expect(JSON.stringify(audit)).not.toContain(row!.escrowed_key);

    // The exchange's reads: the policy by vault id (the owner's personal copy), and its copy opened with the escrow.
    const found = await findCiPolicy(db(), { vaultId });
    expect(found).toMatchObject({ copy: { vaultId, userId: alice.userId }, policy: policy(), generation: 1 });
    const opened = await openEscrowedCopy(db(), TEST_ESCROW_KEY, found!);
    expect(opened).toEqual({ kind: "opened", document: JSON.parse(DOCUMENT), version: 1, schema: null });

    const disabled = await request(alice, "DELETE", personalPath(vaultId));
    expect(disabled.statusCode, disabled.body).toBe(200);
    expect(ciDisableResponseSchema.parse(disabled.json())).toEqual({ disabled: true });
    expect(await policyRows(vaultId)).toEqual([]);
    expect(await auditActions(vaultId, "vault.ci.disable")).toHaveLength(1);
    refused(await request(alice, "GET", personalPath(vaultId)), 404, "LK_CI_NOT_ENABLED");
    refused(await request(alice, "DELETE", personalPath(vaultId)), 404, "LK_CI_NOT_ENABLED");
    expect(await findCiPolicy(db(), { vaultId })).toBeUndefined();
  });

  it("a replacement is one more generation with the same policy id; a policy made after a disable is a new one", async () => {
    const alice = await server.caller();
    const { vaultId, vaultKey } = await personalCopy(alice);
    await enablePersonal(alice, vaultId, vaultKey);
    const first = await findCiPolicy(db(), { vaultId });
    await enablePersonal(alice, vaultId, vaultKey);
    const replaced = await findCiPolicy(db(), { vaultId });
    expect(replaced).toMatchObject({ id: first!.id, generation: 2 });
    expect(await policyRows(vaultId)).toHaveLength(1);
    await request(alice, "DELETE", personalPath(vaultId));
    await enablePersonal(alice, vaultId, vaultKey);
    const again = await findCiPolicy(db(), { vaultId });
    expect(again!.id).not.toBe(first!.id);
  });

  it("refuses a PUT without a proof, with another action's proof or with a spent one, writing nothing", async () => {
    const alice = await server.caller();
    const { vaultId, vaultKey } = await personalCopy(alice);
    const body = { policy: policy(), escrow: await escrowFor(vaultKey) };
    refused(await request(alice, "PUT", personalPath(vaultId), body), 403, "LK_STEP_UP_REQUIRED");
    refused(
      await request(alice, "PUT", personalPath(vaultId), body, await proof(alice, "vault:pair")),
      403,
      "LK_STEP_UP_REQUIRED",
    );
    expect(await policyRows(vaultId)).toEqual([]);

    const spent = await proof(alice);
    expect((await request(alice, "PUT", personalPath(vaultId), body, spent)).statusCode).toBe(200);
    const changed = { policy: policy({ branches: ["**"] }), escrow: body.escrow };
    refused(await request(alice, "PUT", personalPath(vaultId), changed, spent), 403, "LK_STEP_UP_REQUIRED");
    const [row] = await policyRows(vaultId);
    expect(row).toMatchObject({ generation: 1, branches: JSON.stringify(["main", "release/*"]) });
    expect(await auditActions(vaultId, "vault.ci.enable")).toHaveLength(1);
  });

  it("refuses an escrowed key that does not open the head (400) and one for another escrow key (409), writing nothing", async () => {
    const alice = await server.caller();
    const { vaultId } = await personalCopy(alice);
    const stepUp = await proof(alice);
    const wrong = { policy: policy(), escrow: await escrowFor(newVaultKey()) };
    refused(await request(alice, "PUT", personalPath(vaultId), wrong, stepUp), 400, "LK_CI_ESCROW_INVALID");
    const other = { ...(await escrowFor(newVaultKey())), escrowKeyFingerprint: "ab".repeat(32) };
    refused(
      await request(
        alice,
        "PUT",
        personalPath(vaultId),
        { policy: policy(), escrow: other },
        await proof(alice),
      ),
      409,
      "LK_CI_ESCROW_STALE",
    );
    expect(await policyRows(vaultId)).toEqual([]);
    expect(await auditActions(vaultId, "vault.ci.enable")).toEqual([]);
    // The refused request left its proof unspent: sent again, it is refused for the escrow, not as spent.
    refused(await request(alice, "PUT", personalPath(vaultId), wrong, stepUp), 400, "LK_CI_ESCROW_INVALID");
  });

  it("refuses an issuer the server does not trust for the provider, and protectedRefsOnly on GitHub", async () => {
    const alice = await server.caller();
    const { vaultId, vaultKey } = await personalCopy(alice);
    const escrow = await escrowFor(vaultKey);
    for (const bad of [
      policy({ issuer: "https://token.actions.githubusercontent.com.evil.test" }),
      policy({ issuer: GITLAB }),
      policy({ protectedRefsOnly: true }),
    ]) {
      const res = await request(
        alice,
        "PUT",
        personalPath(vaultId),
        { policy: bad, escrow },
        await proof(alice),
      );
      refused(res, 400, "LK_SERVER_ERROR");
    }
    const gitlab = policy({ provider: "gitlab", issuer: GITLAB, protectedRefsOnly: true });
    const res = await request(
      alice,
      "PUT",
      personalPath(vaultId),
      { policy: gitlab, escrow },
      await proof(alice),
    );
    expect(res.statusCode, res.body).toBe(200);
  });

  it("answers another user's vault as the pull does: 404, and writes nothing", async () => {
    const alice = await server.caller();
    const mallory = await server.caller();
    const { vaultId, vaultKey } = await personalCopy(alice);
    const body = { policy: policy(), escrow: await escrowFor(vaultKey) };
    refused(
      await request(mallory, "PUT", personalPath(vaultId), body, await proof(mallory)),
      404,
      "LK_VAULT_NOT_SYNCED",
    );
    refused(await request(mallory, "GET", personalPath(vaultId)), 404, "LK_VAULT_NOT_SYNCED");
    await enablePersonal(alice, vaultId, vaultKey);
    refused(await request(mallory, "DELETE", personalPath(vaultId)), 404, "LK_VAULT_NOT_SYNCED");
    expect(await policyRows(vaultId)).toHaveLength(1);
  });

  describe("the escrow of a personal copy through its pushes", () => {
    it("moves escrow_version on a push sealed with the same key", async () => {
      const alice = await server.caller();
      const { vaultId, vaultKey } = await personalCopy(alice);
      await enablePersonal(alice, vaultId, vaultKey);
      const pushed = await request(alice, "PUT", `/api/v1/vaults/${vaultId}`, {
        ...pushBody(await sealBlob(vaultKey, vaultId, 2, DOCUMENT), 1),
      });
      expect(pushResponseSchema.parse(pushed.json()).version).toBe(2);
      const shown = ciPolicyResponseSchema.parse((await request(alice, "GET", personalPath(vaultId))).json());
      expect(shown.escrowVersion).toBe(2);
      const pushes = await auditActions(vaultId, "vault.push");
      expect(pushes.at(-1)).toMatchObject({ ciEscrow: "verified" });
    });

    it("refuses a push with a new vault key, with or without that key's escrow: a push never swaps a personal escrow for another key's", async () => {
      const alice = await server.caller();
      const { vaultId, vaultKey } = await personalCopy(alice);
      await enablePersonal(alice, vaultId, vaultKey);
      const [before] = await policyRows(vaultId);
      // What a stolen token (or anyone who can push) would send so that CI jobs get values of their choosing.
      const rotated = newVaultKey();
      const sealed = await sealBlob(rotated, vaultId, 2, DOCUMENT);
      const path = `/api/v1/vaults/${vaultId}`;
      refused(await request(alice, "PUT", path, pushBody(sealed, 1)), 409, "LK_CI_ESCROW_STALE");
      for (const escrow of [
        await escrowFor(rotated),
        await escrowFor(vaultKey),
        { ...(await escrowFor(rotated)), escrowKeyFingerprint: "cd".repeat(32) },
      ]) {
        refused(
          await request(alice, "PUT", path, pushBody(sealed, 1, { escrow })),
          409,
          "LK_CI_ESCROW_STALE",
        );
      }
      const head = await db()
        .selectFrom("vault_heads")
        .select("version")
        .where("vault_id", "=", vaultId)
        .executeTakeFirstOrThrow();
      expect(Number(head.version)).toBe(1);
      expect(await auditActions(vaultId, "vault.push")).toHaveLength(1);
      expect(await policyRows(vaultId)).toEqual([before]);
    });

    it("after the server's escrow key changed, takes the same vault key's new escrow, and no other key's", async () => {
      const alice = await server.caller();
      const { vaultId, vaultKey } = await personalCopy(alice);
      await enablePersonal(alice, vaultId, vaultKey);
      // The stored escrow as an older escrow key of the server left it.
      const older = await escrowKeyFrom(newVaultKey());
      await db()
        .updateTable("ci_policies")
        .set({
          escrowed_key: await wrapKeyForRecipient(vaultKey, older.publicKey),
          escrow_key_fingerprint: older.fingerprint,
        })
        .where("vault_id", "=", vaultId)
        .execute();
      const path = `/api/v1/vaults/${vaultId}`;
      const rotated = newVaultKey();
      const other = pushBody(await sealBlob(rotated, vaultId, 2, DOCUMENT), 1, {
        escrow: await escrowFor(rotated),
      });
      refused(await request(alice, "PUT", path, other), 409, "LK_CI_ESCROW_STALE");
      const same = await sealBlob(vaultKey, vaultId, 2, DOCUMENT);
      refused(await request(alice, "PUT", path, pushBody(same, 1)), 409, "LK_CI_ESCROW_STALE");
      const escrow = await escrowFor(vaultKey);
      const pushed = await request(alice, "PUT", path, pushBody(same, 1, { escrow }));
      expect(pushed.statusCode, pushed.body).toBe(200);
      const [after] = await policyRows(vaultId);
      expect(after).toMatchObject({
        escrowed_key: escrow.escrowedKey,
        escrow_key_fingerprint: TEST_ESCROW_KEY.fingerprint,
        escrow_version: 2,
      });
      expect((await auditActions(vaultId, "vault.push")).at(-1)).toMatchObject({ ciEscrow: "replaced" });
      const opened = await openEscrowedCopy(db(), TEST_ESCROW_KEY, (await findCiPolicy(db(), { vaultId }))!);
      expect(opened).toMatchObject({ kind: "opened", version: 2 });
    });

    it("ignores an escrow sent to a copy without CI", async () => {
      const alice = await server.caller();
      const { vaultId } = await personalCopy(alice);
      const rotated = newVaultKey();
      const res = await request(
        alice,
        "PUT",
        `/api/v1/vaults/${vaultId}`,
        pushBody(await sealBlob(rotated, vaultId, 2, DOCUMENT), 1, {
          escrow: await escrowFor(newVaultKey()),
        }),
      );
      expect(res.statusCode, res.body).toBe(200);
      expect(await policyRows(vaultId)).toEqual([]);
    });
  });

  describe("organisation copies", () => {
    let owner: Member;
    let maintainer: Member;
    let member: Member;

    beforeAll(async () => {
      owner = await newMember(server, db());
      maintainer = await newMember(server, db());
      member = await newMember(server, db());
    });

    /** An organisation copy's blob of `version`, sealed as the CLI seals one: bound to the organisation's slug. */
    const orgBlob = async (vaultKey: Uint8Array, vaultId: string, version: number, slug: string) =>
      toBase64(await sealEnvelope(vaultKey, utf8Encode(DOCUMENT), syncBlobContext(vaultId, version, slug)));

    /** A share of version baseVersion + 1 sealed with `vaultKey`, its key wrapped for every member. */
    const share = async (
      slug: string,
      vaultId: string,
      baseVersion: number,
      vaultKey: Uint8Array,
      everyone: Member[],
    ) => ({
      ...(await shareBody(maintainer, slug, vaultId, baseVersion, vaultKey, everyone)),
      encryptedBlob: await orgBlob(vaultKey, vaultId, baseVersion + 1, slug),
    });

    /** An organisation with the three members and a shared copy at version 1 sealed with a fresh key. */
    async function sharedCopy() {
      const slug = `ci-${crypto.randomUUID().slice(0, 8)}`;
      await makeOrg(server, owner, slug, [
        [maintainer, "maintainer"],
        [member, "member"],
      ]);
      const vaultId = crypto.randomUUID();
      const vaultKey = newVaultKey();
      const everyone = [owner, maintainer, member];
      const shared = await call(
        server.app,
        maintainer.token,
        "PUT",
        `/${slug}/vaults/${vaultId}/share`,
        await share(slug, vaultId, 0, vaultKey, everyone),
      );
      expect(shared.statusCode, shared.body).toBe(200);
      return { slug, vaultId, vaultKey, everyone, path: `${ORGS_PATH}/${slug}/vaults/${vaultId}/ci` };
    }

    async function enableOrg(who: Member, path: string, vaultKey: Uint8Array) {
      return request(
        who,
        "PUT",
        path,
        { policy: policy(), escrow: await escrowFor(vaultKey) },
        await proof(who),
      );
    }

    it("a maintainer enables and disables; a member reads the policy but may neither enable nor disable", async () => {
      const { slug, vaultId, vaultKey, path } = await sharedCopy();
      refused(await enableOrg(member, path, vaultKey), 403, "LK_ORG_FORBIDDEN");
      expect(await policyRows(vaultId)).toEqual([]);

      const enabled = await enableOrg(maintainer, path, vaultKey);
      expect(enabled.statusCode, enabled.body).toBe(200);
      expect(ciPolicyResponseSchema.parse(enabled.json())).toMatchObject({
        vaultId,
        org: slug,
        escrowVersion: 1,
      });
      const shown = await request(member, "GET", path);
      expect(ciPolicyResponseSchema.parse(shown.json()).enabledBy).toBe(maintainer.email);
      const [row] = await policyRows(vaultId);
      expect(row).toMatchObject({ user_id: null, org_id: expect.any(String) });

      const found = await findCiPolicy(db(), { vaultId, orgSlug: slug });
      expect(found).toMatchObject({ copy: { vaultId, slug } });
      expect(await findCiPolicy(db(), { vaultId })).toBeUndefined();
      expect(await openEscrowedCopy(db(), TEST_ESCROW_KEY, found!)).toMatchObject({
        kind: "opened",
        document: JSON.parse(DOCUMENT),
        version: 1,
      });

      refused(await request(member, "DELETE", path), 403, "LK_ORG_FORBIDDEN");
      expect(await policyRows(vaultId)).toHaveLength(1);
      const outsider = await server.caller();
      refused(await request(outsider, "GET", path), 404, "LK_ORG_NOT_FOUND");
      expect((await request(maintainer, "DELETE", path)).statusCode).toBe(200);
      expect(await policyRows(vaultId)).toEqual([]);
      const [audit] = await auditActions(vaultId, "vault.ci.disable");
      expect(audit).toMatchObject({ orgId: row!.org_id, repository: "acme/web" });
    });

    it("answers a copy the organisation does not have as the pull does", async () => {
      const { slug, vaultKey } = await sharedCopy();
      const missing = `${ORGS_PATH}/${slug}/vaults/${crypto.randomUUID()}/ci`;
      refused(await enableOrg(maintainer, missing, vaultKey), 404, "LK_ORG_VAULT_NOT_SHARED");
    });

    it("moves escrow_version on a member's push sealed with the same key", async () => {
      const { slug, vaultId, vaultKey, path } = await sharedCopy();
      expect((await enableOrg(maintainer, path, vaultKey)).statusCode).toBe(200);
      const pushed = await call(server.app, member.token, "PUT", `/${slug}/vaults/${vaultId}`, {
        ...(await orgPushBody(vaultId, 1, vaultKey)),
        encryptedBlob: await orgBlob(vaultKey, vaultId, 2, slug),
      });
      expect(pushed.statusCode, pushed.body).toBe(200);
      const [row] = await policyRows(vaultId);
      expect(Number(row!.escrow_version)).toBe(2);
    });

    it("refuses a member's push sealed with another key, its escrow with it: only a share replaces the escrow", async () => {
      const { slug, vaultId, vaultKey, path } = await sharedCopy();
      expect((await enableOrg(maintainer, path, vaultKey)).statusCode).toBe(200);
      const [before] = await policyRows(vaultId);
      const rotated = newVaultKey();
      for (const who of [member, maintainer]) {
        const pushed = await call(server.app, who.token, "PUT", `/${slug}/vaults/${vaultId}`, {
          ...(await orgPushBody(vaultId, 1, rotated)),
          encryptedBlob: await orgBlob(rotated, vaultId, 2, slug),
          escrow: await escrowFor(rotated),
        });
        refused(pushed, 409, "LK_CI_ESCROW_STALE");
      }
      expect(await policyRows(vaultId)).toEqual([before]);
      const head = await db()
        .selectFrom("org_vault_heads")
        .select("version")
        .where("vault_id", "=", vaultId)
        .executeTakeFirstOrThrow();
      expect(Number(head.version)).toBe(1);
    });

    it("refuses a share with a new vault key and no escrow (409, nothing written); with its escrow the escrow is replaced", async () => {
      const { slug, vaultId, vaultKey, everyone, path } = await sharedCopy();
      expect((await enableOrg(maintainer, path, vaultKey)).statusCode).toBe(200);
      const rotated = newVaultKey();
      const body = await share(slug, vaultId, 1, rotated, everyone);
      const sharePath = `/${slug}/vaults/${vaultId}/share`;
      refused(await call(server.app, maintainer.token, "PUT", sharePath, body), 409, "LK_CI_ESCROW_STALE");
      const head = await db()
        .selectFrom("org_vault_heads")
        .select("version")
        .where("vault_id", "=", vaultId)
        .executeTakeFirstOrThrow();
      expect(Number(head.version)).toBe(1);
      const keys = await db()
        .selectFrom("vault_org_keys")
        .select("key_version")
        .where("vault_id", "=", vaultId)
        .execute();
      expect(keys.map((k) => Number(k.key_version))).toEqual([1, 1, 1]);
      const [before] = await policyRows(vaultId);

      const escrow = await escrowFor(rotated);
      const shared = await call(server.app, maintainer.token, "PUT", sharePath, { ...body, escrow });
      expect(shared.statusCode, shared.body).toBe(200);
      const [after] = await policyRows(vaultId);
      expect(after).toMatchObject({ escrowed_key: escrow.escrowedKey, escrow_version: 2 });
      expect(after!.escrowed_key).not.toBe(before!.escrowed_key);
      const opened = await openEscrowedCopy(
        db(),
        TEST_ESCROW_KEY,
        (await findCiPolicy(db(), { vaultId, orgSlug: slug }))!,
      );
      expect(opened).toMatchObject({ kind: "opened", version: 2 });
    });

    it("a member's removal deletes the CI policies they enabled, audited, and reports the ones left on the vaults they held", async () => {
      const { slug, vaultId, vaultKey, everyone, path } = await sharedCopy();
      expect((await enableOrg(maintainer, path, vaultKey)).statusCode).toBe(200);
      // A second vault, whose policy the owner enabled: it stays, and the removal names it.
      const otherId = crypto.randomUUID();
      const otherKey = newVaultKey();
      const shared = await call(
        server.app,
        maintainer.token,
        "PUT",
        `/${slug}/vaults/${otherId}/share`,
        await share(slug, otherId, 0, otherKey, everyone),
      );
      expect(shared.statusCode, shared.body).toBe(200);
      const otherPath = `${ORGS_PATH}/${slug}/vaults/${otherId}/ci`;
      expect((await enableOrg(owner, otherPath, otherKey)).statusCode).toBe(200);

      const removed = await request(
        owner,
        "DELETE",
        `${ORGS_PATH}/${slug}/members/${maintainer.userId}`,
        undefined,
        await proof(owner, "org:member:remove"),
      );
      expect(removed.statusCode, removed.body).toBe(200);
      const answer = orgMemberRemoveResponseSchema.parse(removed.json());
      expect(answer.ciPoliciesDisabled).toEqual([
        { vaultId, provider: "github", repository: policy().repository },
      ]);
      const held = new Map(answer.vaults.map((v) => [v.vaultId, v.ciPolicy]));
      expect(held.get(vaultId)).toBeNull();
      expect(held.get(otherId)).toEqual({
        provider: "github",
        repository: policy().repository,
        enabledBy: owner.email,
      });
      expect(await policyRows(vaultId)).toEqual([]);
      expect(await policyRows(otherId)).toHaveLength(1);
      const disabled = await auditActions(vaultId, "vault.ci.disable");
      expect(disabled).toEqual([
        expect.objectContaining({ cause: "member-removed", memberUserId: maintainer.userId }),
      ]);
      expect(await auditActions(otherId, "vault.ci.disable")).toEqual([]);
      // The rotation the remover's CLI runs next shares a new key without any escrow: nothing re-escrows for them.
      refused(await request(member, "GET", path), 404, "LK_CI_NOT_ENABLED");
    });

    it("an unshare deletes the copy's policy, and the organisation's deletion deletes all of its policies", async () => {
      const first = await sharedCopy();
      expect((await enableOrg(maintainer, first.path, first.vaultKey)).statusCode).toBe(200);
      const unshared = await call(
        server.app,
        maintainer.token,
        "DELETE",
        `/${first.slug}/vaults/${first.vaultId}`,
      );
      expect(unshared.statusCode, unshared.body).toBe(200);
      expect(await policyRows(first.vaultId)).toEqual([]);
      expect((await auditActions(first.vaultId, "vault.ci.disable"))[0]).toMatchObject({
        cause: "org.vault.unshare",
      });

      const second = await sharedCopy();
      expect((await enableOrg(maintainer, second.path, second.vaultKey)).statusCode).toBe(200);
      const deleted = await callWithProof(server, owner.token, "org:delete", "DELETE", `/${second.slug}`);
      expect(deleted.statusCode, deleted.body).toBe(200);
      expect(await policyRows(second.vaultId)).toEqual([]);
      expect((await auditActions(second.vaultId, "vault.ci.disable"))[0]).toMatchObject({
        cause: "org.delete",
      });
    });
  });
});

// Issue 6 point 9, authorization matrix: every sync route × (no token, malformed token, expired token, revoked
// token, another user's token, another user's vault id) → 0 successes, each cell's status asserted, on SQLite and
// PostgreSQL, with real accounts and real access tokens through the real app. A positive control runs the same
// requests with the owner's valid token, so a matrix that let everything through would fail there too.
import { randomUUID } from "node:crypto";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import { revokeToken } from "./support/identity.js";
import {
  fakeWrappedKey,
  newRequestId,
  openMigrated,
  pushBody,
  startSyncServer,
  type Caller,
  type SyncServer,
} from "./sync-support.js";

type Route = "me" | "push" | "pull" | "rewrap" | "log" | "audit" | "vaults" | "account audit";
const ROUTES: readonly Route[] = ["me", "push", "pull", "rewrap", "log", "audit", "vaults", "account audit"];
/**
 * Routes about the caller alone (no vault in the path): with a valid token of anyone they answer that user's own,
 * so the two cross-user cells do not apply to them (checked below: they never reveal the other user's).
 */
const CALLER_ONLY: readonly Route[] = ["me", "vaults", "account audit"];
type Cell =
  | "no token"
  | "malformed token"
  | "expired token"
  | "revoked token"
  | "another user's token"
  | "another user's vault id";

describeEachDatabase("sync authorization matrix", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  let alice: Caller;
  let mallory: Caller;
  const aliceVault = randomUUID();
  const malloryVault = randomUUID();

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    alice = await server.caller("alice@example.test");
    mallory = await server.caller("mallory@example.test");
    for (const [caller, vault] of [
      [alice, aliceVault],
      [mallory, malloryVault],
    ] as const) {
      const res = await send("push", vault, { authorization: `Bearer ${caller.token}` }, 0);
      expect(res.statusCode).toBe(200);
    }
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  function send(
    route: Route,
    vaultId: string,
    authorization: Record<string, string>,
    version: number,
  ): Promise<LightMyRequestResponse> {
    // Every request is well formed but for its token: a request id as the CLI sends one.
    const headers = { "x-latchkey-request-id": newRequestId(), ...authorization };
    const base = `/api/v1/vaults/${vaultId}`;
    switch (route) {
      case "me":
        return app.inject({ method: "GET", url: "/api/v1/me", headers });
      case "push":
        return app.inject({ method: "PUT", url: base, headers, payload: pushBody("QUFBQQ==", version) });
      case "pull":
        return app.inject({ method: "GET", url: base, headers });
      case "rewrap":
        return app.inject({
          method: "PUT",
          url: `${base}/key`,
          headers,
          payload: { wrappedKey: fakeWrappedKey(), version: Math.max(version, 1) },
        });
      case "log":
        return app.inject({ method: "GET", url: `${base}/log?limit=50`, headers });
      case "audit":
        return app.inject({ method: "GET", url: `${base}/audit?limit=50`, headers });
      case "vaults":
        return app.inject({ method: "GET", url: "/api/v1/vaults", headers });
      case "account audit":
        return app.inject({ method: "GET", url: "/api/v1/account/audit", headers });
    }
  }

  async function snapshot(): Promise<string> {
    const heads = await database.db.selectFrom("vault_heads").selectAll().orderBy("vault_id").execute();
    const versions = await database.db.selectFrom("vault_versions").select(["vault_id", "version"]).execute();
    const audits = await database.db.selectFrom("audit_events").select(["id"]).execute();
    const vaults = await database.db.selectFrom("vaults").selectAll().orderBy("id").execute();
    return JSON.stringify({ heads, versions: versions.length, audits: audits.length, vaults });
  }

  it("gives 0 successes in every cell: 401 without a valid token, 404 across users", async () => {
    const before = await snapshot();
    const expired = await server.token(alice.userId, 0);
    const revoked = await server.token(alice.userId);
    expect((await send("me", aliceVault, { authorization: `Bearer ${revoked}` }, 1)).statusCode).toBe(200);
    await revokeToken(server.identity, revoked);
    const absentBody = (await send("pull", randomUUID(), { authorization: `Bearer ${alice.token}` }, 1)).body;

    const cells: Array<[Cell, Record<string, string>[], string, number]> = [
      ["no token", [{}, { authorization: "" }], aliceVault, 401],
      [
        "malformed token",
        [
          { authorization: "Bearer" },
          { authorization: "Bearer " },
          { authorization: "Bearer not a token" },
          { authorization: `Basic ${Buffer.from("alice:pw").toString("base64")}` },
          { authorization: `bearer${alice.token}` },
          { authorization: `Bearer ${alice.token}x` },
          { authorization: `Bearer ${alice.token.slice(0, -1)}` },
          { authorization: "Bearer ∂" },
        ],
        aliceVault,
        401,
      ],
      ["expired token", [{ authorization: `Bearer ${expired}` }], aliceVault, 401],
      ["revoked token", [{ authorization: `Bearer ${revoked}` }], aliceVault, 401],
      ["another user's token", [{ authorization: `Bearer ${mallory.token}` }], aliceVault, 404],
      ["another user's vault id", [{ authorization: `Bearer ${alice.token}` }], malloryVault, 404],
    ];

    let requests = 0;
    let successes = 0;
    const table: string[] = [];
    for (const [cell, headerSets, vaultId, status] of cells) {
      for (const route of ROUTES) {
        if (CALLER_ONLY.includes(route) && status === 404) continue;
        for (const headers of headerSets) {
          // Push both from a fresh base and from the vault's real one, so neither a 409 nor a 404 is an accident.
          for (const version of route === "push" ? [0, 1] : [1]) {
            const res = await send(route, vaultId, headers, version);
            requests++;
            if (res.statusCode >= 200 && res.statusCode < 300) successes++;
            expect(res.statusCode, `${cell} × ${route}`).toBe(status);
            expect(res.headers["x-latchkey-signature"], `${cell} × ${route}`).toBeUndefined();
            if (status === 401) {
              expect(res.headers["www-authenticate"]).toMatch(/^Bearer realm="latchkey"/);
            } else {
              // Indistinguishable from a vault that does not exist.
              expect(res.body, `${cell} × ${route}`).toBe(absentBody);
            }
          }
        }
        table.push(`${cell} × ${route}: ${status}`);
      }
    }
    console.log(
      `[sync-authz] ${target.kind}: ${table.length} cells, ${requests} requests, ${successes} successes\n  ${table.join("\n  ")}`,
    );
    expect(successes).toBe(0);
    expect(await snapshot()).toBe(before);

    const me = await send("me", aliceVault, { authorization: `Bearer ${mallory.token}` }, 1);
    expect(me.json()).toMatchObject({ userId: mallory.userId, email: mallory.email });
    const vaults = await send("vaults", aliceVault, { authorization: `Bearer ${mallory.token}` }, 1);
    expect(vaults.json()).toEqual({
      vaults: [expect.objectContaining({ vaultId: malloryVault })],
    });
    const account = await send("account audit", aliceVault, { authorization: `Bearer ${mallory.token}` }, 1);
    expect(account.statusCode).toBe(200);
    expect(account.body).not.toContain(alice.userId);
  });

  it("positive control: the owner's valid token succeeds on every route", async () => {
    const headers = { authorization: `Bearer ${alice.token}` };
    for (const route of ROUTES) {
      const current = Number(
        (
          await database.db
            .selectFrom("vault_heads")
            .select("version")
            .where("vault_id", "=", aliceVault)
            .executeTakeFirstOrThrow()
        ).version,
      );
      const res = await send(route, aliceVault, headers, current);
      expect(res.statusCode, route).toBe(200);
    }
  });
});

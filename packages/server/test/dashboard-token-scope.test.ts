// What the browser dashboard's access token may do on the API, on SQLite and PostgreSQL (api/plugin.ts
// DASHBOARD_WRITES): read, pair the browser as the new device, mint the step-up cookie for that and sign out
// everywhere. Every other write — a push, an organisation, CI, a header step-up proof, joining or approving a
// pairing — is 403 LK_DASHBOARD_READ_ONLY before its route runs, so one XSS in the dashboard cannot write; the
// CLI's token of the same account still can.
import { randomUUID } from "node:crypto";
import {
  API_PREFIX,
  meResponseSchema,
  ORGS_PATH,
  PAIRINGS_PATH,
  pairingRevokeAllResponseSchema,
  STEP_UP_COOKIE_PATH,
  VAULTS_PATH,
} from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachDatabase } from "./databases.js";
import { createTestUser, mintAccessToken } from "./support/identity.js";
import {
  answer,
  callAs,
  dashboardSignIn,
  openRouteApp,
  refused,
  type RouteApp,
  type Session,
} from "./support/route-suite.js";
import { newVaultKey, pushBody, sealBlob } from "./sync-support.js";

const PASSWORD = `pw-${randomUUID()}`;

describeEachDatabase("the dashboard's token", (target) => {
  let routeApp: RouteApp;
  let app: FastifyInstance;
  let cli: Session;
  let browser: Session;

  beforeAll(async () => {
    routeApp = await openRouteApp(target);
    app = routeApp.app;
    const user = await createTestUser(routeApp.database.db, `${randomUUID()}@example.test`, PASSWORD);
    cli = { userId: user.userId, token: await mintAccessToken(routeApp.identity, { userId: user.userId }) };
    browser = await dashboardSignIn(routeApp.identity, user.userId);
  });
  afterAll(async () => {
    await routeApp?.close();
  });

  /** What a refused write could have changed: the account's vaults, organisations and audit rows. */
  async function written() {
    const db = routeApp.database.db;
    return {
      heads: await db.selectFrom("vault_heads").select("vault_id").execute(),
      orgs: await db.selectFrom("orgs").select("id").execute(),
      audit: await db.selectFrom("audit_events").select("id").orderBy("id").execute(),
    };
  }

  it("is refused every write outside its list with 403 LK_DASHBOARD_READ_ONLY, before the route runs", async () => {
    const vaultId = randomUUID();
    const push = pushBody(await sealBlob(newVaultKey(), vaultId, 1, "{}"), 0);
    const pairingId = randomUUID();
    const writes: [method: "PUT" | "POST" | "DELETE", url: string, body?: object][] = [
      ["PUT", `${VAULTS_PATH}/${vaultId}`, push],
      ["POST", ORGS_PATH, { slug: "dashboard-xss" }],
      ["DELETE", `${VAULTS_PATH}/${vaultId}/ci`],
      ["POST", `${API_PREFIX}/step-up`, { scope: "org:delete", password: PASSWORD }],
      ["POST", `${API_PREFIX}/step-up`, { scope: "vault:pair", password: PASSWORD }],
      ["POST", `${PAIRINGS_PATH}/join`, { code: "ABCD-EFGH", publicKey: "AAAA" }],
      ["POST", `${PAIRINGS_PATH}/${pairingId}/approve`, { sealedKey: "AAAA" }],
    ];
    const before = await written();
    for (const [method, url, body] of writes) {
      const res = await callAs(app, browser, method, url, body);
      const refusal = refused(res, 403, "LK_DASHBOARD_READ_ONLY");
      expect(refusal.message, `${method} ${url}`).toMatch(/nothing was changed/);
    }
    expect(await written()).toEqual(before);

    // The CLI's token of the same account: the same push and organisation are taken.
    expect((await callAs(app, cli, "PUT", `${VAULTS_PATH}/${vaultId}`, push)).statusCode).toBe(200);
    expect((await callAs(app, cli, "POST", ORGS_PATH, { slug: "dashboard-xss" })).statusCode).toBe(201);
    const proof = await callAs(app, cli, "POST", `${API_PREFIX}/step-up`, {
      scope: "org:delete",
      password: PASSWORD,
    });
    expect(proof.statusCode, proof.body).toBe(200);
  });

  it("reads, and reaches the pairing, step-up cookie and sign-out routes it needs", async () => {
    expect(
      answer(await callAs(app, browser, "GET", `${API_PREFIX}/me`), browser, meResponseSchema).userId,
    ).toBe(cli.userId);
    expect((await callAs(app, browser, "GET", VAULTS_PATH)).statusCode).toBe(200);
    expect((await callAs(app, browser, "GET", PAIRINGS_PATH)).statusCode).toBe(200);

    // Each of these reaches its route, which answers for itself (no proof, no such pairing): not the allowlist.
    const notListed = (res: { statusCode: number; body: string }) =>
      expect(res.body).not.toContain("LK_DASHBOARD_READ_ONLY");
    const create = await callAs(app, browser, "POST", PAIRINGS_PATH, {
      label: "browser",
      commitment: "AAAA",
    });
    notListed(create);
    for (const step of ["reveal", "consume", "revoke"]) {
      notListed(await callAs(app, browser, "POST", `${PAIRINGS_PATH}/${randomUUID()}/${step}`, {}));
    }
    expect(
      answer(
        await callAs(app, browser, "POST", `${PAIRINGS_PATH}/revoke-all`),
        browser,
        pairingRevokeAllResponseSchema,
      ),
    ).toEqual({ revoked: 0 });

    // The step-up cookie, for vault:pair only (its route refuses any other scope).
    const cookie = await callAs(app, browser, "POST", STEP_UP_COOKIE_PATH, {
      scope: "vault:pair",
      password: PASSWORD,
    });
    expect(cookie.statusCode, cookie.body).toBe(200);
    expect(cookie.headers["set-cookie"]).toBeDefined();
    const otherScope = await callAs(app, browser, "POST", STEP_UP_COOKIE_PATH, {
      scope: "org:delete",
      password: PASSWORD,
    });
    expect(otherScope.statusCode).toBe(400);
  });
});

// "Sign out everywhere" (POST /api/v1/sessions/revoke-all) in-process on SQLite and PostgreSQL, through the real
// app and real provider models: every grant of the account with its tokens (the CLI's refresh token included), its
// provider sessions and unfinished pairings end in one go, audited; another account keeps all of its own.
import { randomUUID } from "node:crypto";
import {
  API_PREFIX,
  DASHBOARD_CLIENT_ID,
  REVOKE_ALL_SESSIONS_PATH,
  meResponseSchema,
  revokeAllSessionsResponseSchema,
} from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Identity } from "../src/identity/identity.js";
import { insertPairing } from "../src/pairing/data.js";
import { describeEachDatabase } from "./databases.js";
import {
  answer,
  callAs,
  dashboardSignIn,
  newAccount,
  openRouteApp,
  refused,
  type RouteApp,
  type Session,
} from "./support/route-suite.js";

/** A refresh token under the grant of `session`'s access token, as the CLI holds one. */
async function refreshTokenOf(identity: Identity, session: Session): Promise<string> {
  const provider = identity.provider();
  const access = await provider.AccessToken.find(session.token);
  if (!access?.grantId) throw new Error("no such access token");
  const client = await provider.Client.find(access.clientId!);
  return new provider.RefreshToken({
    accountId: session.userId,
    client: client!,
    grantId: access.grantId,
    gty: "authorization_code",
    scope: "openid offline_access",
  }).save();
}

/** A provider session (the browser's sign-in cookie points at it) of `userId`. */
async function providerSession(identity: Identity, userId: string): Promise<string> {
  const id = randomUUID();
  await identity
    .provider()
    .Session.adapter.upsert(id, { accountId: userId, loginTs: Date.now() / 1000 }, 3600);
  return id;
}

describeEachDatabase("sign out everywhere", (target) => {
  let routeApp: RouteApp;
  let app: FastifyInstance;
  let identity: Identity;

  beforeAll(async () => {
    routeApp = await openRouteApp(target);
    ({ app, identity } = routeApp);
  });
  afterAll(async () => {
    await routeApp?.close();
  });

  const me = (session: Session) => callAs(app, session, "GET", `${API_PREFIX}/me`);

  async function pendingPairing(session: Session): Promise<string> {
    const id = randomUUID();
    const at = new Date();
    await insertPairing(routeApp.database.db, {
      id,
      user_id: session.userId,
      code_hash: randomUUID(),
      label: "browser",
      commitment: "AAAA",
      status: "pending",
      creator_grant: "g",
      approver_grant: null,
      approver_key: null,
      new_device_key: null,
      nonce: null,
      sealed_key: null,
      created_at: at.toISOString(),
      expires_at: new Date(at.getTime() + 600_000).toISOString(),
      updated_at: at.toISOString(),
    });
    return id;
  }

  it("accepts the dashboard's access tokens like the CLI's", async () => {
    const cli = await newAccount(routeApp);
    const browser = await dashboardSignIn(identity, cli.userId);
    const answered = answer(await me(browser), browser, meResponseSchema);
    expect(answered.userId).toBe(cli.userId);
    expect(answered.clientId).toBe(DASHBOARD_CLIENT_ID);
  });

  it("ends every sign-in, provider session and unfinished pairing of the account, audited, and nobody else's", async () => {
    const cli = await newAccount(routeApp);
    // Another browser of the same account: a grant of its own.
    const secondBrowser = await dashboardSignIn(identity, cli.userId);
    const browser = await dashboardSignIn(identity, cli.userId);
    const refresh = await refreshTokenOf(identity, cli);
    const sessionId = await providerSession(identity, cli.userId);
    const pairingId = await pendingPairing(cli);

    const bystander = await newAccount(routeApp);
    const bystanderRefresh = await refreshTokenOf(identity, bystander);
    const bystanderSession = await providerSession(identity, bystander.userId);
    const bystanderPairing = await pendingPairing(bystander);

    const res = await callAs(app, browser, "POST", REVOKE_ALL_SESSIONS_PATH);
    expect(answer(res, browser, revokeAllSessionsResponseSchema)).toEqual({
      grants: 3,
      sessions: 1,
      pairings: 1,
    });

    for (const session of [cli, secondBrowser, browser])
      refused(await me(session), 401, "LK_SESSION_EXPIRED");
    const provider = identity.provider();
    expect(await provider.RefreshToken.find(refresh)).toBeUndefined();
    expect(await provider.Session.adapter.find(sessionId)).toBeUndefined();
    const pairing = await routeApp.database.db
      .selectFrom("pairings")
      .select("status")
      .where("id", "=", pairingId)
      .executeTakeFirstOrThrow();
    expect(pairing.status).toBe("revoked");

    const audit = await routeApp.database.db
      .selectFrom("audit_events")
      .selectAll()
      .where("user_id", "=", cli.userId)
      .where("action", "=", "account.sessions.revoke_all")
      .execute();
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.metadata)).toMatchObject({
      grants: 3,
      sessions: 1,
      pairings: 1,
      clientId: DASHBOARD_CLIENT_ID,
      ip: expect.any(String),
    });

    // Another account keeps everything.
    expect((await me(bystander)).statusCode).toBe(200);
    expect(await provider.RefreshToken.find(bystanderRefresh)).toBeDefined();
    expect(await provider.Session.adapter.find(bystanderSession)).toBeDefined();
    const kept = await routeApp.database.db
      .selectFrom("pairings")
      .select("status")
      .where("id", "=", bystanderPairing)
      .executeTakeFirstOrThrow();
    expect(kept.status).toBe("pending");
  });

  it("needs a signed-in caller", async () => {
    const res = await app.inject({
      method: "POST",
      url: REVOKE_ALL_SESSIONS_PATH,
      headers: { "x-latchkey-request-id": randomUUID() },
    });
    expect(res.statusCode).toBe(401);
  });
});

// The browser's step-up cookie on both databases, in-process: POST /api/v1/step-up/cookie checks the factors as
// POST /step-up does and sets the proof as a cookie (its attributes on a loopback http server and behind https),
// and the pairing create route takes it — once, from its own session and user, for its own scope — while every
// other route, and a request without the bearer token a cross-site request cannot add, does not.
import { randomUUID } from "node:crypto";
import {
  PAIRINGS_PATH,
  STEP_UP_COOKIE_PATH,
  STEP_UP_HEADER,
  STEP_UP_TTL_SECONDS,
  checkSchema,
  pairingCreateResponseSchema,
  stepUpCookieResponseSchema,
  type ApiErrorBody,
  type StepUpScope,
} from "@latchkey/core";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiRoutes } from "../src/api/plugin.js";
import type { OpenDatabase } from "../src/db/index.js";
import type { Identity } from "../src/identity/identity.js";
import { describeEachDatabase } from "./databases.js";
import { newDevice } from "./pairing-support.js";
import { buildTestApp, createTestUser, mintAccessToken, totpNow, type TestUser } from "./support/identity.js";
import { stepUpProofFor } from "./support/step-up.js";
import { apiHeaders, injectedSignature, openMigrated } from "./sync-support.js";

const PLAIN = "latchkey-step-up";
const PREFIXED = "__Secure-latchkey-step-up";
const HEADER_ONLY_ROUTE = "/api/v1/__test/header-only";

interface Session extends TestUser {
  token: string;
}

/** A cookie of a light-my-request answer, as it parses Set-Cookie. */
interface SetCookie {
  name: string;
  value: string;
  path?: string;
  maxAge?: number;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: string;
  domain?: string;
}

describeEachDatabase("the browser's step-up cookie", (target) => {
  let database: OpenDatabase;
  // A loopback http server (TEST_PUBLIC_URL), and one whose public URL is https.
  let app: FastifyInstance;
  let identity: Identity;
  let httpsApp: FastifyInstance;
  let httpsIdentity: Identity;

  /** A route that needs a `vault:pair` proof and does not take it from the cookie (as every route but create). */
  const headerOnly: ApiRoutes = (api, context) => {
    api.post(HEADER_ONLY_ROUTE, async (request, reply) => {
      const grant = await context.stepUp(request, "vault:pair");
      return reply.send({ from: grant.from });
    });
  };

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    ({ app, identity } = buildTestApp({ db: database.db, testRoutes: (_app, api) => api(headerOnly) }));
    ({ app: httpsApp, identity: httpsIdentity } = buildTestApp({
      db: database.db,
      publicUrl: "https://latchkey.example",
    }));
    await app.ready();
    await httpsApp.ready();
  });
  afterAll(async () => {
    await app?.close();
    await httpsApp?.close();
    await database?.close();
  });

  const session = async (on: Identity = identity, options: { totp?: boolean } = {}): Promise<Session> => {
    const user = await createTestUser(
      database.db,
      `${randomUUID()}@example.test`,
      `pw-${randomUUID()}`,
      options,
    );
    return { ...user, token: await mintAccessToken(on, { userId: user.userId }) };
  };
  /** Another sign-in of the same account: another OAuth grant, another session. */
  const signInAgain = async (s: Session, on: Identity = identity): Promise<Session> => ({
    ...s,
    token: await mintAccessToken(on, { userId: s.userId }),
  });

  const cookieStepUp = (s: Session, body: Record<string, unknown>, on: FastifyInstance = app) =>
    on.inject({ method: "POST", url: STEP_UP_COOKIE_PATH, headers: apiHeaders(s.token), payload: body });
  const cookiesOf = (res: LightMyRequestResponse): SetCookie[] => res.cookies;
  /** The proof a successful cookie step-up set, by name. */
  const proofCookie = async (s: Session, on: FastifyInstance = app, name = PLAIN): Promise<string> => {
    const res = await cookieStepUp(s, { scope: "vault:pair", password: s.password }, on);
    expect(res.statusCode, res.body).toBe(200);
    const cookie = cookiesOf(res).find((c) => c.name === name);
    if (cookie === undefined) throw new Error(`no ${name} cookie set`);
    return cookie.value;
  };
  /** POST /pairings as `s` with the Cookie header `cookie` (and a header proof when given). */
  const create = async (
    s: { token: string },
    cookie: string | undefined,
    options: { on?: FastifyInstance; proof?: string; bearer?: boolean } = {},
  ) => {
    const headers: Record<string, string> = apiHeaders(s.token);
    if (options.bearer === false) delete headers.authorization;
    if (cookie !== undefined) headers.cookie = cookie;
    if (options.proof !== undefined) headers[STEP_UP_HEADER] = options.proof;
    const device = await newDevice();
    return (options.on ?? app).inject({
      method: "POST",
      url: PAIRINGS_PATH,
      headers,
      payload: { label: "browser", commitment: device.commitment },
    });
  };
  const pairingsOf = async (userId: string): Promise<number> =>
    (await database.db.selectFrom("pairings").select("id").where("user_id", "=", userId).execute()).length;
  const expectRequired = (res: LightMyRequestResponse, why: RegExp) => {
    expect(res.statusCode, res.body).toBe(403);
    const body = res.json<ApiErrorBody>();
    expect(body.code).toBe("LK_STEP_UP_REQUIRED");
    expect(body.message).toMatch(why);
  };
  const claimsOf = (proof: string): Record<string, unknown> =>
    JSON.parse(Buffer.from(proof.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;

  it("sets the proof as an HttpOnly, SameSite=Strict cookie for the pairing routes, never in the body", async () => {
    const s = await session();
    const grantId = (await identity.authenticate(s.token))!.grantId;
    const res = await cookieStepUp(s, { scope: "vault:pair", password: s.password });
    expect(res.statusCode, res.body).toBe(200);
    // Signed like every answer under /api/v1, and of core's schema: the scope and the expiry, no proof.
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(s.token, res));
    const checked = checkSchema(stepUpCookieResponseSchema, res.json());
    expect(checked.ok).toBe(true);
    expect(Object.keys(res.json<object>()).sort()).toEqual(["expiresAt", "scope"]);
    const cookies = cookiesOf(res);
    expect(cookies).toHaveLength(1);
    const [cookie] = cookies;
    expect(cookie).toEqual({
      name: PLAIN,
      value: expect.stringMatching(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/),
      path: PAIRINGS_PATH,
      maxAge: STEP_UP_TTL_SECONDS,
      httpOnly: true,
      sameSite: "Strict",
    });
    expect(res.body).not.toContain(cookie!.value);
    // The proof itself: of this user and this session, for pairing, expiring when the answer says.
    const claims = claimsOf(cookie!.value);
    expect(claims).toMatchObject({ sub: s.userId, sid: grantId, aud: "vault:pair", amr: ["pwd"] });
    expect(res.json<{ expiresAt: string }>().expiresAt).toBe(
      new Date((claims.exp as number) * 1000).toISOString(),
    );
    // The raw header, attribute by attribute: no Secure on a loopback http server, where a browser would drop it.
    const raw = String(res.headers["set-cookie"]);
    expect(raw.split("; ").slice(1).sort()).toEqual(
      ["HttpOnly", "Max-Age=300", `Path=${PAIRINGS_PATH}`, "SameSite=Strict"].sort(),
    );
  });

  it("behind https the cookie is Secure and named __Secure-, and an unprefixed one is not read", async () => {
    const s = await session(httpsIdentity);
    const res = await cookieStepUp(s, { scope: "vault:pair", password: s.password }, httpsApp);
    expect(res.statusCode, res.body).toBe(200);
    const [cookie] = cookiesOf(res);
    expect(cookie).toMatchObject({
      name: PREFIXED,
      path: PAIRINGS_PATH,
      maxAge: STEP_UP_TTL_SECONDS,
      httpOnly: true,
      secure: true,
      sameSite: "Strict",
    });
    // A cookie without the prefix, as a plain-http page of a sibling host could plant: not a proof here.
    expectRequired(await create(s, `${PLAIN}=${cookie!.value}`, { on: httpsApp }), /carries none/);
    const created = await create(s, `${PREFIXED}=${cookie!.value}`, { on: httpsApp });
    expect(created.statusCode, created.body).toBe(201);
  });

  it("asks for both factors when TOTP is enrolled, and sets no cookie on a refusal", async () => {
    const s = await session(identity, { totp: true });
    const missing = await cookieStepUp(s, { scope: "vault:pair", password: s.password });
    expect(missing.statusCode).toBe(403);
    expect(missing.json<ApiErrorBody>().code).toBe("LK_STEP_UP_FAILED");
    expect(missing.headers["set-cookie"]).toBeUndefined();
    const wrong = await cookieStepUp(s, { scope: "vault:pair", password: "not-the-password" });
    expect(wrong.statusCode).toBe(403);
    expect(wrong.headers["set-cookie"]).toBeUndefined();
    const both = await cookieStepUp(s, {
      scope: "vault:pair",
      password: s.password,
      totp: totpNow(s.totpSecret!),
    });
    expect(both.statusCode, both.body).toBe(200);
    expect(claimsOf(cookiesOf(both)[0]!.value).amr).toEqual(["pwd", "otp"]);
  });

  it("sets a cookie only for scopes whose routes it is sent to, before checking any factor", async () => {
    const s = await session();
    const res = await cookieStepUp(s, { scope: "org:delete", password: s.password });
    expect(res.statusCode).toBe(400);
    expect(res.json<ApiErrorBody>().message).toContain('"vault:pair"');
    expect(res.headers["set-cookie"]).toBeUndefined();
    const audited = await database.db
      .selectFrom("audit_events")
      .select("action")
      .where("user_id", "=", s.userId)
      .where("action", "like", "step_up.%")
      .execute();
    expect(audited).toEqual([]);
  });

  it("lets the pairing create spend it once, deleting the cookie; the same cookie again is refused", async () => {
    const s = await session();
    const proof = await proofCookie(s);
    const created = await create(s, `other=1; ${PLAIN}=${proof}`);
    expect(created.statusCode, created.body).toBe(201);
    expect(created.headers["x-latchkey-signature"]).toBe(injectedSignature(s.token, created));
    expect(checkSchema(pairingCreateResponseSchema, created.json()).ok).toBe(true);
    expect(cookiesOf(created)).toEqual([
      expect.objectContaining({ name: PLAIN, value: "", path: PAIRINGS_PATH, maxAge: 0 }),
    ]);
    const rows = await database.db
      .selectFrom("audit_events")
      .select("metadata")
      .where("user_id", "=", s.userId)
      .where("action", "=", "pairing.create")
      .execute();
    expect(rows.map((r) => (JSON.parse(r.metadata) as { stepUpMethod?: string }).stepUpMethod)).toEqual([
      "password",
    ]);

    expectRequired(await create(s, `${PLAIN}=${proof}`), /already used/);
    expect(await pairingsOf(s.userId)).toBe(1);
  });

  it("refuses a cookie of another session, another user or another scope", async () => {
    const s = await session();
    const proof = await proofCookie(s);
    // Another sign-in of the same account (another machine, another tab's session): not its proof.
    expectRequired(await create(await signInAgain(s), `${PLAIN}=${proof}`), /another session/);
    // Another account's session.
    const other = await session();
    expectRequired(await create(other, `${PLAIN}=${proof}`), /another session/);
    // A proof of this very session, for another action, put in the cookie.
    const orgDelete = await stepUpProofFor(identity, s.token, "org:delete" satisfies StepUpScope);
    expectRequired(await create(s, `${PLAIN}=${orgDelete}`), /another action/);
    // A forged one.
    const [head, body] = proof.split(".");
    expectRequired(await create(s, `${PLAIN}=${head}.${body}.${"A".repeat(43)}`), /not a proof/);
    expect(await pairingsOf(s.userId)).toBe(0);
    expect(await pairingsOf(other.userId)).toBe(0);
    // None of that spent it: the session that minted it still can.
    expect((await create(s, `${PLAIN}=${proof}`)).statusCode).toBe(201);
  });

  it("takes no proof from two cookies of its name (one of them planted)", async () => {
    const s = await session();
    const mine = await proofCookie(s);
    const planted = await proofCookie(await session());
    expectRequired(await create(s, `${PLAIN}=${planted}; ${PLAIN}=${mine}`), /not a proof/);
    expect(await pairingsOf(s.userId)).toBe(0);
  });

  it("reads the header first, and no other route reads the cookie", async () => {
    const s = await session();
    const proof = await proofCookie(s);
    // With a header, the header is the proof: a bad one is refused whatever the cookie holds.
    const otherScope = await stepUpProofFor(identity, s.token, "org:delete");
    expectRequired(await create(s, `${PLAIN}=${proof}`, { proof: otherScope }), /another action/);
    // A route that does not take the cookie (every route but the pairing create) sees no proof.
    const res = await app.inject({
      method: "POST",
      url: HEADER_ONLY_ROUTE,
      headers: { ...apiHeaders(s.token), cookie: `${PLAIN}=${proof}` },
      payload: {},
    });
    expectRequired(res, /carries none/);
    const withHeader = await app.inject({
      method: "POST",
      url: HEADER_ONLY_ROUTE,
      headers: { ...apiHeaders(s.token), [STEP_UP_HEADER]: proof },
      payload: {},
    });
    expect(withHeader.json()).toEqual({ from: "header" });
  });

  describe("a request another site starts", () => {
    // A browser sends a SameSite=Strict cookie with no request another site starts (the attribute is asserted
    // above). Even a request that carried it could not add what the route needs besides: the bearer token, which
    // lives in the dashboard's memory, and the request id header, which a cross-site form cannot set and a
    // cross-site fetch could set only after a CORS preflight this server never grants.
    it("is refused without the bearer token, before the proof is looked at, and creates nothing", async () => {
      const s = await session();
      const proof = await proofCookie(s);
      const res = await create(s, `${PLAIN}=${proof}`, { bearer: false });
      expect(res.statusCode).toBe(401);
      expect(res.json<ApiErrorBody>().code).toBe("LK_NOT_LOGGED_IN");
      expect(res.headers["set-cookie"]).toBeUndefined();
      const noRequestId = await app.inject({
        method: "POST",
        url: PAIRINGS_PATH,
        headers: { authorization: `Bearer ${s.token}`, cookie: `${PLAIN}=${proof}` },
        payload: { label: "browser", commitment: (await newDevice()).commitment },
      });
      expect(noRequestId.statusCode).toBe(400);
      expect(await pairingsOf(s.userId)).toBe(0);
      // Still unspent: the page's own request, with its bearer token, goes through.
      expect((await create(s, `${PLAIN}=${proof}`)).statusCode).toBe(201);
    });

    it("gets no CORS grant from the API: a preflight is not answered with Access-Control-Allow-*", async () => {
      const res = await app.inject({
        method: "OPTIONS",
        url: PAIRINGS_PATH,
        headers: {
          origin: "https://evil.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, x-latchkey-request-id",
        },
      });
      expect(Object.keys(res.headers).filter((h) => h.startsWith("access-control-"))).toEqual([]);
    });
  });
});

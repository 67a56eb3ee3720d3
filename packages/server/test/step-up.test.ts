// Step-up proofs on both databases, in-process: the method each kind of account gets, minting a proof (granted,
// wrong password, wrong or missing TOTP code, no password, the sign-in limits) with its audit rows, and the
// checks of a route that needs a proof: a test-only route (registered through buildApp's testRoutes, never
// shipped) that requires `vault:pair` and spends the proof in its write's transaction.
import { randomUUID } from "node:crypto";
import {
  STEP_UP_HEADER,
  STEP_UP_TTL_SECONDS,
  type ApiErrorBody,
  type StepUpResponse,
  type StepUpScope,
} from "@latchkey/core";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { SignJWT } from "jose";
import { afterAll, beforeAll, expect, it } from "vitest";
import { stepUpRequired, type ApiRoutes } from "../src/api/plugin.js";
import type { OpenDatabase } from "../src/db/index.js";
import { argon2Hasher, type PasswordHasher } from "../src/identity/accounts.js";
import type { Identity } from "../src/identity/identity.js";
import { beginAttempt, type SignInLimits } from "../src/identity/rate-limit.js";
import { describeEachDatabase } from "./databases.js";
import { buildTestApp, createTestUser, mintAccessToken, totpNow, type TestUser } from "./support/identity.js";
import { apiHeaders, injectedSignature, openMigrated } from "./sync-support.js";

/** Lowered sign-in limits: two failures of one account from one address are free, then a minute's wait. */
const LIMITS: Partial<SignInLimits> = { pair: { free: 2, firstDelayMs: 60_000, maxDelayMs: 60_000 } };

const TEST_ROUTE = "/api/v1/__test/paired-write";

/** A signed-in user: the account, its bearer token and, when it has one, its TOTP secret. */
interface Session extends TestUser {
  token: string;
}

describeEachDatabase("step-up", (target) => {
  let database: OpenDatabase;
  let app: FastifyInstance;
  let identity: Identity;
  // The server's clock: the real one unless a test moves it.
  let clock: Date | undefined;
  const verifies: string[] = [];

  /**
   * The test-only route: requires a `vault:pair` proof, then in one transaction spends it and writes a server_meta
   * row; with `fail` the write throws after the proof was recorded, so the transaction rolls back.
   */
  const pairedWrite: ApiRoutes = (api, context) => {
    api.post<{ Body: { note: string; fail?: boolean } }>(TEST_ROUTE, async (request, reply) => {
      const grant = await context.stepUp(request, "vault:pair");
      const spent = await database.db.transaction().execute(async (trx) => {
        if (!(await grant.record(trx))) return false;
        await trx
          .insertInto("server_meta")
          .values({ key: `test:${randomUUID()}`, value: request.body.note })
          .execute();
        if (request.body.fail === true) throw new Error("the write failed after the proof was recorded");
        return true;
      });
      if (!spent) throw stepUpRequired("vault:pair", "used");
      return reply.send({ written: request.body.note, method: grant.method });
    });
  };

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    // Argon2id as in production, counting its verifications.
    const hasher: PasswordHasher = {
      hash: (password) => argon2Hasher.hash(password),
      verify: (hash, password) => {
        verifies.push(password);
        return argon2Hasher.verify(hash, password);
      },
    };
    ({ app, identity } = buildTestApp({
      db: database.db,
      limits: LIMITS,
      hasher,
      now: () => clock ?? new Date(),
      // inject's peer is 127.0.0.1: X-Forwarded-For then names the client, as behind a proxy.
      trustProxy: ["loopback"],
      testRoutes: (_app, api) => api(pairedWrite),
    }));
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await database?.close();
  });

  const session = async (options: { totp?: boolean } = {}): Promise<Session> => {
    const user = await createTestUser(
      database.db,
      `${randomUUID()}@example.test`,
      `pw-${randomUUID()}`,
      options,
    );
    return { ...user, token: await mintAccessToken(identity, { userId: user.userId }) };
  };
  const method = (s: { token: string }) =>
    app.inject({ method: "GET", url: "/api/v1/step-up/method", headers: apiHeaders(s.token) });
  const stepUp = (s: { token: string }, body: Record<string, unknown>, from = "198.51.100.7") =>
    app.inject({
      method: "POST",
      url: "/api/v1/step-up",
      headers: { ...apiHeaders(s.token), "x-forwarded-for": from },
      payload: body,
    });
  /** A proof minted through POST /step-up with the session's password (and current TOTP code). */
  const proofFor = async (s: Session, scope: StepUpScope = "vault:pair"): Promise<string> => {
    const res = await stepUp(s, {
      scope,
      password: s.password,
      ...(s.totpSecret ? { totp: totpNow(s.totpSecret, clock) } : {}),
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<StepUpResponse>().proof;
  };
  const write = (token: string, proof: string | undefined, body: Record<string, unknown> = { note: "x" }) =>
    app.inject({
      method: "POST",
      url: TEST_ROUTE,
      headers: { ...apiHeaders(token), ...(proof === undefined ? {} : { [STEP_UP_HEADER]: proof }) },
      payload: body,
    });
  const audit = (userId: string | null, action: string) =>
    database.db
      .selectFrom("audit_events")
      .select(["user_id", "metadata", "count"])
      .where("action", "=", action)
      .where((eb) => (userId === null ? eb("user_id", "is", null) : eb("user_id", "=", userId)))
      .execute()
      .then((rows) =>
        rows.map((r) => ({
          userId: r.user_id,
          count: Number(r.count),
          metadata: JSON.parse(r.metadata) as unknown,
        })),
      );
  const notes = async () =>
    (
      await database.db.selectFrom("server_meta").select("value").where("key", "like", "test:%").execute()
    ).map((r) => r.value);
  const claimsOf = (proof: string): Record<string, unknown> =>
    JSON.parse(Buffer.from(proof.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
  const expectRequired = (res: LightMyRequestResponse, why: RegExp) => {
    expect(res.statusCode, res.body).toBe(403);
    const body = res.json<ApiErrorBody>();
    expect(body).toMatchObject({ error: "StepUpRequired", code: "LK_STEP_UP_REQUIRED" });
    expect(body.message).toContain('"vault:pair"');
    expect(body.message).toMatch(why);
  };
  const expectFailed = (res: LightMyRequestResponse) => {
    expect(res.statusCode, res.body).toBe(403);
    expect(res.json<ApiErrorBody>()).toMatchObject({ error: "StepUpFailed", code: "LK_STEP_UP_FAILED" });
  };

  it("answers each kind of account its method: password, password+totp, or unavailable with why", async () => {
    const plain = await session();
    expect((await method(plain)).json()).toEqual({ method: "password" });
    const twoStep = await session({ totp: true });
    const res = await method(twoStep);
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(twoStep.token, res));
    expect(res.json()).toEqual({ method: "password+totp" });

    // An account without a password: the schema allows it (users rows from before the credential columns, or
    // made by a future single-sign-on path); no shipped command makes one today.
    const userId = randomUUID();
    await database.db
      .insertInto("users")
      .values({ id: userId, email: `${userId}@example.test`, created_at: new Date().toISOString() })
      .execute();
    const bare = { token: await mintAccessToken(identity, { userId }) };
    expect((await method(bare)).json()).toEqual({
      method: "unavailable",
      reason: expect.stringContaining("no password"),
      hint: expect.stringContaining("administrator"),
    });
    const refused = await stepUp(bare, { scope: "vault:pair", password: "anything-at-all" });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: "StepUpUnavailable", code: "LK_STEP_UP_UNAVAILABLE" });
    expect(await audit(userId, "step_up.refused")).toEqual([
      { userId, count: 1, metadata: { scope: "vault:pair", reason: "unavailable", ip: "198.51.100.7" } },
    ]);
  });

  it("grants a proof bound to the user, the session and the scope, audited with the client's address", async () => {
    const s = await session();
    const grantId = (await identity.authenticate(s.token))!.grantId;
    const before = Math.floor(Date.now() / 1000);
    const res = await stepUp(s, { scope: "vault:ci:enable", password: s.password }, "203.0.113.44");
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(s.token, res));
    const body = res.json<StepUpResponse>();
    expect(body.scope).toBe("vault:ci:enable");
    const header = JSON.parse(
      Buffer.from(body.proof.split(".")[0]!, "base64url").toString("utf8"),
    ) as unknown;
    expect(header).toEqual({ alg: "HS256", typ: "latchkey-step-up+jwt" });
    const claims = claimsOf(body.proof);
    expect(claims).toEqual({
      sub: s.userId,
      sid: grantId,
      aud: "vault:ci:enable",
      jti: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      iat: expect.any(Number),
      exp: expect.any(Number),
      amr: ["pwd"],
    });
    expect(claims.iat as number).toBeGreaterThanOrEqual(before);
    expect(claims.exp).toBe((claims.iat as number) + STEP_UP_TTL_SECONDS);
    expect(body.expiresAt).toBe(new Date((claims.exp as number) * 1000).toISOString());
    expect(await audit(s.userId, "step_up.granted")).toEqual([
      {
        userId: s.userId,
        count: 1,
        metadata: { scope: "vault:ci:enable", method: "password", ip: "203.0.113.44" },
      },
    ]);
    // Each proof has its own jti.
    expect(claimsOf(await proofFor(s)).jti).not.toBe(claims.jti);

    const twoStep = await session({ totp: true });
    const proof = await proofFor(twoStep);
    expect(claimsOf(proof).amr).toEqual(["pwd", "otp"]);
    expect(await audit(twoStep.userId, "step_up.granted")).toMatchObject([
      { metadata: { scope: "vault:pair", method: "password+totp" } },
    ]);
  });

  it("refuses a wrong password with 403 LK_STEP_UP_FAILED (never 401), audited without the password", async () => {
    const s = await session();
    const res = await stepUp(s, { scope: "vault:pair", password: "wrong-password-123" });
    expectFailed(res);
    expect(await audit(s.userId, "step_up.refused")).toEqual([
      {
        userId: s.userId,
        count: 1,
        metadata: { scope: "vault:pair", reason: "wrong_password", ip: "198.51.100.7" },
      },
    ]);
    const rows = await database.db.selectFrom("audit_events").select("metadata").execute();
    expect(JSON.stringify(rows)).not.toContain("wrong-password-123");
  });

  it("checks a wrong password with the same Argon2id verification as a right one", async () => {
    const s = await session();
    verifies.length = 0;
    expectFailed(await stepUp(s, { scope: "vault:pair", password: "wrong-password-123" }));
    expect(await stepUp(s, { scope: "vault:pair", password: s.password }).then((r) => r.statusCode)).toBe(
      200,
    );
    expect(verifies).toEqual(["wrong-password-123", s.password]);
  });

  it("asks an account with TOTP for both factors: a wrong code and a missing one are refused", async () => {
    const s = await session({ totp: true });
    const now = new Date();
    const current = [-30_000, 0, 30_000].map((ms) => totpNow(s.totpSecret!, new Date(now.getTime() + ms)));
    let wrong = totpNow(s.totpSecret!, new Date(now.getTime() - 3_600_000));
    if (current.includes(wrong)) wrong = String((Number(wrong) + 1) % 1_000_000).padStart(6, "0");
    expectFailed(await stepUp(s, { scope: "vault:pair", password: s.password, totp: wrong }));
    const missing = await stepUp(s, { scope: "vault:pair", password: s.password });
    expectFailed(missing);
    expect(missing.json<ApiErrorBody>().message).toContain("TOTP code is required");
    const reasons = (await audit(s.userId, "step_up.refused")).map(
      (r) => (r.metadata as { reason: string }).reason,
    );
    expect(reasons.sort()).toEqual(["totp_missing", "wrong_totp"]);
    expect(await audit(s.userId, "step_up.granted")).toEqual([]);
  });

  it("refuses a TOTP code for an account without TOTP as a malformed request", async () => {
    const s = await session();
    const res = await stepUp(s, { scope: "vault:pair", password: s.password, totp: "123456" });
    expect(res.statusCode).toBe(400);
    expect(res.json<ApiErrorBody>().message).toContain("no TOTP enrolled");
  });

  it("counts failures against the sign-in limits, both ways, and coalesces the refused attempts' audit rows", async () => {
    const from = "198.51.100.80";
    const s = await session();
    const signInLimiter = {
      db: database.db,
      now: () => clock ?? new Date(),
      randomId: randomUUID,
      limits: LIMITS,
    };
    expectFailed(await stepUp(s, { scope: "vault:pair", password: "wrong-password-1" }, from));
    // A failure of the sign-in page (rate-limit.ts is its limiter) counts for the same account and address.
    const webFailure = await beginAttempt(signInLimiter, s.email, from);
    expect(webFailure.allowed).toBe(true);
    if (webFailure.allowed) await webFailure.failed();
    // Two failures are free: the third attempt waits, even with the right password (nothing is checked).
    const limited = await stepUp(s, { scope: "vault:pair", password: s.password }, from);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ error: "RateLimited", code: "LK_RATE_LIMITED" });
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(limited.headers["retry-after"])).toBeLessThanOrEqual(60);
    expect((await stepUp(s, { scope: "vault:pair", password: s.password }, from)).statusCode).toBe(429);
    // One audit row counts both refusals.
    expect(await audit(s.userId, "step_up.rate_limited")).toEqual([
      { userId: s.userId, count: 2, metadata: { scope: "vault:pair", limit: "account_ip", ip: from } },
    ]);
    // And the sign-in page, from there, is held up too.
    expect(await beginAttempt(signInLimiter, s.email, from)).toMatchObject({
      allowed: false,
      limit: "account_ip",
    });
    // A step-up from another address is not.
    expect((await stepUp(s, { scope: "vault:pair", password: s.password }, "198.51.100.81")).statusCode).toBe(
      200,
    );

    // Step-up failures alone reach the limit as well.
    const other = await session();
    for (const attempt of [1, 2]) {
      expectFailed(await stepUp(other, { scope: "vault:pair", password: `wrong-${attempt}-password` }, from));
    }
    expect((await stepUp(other, { scope: "vault:pair", password: other.password }, from)).statusCode).toBe(
      429,
    );
    expect(await beginAttempt(signInLimiter, other.email, from)).toMatchObject({ allowed: false });
    expect(await audit(other.userId, "step_up.refused")).toHaveLength(2);
  });

  it("takes a valid proof once: the route writes, and the same proof is then refused as used", async () => {
    const s = await session();
    const proof = await proofFor(s);
    const first = await write(s.token, proof, { note: "once" });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toEqual({ written: "once", method: "password" });
    const again = await write(s.token, proof, { note: "twice" });
    expectRequired(again, /already used/);
    expect(await notes()).toContain("once");
    expect(await notes()).not.toContain("twice");
  });

  it("does not burn a proof when the route's write fails after it was recorded", async () => {
    const s = await session();
    const proof = await proofFor(s);
    const failed = await write(s.token, proof, { note: "rolled-back", fail: true });
    expect(failed.statusCode).toBe(500);
    expect(await notes()).not.toContain("rolled-back");
    const retried = await write(s.token, proof, { note: "after-failure" });
    expect(retried.statusCode, retried.body).toBe(200);
    expectRequired(await write(s.token, proof, { note: "third" }), /already used/);
  });

  it("refuses a request without a proof, and a proof for another action", async () => {
    const s = await session();
    expectRequired(await write(s.token, undefined, { note: "no-proof" }), /carries none/);
    const otherAction = await proofFor(s, "org:member:remove");
    expectRequired(await write(s.token, otherAction, { note: "other-action" }), /another action/);
    expect(await notes()).not.toContain("no-proof");
    expect(await notes()).not.toContain("other-action");
  });

  it("refuses a proof minted in another session of the same user, and another user's proof", async () => {
    const s = await session();
    const proof = await proofFor(s);
    // The same user signed in on another machine: another OAuth grant.
    const otherSession = await mintAccessToken(identity, { userId: s.userId });
    expectRequired(await write(otherSession, proof), /another session/);
    const bob = await session();
    expectRequired(await write(bob.token, proof), /another session/);
    // Still unspent in its own session.
    expect((await write(s.token, proof)).statusCode).toBe(200);
  });

  it("refuses a proof once the server's clock reaches its exp", async () => {
    const s = await session();
    const before = Date.now();
    const proof = await proofFor(s);
    const after = Date.now();
    const exp = claimsOf(proof).exp as number;
    // Minted at some instant between the two readings, its exp that instant's whole second plus the lifetime: bounded
    // by the reading after (the one before can fall in the previous second).
    expect(exp * 1000).toBeLessThanOrEqual(after + STEP_UP_TTL_SECONDS * 1000);
    expect(exp * 1000).toBeGreaterThan(before - 1000 + STEP_UP_TTL_SECONDS * 1000);
    try {
      clock = new Date(exp * 1000);
      expectRequired(await write(s.token, proof), /expired/);
      clock = new Date(exp * 1000 - 1000);
      expect((await write(s.token, proof)).statusCode).toBe(200);
    } finally {
      clock = undefined;
    }
  });

  it("refuses alg none, another algorithm, a tampered payload and another key", async () => {
    const s = await session();
    const proof = await proofFor(s);
    const [header, payload] = proof.split(".") as [string, string, string];
    const claims = claimsOf(proof);
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const signed = (alg: string, key: Uint8Array) =>
      new SignJWT(claims).setProtectedHeader({ alg, typ: "latchkey-step-up+jwt" }).sign(key);
    const forgeries = {
      none: `${b64({ alg: "none", typ: "latchkey-step-up+jwt" })}.${payload}.`,
      hs512: await signed("HS512", identity.keys.stepUpKey),
      tampered: `${header}.${b64({ ...claims, exp: (claims.exp as number) + 3600 })}.${proof.split(".")[2]}`,
      wrongKey: await signed("HS256", new Uint8Array(32).fill(7)),
      garbage: "not-a-proof",
    };
    for (const [name, forged] of Object.entries(forgeries)) {
      const res = await write(s.token, forged, { note: name });
      expect(res.statusCode, name).toBe(403);
      expectRequired(res, /not a proof this server issued/);
    }
    expect(await notes()).not.toContain("hs512");
    // The genuine one is untouched by all that.
    expect((await write(s.token, proof, { note: "genuine" })).statusCode).toBe(200);
  });
});

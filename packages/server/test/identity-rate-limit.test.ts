// Rate limits of sign-in on both databases, over real HTTP against the in-process app (issue 6 point 2): per
// account (a limited attempt is refused with 429 even with the right password, and audited), per IP (many
// accounts from one address), TOTP failures counting like password failures, and a concurrent burst that never
// gets more credentials checked than the limit allows. Lowered limits keep it fast; identity-processes.test.ts
// runs the real limit of 100 across two processes.
import { CLI_CLIENT_ID } from "@latchkey/core";
import * as oidc from "openid-client";
import { afterEach, expect, it } from "vitest";
import { CookieJar, totp } from "../../../e2e/support/oidc-browser.js";
import { openDatabase, type OpenDatabase } from "../src/db/index.js";
import { migrateToLatest } from "../src/db/migrations.js";
import { beginAttempt } from "../src/identity/rate-limit.js";
import { describeEachDatabase } from "./databases.js";
import { createTestUser, startTestServer } from "./support/identity.js";

describeEachDatabase("sign-in rate limits", (target) => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  const start = async (limits: { account: number; ip: number }, options: { trustProxy?: boolean } = {}) => {
    const database: OpenDatabase = await openDatabase(await target.fresh());
    closers.push(() => database.close());
    await migrateToLatest(database.db);
    const server = await startTestServer({ db: database.db, limits, ...options });
    closers.push(server.close);
    const config = await oidc.discovery(
      new URL(`${server.url}/oidc`),
      CLI_CLIENT_ID,
      undefined,
      oidc.None(),
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    /** Starts a sign-in; returns a poster for its interaction's forms. */
    const interaction = async () => {
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: "http://127.0.0.1:49152/callback",
        scope: "openid",
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: "S256",
      });
      const jar = new CookieJar();
      const res = await fetch(url, { redirect: "manual" });
      jar.store(server.url, res);
      const base = new URL(res.headers.get("location")!, server.url).href;
      return async (step: "login" | "totp", form: Record<string, string>, forwardedFor?: string) => {
        const answer = await fetch(`${base}/${step}`, {
          method: "POST",
          redirect: "manual",
          headers: {
            cookie: jar.header(server.url)!,
            "content-type": "application/x-www-form-urlencoded",
            ...(forwardedFor ? { "x-forwarded-for": forwardedFor } : {}),
          },
          body: new URLSearchParams(form).toString(),
        });
        return { status: answer.status, text: await answer.text() };
      };
    };
    const audit = async (action: string) =>
      database.db.selectFrom("audit_events").selectAll().where("action", "=", action).execute();
    return { database, interaction, audit };
  };

  it("refuses a limited account with 429 even with the right password, and audits it", async () => {
    const s = await start({ account: 3, ip: 100 });
    const judy = await createTestUser(s.database.db, "judy@example.test", "judy's password");
    const post = await s.interaction();
    for (let i = 0; i < 3; i++) {
      expect((await post("login", { email: judy.email, password: `wrong-${i}` })).status).toBe(401);
    }
    const limited = await post("login", { email: judy.email, password: judy.password });
    expect(limited.status).toBe(429);
    expect(limited.text).toContain("Too many failed sign-in attempts");
    expect(limited.text).not.toContain(judy.password);
    const failed = await s.audit("auth.login_failed");
    expect(failed).toHaveLength(3);
    expect(failed.every((r) => r.user_id === judy.userId)).toBe(true);
    const rateLimited = await s.audit("auth.rate_limited");
    expect(rateLimited).toHaveLength(1);
    expect(JSON.parse(rateLimited[0]!.metadata)).toMatchObject({ limit: "account", step: "password" });
    expect(JSON.stringify([...failed, ...rateLimited])).not.toMatch(/wrong-|judy's password/);
    // Another account is not affected.
    const kim = await createTestUser(s.database.db, "kim@example.test", "kim's password");
    expect(
      (await (await s.interaction())("login", { email: kim.email, password: kim.password })).status,
    ).toBe(303);
  });

  it("limits one IP across accounts, including accounts that do not exist", async () => {
    const s = await start({ account: 100, ip: 4 });
    const leo = await createTestUser(s.database.db, "leo@example.test", "leo's password");
    const post = await s.interaction();
    for (let i = 0; i < 4; i++) {
      expect((await post("login", { email: `ghost${i}@example.test`, password: "guess" })).status).toBe(401);
    }
    expect((await post("login", { email: leo.email, password: leo.password })).status).toBe(429);
    expect(JSON.parse((await s.audit("auth.rate_limited"))[0]!.metadata)).toMatchObject({ limit: "ip" });
  });

  it("behind a trusted proxy, limits the client IP from X-Forwarded-For, not the proxy's", async () => {
    const s = await start({ account: 100, ip: 2 }, { trustProxy: true });
    const olga = await createTestUser(s.database.db, "olga@example.test", "olga's password");
    const post = await s.interaction();
    for (let i = 0; i < 2; i++) {
      expect(
        (await post("login", { email: `x${i}@example.test`, password: "guess" }, "203.0.113.7")).status,
      ).toBe(401);
    }
    expect((await post("login", { email: olga.email, password: olga.password }, "203.0.113.7")).status).toBe(
      429,
    );
    // Another client behind the same proxy is not limited.
    expect((await post("login", { email: olga.email, password: olga.password }, "198.51.100.9")).status).toBe(
      303,
    );
    expect(JSON.parse((await s.audit("auth.rate_limited"))[0]!.metadata)).toMatchObject({
      ip: "203.0.113.7",
    });
  });

  it("counts wrong TOTP codes against the account like wrong passwords", async () => {
    const s = await start({ account: 2, ip: 100 });
    const mia = await createTestUser(s.database.db, "mia@example.test", "mia's password", { totp: true });
    const post = await s.interaction();
    const page = await post("login", { email: mia.email, password: mia.password });
    expect(page.status).toBe(200);
    const ticket = /name="ticket" value="([^"]+)"/.exec(page.text)![1]!;
    const right = totp(mia.totpSecret!);
    const wrong = String((Number(right) + 7) % 1_000_000).padStart(6, "0");
    expect((await post("totp", { ticket, code: wrong })).status).toBe(401);
    expect((await post("totp", { ticket, code: "abc" })).status).toBe(401);
    const limited = await post("totp", { ticket, code: right });
    expect(limited.status).toBe(429);
    expect(JSON.parse((await s.audit("auth.rate_limited"))[0]!.metadata)).toMatchObject({ step: "totp" });
  });

  it("never checks more credentials than the limit in a concurrent burst", async () => {
    const s = await start({ account: 10, ip: 1000 });
    const nia = await createTestUser(s.database.db, "nia@example.test", "nia's password");
    const post = await s.interaction();
    const statuses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => post("login", { email: nia.email, password: `burst-${i}` })),
    );
    const checked = statuses.filter((r) => r.status === 401).length;
    expect(checked).toBeGreaterThan(0);
    expect(checked).toBeLessThanOrEqual(10);
    expect(checked + statuses.filter((r) => r.status === 429).length).toBe(30);
    expect(await s.audit("auth.login_failed")).toHaveLength(checked);
  });

  it("does not count successes, and forgets failures older than an hour", async () => {
    const database = await openDatabase(await target.fresh());
    closers.push(() => database.close());
    await migrateToLatest(database.db);
    let now = new Date("2026-01-01T00:00:00Z");
    let n = 0;
    const deps = {
      db: database.db,
      now: () => now,
      randomId: () => `id-${n++}`,
      limits: { account: 2, ip: 100 },
    };
    for (let i = 0; i < 5; i++) {
      const ok = await beginAttempt(deps, "a@example.test", "10.0.0.1");
      if (!ok.allowed) throw new Error("a success must not count");
      await ok.succeeded();
    }
    for (let i = 0; i < 2; i++) {
      const attempt = await beginAttempt(deps, "a@example.test", "10.0.0.1");
      if (!attempt.allowed) throw new Error("under the limit");
      await attempt.failed();
    }
    expect(await beginAttempt(deps, "a@example.test", "10.0.0.1")).toEqual({
      allowed: false,
      limit: "account",
    });
    now = new Date(now.getTime() + 60 * 60 * 1000 + 1);
    expect((await beginAttempt(deps, "a@example.test", "10.0.0.1")).allowed).toBe(true);
  });
});

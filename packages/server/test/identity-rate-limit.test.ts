// Sign-in limits on both databases, over real HTTP against the in-process app behind a trusted proxy (so
// X-Forwarded-For names the client's address) and on a fake clock: failures are counted per account and address
// first, so an attacker somewhere cannot keep the owner out; delays grow instead of an hour's lockout; the
// guesses at one account stay within 100 an hour; an address's limit spares the accounts that sign in from it;
// refused attempts make one audit row with a count, not a row each. identity-processes.test.ts runs the limits
// across two server processes.
import { CLI_CLIENT_ID } from "@latchkey/core";
import * as oidc from "openid-client";
import { afterEach, expect, it } from "vitest";
import { CookieJar, totp } from "../../../e2e/support/oidc-browser.js";
import { openDatabase, type OpenDatabase } from "../src/db/index.js";
import { migrateToLatest } from "../src/db/migrations.js";
import { beginAttempt, rememberAddress, WINDOW_MS, type SignInLimits } from "../src/identity/rate-limit.js";
import { describeEachDatabase } from "./databases.js";
import { createTestUser, startTestServer } from "./support/identity.js";

const HOME = "198.51.100.9";
const attacker = (i: number): string => `203.0.113.${i % 250}`;

describeEachDatabase("sign-in rate limits", (target) => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  const migrated = async (): Promise<OpenDatabase> => {
    const database = await openDatabase(await target.fresh());
    closers.push(() => database.close());
    await migrateToLatest(database.db);
    return database;
  };

  const start = async (limits?: Partial<SignInLimits>) => {
    const database = await migrated();
    // Whole seconds: the delays are, and a refusal's Retry-After is rounded up.
    let clock = Math.floor(Date.now() / 1000) * 1000;
    const server = await startTestServer({
      db: database.db,
      trustProxy: ["loopback"],
      now: () => new Date(clock),
      ...(limits ? { limits } : {}),
    });
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
    /** Starts a sign-in; returns a poster for its interaction's forms, from the address `from`. */
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
      return async (step: "login" | "totp", form: Record<string, string>, from: string) => {
        const answer = await fetch(`${base}/${step}`, {
          method: "POST",
          redirect: "manual",
          headers: {
            cookie: jar.header(server.url)!,
            "content-type": "application/x-www-form-urlencoded",
            "x-forwarded-for": from,
          },
          body: new URLSearchParams(form).toString(),
        });
        return {
          status: answer.status,
          text: await answer.text(),
          retryAfter: answer.headers.get("retry-after"),
        };
      };
    };
    /** Signs in with the right password from `from` (which the account then knows). */
    const signIn = async (user: { email: string; password: string }, from: string) =>
      (await (await interaction())("login", { email: user.email, password: user.password }, from)).status;
    const audit = async (action: string) =>
      database.db.selectFrom("audit_events").selectAll().where("action", "=", action).execute();
    return {
      database,
      interaction,
      signIn,
      audit,
      advance: (ms: number) => {
        clock += ms;
      },
    };
  };

  it("counts failures per account and address first: that address is slowed down, the owner elsewhere is not", async () => {
    const s = await start();
    const judy = await createTestUser(s.database.db, "judy@example.test", "judy's password");
    const fromAttacker = await s.interaction();
    for (let i = 0; i < 5; i++) {
      const answer = await fromAttacker("login", { email: judy.email, password: `wrong-${i}` }, attacker(1));
      expect(answer.status).toBe(401);
    }
    // The sixth attempt from that address waits, even with the right password.
    const limited = await fromAttacker("login", { email: judy.email, password: judy.password }, attacker(1));
    expect(limited.status).toBe(429);
    expect(limited.retryAfter).toBe("30");
    expect(limited.text).toContain("Too many failed sign-in attempts. Try again in 30 seconds.");
    expect(limited.text).not.toContain(judy.password);
    const rateLimited = await s.audit("auth.rate_limited");
    expect(rateLimited).toHaveLength(1);
    expect(rateLimited[0]!.user_id).toBe(judy.userId);
    expect(JSON.parse(rateLimited[0]!.metadata)).toEqual({
      limit: "account_ip",
      step: "password",
      ip: attacker(1),
    });
    const failed = await s.audit("auth.login_failed");
    expect(failed).toHaveLength(5);
    expect(JSON.stringify([...failed, ...rateLimited])).not.toMatch(/wrong-|judy's password/);

    // The owner, from an address the account has never signed in from, is not held up.
    expect(await s.signIn(judy, HOME)).toBe(303);

    // The wait grows: 30 s later the address may try again; one more failure doubles it.
    s.advance(29_000);
    expect((await fromAttacker("login", { email: judy.email, password: "wrong" }, attacker(1))).status).toBe(
      429,
    );
    s.advance(1_000);
    expect((await fromAttacker("login", { email: judy.email, password: "wrong" }, attacker(1))).status).toBe(
      401,
    );
    const longer = await fromAttacker("login", { email: judy.email, password: judy.password }, attacker(1));
    expect(longer).toMatchObject({ status: 429, retryAfter: "60" });
  });

  it("counts an IPv6 client by its /64: new addresses inside one subscriber's prefix are one address", async () => {
    const s = await start();
    const kim = await createTestUser(s.database.db, "kim@example.test", "kim's password");
    const guess = await s.interaction();
    // Five guesses, each from another address of 2001:db8:1:2::/64 (as every IPv6 subscriber can pick).
    for (let i = 1; i <= 5; i++) {
      const from = `2001:db8:1:2:${i.toString(16)}::${i}`;
      expect((await guess("login", { email: kim.email, password: `wrong-${i}` }, from)).status).toBe(401);
    }
    const sixth = await guess(
      "login",
      { email: kim.email, password: "wrong-6" },
      "2001:db8:1:2:ffff:ffff:ffff:6",
    );
    expect(sixth).toMatchObject({ status: 429, retryAfter: "30" });
    // The next /64 is another address, and so is the owner's.
    expect((await guess("login", { email: kim.email, password: "wrong-7" }, "2001:db8:1:3::7")).status).toBe(
      401,
    );
    expect(await s.signIn(kim, HOME)).toBe(303);
  });

  it("an attacker with many addresses cannot keep the owner out, and gets delays that grow", async () => {
    const s = await start();
    const kim = await createTestUser(s.database.db, "kim@example.test", "kim's password");
    // Kim signs in from home once: the account knows that address from then on.
    expect(await s.signIn(kim, HOME)).toBe(303);

    const post = await s.interaction();
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) {
      statuses.push((await post("login", { email: kim.email, password: `guess-${i}` }, attacker(i))).status);
    }
    // Ten guesses from everywhere else, then each must wait: the rest were refused unchecked.
    expect(statuses.filter((status) => status === 401)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(90);
    expect(await s.audit("auth.login_failed")).toHaveLength(10);

    // From home, Kim signs in straight away.
    expect(await s.signIn(kim, HOME)).toBe(303);
    // From a new address Kim waits the current delay (a second), not an hour.
    const away = await (
      await s.interaction()
    )("login", { email: kim.email, password: kim.password }, "192.0.2.44");
    expect(away).toMatchObject({ status: 429, retryAfter: "1" });
    s.advance(1_000);
    expect(await s.signIn(kim, "192.0.2.44")).toBe(303);
  });

  it("the limit of an address spares the accounts that sign in from it", async () => {
    const s = await start({ ip: 4 });
    const leo = await createTestUser(s.database.db, "leo@example.test", "leo's password");
    const mia = await createTestUser(s.database.db, "mia@example.test", "mia's password");
    const shared = "203.0.113.200";
    expect(await s.signIn(leo, shared)).toBe(303);

    const post = await s.interaction();
    for (let i = 0; i < 4; i++) {
      expect(
        (await post("login", { email: `ghost${i}@example.test`, password: "guess" }, shared)).status,
      ).toBe(401);
    }
    // The address has tried too many accounts: an account new to it is refused...
    expect((await post("login", { email: mia.email, password: mia.password }, shared)).status).toBe(429);
    expect(JSON.parse((await s.audit("auth.rate_limited"))[0]!.metadata)).toMatchObject({
      limit: "ip",
      ip: shared,
    });
    // ...but Leo, who signs in from there, is not; nor is Mia from another address behind the same proxy.
    expect(await s.signIn(leo, shared)).toBe(303);
    expect(await s.signIn(mia, HOME)).toBe(303);
  });

  it("writes one audit row with a count for repeated refusals of one account and address", async () => {
    const s = await start();
    const nia = await createTestUser(s.database.db, "nia@example.test", "nia's password");
    const post = await s.interaction();
    for (let i = 0; i < 5; i++) {
      expect((await post("login", { email: nia.email, password: `wrong-${i}` }, attacker(7))).status).toBe(
        401,
      );
    }
    for (let i = 0; i < 20; i++) {
      expect((await post("login", { email: nia.email, password: `again-${i}` }, attacker(7))).status).toBe(
        429,
      );
    }
    const rows = await s.audit("auth.rate_limited");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ user_id: nia.userId, count: 20 });
    // Another address refused for the same account has its own row.
    const other = await s.interaction();
    for (let i = 0; i < 7; i++) await other("login", { email: nia.email, password: `x-${i}` }, attacker(8));
    expect((await s.audit("auth.rate_limited")).map((r) => Number(r.count)).sort()).toEqual([2, 20]);
  });

  it("writes one audit row with a count for an address refused over many accounts", async () => {
    const s = await start({ ip: 3 });
    const post = await s.interaction();
    for (let i = 0; i < 3; i++) {
      expect(
        (await post("login", { email: `a${i}@example.test`, password: "guess" }, attacker(9))).status,
      ).toBe(401);
    }
    for (let i = 0; i < 10; i++) {
      expect(
        (await post("login", { email: `b${i}@example.test`, password: "guess" }, attacker(9))).status,
      ).toBe(429);
    }
    const rows = await s.audit("auth.rate_limited");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ user_id: null, count: 10 });
    expect(JSON.parse(rows[0]!.metadata)).toMatchObject({ limit: "ip", ip: attacker(9) });
  });

  it("counts wrong TOTP codes like wrong passwords", async () => {
    const s = await start();
    const ona = await createTestUser(s.database.db, "ona@example.test", "ona's password", { totp: true });
    const post = await s.interaction();
    const page = await post("login", { email: ona.email, password: ona.password }, attacker(3));
    expect(page.status).toBe(200);
    const ticket = /name="ticket" value="([^"]+)"/.exec(page.text)![1]!;
    const right = totp(ona.totpSecret!);
    const wrong = String((Number(right) + 7) % 1_000_000).padStart(6, "0");
    for (const code of [wrong, "abc", wrong, "000", wrong]) {
      expect((await post("totp", { ticket, code }, attacker(3))).status).toBe(401);
    }
    const limited = await post("totp", { ticket, code: right }, attacker(3));
    expect(limited.status).toBe(429);
    expect(JSON.parse((await s.audit("auth.rate_limited"))[0]!.metadata)).toMatchObject({ step: "totp" });
  });

  it("never checks more credentials than the limit in a concurrent burst", async () => {
    const s = await start();
    const pia = await createTestUser(s.database.db, "pia@example.test", "pia's password");
    const post = await s.interaction();
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        post("login", { email: pia.email, password: `burst-${i}` }, attacker(5)),
      ),
    );
    const checked = answers.filter((r) => r.status === 401).length;
    expect(checked).toBeLessThanOrEqual(5);
    expect(checked + answers.filter((r) => r.status === 429).length).toBe(30);
    expect(await s.audit("auth.login_failed")).toHaveLength(checked);
  });

  it("keeps the guesses at one account within 100 in any hour, whatever the attacker's addresses", async () => {
    const database = await migrated();
    let now = Date.UTC(2026, 0, 1);
    let n = 0;
    const deps = { db: database.db, now: () => new Date(now), randomId: () => `id-${n++}` };
    const account = "target@example.test";
    const shared = "198.51.100.50";
    // The owner signs in from an address an attacker shares (one NAT): attempts from there are "known".
    await rememberAddress(deps, account, shared);
    const checked: { at: number; known: boolean }[] = [];
    let fresh = 0;
    // Greedy: try from a fresh address and from the shared one, and when both are refused, wait exactly as long
    // as the shorter refusal says. Three simulated hours.
    for (let step = 0; step < 5000 && now < Date.UTC(2026, 0, 1, 3); step++) {
      const waits: number[] = [];
      for (const [ip, known] of [
        [`10.9.${(fresh >> 8) & 255}.${fresh++ & 255}`, false],
        [shared, true],
      ] as const) {
        const attempt = await beginAttempt(deps, account, ip);
        if (attempt.allowed) {
          await attempt.failed();
          checked.push({ at: now, known });
        } else {
          waits.push(attempt.retryAfterMs);
        }
      }
      if (waits.length === 2) now += Math.max(1, Math.min(...waits));
    }
    expect(now).toBeGreaterThanOrEqual(Date.UTC(2026, 0, 1, 3));
    const most = (rows: readonly { at: number }[]) =>
      Math.max(...rows.map((r) => rows.filter((o) => o.at >= r.at && o.at < r.at + WINDOW_MS).length));
    expect(most(checked)).toBeLessThanOrEqual(100);
    expect(most(checked.filter((r) => !r.known))).toBeLessThanOrEqual(80);
    // From one address, five free guesses and then a delay doubling from 30 s to 15 minutes: 12 in any hour.
    expect(most(checked.filter((r) => r.known))).toBeLessThanOrEqual(12);
    // The attacker kept trying all along: the limits slowed it down, they did not shut the account.
    expect(checked.filter((r) => r.at >= Date.UTC(2026, 0, 1, 2)).length).toBeGreaterThan(0);
  });

  it("does not count successes, and forgets failures older than an hour", async () => {
    const database = await migrated();
    let now = new Date("2026-01-01T00:00:00Z");
    let n = 0;
    const deps = { db: database.db, now: () => now, randomId: () => `id-${n++}` };
    for (let i = 0; i < 8; i++) {
      const ok = await beginAttempt(deps, "a@example.test", "10.0.0.1");
      if (!ok.allowed) throw new Error("a success must not count");
      await ok.succeeded();
    }
    for (let i = 0; i < 5; i++) {
      const attempt = await beginAttempt(deps, "a@example.test", "10.0.0.1");
      if (!attempt.allowed) throw new Error("within the free failures");
      await attempt.failed();
    }
    expect(await beginAttempt(deps, "a@example.test", "10.0.0.1")).toEqual({
      allowed: false,
      limit: "account_ip",
      retryAfterMs: 30_000,
    });
    now = new Date(now.getTime() + WINDOW_MS + 1);
    const later = await beginAttempt(deps, "a@example.test", "10.0.0.1");
    expect(later.allowed).toBe(true);
  });
});

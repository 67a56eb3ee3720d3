// The identity service end to end over real HTTP, on SQLite and PostgreSQL (issue 6 point 2): the real server
// app listening on a loopback port, the real oidc-provider, openid-client as the CLI uses it, a real loopback
// redirect listener on a random port, and the scripted browser submitting the server's own sign-in pages.
// Covered: authorization code + PKCE (RFC 8252 loopback, any port, IPv4), the device authorization grant, refresh
// token rotation, revocation, TOTP, sign-up, authenticate(), the audit rows of sessions (refresh, revocation,
// refresh-token reuse), and JSON logs free of every credential.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { CLI_CLIENT_ID } from "@latchkey/core";
import * as oidc from "openid-client";
import { afterEach, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../src/db/index.js";
import { migrateToLatest } from "../src/db/migrations.js";
import type { Identity } from "../src/identity/identity.js";
import { loggerOptions } from "../src/logging.js";
import { browse, CookieJar, totp } from "../../../e2e/support/oidc-browser.js";
import { describeEachDatabase } from "./databases.js";
import {
  buildTestApp,
  createTestUser,
  mintAccessToken,
  revokeToken,
  startTestServer,
  type TestUser,
} from "./support/identity.js";

/** A one-shot loopback listener like the CLI's: resolves with the URL the browser was redirected to. */
async function loopback(
  host = "127.0.0.1",
): Promise<{ redirectUri: string; received: Promise<URL>; server: Server }> {
  let deliver!: (url: URL) => void;
  const received = new Promise<URL>((resolve) => (deliver = resolve));
  const shown = host.includes(":") ? `[${host}]` : host;
  let origin = "";
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" }).end("You can close this window.");
    deliver(new URL(req.url ?? "/", origin));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  origin = `http://${shown}:${port}`;
  return { redirectUri: `${origin}/callback`, received, server };
}

describeEachDatabase("identity flows", (target) => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  interface Started {
    database: OpenDatabase;
    identity: Identity;
    url: string;
    config: oidc.Configuration;
    logs: () => string;
  }

  const start = async (options: { openSignup?: boolean } = {}): Promise<Started> => {
    const database = await openDatabase(await target.fresh());
    closers.push(() => database.close());
    await migrateToLatest(database.db);
    let logText = "";
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logText += chunk.toString("utf8");
        done();
      },
    });
    const server = await startTestServer({
      db: database.db,
      logger: loggerOptions({ level: "debug", stream }),
      ...(options.openSignup ? { openSignup: true } : {}),
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
    return { database, identity: server.identity, url: server.url, config, logs: () => logText };
  };

  /** The browser flow as `latchkey login` runs it; resolves with the token response. */
  const browserLogin = async (
    s: Started,
    user: { email: string; password: string; totpSecret?: string },
    host = "127.0.0.1",
  ) => {
    const listener = await loopback(host);
    closers.push(() => new Promise<void>((resolve) => listener.server.close(() => resolve())));
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: listener.redirectUri,
      scope: "openid offline_access",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
    });
    const page = await browse(url.href, {
      login: user.email,
      password: user.password,
      ...(user.totpSecret ? { totpSecret: user.totpSecret } : {}),
    });
    expect(page.status).toBe(200);
    const callback = await listener.received;
    const tokens = await oidc.authorizationCodeGrant(s.config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    return { tokens, visited: page.visited, redirectUri: listener.redirectUri };
  };

  it("signs in with authorization code + PKCE on a loopback redirect of any port, through the server's pages", async () => {
    const s = await start();
    const alice = await createTestUser(s.database.db, "Alice@Example.test ", "correct horse battery");
    expect(alice.email).toBe("alice@example.test");
    const { tokens, visited } = await browserLogin(s, {
      email: "ALICE@example.test",
      password: alice.password,
    });
    // The server's own login page was used (no devInteractions, no consent page).
    expect(visited.some((v) => /POST .*\/interaction\/[^/]+\/login$/.test(v))).toBe(true);
    expect(visited.some((v) => v.includes("consent"))).toBe(false);
    expect(tokens.token_type.toLowerCase()).toBe("bearer");
    expect(tokens.expires_in).toBe(900);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.claims()?.sub).toBe(alice.userId);

    const who = await s.identity.authenticate(tokens.access_token);
    expect(who).toEqual({
      userId: alice.userId,
      email: "alice@example.test",
      clientId: CLI_CLIENT_ID,
      grantId: expect.any(String),
      expiresAt: expect.any(Number),
    });
    expect(who!.expiresAt - Math.floor(Date.now() / 1000)).toBeGreaterThan(800);

    // A second login from another random port works too (RFC 8252 §7.3), and so does the IPv6 loopback.
    const again = await browserLogin(s, alice);
    expect(await s.identity.authenticate(again.tokens.access_token)).not.toBeNull();
    const v6 = await browserLogin(s, alice, "::1");
    expect(v6.redirectUri).toMatch(/^http:\/\/\[::1\]:\d+\/callback$/);
    expect(await s.identity.authenticate(v6.tokens.access_token)).not.toBeNull();
  });

  it("sets Secure, HttpOnly, SameSite=Strict cookies when the public URL is https (TLS ending at a proxy)", async () => {
    const database = await openDatabase(await target.fresh());
    closers.push(() => database.close());
    await migrateToLatest(database.db);
    const { app } = buildTestApp({ db: database.db, publicUrl: "https://latchkey.example.test" });
    closers.push(() => app.close());
    const query = new URLSearchParams({
      client_id: CLI_CLIENT_ID,
      response_type: "code",
      scope: "openid",
      redirect_uri: "http://127.0.0.1:49152/callback",
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: "S256",
    });
    const res = await app.inject({
      method: "GET",
      url: `/oidc/auth?${query.toString()}`,
      headers: { "x-forwarded-proto": "https", host: "latchkey.example.test" },
    });
    expect(res.statusCode).toBe(303);
    const cookies = [res.headers["set-cookie"] ?? []].flat();
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) {
      expect(cookie.toLowerCase()).toContain("; secure");
      expect(cookie.toLowerCase()).toContain("; httponly");
      expect(cookie.toLowerCase()).toContain("; samesite=strict");
    }
    expect(res.headers.location).toMatch(/^\/interaction\//);
  });

  it("refuses a redirect URI that is not a loopback callback, and an authorization request without PKCE", async () => {
    const s = await start();
    const bad = oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: "http://evil.example/callback",
      scope: "openid",
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: "S256",
    });
    const badRes = await fetch(bad, { redirect: "manual" });
    expect(badRes.status).toBe(400);
    expect(await badRes.text()).toContain("redirect_uri");

    const listener = await loopback();
    closers.push(() => new Promise<void>((resolve) => listener.server.close(() => resolve())));
    const noPkce = oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: listener.redirectUri,
      scope: "openid",
    });
    const res = await fetch(noPkce, { redirect: "manual" });
    // The error goes back to the client's redirect URI.
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get("location")!);
    expect(location.origin + location.pathname).toBe(listener.redirectUri);
    expect(location.searchParams.get("error")).toBe("invalid_request");
  });

  it("rotates refresh tokens: the new one works, the used one is refused", async () => {
    const s = await start();
    const bob = await createTestUser(s.database.db, "bob@example.test", "hunter2 hunter2");
    const { tokens } = await browserLogin(s, bob);
    const first = tokens.refresh_token!;
    const refreshed = await oidc.refreshTokenGrant(s.config, first);
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(first);
    expect(await s.identity.authenticate(refreshed.access_token)).toMatchObject({ userId: bob.userId });
    await expect(oidc.refreshTokenGrant(s.config, first)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("revokes (RFC 7009): after revoking the refresh token, its access token no longer authenticates", async () => {
    const s = await start();
    const carol = await createTestUser(s.database.db, "carol@example.test", "pw for carol");
    const { tokens } = await browserLogin(s, carol);
    const other = await browserLogin(s, carol);
    expect(await s.identity.authenticate(tokens.access_token)).not.toBeNull();
    await oidc.tokenRevocation(s.config, tokens.refresh_token!);
    expect(await s.identity.authenticate(tokens.access_token)).toBeNull();
    await expect(oidc.refreshTokenGrant(s.config, tokens.refresh_token!)).rejects.toMatchObject({
      error: "invalid_grant",
    });
    // Each login has its own grant: the user's other session stays signed in.
    expect(await s.identity.authenticate(other.tokens.access_token)).not.toBeNull();
    // Revoking an access token ends that token alone (token-rotate: refresh, then revoke the old access token);
    // the rotated tokens of the same grant keep working.
    const rotated = await oidc.refreshTokenGrant(s.config, other.tokens.refresh_token!);
    await oidc.tokenRevocation(s.config, other.tokens.access_token);
    expect(await s.identity.authenticate(other.tokens.access_token)).toBeNull();
    expect(await s.identity.authenticate(rotated.access_token)).toMatchObject({ userId: carol.userId });
    const again = await oidc.refreshTokenGrant(s.config, rotated.refresh_token!);
    expect(await s.identity.authenticate(again.access_token)).not.toBeNull();
    // Logout (revoking the refresh token) ends the whole grant.
    await oidc.tokenRevocation(s.config, again.refresh_token!);
    expect(await s.identity.authenticate(again.access_token)).toBeNull();
  });

  it("audits refreshes, revocations and a reused refresh token (a security event)", async () => {
    const s = await start();
    const uma = await createTestUser(s.database.db, "uma@example.test", "uma's password");
    const first = await browserLogin(s, uma);
    // token-rotate: refresh, then revoke the old access token.
    const rotated = await oidc.refreshTokenGrant(s.config, first.tokens.refresh_token!);
    await oidc.tokenRevocation(s.config, first.tokens.access_token);
    // The used refresh token again: oidc-provider destroys the whole grant.
    await expect(oidc.refreshTokenGrant(s.config, first.tokens.refresh_token!)).rejects.toMatchObject({
      error: "invalid_grant",
    });
    expect(await s.identity.authenticate(rotated.access_token)).toBeNull();
    // Logout of another session; revoking it again finds nothing and writes nothing.
    const second = await browserLogin(s, uma);
    await oidc.tokenRevocation(s.config, second.tokens.refresh_token!);
    await oidc.tokenRevocation(s.config, second.tokens.refresh_token!);

    const rows = await s.database.db
      .selectFrom("audit_events")
      .select(["action", "user_id", "metadata"])
      .where("action", "in", ["auth.token_refreshed", "auth.token_revoked", "auth.session_revoked"])
      .execute();
    const of = (action: string) =>
      rows
        .filter((r) => r.action === action)
        .map((r): Record<string, unknown> => ({ user: r.user_id, ...(JSON.parse(r.metadata) as object) }));
    const refreshed = of("auth.token_refreshed");
    expect(refreshed).toEqual([{ user: uma.userId, session: expect.any(String), clientId: CLI_CLIENT_ID }]);
    const session = refreshed[0]!.session;
    expect(of("auth.session_revoked")).toEqual([
      {
        user: uma.userId,
        reason: "refresh_token_reused",
        securityEvent: true,
        session,
        clientId: CLI_CLIENT_ID,
      },
    ]);
    const revoked = of("auth.token_revoked");
    expect(revoked).toHaveLength(2);
    expect(revoked).toContainEqual({
      user: uma.userId,
      token: "access_token",
      session,
      sessionEnded: false,
      clientId: CLI_CLIENT_ID,
    });
    // Logout ended the second session, not the first.
    const logout = revoked.find((r) => r.token === "refresh_token");
    expect(logout).toEqual({
      user: uma.userId,
      token: "refresh_token",
      session: expect.any(String),
      sessionEnded: true,
      clientId: CLI_CLIENT_ID,
    });
    expect(logout!.session).not.toBe(session);
    const text = JSON.stringify(rows);
    for (const token of [first.tokens, rotated, second.tokens]) {
      expect(text).not.toContain(token.access_token);
      expect(text).not.toContain(token.refresh_token!);
    }
  });

  it("runs the device authorization grant (RFC 8628) through the code pages and the login page", async () => {
    const s = await start();
    const dave = await createTestUser(s.database.db, "dave@example.test", "dave's password");
    const device = await oidc.initiateDeviceAuthorization(s.config, { scope: "openid offline_access" });
    expect(device.user_code).toEqual(expect.any(String));
    // Before the user signs in, the token endpoint says to keep polling.
    await expect(
      oidc.genericGrantRequest(s.config, "urn:ietf:params:oauth:grant-type:device_code", {
        device_code: device.device_code,
      }),
    ).rejects.toMatchObject({ error: "authorization_pending" });
    // The user types the code on the verification page (not the complete URI), then signs in.
    const page = await browse(device.verification_uri, {
      login: dave.email,
      password: dave.password,
      userCode: device.user_code,
    });
    expect(page.status).toBe(200);
    expect(page.body).toContain("The device is signed in");
    const tokens = await oidc.genericGrantRequest(s.config, "urn:ietf:params:oauth:grant-type:device_code", {
      device_code: device.device_code,
    });
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(await s.identity.authenticate(tokens.access_token)).toMatchObject({
      userId: dave.userId,
      email: dave.email,
    });
  });

  it("asks an enrolled account for its TOTP code: a wrong code is refused, the right one signs in", async () => {
    const s = await start();
    const erin = await createTestUser(s.database.db, "erin@example.test", "erin's password", { totp: true });
    const listener = await loopback();
    closers.push(() => new Promise<void>((resolve) => listener.server.close(() => resolve())));
    const verifier = oidc.randomPKCECodeVerifier();
    const authUrl = oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: listener.redirectUri,
      scope: "openid offline_access",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    });
    const jar = new CookieJar();
    const go = async (url: string, body?: Record<string, string>) => {
      const cookie = jar.header(url);
      const res = await fetch(url, {
        method: body ? "POST" : "GET",
        redirect: "manual",
        headers: {
          ...(cookie ? { cookie } : {}),
          ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        },
        ...(body ? { body: new URLSearchParams(body).toString() } : {}),
      });
      jar.store(url, res);
      return { res, text: await res.text() };
    };
    const first = await go(authUrl.href);
    const interactionUrl = new URL(first.res.headers.get("location")!, s.url).href;
    const login = await go(interactionUrl);
    expect(login.text).toContain('name="password"');
    const afterPassword = await go(`${interactionUrl}/login`, { email: erin.email, password: erin.password });
    expect(afterPassword.res.status).toBe(200);
    expect(afterPassword.text).toContain('name="code"');
    // Still no code issued: the password alone does not sign in.
    expect(afterPassword.text).not.toContain(erin.password);
    const ticket = /name="ticket" value="([^"]+)"/.exec(afterPassword.text)![1]!;

    const now = totp(erin.totpSecret!);
    const wrong = String((Number(now) + 1) % 1_000_000).padStart(6, "0");
    const refused = await go(`${interactionUrl}/totp`, { ticket, code: wrong });
    expect(refused.res.status).toBe(401);
    expect(refused.text).toContain("not right");
    expect(refused.text).not.toContain(wrong);
    // A forged ticket (another user id) is refused before any code is checked.
    const forged = await go(`${interactionUrl}/totp`, {
      ticket: ticket.replace(/^[^.]+/, "someone-else"),
      code: now,
    });
    expect(forged.res.status).toBe(400);

    const accepted = await go(`${interactionUrl}/totp`, { ticket, code: now });
    expect(accepted.res.status).toBe(303);
    // The rest of the way as the browser goes: resume at the provider, then the loopback redirect.
    let next = new URL(accepted.res.headers.get("location")!, s.url).href;
    while (!next.startsWith(listener.redirectUri.replace(/\/callback$/, ""))) {
      const step = await go(next);
      next = new URL(step.res.headers.get("location")!, next).href;
    }
    await go(next);
    const tokens = await oidc.authorizationCodeGrant(s.config, await listener.received, {
      pkceCodeVerifier: verifier,
    });
    expect(await s.identity.authenticate(tokens.access_token)).toMatchObject({ userId: erin.userId });
  });

  it("signs in through the TOTP page with the scripted browser (right code)", async () => {
    const s = await start();
    const frank = await createTestUser(s.database.db, "frank@example.test", "frank's password", {
      totp: true,
    });
    const { tokens, visited } = await browserLogin(s, frank);
    expect(visited.some((v) => v.endsWith("/totp"))).toBe(true);
    expect(await s.identity.authenticate(tokens.access_token)).toMatchObject({ userId: frank.userId });
  });

  it("lets a new user sign up only when open sign-up is on", async () => {
    const closed = await start();
    const listener = await loopback();
    closers.push(() => new Promise<void>((resolve) => listener.server.close(() => resolve())));
    const params = async (config: oidc.Configuration) =>
      oidc.buildAuthorizationUrl(config, {
        redirect_uri: listener.redirectUri,
        scope: "openid",
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: "S256",
      });
    const jar = new CookieJar();
    const first = await fetch(await params(closed.config), { redirect: "manual" });
    jar.store(closed.url, first);
    const interaction = new URL(first.headers.get("location")!, closed.url).href;
    const loginPage = await (
      await fetch(interaction, { headers: { cookie: jar.header(interaction)! } })
    ).text();
    expect(loginPage).not.toContain("/signup");
    const signup = await fetch(`${interaction}/signup`, { headers: { cookie: jar.header(interaction)! } });
    expect(signup.status).toBe(404);

    const open = await start({ openSignup: true });
    const jar2 = new CookieJar();
    const res = await fetch(await params(open.config), { redirect: "manual" });
    jar2.store(open.url, res);
    const uidUrl = new URL(res.headers.get("location")!, open.url).href;
    const page = await (await fetch(uidUrl, { headers: { cookie: jar2.header(uidUrl)! } })).text();
    expect(page).toContain("/signup");
    const created = await fetch(`${uidUrl}/signup`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: jar2.header(uidUrl)!, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        email: " Grace@Example.test",
        new_password: "grace's password",
      }).toString(),
    });
    expect(created.status).toBe(303);
    const row = await open.database.db
      .selectFrom("users")
      .select(["email"])
      .where("email", "=", "grace@example.test")
      .executeTakeFirst();
    expect(row).toEqual({ email: "grace@example.test" });
    // The same email again is refused with a page, not a second account.
    const again = await fetch(`${uidUrl}/signup`, {
      method: "POST",
      headers: { cookie: jar2.header(uidUrl)!, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        email: "grace@example.test",
        new_password: "grace's other password",
      }).toString(),
    });
    expect(again.status).toBe(400);
    expect(await again.text()).toContain("already exists");
    // A new account needs a password of 12 characters or more; the form says so.
    const short = await fetch(`${uidUrl}/signup`, {
      method: "POST",
      headers: { cookie: jar2.header(uidUrl)!, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email: "ida@example.test", new_password: "eleven char" }).toString(),
    });
    expect(short.status).toBe(400);
    expect(await short.text()).toContain("at least 12 characters");
  });

  it("authenticate() refuses malformed, unknown, expired and revoked tokens", async () => {
    const s = await start();
    const hank: TestUser = await createTestUser(s.database.db, "hank@example.test", "hank's password");
    const valid = await mintAccessToken(s.identity, { userId: hank.userId });
    expect(await s.identity.authenticate(valid)).toMatchObject({
      userId: hank.userId,
      clientId: CLI_CLIENT_ID,
    });
    for (const bad of ["", "not a token", "x".repeat(5000), `${valid}x`, valid.slice(1)]) {
      expect(await s.identity.authenticate(bad)).toBeNull();
    }
    const expired = await mintAccessToken(s.identity, { userId: hank.userId, expiresInSeconds: 0 });
    expect(await s.identity.authenticate(expired)).toBeNull();
    const revoked = await mintAccessToken(s.identity, { userId: hank.userId });
    await revokeToken(s.identity, revoked);
    expect(await s.identity.authenticate(revoked)).toBeNull();
    expect(await s.identity.authenticate(valid)).not.toBeNull();
  });

  it("keeps passwords, codes and tokens out of the JSON logs", async () => {
    const s = await start();
    const ivy = await createTestUser(s.database.db, "ivy@example.test", "ivy-secret-password", {
      totp: true,
    });
    const { tokens } = await browserLogin(s, ivy);
    const refreshed = await oidc.refreshTokenGrant(s.config, tokens.refresh_token!);
    // A failed attempt too: its password must not be logged either.
    const device = await oidc.initiateDeviceAuthorization(s.config, { scope: "openid" });
    // The code of this 30 s step was used by the first login (a code is good once): type the next step's.
    const page = await browse(device.verification_uri_complete!, {
      login: ivy.email,
      password: ivy.password,
      totpCode: totp(ivy.totpSecret!, Date.now() + 30_000),
    });
    expect(page.body).toContain("The device is signed in");
    const logs = s.logs();
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs.trim().split("\n")) JSON.parse(line);
    for (const secret of [
      ivy.password,
      ivy.totpSecret!,
      tokens.access_token,
      tokens.refresh_token!,
      refreshed.access_token,
      refreshed.refresh_token!,
      device.device_code,
      device.user_code,
      device.user_code.replace("-", ""),
    ]) {
      expect(logs).not.toContain(secret);
    }
    // The audit rows carry no secret either.
    const audit = JSON.stringify(await s.database.db.selectFrom("audit_events").selectAll().execute());
    expect(audit).toContain("auth.login");
    expect(audit).not.toContain(ivy.password);
  });
});

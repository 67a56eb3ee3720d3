// The browser dashboard's sign-in in a real Chromium against the real server process, with a real account: every
// dashboard answer carries the security headers and the page runs with no CSP violation, console error or uncaught
// exception; the authorization code + PKCE round trip leaves no token in the URL, localStorage or sessionStorage; a
// reload signs in again without the login page; sign out ends the browser's session (its token dies, the CLI's
// lives); sign out everywhere from one browser kills the other browser's token and the CLI's session too.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chromiumCheck,
  launchChromium,
  openRecordedPage,
  type RecordedPage,
  type RecordedResponse,
} from "./support/browser.js";
import {
  latchkey,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { ok, signedInMachine } from "./support/machines.js";
import { requirePart } from "./support/prerequisites.js";

const USER = { email: "dashboard@example.com", password: "dashboard password for e2e" };

/** Exactly what docs/dashboard.md promises on every dashboard answer. */
const DASHBOARD_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cross-origin-opener-policy": "same-origin",
};

describe.skipIf(!requirePart("the dashboard sign-in suite", chromiumCheck()))("dashboard sign-in", () => {
  let root: string;
  let server: LatchkeyServer;
  let browser: Browser;
  let cli: Machine;
  const pages: RecordedPage[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-dashboard-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
    browser = await launchChromium();
    cli = await signedInMachine(root, "laptop", server, USER);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const dashboard = (path = "") => `${server.url}/dashboard/${path}`;

  async function newPage(): Promise<RecordedPage> {
    const p = await openRecordedPage(browser);
    pages.push(p);
    return p;
  }

  /** The signed-out view, once the page has settled on it. */
  const signInButton = (p: RecordedPage) => p.page.getByRole("button", { name: "Sign in", exact: true });
  /** The header's account, once signed in. */
  const accountEmail = (p: RecordedPage) => p.page.locator(".account .email", { hasText: USER.email });

  /** Signs in on the server's own login page, starting from the dashboard's signed-out view. */
  async function signIn(p: RecordedPage): Promise<void> {
    await p.page.goto(dashboard());
    await signInButton(p).click();
    await p.page.waitForURL(/\/interaction\//);
    await p.page.getByLabel("Email").fill(USER.email);
    await p.page.getByLabel("Password").fill(USER.password);
    await p.page.getByRole("button", { name: "Sign in" }).click();
    await accountEmail(p).waitFor();
  }

  /** The access tokens the provider's token endpoint handed this page, in order. */
  async function tokensOf(p: RecordedPage): Promise<string[]> {
    await p.settled();
    return p.responses
      .filter((r) => new URL(r.url).pathname === "/oidc/token" && r.status === 200)
      .map((r) => (JSON.parse(r.body.toString("utf8")) as { access_token: string }).access_token);
  }

  /** GET /api/v1/me with `token`, from the test itself. */
  const me = (token: string) =>
    fetch(`${server.url}/api/v1/me`, {
      headers: { authorization: `Bearer ${token}`, "x-latchkey-request-id": "e2e-dashboard-0123456789ab" },
    });

  /** What the page keeps where script can read it. */
  const storageOf = (p: RecordedPage) =>
    p.page.evaluate(() => ({
      url: location.href,
      local: { ...localStorage },
      session: { ...sessionStorage },
      cookie: document.cookie,
    }));

  const dashboardAnswers = (responses: readonly RecordedResponse[]) =>
    responses.filter((r) => r.url.startsWith(`${server.url}/dashboard`));

  it("signs in through the provider with PKCE: headers and CSP on every dashboard answer, no token left readable", async () => {
    const p = await newPage();
    await p.page.goto(dashboard());
    // The silent sign-in (prompt=none) found no provider session: the page offers the button, and stays put.
    await signInButton(p).waitFor();
    expect(new URL(p.page.url()).pathname).toBe("/dashboard/");
    await p.screenshot("dashboard-signed-out");

    await signIn(p);
    await p.page.getByRole("heading", { name: "Vaults", exact: true }).waitFor();
    await p.screenshot("dashboard-signed-in");
    const [token] = await tokensOf(p);
    expect(token).toEqual(expect.any(String));
    expect((await me(token!)).status).toBe(200);

    const kept = await storageOf(p);
    expect(kept.url).toBe(dashboard());
    expect(kept.local).toEqual({});
    expect(kept.session).toEqual({});
    expect(kept.cookie).toBe("");

    await p.settled();
    const answers = dashboardAnswers(p.responses);
    // index.html (sign-out view, the callback), the script and the style sheet at least.
    expect(answers.length).toBeGreaterThanOrEqual(4);
    expect(answers.some((r) => /\/dashboard\/app-[A-Z0-9]+\.js$/.test(r.url))).toBe(true);
    expect(answers.some((r) => /\/dashboard\/app-[A-Z0-9]+\.css$/.test(r.url))).toBe(true);
    expect(answers.some((r) => new URL(r.url).pathname === "/dashboard/callback")).toBe(true);
    for (const answer of answers) {
      for (const [name, value] of Object.entries(DASHBOARD_HEADERS))
        expect(answer.headers[name], `${name} of ${answer.url}`).toBe(value);
      // A cookie of the dashboard's own answers would be script-proof and never cross-site.
      const cookie = answer.headers["set-cookie"];
      if (cookie !== undefined)
        expect(cookie).toMatch(/HttpOnly.*SameSite=Strict|SameSite=Strict.*HttpOnly/is);
    }
    expect(p.cspViolations).toEqual([]);
    expect(p.consoleErrors).toEqual([]);
    expect(p.pageErrors).toEqual([]);
  }, 180_000);

  it("signs in again silently on a reload, without the login page", async () => {
    const p = pages[0]!;
    const visited: string[] = [];
    p.page.on("request", (request) => {
      if (request.isNavigationRequest()) visited.push(new URL(request.url()).pathname);
    });
    const before = (await tokensOf(p)).length;
    await p.page.reload();
    await accountEmail(p).waitFor();
    expect(visited).toContain("/oidc/auth");
    expect(visited).toContain("/dashboard/callback");
    expect(visited.some((path) => path.startsWith("/interaction/"))).toBe(false);
    expect(new URL(p.page.url()).pathname).toBe("/dashboard/");
    expect((await tokensOf(p)).length).toBe(before + 1);
    expect((await storageOf(p)).session).toEqual({});
    expect(p.cspViolations).toEqual([]);
    expect(p.consoleErrors).toEqual([]);
  }, 180_000);

  it("signs out: the provider's session ends and the browser's token dies, the CLI stays signed in", async () => {
    const p = pages[0]!;
    const tokens = await tokensOf(p);
    await p.page.getByRole("button", { name: "Sign out", exact: true }).click();
    // The provider asks first: no other site can sign anyone out.
    await p.page.waitForURL(/\/oidc\/session\/end/);
    await p.page.getByRole("button", { name: "Sign out", exact: true }).click();
    await signInButton(p).waitFor();
    expect(new URL(p.page.url()).pathname).toBe("/dashboard/");
    for (const token of tokens) expect((await me(token)).status).toBe(401);
    // A reload finds no provider session to sign in from.
    await p.page.reload();
    await signInButton(p).waitFor();
    ok(await latchkey(cli, ["whoami"]));
    expect(p.cspViolations).toEqual([]);
    expect(p.consoleErrors).toEqual([]);
  }, 180_000);

  it("signs out everywhere: another browser's token and the CLI's session die, the other browser is told", async () => {
    const a = await newPage();
    const b = await newPage();
    await signIn(a);
    await signIn(b);
    const [tokenA] = await tokensOf(a);
    const [tokenB] = await tokensOf(b);
    expect((await me(tokenB!)).status).toBe(200);

    await a.page.getByRole("button", { name: "Sign out everywhere" }).click();
    await a.page.getByRole("button", { name: "Yes, sign out everywhere" }).click();
    await a.page.getByText(/Signed out everywhere/).waitFor();
    await signInButton(a).waitFor();
    await a.screenshot("dashboard-signed-out-everywhere");

    expect((await me(tokenA!)).status).toBe(401);
    expect((await me(tokenB!)).status).toBe(401);
    // B's page still holds its token in memory: its next API call is refused, and it shows it is signed out.
    await b.page.getByRole("button", { name: "Sign out everywhere" }).click();
    await b.page.getByRole("button", { name: "Yes, sign out everywhere" }).click();
    await b.page.getByText(/Your session has ended/).waitFor();
    await signInButton(b).waitFor();
    // Its provider session is gone too: a reload does not sign in again.
    await b.page.reload();
    await signInButton(b).waitFor();
    await a.page.reload();
    await signInButton(a).waitFor();

    const whoami = await latchkey(cli, ["whoami"]);
    expect(whoami.code).not.toBe(0);
    expect(whoami.stderr).toMatch(/LK_SESSION_EXPIRED|LK_NOT_LOGGED_IN/);

    for (const p of [a, b]) {
      await p.settled();
      for (const answer of dashboardAnswers(p.responses))
        for (const [name, value] of Object.entries(DASHBOARD_HEADERS))
          expect(answer.headers[name], `${name} of ${answer.url}`).toBe(value);
      expect(p.cspViolations).toEqual([]);
      expect(p.pageErrors).toEqual([]);
    }
    expect(a.consoleErrors).toEqual([]);
    // B's one refused call is the browser's own log line of a 401, nothing else.
    expect(b.consoleErrors.every((line) => /status of 401/.test(line))).toBe(true);
  }, 180_000);
});

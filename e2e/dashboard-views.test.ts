// The dashboard's read views in a real Chromium against the real server process, with data made by real CLI
// processes: ann pushed a vault whose latchkey.json has an envSchema (one required key left unset) and shared it
// with her organisation, where bob pulled it; her account has 60 pairing.revoke_all events. Each view renders
// that data (vaults, a vault locked and then unlocked by pairing with ann's terminal, member access, the audit
// logs, pairings); the audit filters and pages work and the CSV export holds exactly the filtered rows; values are
// masked until revealed, copied to the clipboard, and never in the URL, the title, storage or any response; every
// view is reached and used with the keyboard alone. Screenshots of each view go to e2e/artifacts/.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumCheck, launchChromium, openRecordedPage, type RecordedPage } from "./support/browser.js";
import {
  latchkey,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { ok, signedInMachine } from "./support/machines.js";
import {
  accessToken,
  apiRequest,
  APPROVE_QUESTION,
  APPROVER_DIGITS,
  onTerminal,
  shown,
  startPairing as startCliPairing,
} from "./support/pairing.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  addMember,
  newMember,
  onTerminal as asMember,
  projectDir,
  registerSharingKey,
  type Member,
} from "./support/teams.js";

const ANN = { email: "ann-views@example.com", password: "ann's dashboard views password" };
// A value that must never cross the wire in plaintext, nor reach the URL, the title or storage: fresh every run.
const CANARY = `canary-${randomBytes(12).toString("hex")}`;
const STAGING_KEY = `staging-${randomBytes(6).toString("hex")}`;
const ENV_SCHEMA = {
  API_KEY: { required: true, secret: true, description: "the payment API's key" },
  PORT: { format: "port", default: "8080" },
  SENTRY_DSN: { required: true, format: "url", description: "error reporting" },
};
/** pairing.revoke_all events made on ann's account: more than one page of 50. */
const REVOKES = 60;

describe.skipIf(
  !requirePart("the dashboard views suite", chromiumCheck()) ||
    !requirePart("the dashboard views suite", terminalCheck()),
)("the dashboard's read views", () => {
  let root: string;
  let server: LatchkeyServer;
  let browser: Browser;
  let a: Machine;
  let ann: Member;
  let bob: Member;
  let vaultId: string;
  let p: RecordedPage;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-dashboard-views-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, ANN);
    browser = await launchChromium();
    a = await signedInMachine(root, "ann", server, ANN);
    ann = { ...ANN, m: a };
    const dir = await projectDir(root, "app", "app", JSON.stringify({ envSchema: ENV_SCHEMA }));
    ok(await latchkey(a, ["env", "set", "API_KEY"], { cwd: dir, input: CANARY }));
    ok(await latchkey(a, ["env", "set", "-e", "staging", "API_KEY"], { cwd: dir, input: STAGING_KEY }));
    ok(
      await latchkey(a, ["env", "set", "-e", "staging", "SENTRY_DSN=https://sentry.example.com/1"], {
        cwd: dir,
      }),
    );
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));
    vaultId = (JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8")) as { vault: string }).vault;

    const created = await asMember(ann, ["org", "create", "acme", "--name", "Acme Corp"]);
    expect(created.code, created.output).toBe(0);
    bob = await newMember(server, root, "bob", "bob-views@example.com");
    await registerSharingKey(bob);
    await addMember(ann, "acme", bob.email, "member");
    ok(await latchkey(a, ["env", "share", "--org", "acme", "--trust-new-members"], { cwd: dir }));
    const bobDir = await projectDir(
      root,
      "app-bob",
      "app",
      await readFile(join(dir, "latchkey.json"), "utf8"),
    );
    ok(await latchkey(bob.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: bobDir }));

    const token = await accessToken(a, server);
    for (let i = 0; i < REVOKES; i++) {
      const revoked = await apiRequest(server, token, { method: "POST", path: "/pairings/revoke-all" });
      expect(revoked.status).toBe(200);
    }
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const dashboard = (path = "") => `${server.url}/dashboard/${path}`;
  const link = (page: Page, name: string | RegExp) =>
    page.getByRole("link", { name, exact: typeof name === "string" });
  const button = (page: Page, name: string | RegExp) =>
    page.getByRole("button", { name, exact: typeof name === "string" });

  /** The text of the cells of each body row of the table captioned `caption`. */
  const rowsOf = async (page: Page, caption: string | RegExp) => {
    const rows = page
      .locator("table", { has: page.locator("caption", { hasText: caption }) })
      .locator("tbody tr");
    // The table is drawn once its data has come: wait for its first row rather than read an empty one.
    await rows.first().waitFor();
    return rows.evaluateAll((cells) =>
      cells.map((row) => [...row.querySelectorAll("th, td")].map((cell) => (cell.textContent ?? "").trim())),
    );
  };

  /** What the page keeps where a script, the history or a tab list could show it. */
  const exposed = (page: Page) =>
    page.evaluate(() =>
      JSON.stringify({
        url: location.href,
        title: document.title,
        local: { ...localStorage },
        session: { ...sessionStorage },
        cookie: document.cookie,
      }),
    );

  /** Presses Tab until the focused element's text or label matches `name`; fails after `max` presses. */
  async function tabTo(page: Page, name: RegExp, max = 80): Promise<void> {
    for (let i = 0; i < max; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        if (el === null || el === document.body) return "";
        const labelled = el.id === "" ? null : document.querySelector(`label[for="${el.id}"]`);
        return [el.getAttribute("aria-label"), labelled?.textContent, el.textContent]
          .filter(Boolean)
          .join(" | ");
      });
      if (name.test(focused)) return;
    }
    throw new Error(`Tab never reached ${name}`);
  }

  /** The page's own check of what is focused, for an assertion after keys were pressed. */
  const focusedText = (page: Page) => page.evaluate(() => document.activeElement?.textContent?.trim() ?? "");

  it("lists the personal and the organisation's vaults, with the read-only note, before the browser is unlocked", async () => {
    p = await openRecordedPage(browser);
    await p.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
    await p.page.goto(dashboard());
    await button(p.page, "Sign in").click();
    await p.page.waitForURL(/\/interaction\//);
    await p.page.getByLabel("Email").fill(ANN.email);
    await p.page.getByLabel("Password").fill(ANN.password);
    await button(p.page, "Sign in").click();
    await p.page.getByRole("heading", { name: "Your vaults" }).waitFor();

    const personal = await rowsOf(p.page, "Your personal vaults");
    expect(personal).toEqual([["app", "1", expect.any(String), "acme", "Audit log of app"]]);
    await p.page.getByRole("heading", { name: "Acme Corp (acme)" }).waitFor();
    expect(await rowsOf(p.page, "Vaults of acme")).toEqual([["app", "1", expect.any(String)]]);
    await p.page.getByText(/Read only: the dashboard shows your vaults but does not change them/).waitFor();
    await p.page.getByText(/Your vaults are locked in this browser/).waitFor();
    expect(await p.page.title()).toBe("Vaults · Latchkey");
    await p.screenshot("dashboard-views-vaults");
  });

  it("shows a vault's envSchema read-only while locked, and no value", async () => {
    await link(p.page, "app").first().click();
    await p.page.getByRole("heading", { name: "app", level: 1 }).waitFor();
    await p.page.getByRole("heading", { name: "envSchema" }).waitFor();
    expect(await rowsOf(p.page, "The envSchema's rules")).toEqual([
      ["API_KEY", "yes", "any", "none", "none", "yes", "the payment API's key"],
      ["PORT", "no", "port", "none", "8080", "no", ""],
      ["SENTRY_DSN", "yes", "url", "none", "none", "no", "error reporting"],
    ]);
    expect(await p.page.getByRole("heading", { name: "Environments" }).count()).toBe(0);
    await link(p.page, "Unlock vaults").waitFor();
    expect(await p.page.title()).toBe("Vault · Latchkey");
    expect(new URL(p.page.url()).pathname).toBe(`/dashboard/vaults/${vaultId}`);
    await p.screenshot("dashboard-views-vault-locked");
  });

  it("once paired with ann's terminal: environments as tabs, values masked, revealed and copied, missing keys named", async () => {
    await link(p.page, "Unlock vaults").click();
    await p.page.getByLabel("Name this browser").fill("views browser");
    await button(p.page, "Pair this browser").click();
    const dialog = p.page.getByRole("dialog", { name: "Confirm it is you" });
    await dialog.getByLabel("Password").fill(ANN.password);
    await dialog.getByRole("button", { name: "Continue" }).click();
    const code = (await p.page.locator("#pairing-code").innerText()).trim();
    const onA = onTerminal(a, ["env", "pair", code]);
    await onA.waitFor(APPROVE_QUESTION);
    await p.page.locator("#pairing-digits", { hasText: shown(onA, APPROVER_DIGITS)! }).waitFor();
    onA.type("y");
    expect((await onA.exited).code).toBe(0);
    await p.page.getByRole("heading", { name: "This browser is unlocked" }).waitFor();

    // In-page navigation keeps the keys (a reload would drop them).
    await link(p.page, "Vaults").click();
    await link(p.page, "app").first().click();
    const tabs = p.page.getByRole("tab");
    await tabs.first().waitFor();
    expect(await tabs.allInnerTexts()).toEqual(["default", "staging"]);
    expect(await tabs.first().getAttribute("aria-selected")).toBe("true");
    await p.page.getByText("Missing required keys in default: SENTRY_DSN.").waitFor();
    expect(await rowsOf(p.page, "Keys of default")).toEqual([
      ["API_KEY", "required, secret", "••••••••", "Reveal the value of API_KEYCopy the value of API_KEY"],
      ["PORT", "port", "not set (the schema's default applies)", ""],
      ["SENTRY_DSN", "required, url", "not set", ""],
    ]);
    expect(await p.page.locator("main").innerText()).not.toContain(CANARY);

    await button(p.page, "Reveal the value of API_KEY").click();
    await p.page.locator("code.value", { hasText: CANARY }).waitFor();
    expect(await button(p.page, "Hide the value of API_KEY").getAttribute("aria-pressed")).toBe("true");
    await p.screenshot("dashboard-views-vault-revealed");
    await button(p.page, "Hide the value of API_KEY").click();
    expect(await p.page.locator("main").innerText()).not.toContain(CANARY);

    await button(p.page, "Copy the value of API_KEY").click();
    await p.page.getByText("Copied the value of API_KEY. The clipboard is cleared in 30 seconds.").waitFor();
    expect(await p.page.evaluate(() => navigator.clipboard.readText())).toBe(CANARY);

    await tabs.nth(1).click();
    expect(await tabs.nth(1).getAttribute("aria-selected")).toBe("true");
    await p.page.getByText("Every key the envSchema requires is set in staging.").waitFor();
    await button(p.page, "Reveal the value of API_KEY").click();
    await p.page.locator("code.value", { hasText: STAGING_KEY }).waitFor();

    // The value was on the screen and on the clipboard, and nowhere else.
    expect(await exposed(p.page)).not.toContain(CANARY);
    await p.settled();
    for (const response of p.responses)
      expect(response.body.includes(CANARY), `${response.method} ${response.url}`).toBe(false);
    expect(p.consoleErrors).toEqual([]);
    expect(p.pageErrors).toEqual([]);
    expect(p.cspViolations).toEqual([]);
  });

  it("opens the organisation's copy and shows member access with each member's last pull", async () => {
    await link(p.page, "Vaults").click();
    await p.page.locator(`a[href="/dashboard/orgs/acme/vaults/${vaultId}"]`).first().click();
    await p.page.getByText("organisation acme").waitFor();
    await button(p.page, "Reveal the value of API_KEY").click();
    await p.page.locator("code.value", { hasText: CANARY }).waitFor();
    await p.page.getByText(/^you \(sharing key/).waitFor();
    await p.screenshot("dashboard-views-org-vault");

    await link(p.page, "Member access").click();
    await p.page.getByRole("heading", { name: "Member access of acme" }).waitFor();
    const members = await rowsOf(p.page, "Members of acme");
    expect(members.map((row) => [row[0], row[1], row[4]])).toEqual([
      [ANN.email, "owner", "no"],
      [bob.email, "member", "no"],
    ]);
    // ann's own pull is the browser's, just now; bob pulled version 1 from his machine.
    const access = await rowsOf(p.page, "Member access to app");
    expect(access.map((row) => [row[0], row[1], row[2]!.split(":")[0]])).toEqual([
      [ANN.email, "owner", "has access"],
      [bob.email, "member", "has access"],
    ]);
    for (const row of access) expect(row[3]).toMatch(/^version 1, /);
    await p.screenshot("dashboard-views-members");
  });

  it("pages the account's audit log 50 at a time, filters it, and exports exactly the filtered rows as CSV", async () => {
    await link(p.page, "Audit log").click();
    await p.page.getByRole("heading", { name: "Audit log of your account" }).waitFor();
    await p.page.getByLabel("Action").fill("pairing.revoke_all");
    await button(p.page, "Apply filters").click();
    const caption = "Audit entries, newest first";
    await p.page.waitForFunction(
      () => document.querySelectorAll("table.audit tbody tr").length === 50,
      undefined,
      { timeout: 10_000 },
    );
    const first = await rowsOf(p.page, caption);
    expect(first.every((row) => row[1] === "pairing.revoke_all" && row[2] === ANN.email)).toBe(true);
    await p.page.getByText("Page 1").waitFor();
    expect(await button(p.page, "Newer entries").isDisabled()).toBe(true);
    await button(p.page, "Older entries").click();
    await p.page.getByText("Page 2").waitFor();
    await p.page.waitForFunction(
      (count) => document.querySelectorAll("table.audit tbody tr").length === count,
      REVOKES - 50,
    );
    const second = await rowsOf(p.page, caption);
    expect(second).toHaveLength(REVOKES - 50);
    expect(await button(p.page, "Older entries").isDisabled()).toBe(true);
    await p.screenshot("dashboard-views-audit-page-2");
    await button(p.page, "Newer entries").click();
    await p.page.getByText("Page 1").waitFor();

    const download = p.page.waitForEvent("download");
    await button(p.page, "Export CSV").click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^latchkey-audit-account-\d{4}-\d{2}-\d{2}\.csv$/);
    // A Blob of this document, never a URL that carries the rows.
    expect(file.url()).toMatch(/^blob:/);
    const csv = await readFile(await file.path(), "utf8");
    const lines = csv.split("\r\n");
    expect(lines[0]).toBe("time,action,actor,actor_id,vault,version,environment,count,metadata,id");
    expect(lines.slice(1, -1)).toHaveLength(REVOKES);
    expect(lines.slice(1, -1).every((line) => line.split(",")[1] === "pairing.revoke_all")).toBe(true);
    expect(new Set(lines.slice(1, -1).map((line) => line.split(",").at(-1))).size).toBe(REVOKES);
    expect(lines.at(-1)).toBe("");
    await p.page.getByText(`Exported ${REVOKES} entries as CSV.`).waitFor();

    // A time range after every event: nothing.
    await p.page.getByLabel("From").fill("2999-01-01T00:00");
    await button(p.page, "Apply filters").click();
    await p.page.getByText("No entry matches.").waitFor();
    await button(p.page, "Clear").click();
    await p.page.waitForFunction(() => document.querySelectorAll("table.audit tbody tr").length === 50);
  });

  it("filters the organisation's log by member and by vault, and a vault's log by environment", async () => {
    await p.page.goto(dashboard(`orgs/acme/audit`));
    await p.page.getByRole("heading", { name: "Audit log of organisation acme" }).waitFor();
    await p.page.getByLabel("Member").selectOption({ label: bob.email });
    await button(p.page, "Apply filters").click();
    await p.page.waitForFunction(() =>
      [...document.querySelectorAll("table.audit tbody tr")].every((tr) =>
        tr.textContent?.includes("bob-views@"),
      ),
    );
    const bobs = await rowsOf(p.page, "Audit entries, newest first");
    expect(bobs.map((row) => row[1])).toEqual(["org.vault.pull"]);
    await p.page.getByLabel("Member").selectOption({ label: "Anyone" });
    await p.page.getByLabel("Action").fill("org.member.add");
    await button(p.page, "Apply filters").click();
    await p.page.waitForFunction(
      () => document.querySelector("table.audit tbody tr th")?.textContent === "org.member.add",
    );
    expect((await rowsOf(p.page, "Audit entries, newest first")).map((row) => row[1])).toEqual([
      "org.member.add",
    ]);
    await p.screenshot("dashboard-views-org-audit");

    await p.page.goto(dashboard(`vaults/${vaultId}/audit`));
    await p.page.getByRole("heading", { name: /^Audit log of vault/ }).waitFor();
    await p.page.waitForFunction(() => document.querySelectorAll("table.audit tbody tr").length > 0);
    expect((await rowsOf(p.page, "Audit entries, newest first")).map((row) => row[1])).toEqual([
      "vault.push",
    ]);
    // Only CI pulls record an environment; this vault has none.
    await p.page.getByLabel("Environment").fill("production");
    await button(p.page, "Apply filters").click();
    await p.page.getByText("No entry matches.").waitFor();
  });

  it("lists pairings: one of another session is revoked with revoke-all, which ends the CLI's wait", async () => {
    const other = await signedInMachine(root, "ann-second", server, ANN);
    const { terminal } = await startCliPairing(other, ANN.password, { label: "second laptop" });
    await p.page.goto(dashboard("pairings"));
    await p.page.getByRole("heading", { name: "Pairings" }).waitFor();
    await p.page.waitForFunction(() => document.body.textContent?.includes("second laptop"));
    const rows = await rowsOf(p.page, "Pairings of your account, newest first");
    expect(rows[0]!.slice(0, 2)).toEqual(["second laptop", "pending"]);
    await p.screenshot("dashboard-views-pairings");
    await button(p.page, "Revoke the pairing second laptop").click();
    await p.page.getByText(/belongs to another session/).waitFor();
    // The server's 404 for a pairing of another session, which Chromium reports as a failed load; nothing else.
    expect(p.consoleErrors.splice(0)).toEqual([
      "error: Failed to load resource: the server responded with a status of 404 (Not Found)",
    ]);
    await button(p.page, "Revoke every unfinished pairing").click();
    await p.page.getByText("Revoked 1 unfinished pairing.").waitFor();
    await p.page.waitForFunction(() =>
      [...document.querySelectorAll("tbody tr")].some(
        (tr) => tr.textContent?.includes("second laptop") && tr.textContent.includes("revoked"),
      ),
    );
    const ended = await terminal.exited;
    expect(ended.code).not.toBe(0);
  });

  it("works with the keyboard alone on every view", async () => {
    const page = p.page;
    // A full load: the keys are gone (the vault shows locked), the session signs in again silently.
    await page.goto(dashboard());
    await page.getByRole("heading", { name: "Your vaults" }).waitFor();

    // Vaults → the organisation's members, by Tab and Enter.
    await tabTo(page, /^Member access of acme$/);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Member access of acme" }).waitFor();

    // The header's navigation: Audit log; the action filter typed and submitted with Enter; the next page.
    await tabTo(page, /^Audit log$/);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Audit log of your account" }).waitFor();
    await tabTo(page, /Action/);
    await page.keyboard.type("pairing.revoke_all");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelectorAll("table.audit tbody tr").length === 50);
    await tabTo(page, /^Older entries$/);
    await page.keyboard.press("Enter");
    await page.getByText("Page 2").waitFor();

    // Pairings: a machine's unfinished pairing revoked from the keyboard.
    const other = await signedInMachine(root, "ann-third", server, ANN);
    const { terminal } = await startCliPairing(other, ANN.password, { label: "third laptop" });
    await tabTo(page, /^Pairings$/);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.body.textContent?.includes("third laptop"));
    await tabTo(page, /^Revoke every unfinished pairing$/);
    await page.keyboard.press("Enter");
    await page.getByText("Revoked 1 unfinished pairing.").waitFor();
    expect((await terminal.exited).code).not.toBe(0);

    // Back to the vaults and into the vault: its tabs move with the arrow keys.

    await page.goto(dashboard());
    await page.getByRole("heading", { name: "Your vaults" }).waitFor();
    await tabTo(page, /^app$/);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "envSchema" }).waitFor();

    // Unlocked again (this time through the keyboard too) to reach the tabs and the reveal button.
    await tabTo(page, /^Unlock vaults$/);
    await page.keyboard.press("Enter");
    // The view first looks for a pairing to continue; the button waits for that.
    await page.waitForFunction(() =>
      [...document.querySelectorAll("button")].some(
        (b) => b.textContent === "Pair this browser" && !b.disabled,
      ),
    );
    await tabTo(page, /^Pair this browser$/);
    await page.keyboard.press("Enter");
    await page.getByLabel("Password").waitFor();
    await tabTo(page, /^Password$/);
    await page.keyboard.type(ANN.password);
    await page.keyboard.press("Enter");
    const code = (await page.locator("#pairing-code").innerText()).trim();
    const onA = onTerminal(a, ["env", "pair", code]);
    await onA.waitFor(APPROVE_QUESTION);
    onA.type("y");
    expect((await onA.exited).code).toBe(0);
    await page.getByRole("heading", { name: "This browser is unlocked" }).waitFor();
    await tabTo(page, /^Go to your vaults$/);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Your vaults" }).waitFor();
    await tabTo(page, /^app$/);
    await page.keyboard.press("Enter");
    await page.getByRole("tab", { name: "default" }).waitFor();
    await tabTo(page, /^default$/);
    await page.keyboard.press("ArrowRight");
    expect(await page.getByRole("tab", { name: "staging" }).getAttribute("aria-selected")).toBe("true");
    expect(await focusedText(page)).toBe("staging");
    await page.keyboard.press("Home");
    expect(await focusedText(page)).toBe("default");
    await tabTo(page, /^Reveal the value of API_KEY$/);
    await page.keyboard.press("Enter");
    await page.locator("code.value", { hasText: CANARY }).waitFor();
    await page.keyboard.press("Space");
    await page.locator("code.value").waitFor({ state: "detached" });
    await p.screenshot("dashboard-views-keyboard");
    expect(p.consoleErrors).toEqual([]);
    expect(p.pageErrors).toEqual([]);
  });
});

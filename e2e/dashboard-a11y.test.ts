// The dashboard's accessibility and usability in a real Chromium against the real server process, end to end in one
// run: sign in, step-up, pairing with a CLI process, a vault with a canary decrypted in the page, member access of
// an organisation vault, the audit logs, pairings, sign out everywhere. On every view, at 375 px and 1440 px wide:
// axe-core finds no serious or critical violation, the page has its header, navigation and main landmarks and one
// h1, and nothing scrolls sideways at 375 px; a screenshot of each goes to e2e/artifacts/. The step-up modal
// keeps focus inside, closes on Escape and gives focus back. After a value is revealed and copied, it is in no
// URL, title, storage, IndexedDB record, console message or response body; the clipboard is emptied 30 s after a
// copy (the page's clock moved by Playwright, no wait), unless the user copied something else meanwhile.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { horizontalOverflow, runAxe, structureOf, WIDTHS, type AxeReport } from "./support/a11y.js";
import { chromiumCheck, launchChromium, openRecordedPage, type RecordedPage } from "./support/browser.js";
import {
  latchkey,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { ok, signedInMachine } from "./support/machines.js";
import { APPROVE_QUESTION, APPROVER_DIGITS, onTerminal, shown } from "./support/pairing.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { onTerminal as asMember, projectDir } from "./support/teams.js";

const USER = { email: "dashboard-a11y@example.com", password: "dashboard a11y password for e2e" };
// A value that must never leave the page's memory and screen (and the clipboard, for 30 s): fresh every run.
const CANARY = `canary-${randomBytes(12).toString("hex")}`;
const ENV_SCHEMA = {
  API_KEY: { required: true, secret: true, description: "the payment API's key" },
  PORT: { format: "port", default: "8080" },
  SENTRY_DSN: { required: true, format: "url" },
};

describe.skipIf(
  !requirePart("the dashboard accessibility suite", chromiumCheck()) ||
    !requirePart("the dashboard accessibility suite", terminalCheck()),
)("the dashboard's accessibility, widths and where values go", () => {
  let root: string;
  let server: LatchkeyServer;
  let browser: Browser;
  let a: Machine;
  let vaultId: string;
  let p: RecordedPage;
  /** Every console message of the page, of every type. */
  const consoleLines: string[] = [];
  /** axe's counts per view and width, printed at the end for the docs. */
  const axeResults: { view: string; width: string; counts: AxeReport["counts"] }[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-dashboard-a11y-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
    browser = await launchChromium();
    a = await signedInMachine(root, "a", server, USER);
    const dir = await projectDir(root, "app", "app", JSON.stringify({ envSchema: ENV_SCHEMA }));
    ok(await latchkey(a, ["env", "set", "API_KEY"], { cwd: dir, input: CANARY }));
    ok(await latchkey(a, ["env", "set", "-e", "staging", "API_KEY"], { cwd: dir, input: "staging-key" }));
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));
    vaultId = (JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8")) as { vault: string }).vault;
    const created = await asMember({ ...USER, m: a }, ["org", "create", "acme", "--name", "Acme Corp"]);
    expect(created.code, created.output).toBe(0);
    ok(await latchkey(a, ["env", "share", "--org", "acme"], { cwd: dir }));

    p = await openRecordedPage(browser, { viewport: WIDTHS[1].viewport });
    await p.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
    p.page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  }, 240_000);
  afterAll(async () => {
    if (axeResults.length > 0) {
      const lines = axeResults.map(
        (r) =>
          `${r.view.padEnd(22)} ${r.width.padStart(4)} px: critical ${r.counts.critical}, serious ${r.counts.serious}, moderate ${r.counts.moderate}, minor ${r.counts.minor}`,
      );
      process.stdout.write(`axe-core results per view:\n${lines.join("\n")}\n`);
    }
    await browser?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const dashboard = (path = "") => `${server.url}/dashboard/${path}`;
  const button = (page: Page, name: string | RegExp) =>
    page.getByRole("button", { name, exact: typeof name === "string" });
  const link = (page: Page, name: string | RegExp) =>
    page.getByRole("link", { name, exact: typeof name === "string" });

  /**
   * The checks every view gets, at each width: axe (0 serious or critical), the landmarks and one h1 (`h1`), no
   * sideways scroll at 375 px, and a screenshot. Leaves the page at the wide width.
   */
  async function checkView(view: string, h1: string | RegExp, options: { signedIn?: boolean } = {}) {
    const signedIn = options.signedIn ?? true;
    for (const width of WIDTHS) {
      await p.page.setViewportSize(width.viewport);
      // One frame for the layout of the new width.
      await p.page.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
      // Then TableWrap's ResizeObserver: a table the new width makes scroll becomes a focusable region a frame or so
      // later (no user acts within it). Waited for, up to a limit: if it never happens, axe below says so.
      await p.page
        .waitForFunction(
          () =>
            [...document.querySelectorAll(".table-wrap")].every(
              (wrap) => wrap.scrollWidth > wrap.clientWidth === (wrap.getAttribute("tabindex") === "0"),
            ),
          undefined,
          { polling: 50, timeout: 5000 },
        )
        .catch(() => undefined);
      const report = await runAxe(p.page);
      axeResults.push({ view, width: width.name, counts: report.counts });
      expect(report.blocking, `axe on ${view} at ${width.name} px`).toEqual([]);
      const structure = await structureOf(p.page);
      expect(structure, `landmarks of ${view}`).toEqual({
        banner: 1,
        navigation: signedIn ? 1 : 0,
        main: 1,
        h1: [expect.stringMatching(h1)],
      });
      if (width.name === "375") {
        const sideways = await horizontalOverflow(p.page);
        expect(sideways, `sideways scroll of ${view} at 375 px`).toEqual({ overflow: 0, culprits: [] });
      }
      await p.screenshot(`dashboard-a11y-${view}-${width.name}`);
    }
    await p.page.setViewportSize(WIDTHS[1].viewport);
  }

  /** The element that has focus, described: its tag, its label or text, and whether it is inside a dialog. */
  const focused = (page: Page) =>
    page.evaluate(() => {
      const el = document.activeElement;
      if (el === null || el === document.body) return { tag: "body", name: "", inDialog: false };
      const label = el.id === "" ? null : document.querySelector(`label[for="${el.id}"]`);
      return {
        tag: el.tagName.toLowerCase(),
        name: (el.getAttribute("aria-label") ?? label?.textContent ?? el.textContent ?? "").trim(),
        inDialog: el.closest("dialog[open]") !== null,
      };
    });

  /** Presses Tab until `name` has focus; fails after `max` presses. */
  async function tabTo(page: Page, name: RegExp, max = 60): Promise<void> {
    for (let i = 0; i < max; i++) {
      await page.keyboard.press("Tab");
      if (name.test((await focused(page)).name)) return;
    }
    throw new Error(`Tab never reached ${name}`);
  }

  it("signs in with every view usable: the sign-in view, the vaults, a locked vault", async () => {
    await p.page.goto(dashboard());
    await button(p.page, "Sign in").waitFor();
    await checkView("sign-in", /^Latchkey dashboard$/, { signedIn: false });

    await button(p.page, "Sign in").click();
    await p.page.waitForURL(/\/interaction\//);
    await p.page.getByLabel("Email").fill(USER.email);
    await p.page.getByLabel("Password").fill(USER.password);
    await button(p.page, "Sign in").click();
    await p.page.getByRole("heading", { name: "Your vaults" }).waitFor();
    await p.page.getByRole("heading", { name: "Acme Corp (acme)" }).waitFor();
    await checkView("vaults", /^Vaults$/);

    await link(p.page, "app").first().click();
    await p.page.getByRole("heading", { name: "envSchema" }).waitFor();
    await checkView("vault-locked", /^app$/);
  });

  it("the step-up modal: focus moves in and stays in, Escape closes it and gives focus back; then the pairing", async () => {
    await link(p.page, "Unlock vaults").first().click();
    await p.page.getByRole("heading", { name: "Unlock vaults", level: 1 }).waitFor();
    await p.page.waitForFunction(() =>
      [...document.querySelectorAll("button")].some(
        (b) => b.textContent === "Pair this browser" && !b.disabled,
      ),
    );
    await checkView("unlock", /^Unlock vaults$/);

    await p.page.getByLabel(/Name this browser/).fill("a11y browser");
    await tabTo(p.page, /^Pair this browser$/);
    await p.page.keyboard.press("Enter");
    const dialog = p.page.getByRole("dialog", { name: "Confirm it is you" });
    await dialog.getByLabel("Password").waitFor();
    await expect.poll(() => focused(p.page)).toEqual({ tag: "input", name: "Password", inDialog: true });
    // Round and round with Tab and Shift+Tab: focus never leaves the dialog for the page behind it.
    const stops: string[] = [];
    for (const key of [...Array<string>(7).fill("Tab"), ...Array<string>(7).fill("Shift+Tab")]) {
      await p.page.keyboard.press(key);
      const now = await focused(p.page);
      expect(now.inDialog, `focus after ${key}: ${now.tag} ${now.name}`).toBe(true);
      stops.push(now.name);
    }
    expect(new Set(stops)).toEqual(new Set(["Password", "Continue", "Cancel"]));
    await checkView("step-up-modal", /^Unlock vaults$/);

    await p.page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await expect
      .poll(() => focused(p.page))
      .toEqual({ tag: "button", name: "Pair this browser", inDialog: false });

    // Again, all from the keyboard: Enter opens it, the password typed, Enter sends it.
    await p.page.keyboard.press("Enter");
    await dialog.getByLabel("Password").waitFor();
    // The modal moves focus to its field once the server has said which method it takes: typing before that would
    // type the password into nothing.
    await expect.poll(() => focused(p.page)).toEqual({ tag: "input", name: "Password", inDialog: true });
    await p.page.keyboard.type(USER.password);
    await p.page.keyboard.press("Enter");
    const code = (await p.page.locator("#pairing-code").innerText()).trim();
    await checkView("pairing-code", /^Unlock vaults$/);

    const onA = onTerminal(a, ["env", "pair", code]);
    await onA.waitFor(APPROVE_QUESTION);
    await p.page.locator("#pairing-digits", { hasText: shown(onA, APPROVER_DIGITS)! }).waitFor();
    await checkView("pairing-digits", /^Unlock vaults$/);
    onA.type("y");
    expect((await onA.exited).code).toBe(0);
    await p.page.getByRole("heading", { name: "This browser is unlocked" }).waitFor();
    await checkView("unlocked", /^Unlock vaults$/);
  });

  it("a vault unlocked: tabs by arrow keys, reveal and copy by keyboard; the clipboard emptied 30 s later", async () => {
    await tabTo(p.page, /^Go to your vaults$/);
    await p.page.keyboard.press("Enter");
    await p.page.getByRole("heading", { name: "Your vaults" }).waitFor();
    await tabTo(p.page, /^app$/);
    await p.page.keyboard.press("Enter");
    await p.page.getByRole("tab", { name: "default" }).waitFor();
    await tabTo(p.page, /^default$/);
    await p.page.keyboard.press("ArrowRight");
    expect(await p.page.getByRole("tab", { name: "staging" }).getAttribute("aria-selected")).toBe("true");
    expect((await focused(p.page)).name).toBe("staging");
    await p.page.keyboard.press("ArrowLeft");
    expect((await focused(p.page)).name).toBe("default");
    expect(await p.page.getByRole("tab", { name: "default" }).getAttribute("aria-selected")).toBe("true");

    await tabTo(p.page, /^Reveal the value of API_KEY$/);
    await p.page.keyboard.press("Enter");
    await p.page.locator("code.value", { hasText: CANARY }).waitFor();
    await checkView("vault-revealed", /^app$/);

    // The page's timers from here on are Playwright's, moved on by hand; the clipboard calls are watched.
    await p.page.clock.install();
    // The page's own calls are logged; the test reads and writes through the originals, unlogged.
    await p.page.evaluate(() => {
      const clipboard = navigator.clipboard;
      const log: string[] = [];
      const write = clipboard.writeText.bind(clipboard);
      const read = clipboard.readText.bind(clipboard);
      Object.assign(window, { __clipboardLog: log, __clipboard: { write, read } });
      clipboard.writeText = (text: string) => {
        log.push(text === "" ? "write empty" : "write");
        return write(text);
      };
      clipboard.readText = async () => {
        const text = await read();
        log.push("read");
        return text;
      };
    });
    type Watched = {
      __clipboardLog: string[];
      __clipboard: { write(t: string): Promise<void>; read(): Promise<string> };
    };
    const clipboardLog = () => p.page.evaluate(() => [...(window as unknown as Watched).__clipboardLog]);
    const clipboardText = () => p.page.evaluate(() => (window as unknown as Watched).__clipboard.read());

    await tabTo(p.page, /^Copy the value of API_KEY$/);
    await p.page.keyboard.press("Enter");
    await p.page.getByText("Copied the value of API_KEY. The clipboard is cleared in 30 seconds.").waitFor();
    expect(await clipboardText()).toBe(CANARY);
    await p.page.clock.runFor(29_000);
    expect(await clipboardText()).toBe(CANARY);
    await p.page.clock.runFor(1_000);
    await expect.poll(clipboardLog).toContain("write empty");
    expect(await clipboardText()).toBe("");

    // Copied again, then the user copies a line elsewhere: the clear leaves that line where it is.
    await p.page.keyboard.press("Enter");
    await expect.poll(clipboardText).toBe(CANARY);
    await p.page.evaluate(() => {
      const watched = window as unknown as Watched;
      watched.__clipboardLog.length = 0;
      return watched.__clipboard.write("a line of the user's notes");
    });
    await p.page.clock.runFor(30_000);
    // The clear read the clipboard, found the user's line, and wrote nothing.
    await expect.poll(clipboardLog).toEqual(["read"]);
    expect(await clipboardLog()).toEqual(["read"]);
    expect(await clipboardText()).toBe("a line of the user's notes");
  });

  it("the revealed and copied value is in no URL, title, storage, IndexedDB record, console message or response", async () => {
    const kept = await p.page.evaluate(async () => {
      /** A structured-clone value as text: a CryptoKey by its description, bytes as text and hex. */
      const plain = (value: unknown): unknown => {
        if (value instanceof CryptoKey) return `CryptoKey ${value.type} ${value.algorithm.name}`;
        if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
          const bytes =
            value instanceof ArrayBuffer
              ? new Uint8Array(value)
              : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
          return {
            text: new TextDecoder().decode(bytes),
            hex: [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(""),
          };
        }
        if (Array.isArray(value)) return value.map(plain);
        if (value !== null && typeof value === "object")
          return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
        return value;
      };
      const databases: Record<string, Record<string, unknown>> = {};
      for (const info of await indexedDB.databases()) {
        if (info.name === undefined) continue;
        const db = await new Promise<IDBDatabase>((resolve, reject) => {
          const request = indexedDB.open(info.name!);
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(new Error(`open ${info.name}`));
        });
        const stores: Record<string, unknown> = {};
        for (const name of db.objectStoreNames) {
          const store = db.transaction(name).objectStore(name);
          const read = <T>(request: IDBRequest<T>) =>
            new Promise<T>((resolve, reject) => {
              request.onsuccess = () => resolve(request.result);
              request.onerror = () => reject(new Error(`read ${name}`));
            });
          stores[name] = {
            keys: plain(await read(store.getAllKeys())),
            values: plain(await read(store.getAll())),
          };
        }
        db.close();
        databases[info.name] = stores;
      }
      return JSON.stringify({
        url: location.href,
        title: document.title,
        history: history.length,
        local: { ...localStorage },
        session: { ...sessionStorage },
        cookie: document.cookie,
        databases,
      });
    });
    // What was looked at: the check covers the dashboard's own database when it has one.
    expect(kept).toContain('"title":"Vault · Latchkey"');
    expect(kept).toContain('"latchkey-dashboard":{"pending-pairings":');
    expect(kept).not.toContain(CANARY);
    const canaryHex = Buffer.from(CANARY).toString("hex");
    expect(kept).not.toContain(canaryHex);

    expect(consoleLines.join("\n")).not.toContain(CANARY);
    await p.settled();
    expect(p.responses.some((r) => r.url.includes(`/api/v1/vaults/${vaultId}`))).toBe(true);
    for (const response of p.responses)
      expect(response.body.includes(CANARY), `${response.method} ${response.url}`).toBe(false);
    expect(p.cspViolations).toEqual([]);
    expect(p.pageErrors).toEqual([]);
    expect(p.consoleErrors).toEqual([]);
  });

  it("the organisation's copy, member access, the audit logs, pairings and an unknown page", async () => {
    await p.page.clock.resume();
    await link(p.page, "Vaults").click();
    await p.page.locator(`a[href="/dashboard/orgs/acme/vaults/${vaultId}"]`).first().click();
    await button(p.page, "Reveal the value of API_KEY").click();
    await p.page.locator("code.value", { hasText: CANARY }).waitFor();
    await checkView("org-vault", /^app$/);

    await link(p.page, "Member access").click();
    await p.page.getByRole("heading", { name: "Member access of acme" }).waitFor();
    await p.page.getByText("has access").first().waitFor();
    await checkView("members", /^Member access of acme$/);

    await link(p.page, "Audit log").first().click();
    await p.page.getByRole("heading", { name: "Audit log of your account" }).waitFor();
    await p.page.locator("table.audit tbody tr").first().waitFor();
    await checkView("audit-account", /^Audit log of your account$/);

    await p.page.goto(dashboard("orgs/acme/audit"));
    await p.page.locator("table.audit tbody tr").first().waitFor();
    await checkView("audit-org", /^Audit log of organisation acme$/);

    await p.page.goto(dashboard(`vaults/${vaultId}/audit`));
    await p.page.locator("table.audit tbody tr").first().waitFor();
    await checkView("audit-vault", /^Audit log of vault/);

    await link(p.page, "Pairings").click();
    await p.page.getByText("a11y browser").first().waitFor();
    await checkView("pairings", /^Pairings$/);

    await p.page.goto(dashboard("no/such/page"));
    await p.page.getByRole("heading", { name: "Page not found" }).waitFor();
    await checkView("not-found", /^Page not found$/);
    expect(p.cspViolations).toEqual([]);
    expect(p.pageErrors).toEqual([]);
  });

  it("signs out everywhere: the page's token fetches no vault any more, and a reload does not sign in", async () => {
    await p.page.goto(dashboard());
    await p.page.getByRole("heading", { name: "Your vaults" }).waitFor();
    await p.settled();
    const tokens = p.responses
      .filter((r) => new URL(r.url).pathname === "/oidc/token" && r.status === 200)
      .map((r) => (JSON.parse(r.body.toString("utf8")) as { access_token: string }).access_token);
    const last = tokens.at(-1)!;
    const vaultsWith = (token: string) =>
      p.page.evaluate(
        (bearer) =>
          fetch("/api/v1/vaults", {
            headers: {
              authorization: `Bearer ${bearer}`,
              "x-latchkey-request-id": "e2e-dashboard-a11y-0123456789",
            },
          }).then((r) => r.status),
        token,
      );
    expect(await vaultsWith(last)).toBe(200);

    await button(p.page, "Sign out everywhere").click();
    await button(p.page, "Yes, sign out everywhere").click();
    await p.page.getByText(/Signed out everywhere/).waitFor();
    await checkView("signed-out-everywhere", /^Latchkey dashboard$/, { signedIn: false });
    for (const token of tokens) expect(await vaultsWith(token)).toBe(401);
    await p.page.goto(dashboard("vaults"));
    await button(p.page, "Sign in").waitFor();
    expect(await p.page.getByRole("heading", { name: "Your vaults" }).count()).toBe(0);
  });
});

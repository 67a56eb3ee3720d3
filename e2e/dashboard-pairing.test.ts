// Pairing the browser dashboard in a real Chromium with the real server process, and a real CLI process as the
// approving machine A (docs/dashboard.md "Pairing a browser"): A pushed a vault with a canary and shared it with
// an organisation; the browser signs in, steps up (the proof set as an HttpOnly cookie the page cannot read),
// shows the code and, after A joined, the same 6 digits A shows; A approves on its terminal; the page then decrypts
// the canary of the personal copy and of the organisation's copy — while the canary crosses the wire in no
// response the page received. The waiting pairing's private key is non-extractable and a reload continues the
// same pairing; a wrong code fails at A and leaves the page waiting; a "no" on A, Cancel and leaving the view end
// the pairing cleanly; forget this browser deletes the dashboard's IndexedDB database.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumCheck, launchChromium, openRecordedPage, type RecordedPage } from "./support/browser.js";
import {
  createUser,
  latchkey,
  runServerAdmin,
  startServerWithUser,
  type Credentials,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { totp } from "./support/oidc-browser.js";
import { ok, signedInMachine } from "./support/machines.js";
import {
  APPROVE_QUESTION,
  APPROVER_DIGITS,
  listPairings,
  onTerminal,
  refusedJoin,
  shown,
} from "./support/pairing.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { onTerminal as asMember, projectDir } from "./support/teams.js";

const USER = { email: "dashboard-pairing@example.com", password: "dashboard pairing password for e2e" };
// A value that must never cross the wire in plaintext: fresh for every run.
const CANARY = `canary-${randomBytes(12).toString("hex")}`;
const DATABASE_URL = "postgres://db.internal/app";
const TOTP_USER = { email: "dashboard-totp@example.com", password: "dashboard totp password for e2e" };

describe.skipIf(
  !requirePart("the dashboard pairing suite", chromiumCheck()) ||
    !requirePart("the dashboard pairing suite", terminalCheck()),
)("pairing the dashboard with a CLI machine", () => {
  let root: string;
  let server: LatchkeyServer;
  let browser: Browser;
  let a: Machine;
  let vaultId: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-dashboard-pairing-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
    browser = await launchChromium();
    a = await signedInMachine(root, "a", server, USER);
    const dir = await projectDir(root, "app", "app");
    ok(await latchkey(a, ["env", "set", "API_TOKEN"], { cwd: dir, input: CANARY }));
    ok(await latchkey(a, ["env", "set", "DATABASE_URL"], { cwd: dir, input: DATABASE_URL }));
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));
    vaultId = (JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8")) as { vault: string }).vault;
    // An organisation of A's own: creating it registers A's sharing key (a step-up on A's terminal), which the
    // pairing then hands over with the wrapping key.
    const member = { ...USER, m: a };
    const created = await asMember(member, ["org", "create", "acme"]);
    expect(created.code, created.output).toBe(0);
    ok(await latchkey(a, ["env", "share", "--org", "acme"], { cwd: dir }));
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const dashboard = (path = "") => `${server.url}/dashboard/${path}`;

  /**
   * A page in a browser profile of its own, signed in on the server's login page (with the current code of
   * `totpSecret` on its two-step page, when given).
   */
  async function signedInPage(user: Credentials = USER, totpSecret?: string): Promise<RecordedPage> {
    const p = await openRecordedPage(browser);
    await p.page.goto(dashboard());
    await p.page.getByRole("button", { name: "Sign in", exact: true }).click();
    await p.page.waitForURL(/\/interaction\//);
    await p.page.getByLabel("Email").fill(user.email);
    await p.page.getByLabel("Password").fill(user.password);
    await p.page.getByRole("button", { name: "Sign in" }).click();
    if (totpSecret !== undefined) {
      await p.page.getByLabel("Code").fill(totp(totpSecret));
      await p.page.getByRole("button", { name: "Verify" }).click();
    }
    await p.page.locator(".account .email", { hasText: user.email }).waitFor();
    return p;
  }

  /** Opens Unlock vaults, names the browser, passes the step-up modal, and returns the code the page shows. */
  async function startPairing(p: RecordedPage, label: string): Promise<string> {
    await p.page.getByRole("link", { name: "Unlock", exact: true }).click();
    await p.page.getByRole("heading", { name: "Unlock vaults" }).waitFor();
    await p.page.getByLabel("Name this browser").fill(label);
    await p.page.getByRole("button", { name: "Pair this browser" }).click();
    const dialog = p.page.getByRole("dialog", { name: "Confirm it is you" });
    await dialog.getByLabel("Password").fill(USER.password);
    await dialog.getByRole("button", { name: "Continue" }).click();
    return codeShown(p);
  }

  async function codeShown(p: RecordedPage): Promise<string> {
    const code = p.page.locator("#pairing-code");
    await code.waitFor();
    return (await code.innerText()).trim();
  }

  /** What the dashboard keeps in IndexedDB, read by page script: the waiting pairings. */
  const pendingRecords = (p: RecordedPage) =>
    p.page.evaluate(async () => {
      const names = (await indexedDB.databases()).map((d) => d.name);
      if (!names.includes("latchkey-dashboard")) return null;
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open("latchkey-dashboard");
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(new Error("open failed"));
      });
      try {
        if (!db.objectStoreNames.contains("pending-pairings")) return [];
        const all = await new Promise<unknown[]>((resolve, reject) => {
          const req = db.transaction("pending-pairings").objectStore("pending-pairings").getAll();
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(new Error("read failed"));
        });
        const out = [];
        for (const record of all as { code: string; label: string; privateKey: CryptoKey }[]) {
          const exports = [];
          for (const format of ["pkcs8", "jwk", "raw"] as const) {
            exports.push(
              await crypto.subtle.exportKey(format, record.privateKey).then(
                () => `${format}: exported`,
                (error: unknown) => `${format}: ${(error as Error).name}`,
              ),
            );
          }
          out.push({
            code: record.code,
            label: record.label,
            type: record.privateKey.type,
            algorithm: record.privateKey.algorithm.name,
            extractable: record.privateKey.extractable,
            exports,
          });
        }
        return out;
      } finally {
        db.close();
      }
    });

  it("pairs with A's terminal: the same digits on both, a reload in between, then the canary decrypted in the page and nowhere on the wire", async () => {
    const p = await signedInPage();
    const code = await startPairing(p, "e2e browser");
    await p.screenshot("dashboard-pairing-code");
    await p.page.locator("#pairing-command", { hasText: `latchkey env pair ${code}` }).waitFor();

    // The step-up proof: set as a cookie the page cannot read, scoped to the pairing routes, never in a body.
    await p.settled();
    const stepUp = p.responses.find((r) => new URL(r.url).pathname === "/api/v1/step-up/cookie");
    expect(stepUp?.status).toBe(200);
    const setCookie = stepUp!.headers["set-cookie"] ?? "";
    expect(setCookie).toMatch(/^latchkey-step-up=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+;/);
    for (const attribute of ["Path=/api/v1/pairings", "Max-Age=300", "HttpOnly", "SameSite=Strict"])
      expect(setCookie).toContain(attribute);
    const proof = /^latchkey-step-up=([^;]+)/.exec(setCookie)![1]!;
    expect(JSON.parse(stepUp!.body.toString("utf8"))).toEqual({
      scope: "vault:pair",
      expiresAt: expect.any(String),
    });
    expect(await p.page.evaluate(() => document.cookie)).toBe("");
    // The create spent it and deleted the cookie.
    const created = p.responses.find(
      (r) => r.method === "POST" && new URL(r.url).pathname === "/api/v1/pairings",
    );
    expect(created?.status).toBe(201);
    expect(created!.headers["set-cookie"]).toMatch(/^latchkey-step-up=; .*Max-Age=0/);

    // The waiting pairing in IndexedDB: its ECDH private key cannot be exported by page script.
    expect(await pendingRecords(p)).toEqual([
      {
        code,
        label: "e2e browser",
        type: "private",
        algorithm: "ECDH",
        extractable: false,
        exports: ["pkcs8: InvalidAccessError", "jwk: InvalidAccessError", "raw: InvalidAccessError"],
      },
    ]);

    // A reload during the wait signs in again silently and continues the same pairing.
    await p.page.reload();
    expect(await codeShown(p)).toBe(code);
    expect((await listPairings(a)).filter((x) => x.label === "e2e browser")).toEqual([
      expect.objectContaining({ status: "pending" }),
    ]);

    const onA = onTerminal(a, ["env", "pair", code]);
    await onA.waitFor(APPROVE_QUESTION);
    // A has a sharing key: it says it sends both.
    expect(onA.output()).toContain("Send this machine's wrapping key and sharing key");
    expect(onA.output()).toContain('New machine:  "e2e browser"');
    const digitsOnA = shown(onA, APPROVER_DIGITS)!;
    const digits = p.page.locator("#pairing-digits");
    await digits.waitFor();
    expect((await digits.innerText()).trim()).toBe(digitsOnA);
    await p.screenshot("dashboard-pairing-digits");
    onA.type("y");
    const approved = await onA.exited;
    expect(approved.code, approved.output).toBe(0);

    await p.page.getByRole("heading", { name: "This browser is unlocked" }).waitFor();
    await p.page.getByText(/and your sharing key \(fingerprint/).waitFor();
    expect(await pendingRecords(p)).toEqual([]);
    await p.screenshot("dashboard-unlocked");

    // The personal copy, then the organisation's, decrypted in the page.
    for (const path of [`vaults/${vaultId}`, `orgs/acme/vaults/${vaultId}`]) {
      await p.page.getByRole("link", { name: "Vaults", exact: true }).click();
      await p.page.locator(`a[href="/dashboard/${path}"]`).first().click();
      await p.page.getByRole("button", { name: "Reveal the value of API_TOKEN" }).click();
      await p.page.locator("code.value", { hasText: CANARY }).waitFor();
    }
    await p.screenshot("dashboard-canary-revealed");

    // Every response the page received, from the dashboard's files to the API's answers: no canary, no proof.
    await p.settled();
    expect(p.responses.some((r) => r.url.includes(`/api/v1/vaults/${vaultId}`))).toBe(true);
    expect(p.responses.some((r) => r.url.includes(`/api/v1/orgs/acme/vaults/${vaultId}`))).toBe(true);
    for (const response of p.responses) {
      const body = response.body.toString("utf8");
      expect(body.includes(CANARY), `the canary in ${response.method} ${response.url}`).toBe(false);
      expect(body.includes(proof), `the proof in ${response.method} ${response.url}`).toBe(false);
    }
    expect(p.cspViolations).toEqual([]);
    expect(p.pageErrors).toEqual([]);
    expect(p.consoleErrors).toEqual([]);
  });

  it("a wrong code fails at A and leaves the page waiting; a no on A ends the pairing in the page cleanly", async () => {
    const p = await signedInPage();
    const code = await startPairing(p, "declined browser");
    // A code of the right shape that is not this pairing's: A is told, the page goes on waiting.
    const wrong = code === "222222" ? "333333" : "222222";
    expect(await refusedJoin(a, wrong, "LK_PAIRING_NOT_FOUND")).toBe(404);
    await p.page.locator("#pairing-code", { hasText: code }).waitFor();

    const onA = onTerminal(a, ["env", "pair", code]);
    await onA.waitFor(APPROVE_QUESTION);
    await p.page.locator("#pairing-digits").waitFor();
    onA.type("n");
    const declined = await onA.exited;
    expect(declined.code).not.toBe(0);
    expect(declined.output).toContain("Not approved: nothing was sent.");

    await p.page.getByRole("alert").filter({ hasText: "The pairing was revoked" }).waitFor();
    await p.screenshot("dashboard-pairing-declined");
    expect(await p.page.getByRole("heading", { name: "This browser is unlocked" }).count()).toBe(0);
    expect(await pendingRecords(p)).toEqual([]);
    await p.page.getByRole("button", { name: "Pair this browser" }).waitFor();
    expect(p.pageErrors).toEqual([]);
  });

  it("Cancel and leaving the view revoke the pairing; forget this browser deletes the dashboard's IndexedDB", async () => {
    const p = await signedInPage();
    await startPairing(p, "cancelled browser");
    await p.page.getByRole("button", { name: "Cancel pairing" }).click();
    await p.page.getByText("Pairing cancelled").waitFor();
    expect(await pendingRecords(p)).toEqual([]);

    await startPairing(p, "left browser");
    await p.page.getByRole("link", { name: "Vaults", exact: true }).click();
    await p.page.getByRole("heading", { name: "Vaults", exact: true }).waitFor();
    const statusOf = async (label: string) =>
      (await listPairings(a)).filter((x) => x.label === label).map((x) => x.status);
    await expect.poll(() => statusOf("cancelled browser")).toEqual(["revoked"]);
    await expect.poll(() => statusOf("left browser")).toEqual(["revoked"]);
    await expect.poll(() => pendingRecords(p)).toEqual([]);

    await startPairing(p, "forgotten browser");
    expect(await pendingRecords(p)).toHaveLength(1);
    await p.page.getByRole("button", { name: "Forget this browser" }).click();
    await p.page.getByText("This browser holds nothing of your account any more").waitFor();
    expect(await pendingRecords(p)).toBeNull();
    await expect.poll(() => statusOf("forgotten browser")).toEqual(["revoked"]);
    expect(p.pageErrors).toEqual([]);
  });

  it("asks an account with TOTP for the password and a code; a wrong password is said, and the field emptied", async () => {
    await createUser(server, TOTP_USER.email, TOTP_USER.password);
    const enrolled = await runServerAdmin(server, ["enroll-totp", TOTP_USER.email]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const secret = /secret=([A-Z2-7]+)/.exec(enrolled.stdout)![1]!;
    const p = await signedInPage(TOTP_USER, secret);
    await p.page.getByRole("link", { name: "Unlock", exact: true }).click();
    await p.page.getByRole("button", { name: "Pair this browser" }).click();
    const dialog = p.page.getByRole("dialog", { name: "Confirm it is you" });
    const password = dialog.getByLabel("Password");
    await password.fill("not the password of this account");
    await dialog.getByLabel("Code from your authenticator app").fill(totp(secret));
    await dialog.getByRole("button", { name: "Continue" }).click();
    await dialog.getByRole("alert").filter({ hasText: "The password or the code is wrong" }).waitFor();
    expect(await password.inputValue()).toBe("");
    await p.screenshot("dashboard-step-up-totp-refused");
    // Escape closes the modal, and nothing was started.
    await p.page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await p.page.getByRole("button", { name: "Pair this browser" }).click();
    await password.fill(TOTP_USER.password);
    // A code is good once: the sign-in spent this step's, so the step-up gives the next step's (the server takes one
    // step of drift either way, and only a step newer than the last one used).
    await dialog.getByLabel("Code from your authenticator app").fill(totp(secret, Date.now() + 30_000));
    await dialog.getByRole("button", { name: "Continue" }).click();
    await codeShown(p);
    await p.page.getByRole("button", { name: "Cancel pairing" }).click();
    await p.page.getByText("Pairing cancelled").waitFor();
    await p.settled();
    const stepUps = p.responses.filter((r) => new URL(r.url).pathname === "/api/v1/step-up/cookie");
    expect(stepUps.map((r) => r.status)).toEqual([403, 200]);
    expect(p.pageErrors).toEqual([]);
  });
});

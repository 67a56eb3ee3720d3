// The real browser of the dashboard suites: Debian's Chromium (/usr/bin/chromium, which .ci/run installs) driven
// headless by playwright-core, against the real server process. A page records what the dashboard must never do
// (a console error, an uncaught exception, a Content-Security-Policy violation) and every response it receives
// with its body, so a suite can check headers and grep the bytes that crossed the wire. Screenshots go to
// e2e/artifacts/ (gitignored), kept as the run's artifacts.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page, type Response } from "playwright-core";
import type { PartCheck } from "./prerequisites.js";

/** The Chromium the suites drive: LATCHKEY_CHROMIUM, else Debian's package. */
export const CHROMIUM = process.env.LATCHKEY_CHROMIUM ?? "/usr/bin/chromium";

/** Where screenshots go (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL("../artifacts/", import.meta.url));

/** Whether Chromium is installed, for requirePart (prerequisites.ts): under CI=true a missing one fails the run. */
export function chromiumCheck(): PartCheck {
  return existsSync(CHROMIUM)
    ? { ok: true }
    : { ok: false, reason: `${CHROMIUM} is missing (apt-get install chromium, as .ci/run does)` };
}

/** Launches headless Chromium; close it in an afterAll. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The suites run as root in CI, where Chromium's sandbox cannot start; /dev/shm is small in containers.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** One response the page received. */
export interface RecordedResponse {
  url: string;
  method: string;
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** The body as received; empty for redirects and bodiless answers. */
  body: Buffer;
}

/** A Content-Security-Policy violation the page reported. */
export interface CspViolation {
  directive: string;
  blockedURI: string;
  sourceFile: string;
}

/** A page with its recorders. */
export interface RecordedPage {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Console messages of type error (and warnings about the CSP), as `type: text`. */
  readonly consoleErrors: string[];
  /** Uncaught exceptions. */
  readonly pageErrors: string[];
  /** securitypolicyviolation events of any document the page loaded. */
  readonly cspViolations: CspViolation[];
  /** Every response, in order; call settled() first for the bodies still being read. */
  readonly responses: RecordedResponse[];
  /** Waits until every body read so far is recorded. */
  settled(): Promise<void>;
  /** Saves a full-page screenshot as e2e/artifacts/<name>.png. */
  screenshot(name: string): Promise<string>;
}

/**
 * A new page in a new browser context (its own cookies and storage: another browser profile) with the recorders
 * attached. `viewport` defaults to 1280×800.
 */
export async function openRecordedPage(
  browser: Browser,
  options: { viewport?: { width: number; height: number } } = {},
): Promise<RecordedPage> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 800 } });
  const page = await context.newPage();
  return recordPage(page, context);
}

/** Attaches the recorders to `page` (another tab of a context, say). */
export async function recordPage(
  page: Page,
  context: BrowserContext = page.context(),
): Promise<RecordedPage> {
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const cspViolations: CspViolation[] = [];
  const responses: RecordedResponse[] = [];
  const reading = new Set<Promise<void>>();

  page.on("console", (message) => {
    // The browser asks every page's origin for /favicon.ico by itself; the server's own sign-in pages name none.
    if (new URL(message.location().url || "about:blank").pathname === "/favicon.ico") return;
    const text = message.text();
    if (message.type() === "error" || /Content Security Policy/i.test(text))
      consoleErrors.push(`${message.type()}: ${text}`);
  });
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  // A binding is called through the DevTools protocol, which the page's CSP does not govern; the listener itself
  // is added by the browser before any script of the page runs.
  await page.exposeBinding("__latchkeyCspViolation", (_source, violation: CspViolation) => {
    cspViolations.push(violation);
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      const report = (window as unknown as Record<string, (v: unknown) => void>).__latchkeyCspViolation;
      report?.({
        directive: event.violatedDirective,
        blockedURI: event.blockedURI,
        sourceFile: event.sourceFile,
      });
    });
  });
  page.on("response", (response: Response) => {
    const read = (async () => {
      const request = response.request();
      let body: Buffer = Buffer.alloc(0);
      if (response.status() < 300 || response.status() >= 400) {
        body = await response.body().catch(() => Buffer.alloc(0));
      }
      responses.push({
        url: response.url(),
        method: request.method(),
        status: response.status(),
        headers: await response.allHeaders(),
        body,
      });
    })().catch(() => {
      // The page or browser closed while the answer was read: nothing is left to check of it.
    });
    reading.add(read);
    void read.finally(() => reading.delete(read));
  });

  return {
    page,
    context,
    consoleErrors,
    pageErrors,
    cspViolations,
    responses,
    async settled() {
      while (reading.size > 0) await Promise.allSettled([...reading]);
    },
    async screenshot(name) {
      await mkdir(ARTIFACTS, { recursive: true });
      const path = `${ARTIFACTS}${name}.png`;
      await page.screenshot({ path, fullPage: true });
      return path;
    },
  };
}

// A scripted browser for the SSO suites: plain fetch with a cookie jar, redirects followed by hand, HTML forms
// found in oidc-provider's pages and submitted like a person would. It drives the real provider's devInteractions
// login and consent pages, latchkey-server's own sign-in pages (email + password, then a TOTP code when the
// account has one) and the device flow's code pages, and finally GETs the loopback redirect, so the CLI's
// listener sees exactly what a browser would send.
//
// As a program (`node oidc-browser.ts URL`) it is the BROWSER the CLI spawns: writeBrowserLauncher makes a
// one-line executable that runs it with this Node. Behaviour comes from the environment the CLI passes on:
//   OIDC_BROWSER_MODE    login (default) | abort (press "abort" on the login page: an error callback)
//                        | forge-state (change `state` on the way back to the loopback listener)
//   OIDC_BROWSER_LOG     a file to append one JSON line to: what the browser saw (status, no secrets)
//   OIDC_BROWSER_LOGIN / OIDC_BROWSER_PASSWORD   the login (or email) and password typed into the login form
//   OIDC_BROWSER_TOTP_SECRET                     base32 TOTP secret: the code typed into a TOTP form
// Runs under Node's type stripping: erasable TypeScript only, no imports outside node:.
import { createHmac } from "node:crypto";
import { appendFile, chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** How the scripted user behaves. */
export type BrowserMode = "login" | "abort" | "forge-state";

/** Options of one browsing session. */
export interface BrowseOptions {
  readonly login: string;
  readonly password: string;
  readonly mode?: BrowserMode;
  /** The device flow's user code, typed into the verification page. */
  readonly userCode?: string;
  /** Base32 TOTP secret of the account: a form with a `code` field gets the current code (RFC 6238). */
  readonly totpSecret?: string;
  /** Overrides the code typed into a TOTP form (e.g. a wrong one). */
  readonly totpCode?: string;
}

/** The current RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret. */
export function totp(secret: string, at: number = Date.now()): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secret.replace(/=+$/, "").toUpperCase()) {
    const index = alphabet.indexOf(char);
    if (index === -1) throw new Error("the TOTP secret is not base32");
    bits += index.toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g)!.map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, "0");
}

/** What the browser ended on. */
export interface BrowseResult {
  /** Every URL visited, in order (query strings cut off: they may hold codes). */
  readonly visited: readonly string[];
  /** Status and body of the last page. */
  readonly status: number;
  readonly body: string;
  /** The last URL (query cut). */
  readonly finalUrl: string;
}

interface Form {
  readonly action: string;
  readonly fields: Map<string, string>;
}

const MAX_STEPS = 25;

function withoutQuery(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}\\s*=\\s*"([^"]*)"`, "i").exec(tag);
  return match?.[1]?.replaceAll("&amp;", "&").replaceAll("&quot;", '"').replaceAll("&#x2F;", "/");
}

/** The first POST form of a page, with the names and values of its inputs. */
function findForm(html: string, base: string): Form | undefined {
  const formMatch = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!formMatch) return undefined;
  const tag = /<form\b[^>]*>/i.exec(formMatch[0])![0];
  if ((attribute(tag, "method") ?? "get").toLowerCase() !== "post") return undefined;
  const fields = new Map<string, string>();
  for (const input of formMatch[1]!.matchAll(/<input\b[^>]*>/gi)) {
    const name = attribute(input[0], "name");
    if (name !== undefined) fields.set(name, attribute(input[0], "value") ?? "");
  }
  return { action: new URL(attribute(tag, "action") ?? base, base).href, fields };
}

/** Cookies per host, as a browser keeps them (enough for the providers these suites drive). */
export class CookieJar {
  private readonly cookies = new Map<string, Map<string, string>>();

  header(url: string): string | undefined {
    const jar = this.cookies.get(new URL(url).host);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  store(url: string, response: Response): void {
    const host = new URL(url).host;
    const jar = this.cookies.get(host) ?? new Map<string, string>();
    for (const line of response.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === "") jar.delete(name);
      else jar.set(name, value);
    }
    this.cookies.set(host, jar);
  }
}

/**
 * Browses from `startUrl` until a page without a form (or the loopback callback's answer): follows redirects,
 * fills the login form (login, password), submits consent and device confirmation forms, and types the user code.
 */
export async function browse(startUrl: string, options: BrowseOptions): Promise<BrowseResult> {
  const jar = new CookieJar();
  const visited: string[] = [];
  const mode = options.mode ?? "login";
  const providerOrigin = new URL(startUrl).origin;
  let request: { url: string; method: "GET" | "POST"; body?: URLSearchParams } = {
    url: startUrl,
    method: "GET",
  };
  for (let step = 0; step < MAX_STEPS; step++) {
    visited.push(`${request.method} ${withoutQuery(request.url)}`);
    const headers: Record<string, string> = { accept: "text/html" };
    const cookie = jar.header(request.url);
    if (cookie) headers.cookie = cookie;
    if (request.body) headers["content-type"] = "application/x-www-form-urlencoded";
    const response = await fetch(request.url, {
      method: request.method,
      headers,
      redirect: "manual",
      ...(request.body ? { body: request.body.toString() } : {}),
    });
    jar.store(request.url, response);
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, request.url);
      if (mode === "forge-state" && next.origin !== providerOrigin && next.searchParams.has("state")) {
        next.searchParams.set("state", "forged-by-the-test-browser");
      }
      await response.arrayBuffer();
      request = { url: next.href, method: "GET" };
      continue;
    }
    const body = await response.text();
    const form = new URL(request.url).origin === providerOrigin ? findForm(body, request.url) : undefined;
    // A form answered with a 4xx (wrong password or code, rate limit) is where a person would stop too: typing the
    // same thing again would only fail again.
    if (form === undefined || (request.method === "POST" && response.status >= 400)) {
      return { visited, status: response.status, body, finalUrl: withoutQuery(request.url) };
    }
    if (mode === "abort" && form.fields.get("prompt") === "login") {
      request = { url: `${withoutQuery(request.url).replace(/\/$/, "")}/abort`, method: "GET" };
      continue;
    }
    const fields = new URLSearchParams();
    for (const [name, value] of form.fields) fields.set(name, value);
    if (form.fields.has("login")) fields.set("login", options.login);
    if (form.fields.has("email")) fields.set("email", options.login);
    if (form.fields.has("code") && form.fields.has("ticket")) {
      const code =
        options.totpCode ?? (options.totpSecret === undefined ? undefined : totp(options.totpSecret));
      if (code === undefined) throw new Error("the page asks for a TOTP code and no secret was given");
      fields.set("code", code);
    }
    if (form.fields.has("password")) fields.set("password", options.password);
    if (form.fields.has("user_code") && fields.get("user_code") === "") {
      if (options.userCode === undefined) throw new Error("the page asks for a user code and none was given");
      fields.set("user_code", options.userCode);
    }
    request = { url: form.action, method: "POST", body: fields };
  }
  throw new Error(`the browser did not settle within ${MAX_STEPS} steps: ${visited.join(" → ")}`);
}

/**
 * Writes an executable that runs this module as a program with the current Node, for the CLI's BROWSER variable
 * (which names one program and receives the URL as its argument).
 */
export async function writeBrowserLauncher(dir: string): Promise<string> {
  const script = fileURLToPath(import.meta.url);
  const path = join(dir, "test-browser");
  await writeFile(path, `#!/bin/sh\nexec "${process.execPath}" "${script}" "$@"\n`);
  await chmod(path, 0o755);
  return path;
}

async function main(): Promise<void> {
  const url = process.argv[2];
  if (url === undefined) throw new Error("usage: oidc-browser.ts URL");
  const mode = (process.env.OIDC_BROWSER_MODE ?? "login") as BrowserMode;
  const result = await browse(url, {
    login: process.env.OIDC_BROWSER_LOGIN ?? "alice",
    password: process.env.OIDC_BROWSER_PASSWORD ?? "password",
    mode,
    ...(process.env.OIDC_BROWSER_TOTP_SECRET ? { totpSecret: process.env.OIDC_BROWSER_TOTP_SECRET } : {}),
  });
  const log = process.env.OIDC_BROWSER_LOG;
  if (log) {
    const line = {
      argv: process.argv.slice(2).map(withoutQuery),
      visited: result.visited,
      status: result.status,
      finalUrl: result.finalUrl,
    };
    await appendFile(log, `${JSON.stringify(line)}\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`test browser: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}

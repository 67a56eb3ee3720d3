// git's credential-helper protocol (gitcredentials(7), "CUSTOM HELPERS"; git-credential(1), "INPUT/OUTPUT FORMAT"):
// git runs `<helper> get|store|erase` and writes `key=value` lines on its stdin, ended by a blank line or EOF.
//
// The parser is deliberately stricter than git's own. git tolerates a lot (a later `url=` silently replaces earlier
// fields, any byte but LF and NUL in a value); a helper that hands out passwords must not, because every place where
// two parsers could read one input differently is a place where a credential could leave for the wrong host. So
// anything ambiguous is rejected rather than interpreted: CR, NUL, lines without `=`, repeated single-valued keys,
// hosts not already in canonical form, and `url=` values that git and the WHATWG URL parser would read differently.
//
// Imported by the fast path: no dependency beyond the error catalogue.
import { LatchkeyError } from "@latchkey/core";
import type { Keystore } from "../keystore/types.js";

/** The protocols Latchkey answers for. Everything else git may ask about (smtp, cert, …) is refused. */
export type GitProtocol = "http" | "https";

/** One credential description from git, validated and normalised. */
export interface GitCredentialRequest {
  readonly protocol: GitProtocol;
  /** The host in canonical form: lower-case ASCII name (or IP literal), plus `:port` when git gave one. */
  readonly host: string;
  /** The repository path (no leading or trailing slash), sent by git only when `credential.useHttpPath` is on. */
  readonly path?: string;
  readonly username?: string;
  readonly password?: string;
  /** Unix seconds (git ≥ 2.41): after this the password is no longer valid. */
  readonly passwordExpiryUtc?: string;
  /** An OAuth refresh token that goes with an OAuth access token in `password`; as secret as the password. */
  readonly oauthRefreshToken?: string;
  /** git ≥ 2.46: the credential is single-use and must not be stored. */
  readonly ephemeral: boolean;
}

/** What Latchkey keeps in the keystore under a `git:` account, as JSON. */
export interface StoredGitCredential {
  readonly username: string;
  readonly password: string;
  readonly passwordExpiryUtc?: string;
  readonly oauthRefreshToken?: string;
}

// git-credential(1): "A line, including the trailing newline, may not exceed 65535 bytes".
const MAX_LINE_BYTES = 65535;
// Far above any real description (a few short lines plus wwwauth[] headers), far below memory trouble.
const MAX_INPUT_BYTES = 1 << 20;

const KEY = /^[A-Za-z0-9_.-]+(\[\])?$/;
// Names git documents; only these are ever named in an error (an unknown "key" could be a pasted secret).
const KNOWN_KEYS = new Set([
  "protocol",
  "host",
  "path",
  "username",
  "password",
  "url",
  "password_expiry_utc",
  "oauth_refresh_token",
  "authtype",
  "credential",
  "ephemeral",
  "continue",
  "quit",
]);
/** Whether `text` has a C0 control character or DEL (never part of a host, path or user name). */
function hasControl(text: string, orSpace = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || (orSpace && code === 0x20)) return true;
  }
  return false;
}

function invalid(message: string): never {
  throw new LatchkeyError("LK_HELPER_INPUT_INVALID", { message });
}

function isProtocol(value: string): value is GitProtocol {
  return value === "https" || value === "http";
}

const HOST_SHAPE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9_.-]*)(?::([0-9]+))?$/;

function defaultPort(protocol: GitProtocol): string {
  return protocol === "https" ? "443" : "80";
}

/**
 * The canonical form of a host as git sends it (`name[:port]`), or LK_HELPER_INPUT_INVALID. Only hosts already in
 * the form the WHATWG URL parser produces are accepted (ASCII case aside): no percent-encoding, no Unicode (use the
 * punycode form), no shortened or octal IPv4, no userinfo, no leading-zero ports. Such hosts are refused rather
 * than converted, because a conversion that differs from curl's would make two different hosts look alike. The
 * port is kept as given, so `example.com` and `example.com:443` stay two identities, as they are to git.
 */
export function canonicalHost(protocol: GitProtocol, raw: string): string {
  const match = HOST_SHAPE.exec(raw);
  if (!match) {
    invalid("The host is not a plain host name, IPv4 address or [IPv6] address with an optional port.");
  }
  const name = match[1]!.toLowerCase();
  const port = match[2];
  if (port !== undefined && (!/^[1-9][0-9]{0,4}$/.test(port) || Number(port) > 65535)) {
    invalid("The host's port is not a number from 1 to 65535 without leading zeros.");
  }
  let parsed: URL;
  try {
    parsed = new URL(`${protocol}://${name}${port === undefined ? "" : `:${port}`}/`);
  } catch {
    invalid("The host is not a valid URL host.");
  }
  if (
    parsed.hostname !== name ||
    (parsed.port || defaultPort(protocol)) !== (port ?? defaultPort(protocol))
  ) {
    invalid(
      "The host is not in canonical form (ASCII, punycode for international names, dotted-quad IPv4, " +
        "compressed IPv6).",
    );
  }
  return port === undefined ? name : `${name}:${port}`;
}

/** A repository path as git sends it: relative, no empty, `.` or `..` segments, no control characters. */
function checkPath(path: string): string {
  if (path === "") invalid("The path is empty.");
  if (hasControl(path) || path.includes("\\")) {
    invalid("The path contains a control character or a backslash.");
  }
  for (const segment of path.split("/")) {
    if (segment === "" || segment === "." || segment === "..") {
      invalid("The path has an empty, `.` or `..` segment, or a leading or trailing slash.");
    }
  }
  return path;
}

function checkUsername(username: string): string {
  if (hasControl(username)) invalid("The username contains a control character.");
  return username;
}

function checkPassword(password: string, what = "password"): string {
  if (/[\r\n\0]/.test(password)) invalid(`The ${what} contains a line break or NUL.`);
  return password;
}

function percentDecode(value: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    invalid(`The url's ${what} has a malformed percent-encoding.`);
  }
}

/** git's boolean spellings (git-config(1), "true"/"yes"/"on"/"1" and their opposites). */
function gitBool(key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === "true" || v === "yes" || v === "on" || v === "1") return true;
  if (v === "false" || v === "no" || v === "off" || v === "0" || v === "") return false;
  invalid(`The ${key} attribute is not a boolean.`);
}

interface UrlParts {
  protocol: GitProtocol;
  host: string;
  path?: string;
  username?: string;
  password?: string;
}

/**
 * Parses `url=` the way git does (credential_from_url: scheme, optional `user[:password]@`, host up to the first
 * `/`, then the path with its slashes trimmed, everything percent-decoded), then parses it again with WHATWG URL
 * and refuses the value unless both agree on every part. Inputs where they could differ are refused up front:
 * whitespace and control characters (WHATWG silently strips tabs and newlines), backslashes (a path separator to
 * WHATWG, not to git), query and fragment, several `@`, percent-encoded hosts.
 */
function parseCredentialUrl(value: string): UrlParts {
  if (hasControl(value, true) || value.includes("\\")) {
    invalid("The url contains whitespace, a control character or a backslash.");
  }
  if (/[?#]/.test(value)) invalid("The url has a query or fragment.");
  const schemeEnd = value.indexOf("://");
  if (schemeEnd <= 0) invalid("The url has no scheme.");
  const scheme = value.slice(0, schemeEnd);
  if (!isProtocol(scheme)) invalid("The url's protocol is not one Latchkey answers for (http or https).");
  const rest = value.slice(schemeEnd + 3);
  const slash = rest.indexOf("/");
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const rawPath = slash === -1 ? "" : rest.slice(slash);
  const at = authority.split("@");
  if (at.length > 2) invalid("The url has more than one `@` before its path.");
  const userinfo = at.length === 2 ? at[0]! : undefined;
  const hostPart = at.length === 2 ? at[1]! : authority;
  if (hostPart === "") invalid("The url has no host.");
  if (hostPart.includes("%")) invalid("The url's host is percent-encoded.");
  if (userinfo === "") invalid("The url has an empty user name before `@`.");
  const host = canonicalHost(scheme, hostPart);

  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":");
    username = checkUsername(percentDecode(colon === -1 ? userinfo : userinfo.slice(0, colon), "user name"));
    if (colon !== -1) password = checkPassword(percentDecode(userinfo.slice(colon + 1), "password"));
  }
  const trimmed = rawPath.replace(/^\/+/, "").replace(/\/+$/, "");
  const path = trimmed === "" ? undefined : checkPath(percentDecode(trimmed, "path"));

  let whatwg: URL;
  try {
    whatwg = new URL(value);
  } catch {
    invalid("The url is not a valid URL.");
  }
  const [hostName, hostPort] = splitHost(host);
  const whatwgPath = percentDecode(whatwg.pathname, "path").replace(/^\/+/, "").replace(/\/+$/, "");
  const agrees =
    whatwg.protocol === `${scheme}:` &&
    whatwg.hostname === hostName &&
    (whatwg.port || defaultPort(scheme)) === (hostPort ?? defaultPort(scheme)) &&
    percentDecode(whatwg.username, "user name") === (username ?? "") &&
    percentDecode(whatwg.password, "password") === (password ?? "") &&
    whatwgPath === (path ?? "");
  if (!agrees) invalid("The url is ambiguous: URL parsers disagree on its parts.");
  return { protocol: scheme, host, path, username, password };
}

function splitHost(host: string): [string, string | undefined] {
  const match = /^(.*?)(?::([0-9]+))?$/.exec(host)!;
  return [match[1]!, match[2]];
}

/** Splits raw input into attributes, enforcing the line rules; values are not interpreted yet. */
function readAttributes(input: Uint8Array): Map<string, string> {
  if (input.length > MAX_INPUT_BYTES) invalid("The input is larger than 1 MiB.");
  let lineStart = 0;
  let line = 1;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i];
    if (byte === 0) invalid(`Line ${line} contains a NUL byte.`);
    if (byte === 13) invalid(`Line ${line} contains a carriage return (CR); lines end with LF alone.`);
    if (byte === 10) {
      if (i + 1 - lineStart > MAX_LINE_BYTES) invalid(`Line ${line} is longer than 65535 bytes.`);
      lineStart = i + 1;
      line++;
    }
  }
  if (input.length - lineStart > MAX_LINE_BYTES) invalid(`Line ${line} is longer than 65535 bytes.`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(input);
  } catch {
    invalid("The input is not valid UTF-8.");
  }
  const lines = text.split("\n");
  // A final LF ends the last line; it does not start an empty one.
  if (lines.at(-1) === "") lines.pop();
  const attributes = new Map<string, string>();
  for (const [index, content] of lines.entries()) {
    if (content === "") {
      // The blank line ends the description; anything after it would be a second one, which git never sends.
      if (index !== lines.length - 1)
        invalid(`Line ${index + 2} follows the blank line that ends the input.`);
      break;
    }
    const eq = content.indexOf("=");
    if (eq === -1) invalid(`Line ${index + 1} has no \`=\`.`);
    const key = content.slice(0, eq);
    if (!KEY.test(key)) invalid(`Line ${index + 1} has a malformed attribute name.`);
    // Multi-valued attributes (capability[], wwwauth[], state[]) only inform helpers that use them.
    if (key.endsWith("[]")) continue;
    if (attributes.has(key)) {
      invalid(
        KNOWN_KEYS.has(key)
          ? `The attribute \`${key}\` is given more than once.`
          : `The attribute on line ${index + 1} is given more than once.`,
      );
    }
    attributes.set(key, content.slice(eq + 1));
  }
  return attributes;
}

/**
 * Parses and validates one credential description from git. Throws LK_HELPER_INPUT_INVALID (whose message never
 * contains a value from the input) for anything malformed, ambiguous or outside http(s).
 */
export function parseGitCredentialInput(input: Uint8Array): GitCredentialRequest {
  const attributes = readAttributes(input);
  const explicitProtocol = attributes.get("protocol");
  if (explicitProtocol !== undefined && !isProtocol(explicitProtocol)) {
    invalid("The protocol is not one Latchkey answers for (http or https).");
  }
  const rawUrl = attributes.get("url");
  const fromUrl = rawUrl === undefined ? undefined : parseCredentialUrl(rawUrl);

  const protocol = explicitProtocol ?? fromUrl?.protocol;
  if (protocol === undefined) invalid("The input has no protocol.");
  const rawHost = attributes.get("host");
  if (rawHost === undefined && fromUrl === undefined) invalid("The input has no host.");
  if (rawHost === "") invalid("The host is empty.");
  const explicit: Omit<UrlParts, "protocol" | "host"> & { protocol?: string; host?: string } = {
    protocol: explicitProtocol,
    host: rawHost === undefined ? undefined : canonicalHost(protocol, rawHost),
    path: attributes.has("path") ? checkPath(attributes.get("path")!) : undefined,
    username: attributes.has("username") ? checkUsername(attributes.get("username")!) : undefined,
    password: attributes.has("password") ? checkPassword(attributes.get("password")!) : undefined,
  };
  if (fromUrl !== undefined) {
    for (const field of ["protocol", "host", "path", "username", "password"] as const) {
      const a = explicit[field];
      const b = fromUrl[field];
      if (a !== undefined && b !== undefined && a !== b) {
        invalid(`The url and the \`${field}\` attribute disagree.`);
      }
    }
  }
  const host = explicit.host ?? fromUrl!.host;
  const expiry = attributes.get("password_expiry_utc");
  if (expiry !== undefined && !/^[0-9]{1,19}$/.test(expiry)) {
    invalid("The password_expiry_utc attribute is not a number of seconds.");
  }
  const refresh = attributes.get("oauth_refresh_token");
  const ephemeral = attributes.get("ephemeral");
  const request: {
    -readonly [K in keyof GitCredentialRequest]: GitCredentialRequest[K];
  } = {
    protocol,
    host,
    ephemeral: ephemeral === undefined ? false : gitBool("ephemeral", ephemeral),
  };
  const path = explicit.path ?? fromUrl?.path;
  const username = explicit.username ?? fromUrl?.username;
  const password = explicit.password ?? fromUrl?.password;
  if (path !== undefined) request.path = path;
  if (username !== undefined) request.username = username;
  if (password !== undefined) request.password = password;
  if (expiry !== undefined) request.passwordExpiryUtc = expiry;
  if (refresh !== undefined) request.oauthRefreshToken = checkPassword(refresh, "OAuth refresh token");
  return request;
}

/**
 * The keystore account of a credential: `git:<protocol>://<host>[/<path>]`. A host cannot contain `/`, so the
 * first `/` after the host always starts the path and two different identities never share an account.
 */
export function gitAccount(identity: { protocol: GitProtocol; host: string; path?: string }): string {
  return `git:${identity.protocol}://${identity.host}${identity.path === undefined ? "" : `/${identity.path}`}`;
}

function corrupt(account: string): never {
  throw new LatchkeyError("LK_STORE_CORRUPT", {
    message: `The keystore entry ${account} is not a git credential.`,
    hint: `Remove it with \`latchkey keystore delete ${account}\` and let git store the credential again.`,
  });
}

/** Reads a stored entry back, refusing anything that could inject lines into git's input. */
export function parseStoredCredential(account: string, value: string): StoredGitCredential {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    corrupt(account);
  }
  if (typeof parsed !== "object" || parsed === null) corrupt(account);
  const { username, password, passwordExpiryUtc, oauthRefreshToken } = parsed as Record<string, unknown>;
  const lineSafe = (v: unknown): v is string => typeof v === "string" && !/[\r\n\0]/.test(v);
  if (!lineSafe(username) || hasControl(username) || !lineSafe(password) || password === "") {
    corrupt(account);
  }
  if (
    passwordExpiryUtc !== undefined &&
    !(typeof passwordExpiryUtc === "string" && /^[0-9]{1,19}$/.test(passwordExpiryUtc))
  ) {
    corrupt(account);
  }
  if (oauthRefreshToken !== undefined && !lineSafe(oauthRefreshToken)) corrupt(account);
  return {
    username,
    password,
    ...(passwordExpiryUtc === undefined ? {} : { passwordExpiryUtc }),
    ...(oauthRefreshToken === undefined ? {} : { oauthRefreshToken }),
  };
}

/** The answer to `get`: only the attributes a helper should set (gitcredentials(7): username and password). */
export function formatGitCredentialOutput(stored: StoredGitCredential): string {
  let out = `username=${stored.username}\npassword=${stored.password}\n`;
  if (stored.passwordExpiryUtc !== undefined) out += `password_expiry_utc=${stored.passwordExpiryUtc}\n`;
  if (stored.oauthRefreshToken !== undefined) out += `oauth_refresh_token=${stored.oauthRefreshToken}\n`;
  return out;
}

// Compares without an early exit, so the time taken does not tell how much of a guessed password was right.
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * `get`: the stored credential for exactly this protocol, host and path (no prefix, parent path or other port),
 * formatted for git, or null when there is none, its user name differs from the one git already has, or it has
 * expired. `now` is only called for a credential that carries an expiry.
 */
export async function gitCredentialGet(
  keystore: Keystore,
  request: GitCredentialRequest,
  now: () => number,
): Promise<string | null> {
  const account = gitAccount(request);
  const value = await keystore.get(account);
  if (value === null) return null;
  const stored = parseStoredCredential(account, value);
  if (request.username !== undefined && request.username !== stored.username) return null;
  if (stored.passwordExpiryUtc !== undefined && Number(stored.passwordExpiryUtc) * 1000 <= now()) return null;
  return formatGitCredentialOutput(stored);
}

/**
 * `store`: keeps what git used successfully. Like git's own helpers it quietly does nothing without both a user
 * name and a password, and it never keeps an ephemeral credential. Returns whether the keystore was written (an
 * unchanged credential is not rewritten: git sends `store` after every successful fetch and push).
 */
export async function gitCredentialStore(
  keystore: Keystore,
  request: GitCredentialRequest,
): Promise<boolean> {
  if (request.ephemeral || request.username === undefined || request.password === undefined) return false;
  if (request.password === "") return false;
  const stored: StoredGitCredential = {
    username: request.username,
    password: request.password,
    ...(request.passwordExpiryUtc === undefined ? {} : { passwordExpiryUtc: request.passwordExpiryUtc }),
    ...(request.oauthRefreshToken === undefined ? {} : { oauthRefreshToken: request.oauthRefreshToken }),
  };
  const account = gitAccount(request);
  const value = JSON.stringify(stored);
  if ((await keystore.get(account)) === value) return false;
  await keystore.set(account, value);
  return true;
}

/**
 * `erase`: removes the credential stored for exactly this protocol, host and path, and only when it is the one git
 * is rejecting: the user name must be the stored one when git sends one, and the password likewise (git's own
 * store and cache helpers erase only on a password match since git 2.42, so a stale rejection cannot remove a newer credential).
 * Returns whether something was removed.
 */
export async function gitCredentialErase(
  keystore: Keystore,
  request: GitCredentialRequest,
): Promise<boolean> {
  const account = gitAccount(request);
  const value = await keystore.get(account);
  if (value === null) return false;
  const stored = parseStoredCredential(account, value);
  if (request.username !== undefined && request.username !== stored.username) return false;
  if (request.password !== undefined && !sameSecret(request.password, stored.password)) return false;
  return keystore.delete(account);
}

// A registry's identity. npm keys per-registry settings by the "nerf dart" of the registry URL (@npmcli/config's
// nerf-dart.js): the URL without scheme, userinfo, query or fragment. Latchkey uses the same key for keystore
// accounts, so `//host/path/:_authToken` lines in .npmrc and Latchkey's accounts name registries alike.
import { LatchkeyError } from "@latchkey/core";
import type { NerfDart, RegistryKind } from "./types.js";

/** The registries Latchkey knows by name (`--npm`, `--github`, `--gitlab`). */
export const KNOWN_REGISTRIES = {
  npm: "https://registry.npmjs.org/",
  github: "https://npm.pkg.github.com/",
  gitlab: "https://gitlab.com/api/v4/packages/npm/",
} as const;

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443" };

function invalid(input: string, why: string): LatchkeyError {
  // The input may be a token pasted in the wrong place: it is repeated only when it looks like a URL at all,
  // and never with its user info (which may hold a password).
  const urlLike = input.includes("://") || input.trim().startsWith("//");
  const safe = input.replace(/\/\/[^/@]*@/, "//");
  const shown = urlLike && safe.length <= 200 && !/[\s\p{Cc}]/u.test(safe) ? ` "${safe}"` : "";
  return new LatchkeyError("LK_REGISTRY_INVALID", { message: `Invalid registry URL${shown}: ${why}.` });
}

/**
 * The port written in a URL's authority, whether or not it is the scheme's default. WHATWG URL parsing drops a
 * default port, which would make `//host:443/` (an http registry on port 443) and `//host/` the same key.
 */
function explicitPort(authority: string): string | null {
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  const match = /:(\d*)$/.exec(hostPort);
  // "[::1]" ends in "]", so an IPv6 literal without a port never matches.
  return match && match[1] !== "" ? String(Number(match[1])) : null;
}

/**
 * The nerf dart of a registry URL: `//host[:port]/path/`, host lower-cased, the scheme's default port dropped,
 * the path kept (dot segments resolved) and ending in `/`, no userinfo, query or fragment. Also accepts a nerf
 * dart, so `nerfDart(nerfDart(u)) === nerfDart(u)`. Throws LK_REGISTRY_INVALID for anything but http(s).
 */
export function nerfDart(url: string): NerfDart {
  const text = url.trim();
  if (text === "") throw invalid(url, "it is empty");
  const isNerf = text.startsWith("//");
  let parsed: URL;
  try {
    // A nerf dart has no scheme; its port, if written, is kept below whatever scheme is assumed here.
    parsed = new URL(isNerf ? `https:${text}` : text);
  } catch {
    throw invalid(url, "it is not a URL (give the full URL, e.g. https://npm.example.com/)");
  }
  if (!isNerf && parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw invalid(url, `only http and https registries are supported, not ${parsed.protocol.slice(0, -1)}`);
  }
  if (parsed.hostname === "") throw invalid(url, "it has no host");
  let port = parsed.port;
  if (isNerf) {
    const authority = /^\/\/([^/?#]*)/.exec(text)?.[1] ?? "";
    port = explicitPort(authority) ?? "";
  } else if (port === DEFAULT_PORTS[parsed.protocol]) {
    port = "";
  }
  const path = parsed.pathname.endsWith("/") ? parsed.pathname : `${parsed.pathname}/`;
  return `//${parsed.hostname}${port === "" ? "" : `:${port}`}${path}`;
}

/** The keystore account holding a registry's token. */
export function registryAccount(nerf: NerfDart): string {
  return `registry:${nerf}`;
}

/** The prefix of every registry account, for listing them. */
export const REGISTRY_ACCOUNT_PREFIX = "registry:";

/** The nerf dart in a registry account name, or null when the account is not a registry's. */
export function accountNerfDart(account: string): NerfDart | null {
  if (!account.startsWith(REGISTRY_ACCOUNT_PREFIX)) return null;
  const rest = account.slice(REGISTRY_ACCOUNT_PREFIX.length);
  try {
    return nerfDart(rest) === rest ? rest : null;
  } catch {
    return null;
  }
}

/** The host (with a port when one is written) of a nerf dart, e.g. `npm.pkg.github.com`. */
export function nerfHost(nerf: NerfDart): string {
  return nerf.slice(2, nerf.indexOf("/", 2));
}

/** The host name without a port. */
export function nerfHostname(nerf: NerfDart): string {
  const host = nerfHost(nerf);
  return host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
}

/** Whether a nerf dart's host is this machine (localhost, 127.0.0.0/8, [::1]): plain http to it stays local. */
export function isLoopbackNerfDart(nerf: NerfDart): boolean {
  const host = nerfHostname(nerf);
  return host === "localhost" || host === "[::1]" || /^127(?:\.\d{1,3}){3}$/.test(host);
}

// GitLab serves npm packages at /api/v4/packages/npm/ (instance level), /api/v4/projects/ID/packages/npm/ and
// /api/v4/groups/ID/-/packages/npm/; a self-managed instance may sit under a relative URL root.
const GITLAB_PATH = /\/api\/v4\/(?:(?:projects|groups)\/[^/]+\/(?:-\/)?)?packages\/npm\/$/;

/**
 * What kind of registry a nerf dart names, from its shape alone: npmjs, GitHub Packages, GitLab (gitlab.com, or
 * any host with GitLab's npm API path), else custom. Shape is not trust: sources.ts only hands a GitLab variable
 * to gitlab.com, to hosts the user's own config declares, and to the CI server that issued CI_JOB_TOKEN.
 */
export function registryKind(nerf: NerfDart): RegistryKind {
  const hostname = nerfHostname(nerf);
  if (hostname === "registry.npmjs.org") return "npm";
  if (hostname === "npm.pkg.github.com") return "github";
  if (GITLAB_PATH.test(nerf.slice(nerf.indexOf("/", 2)))) return "gitlab";
  return "custom";
}

/** The nerf dart of a known registry by kind. */
export function knownRegistry(kind: Exclude<RegistryKind, "custom">): NerfDart {
  return nerfDart(KNOWN_REGISTRIES[kind]);
}

/**
 * The CI platforms whose OIDC tokens the server trusts (docs/ci.md "Trusted issuers and token verification"), read
 * from server configuration only: CI_OIDC_ISSUERS. Nothing a client sends can add an issuer; the tests add their
 * loopback issuer the same way an operator adds a self-managed GitLab.
 */
import { CI_PROVIDERS, LatchkeyError, type CiProvider } from "@latchkey/core";
import { isLoopbackHost } from "../loopback.js";

/** A trusted issuer: which platform it is, and its URL, compared exactly with a token's `iss`. */
export interface CiIssuer {
  readonly provider: CiProvider;
  readonly url: string;
}

/** The issuers trusted when CI_OIDC_ISSUERS is unset: GitHub Actions and GitLab.com. */
export const DEFAULT_CI_ISSUERS =
  "github=https://token.actions.githubusercontent.com,gitlab=https://gitlab.com";

/** The value of CI_OIDC_ISSUERS that trusts no issuer at all (CI pulls off). */
const NO_ISSUERS = "none";

const HINT =
  "CI_OIDC_ISSUERS is a comma-separated list of PROVIDER=URL (PROVIDER github or gitlab), each URL exactly its " +
  "tokens' `iss`, https (http only on 127.0.0.1, ::1 or localhost), e.g. " +
  "CI_OIDC_ISSUERS=github=https://token.actions.githubusercontent.com,gitlab=https://gitlab.example.com; " +
  "`none` trusts no issuer.";

/**
 * Reads CI_OIDC_ISSUERS. Unset or empty: {@link DEFAULT_CI_ISSUERS}. Set: exactly the issuers it lists, replacing
 * the defaults (so an operator can leave GitHub out), or none for `none`. Throws LK_CONFIG_INVALID naming the
 * first bad entry: the server then refuses to start.
 */
export function parseCiIssuers(env: Readonly<Record<string, string | undefined>>): readonly CiIssuer[] {
  const text =
    env.CI_OIDC_ISSUERS === undefined || env.CI_OIDC_ISSUERS === ""
      ? DEFAULT_CI_ISSUERS
      : env.CI_OIDC_ISSUERS;
  if (text.trim() === NO_ISSUERS) return [];
  const issuers: CiIssuer[] = [];
  text.split(",").forEach((raw, index) => {
    const issuer = parseEntry(raw.trim(), index + 1);
    if (issuers.some((seen) => seen.url === issuer.url)) {
      throw invalid(`CI_OIDC_ISSUERS names ${issuer.url} twice.`);
    }
    issuers.push(issuer);
  });
  return issuers;
}

function parseEntry(entry: string, position: number): CiIssuer {
  const equals = entry.indexOf("=");
  const provider = equals < 0 ? "" : entry.slice(0, equals);
  const url = equals < 0 ? "" : entry.slice(equals + 1);
  const named = `CI_OIDC_ISSUERS entry ${position}`;
  if (entry === "") throw invalid(`${named} is empty.`);
  // Nothing of the entry is quoted until its URL is known to carry no password.
  if (equals < 0 || url === "") throw invalid(`${named} is not PROVIDER=URL.`);
  if (!isProvider(provider)) {
    throw invalid(
      `${named} names the provider "${provider.slice(0, 40)}"; the providers are github and gitlab.`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`${named} (${provider}=…) does not hold a URL.`);
  }
  // A user name or password in an issuer URL is nothing an issuer puts in `iss`; it is not quoted either.
  if (parsed.username !== "" || parsed.password !== "") {
    throw invalid(`${named} holds a URL with a user name or password.`);
  }
  const https = parsed.protocol === "https:";
  const loopbackHttp = parsed.protocol === "http:" && isLoopbackHost(parsed.hostname);
  if (!https && !loopbackHttp) {
    throw invalid(`${named} (${url}) must be an https URL (plain http only on 127.0.0.1, ::1 or localhost).`);
  }
  if (parsed.search !== "" || parsed.hash !== "" || url.endsWith("?") || url.endsWith("#")) {
    throw invalid(`${named} (${url}) must not have a query or fragment.`);
  }
  // Tokens are matched on the exact string, so a spelling that parses to the same URL but is not the one an issuer
  // puts in `iss` (upper case, a default port, a dot segment) would never match: refused here rather than there.
  const canonical = parsed.pathname === "/" && !url.endsWith("/") ? parsed.origin : parsed.href;
  if (url !== canonical) {
    throw invalid(`${named} (${url}) is not written the way tokens name it; did you mean ${canonical}?`);
  }
  return { provider, url };
}

function isProvider(text: string): text is CiProvider {
  return (CI_PROVIDERS as readonly string[]).includes(text);
}

function invalid(message: string): LatchkeyError {
  return new LatchkeyError("LK_CONFIG_INVALID", { message, hint: HINT });
}

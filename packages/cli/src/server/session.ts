// The session at a Latchkey server: the same OAuth client as `login sso` (oauth/sso.ts, oauth/device.ts) pointed
// at the server's OpenID provider (`${server}/oidc`, public client `latchkey-cli`), stored in the keystore under
// `session:<server>` (DESIGN.md, keychain layout) as JSON shaped like an SsoSession (core's ssoSessionSchema). This module decides which
// server a command talks to and turns the OAuth layer's errors into the server's catalogue codes.
import {
  CLI_CLIENT_ID,
  LatchkeyError,
  OIDC_PATH,
  isLatchkeyError,
  type ErrorCode,
  type SsoSession,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { isNetworkError } from "../http/client.js";
import { assertSecureEndpoint, selectProfile } from "../oauth/config.js";
import { loadStoredSession, refreshSsoSession, sessionValid, type SsoTarget } from "../oauth/sso.js";

/** The session stored for a server: an SsoSession whose issuer is `${server}/oidc`. */
export type ServerSession = SsoSession;

/** The hint of every "log in again" error about a server. */
export const SERVER_LOGIN_HINT =
  "Run `latchkey login` (add `--device` on a machine without a browser, `--server URL` for another server).";

/** Which server a command talks to, and why that one. */
export interface ServerSelection {
  /** Canonical URL: origin and path, no trailing slash. */
  readonly server: string;
  readonly profile: string;
  readonly source: "flag" | "env" | "profile";
}

/** Flags shared by the server commands. */
export interface ServerOptions {
  server?: string;
  profile?: string;
}

/**
 * The canonical spelling of a server URL, so one server has one keystore account: scheme, host, port and path
 * without a trailing slash. https only, except on loopback hosts; no credentials, query or fragment.
 */
export function canonicalServerUrl(url: string): string {
  const parsed = assertSecureEndpoint(url.trim(), "The server URL");
  if (parsed.username !== "" || parsed.password !== "" || parsed.search !== "" || parsed.hash !== "") {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `The server URL ${parsed.origin} must not carry credentials, a query or a fragment.`,
      hint: "Give the server's base URL, e.g. https://latchkey.example.com",
    });
  }
  const path = parsed.pathname.replace(/\/+$/, "");
  return `${parsed.origin}${path}`;
}

/** The keystore account of the session at `server`. */
export function serverAccount(server: string): string {
  return `session:${server}`;
}

/** The issuer of the server's OpenID provider. */
export function serverIssuer(server: string): string {
  return `${server}${OIDC_PATH}`;
}

/** The login target handed to the OAuth flows: the server's provider, its CLI client, the session account. */
export function serverTarget(selection: ServerSelection): SsoTarget {
  return {
    issuer: serverIssuer(selection.server),
    clientId: CLI_CLIENT_ID,
    profile: selection.profile,
    account: serverAccount(selection.server),
  };
}

/**
 * The server a command talks to: `--server`, else LATCHKEY_SERVER, else the selected profile's `server`; null when
 * none names one (the caller decides whether that is an error or a registry command).
 */
export async function resolveServer(ctx: Context, options: ServerOptions): Promise<ServerSelection | null> {
  const selected = await selectProfile(ctx, options.profile);
  const fromEnv = ctx.env.LATCHKEY_SERVER;
  if (options.server !== undefined)
    return { server: canonicalServerUrl(options.server), profile: selected.name, source: "flag" };
  if (fromEnv !== undefined && fromEnv !== "")
    return { server: canonicalServerUrl(fromEnv), profile: selected.name, source: "env" };
  if (selected.profile.server !== undefined)
    return { server: canonicalServerUrl(selected.profile.server), profile: selected.name, source: "profile" };
  return null;
}

/** {@link resolveServer}, with no server at all being LK_NOT_LOGGED_IN. */
export async function requireServer(ctx: Context, options: ServerOptions): Promise<ServerSelection> {
  const selection = await resolveServer(ctx, options);
  if (selection === null) {
    const profile = (await selectProfile(ctx, options.profile)).name;
    throw new LatchkeyError("LK_NOT_LOGGED_IN", {
      message: `Profile ${profile} has no Latchkey server: no --server, no LATCHKEY_SERVER and no \`server\` in [profiles.${profile}] of ${ctx.paths.config}.`,
    });
  }
  return selection;
}

/** The stored session at `server`, or null. */
export async function loadServerSession(ctx: Context, server: string): Promise<ServerSession | null> {
  return loadStoredSession(
    ctx,
    serverAccount(server),
    `Run \`latchkey logout --server ${server}\`, then log in again.`,
  );
}

/** Removes the stored session at `server`; true when there was one. */
export async function deleteServerSession(ctx: Context, server: string): Promise<boolean> {
  const { keystore } = await ctx.keystore();
  return keystore.delete(serverAccount(server));
}

/** LK_SERVER_UNREACHABLE naming the server (the cause stays for -v). */
export function unreachable(server: string, cause: unknown): LatchkeyError {
  return new LatchkeyError("LK_SERVER_UNREACHABLE", {
    message: `The Latchkey server at ${server} could not be reached.`,
    cause,
    details: { server },
  });
}

/** LK_SESSION_EXPIRED for `server`, with the server login hint. */
export function sessionExpired(server: string, why: string, cause?: unknown): LatchkeyError {
  return new LatchkeyError("LK_SESSION_EXPIRED", {
    message: `The session at ${server} has expired${why}.`,
    hint: SERVER_LOGIN_HINT,
    ...(cause === undefined ? {} : { cause }),
    details: { server },
  });
}

/** Hints for the interactive login's own errors at a server: the catalogue's hints name `login sso`. */
const LOGIN_RETRY_HINTS: Partial<Record<ErrorCode, (server: string) => string>> = {
  LK_OAUTH_STATE_MISMATCH: (server) =>
    `Run \`latchkey login --server ${server}\` again and finish it in the browser window it opens; close other login tabs.`,
  LK_OAUTH_DENIED: (server) =>
    `Check the error in the message; run \`latchkey login --server ${server}\` again, or ask the server's administrator.`,
  LK_OAUTH_TIMEOUT: (server) =>
    `Run \`latchkey login --server ${server}\` again and complete it in the browser (or add \`--device\` and enter the code) within the time shown.`,
};

/**
 * Rewords an error of the OAuth layer for a server command: the SSO wording and hints would send the user to
 * `login sso`. Session errors keep their code with the server's hint; network failures become
 * LK_SERVER_UNREACHABLE; a provider error stays LK_SSO_FAILED with its message (it names the provider's answer);
 * the login's own failures (state mismatch, denied, timed out) keep code and message with a server login hint.
 */
export function serverFailure(server: string, error: unknown): unknown {
  if (isNetworkError(error)) return unreachable(server, error);
  if (!isLatchkeyError(error)) return error;
  const retry = LOGIN_RETRY_HINTS[error.code];
  if (retry !== undefined) {
    return new LatchkeyError(error.code, {
      message: error.message,
      hint: retry(server),
      cause: error,
      ...(error.details === undefined ? {} : { details: error.details }),
    });
  }
  if (error.code === "LK_SESSION_EXPIRED") {
    const why = / has expired(.*)\.$/.exec(error.message)?.[1] ?? "";
    return sessionExpired(server, why, error);
  }
  if (error.code === "LK_SSO_FAILED") {
    return new LatchkeyError("LK_SSO_FAILED", {
      message: error.message,
      hint: `Check that ${server} is a Latchkey server (its provider is at ${serverIssuer(server)}); run with -v for its answers.`,
      cause: error,
      ...(error.details === undefined ? {} : { details: error.details }),
    });
  }
  return error;
}

/**
 * Refreshes the session at `server` under the shared refresh lock. `replacing` forces a refresh of a token that
 * has not expired yet (a 401, or `token-rotate`); another process's newer token is taken as is.
 */
export async function refreshServerSession(
  ctx: Context,
  server: string,
  session: ServerSession,
  options: { verbose?: number; replacing?: string } = {},
): Promise<ServerSession> {
  try {
    return await refreshSsoSession(ctx, session, options.verbose ?? 0, {
      account: serverAccount(server),
      ...(options.replacing === undefined ? {} : { replacing: options.replacing }),
    });
  } catch (error) {
    throw serverFailure(server, error);
  }
}

/** A server and the usable session there. */
export interface ActiveSession {
  readonly selection: ServerSelection;
  readonly session: ServerSession;
}

/**
 * The session for a command that talks to the server: the selected server's stored session, refreshed first when
 * its access token has expired. No server or no session → LK_NOT_LOGGED_IN; refresh refused → LK_SESSION_EXPIRED.
 */
export async function requireServerSession(
  ctx: Context,
  options: ServerOptions & { verbose?: number },
): Promise<ActiveSession> {
  const selection = await requireServer(ctx, options);
  const stored = await loadServerSession(ctx, selection.server);
  if (stored === null) {
    throw new LatchkeyError("LK_NOT_LOGGED_IN", {
      message: `You are not logged in to ${selection.server} (profile ${selection.profile}).`,
      details: { server: selection.server },
    });
  }
  if (sessionValid(stored, ctx.clock.now())) return { selection, session: stored };
  const session = await refreshServerSession(ctx, selection.server, stored, {
    ...(options.verbose === undefined ? {} : { verbose: options.verbose }),
  });
  return { selection, session };
}

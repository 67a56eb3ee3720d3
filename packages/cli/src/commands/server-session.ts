// `latchkey login|logout|whoami` against a Latchkey server, and `latchkey token-rotate`: the session at the
// server's OpenID provider (server/session.ts) turned into output and exit codes. The flows are the SSO client's
// (oauth/sso.ts, oauth/device.ts); every server answer goes through server/api.ts, signed.
import { LatchkeyError, isLatchkeyError, meResponseSchema, type MeResponse } from "@latchkey/core";
import type { Context } from "../context.js";
import { interactiveLogin } from "../oauth/device.js";
import { describeRevocation, revokeSsoSession, revokeTokens } from "../oauth/sso.js";
import { palette, printData, printError, printJson, printStatus } from "../output/output.js";
import { callApi } from "../server/api.js";
import { recordProfileServer } from "../server/profile-config.js";
import { isNetworkError } from "../http/client.js";
import {
  deleteServerSession,
  loadServerSession,
  refreshServerSession,
  requireServer,
  requireServerSession,
  serverFailure,
  serverTarget,
  unreachable,
  type ServerOptions,
} from "../server/session.js";

/** Options of `latchkey login` at a server. */
export interface ServerLoginOptions extends ServerOptions {
  device?: boolean;
  noBrowser?: boolean;
  /** How long the loopback listener waits (tests); default five minutes. */
  timeoutMs?: number;
}

/** What `whoami --json` prints. */
export interface ServerWhoami {
  readonly loggedIn: true;
  readonly server: string;
  readonly profile: string;
  readonly userId: string;
  readonly email: string;
  readonly clientId: string;
  /** When the access token expires, as the server reports it. */
  readonly expiresAt: string;
  readonly keystore: string;
}

/**
 * The options that select the same server and profile again: the profile only when it was named, since an
 * implicit `default` need not be declared in config.toml.
 */
function sameSelection(server: string, options: ServerOptions): ServerOptions {
  return { server, ...(options.profile === undefined ? {} : { profile: options.profile }) };
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** GET /api/v1/me with the selected session, signature verified, shape checked. */
async function fetchMe(
  ctx: Context,
  options: ServerOptions,
  verbose: number,
): Promise<{ me: MeResponse; server: string }> {
  const result = await callApi(
    ctx,
    { method: "GET", path: "/me", answer: meResponseSchema },
    { ...options, verbose },
  );
  if (result.data.userId !== result.userId) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `${result.server} describes another user than the one this session belongs to.`,
      hint: "Log out and log in again; if it repeats, the server's configuration is broken.",
      details: { server: result.server },
    });
  }
  return { me: result.data, server: result.server };
}

/**
 * `latchkey login --server URL` (or the profile's / LATCHKEY_SERVER's server): browser or device login at the
 * server's provider; the session goes to the keystore under `session:<server>`, the server to the profile, and
 * the server is then asked who the session belongs to.
 */
export async function serverLogin(ctx: Context, options: ServerLoginOptions, verbose = 0): Promise<number> {
  const selection = await requireServer(ctx, options);
  const target = serverTarget(selection);
  let expiresAt: number;
  try {
    const { session } = await interactiveLogin(ctx, target, options, verbose);
    expiresAt = session.expires_at;
  } catch (error) {
    throw serverFailure(selection.server, error);
  }
  await recordProfileServer(ctx, selection.profile, selection.server);
  const { me } = await fetchMe(ctx, sameSelection(selection.server, options), verbose);
  const { backend } = await ctx.keystore();
  const c = palette(ctx.env, ctx.stderr);
  printStatus(
    ctx,
    `${c.green("✓")} Logged in to ${selection.server} as ${c.bold(me.email)} (user ${me.userId}; profile ` +
      `${selection.profile}; session stored in the ${backend} keystore, access token valid until ${iso(expiresAt)}).`,
  );
  return 0;
}

/**
 * `latchkey logout` at a server: revokes the refresh token, then the access token (RFC 7009), and removes the
 * session. The local session goes in every case; when the server could not be reached or refused, that is said
 * and the exit code is 1 (the tokens may still be valid there).
 */
export async function serverLogout(ctx: Context, options: ServerOptions, verbose = 0): Promise<number> {
  const selection = await requireServer(ctx, options);
  const session = await loadServerSession(ctx, selection.server);
  if (session === null) {
    printStatus(
      ctx,
      `No session at ${selection.server} is stored (profile ${selection.profile}); nothing to do.`,
    );
    return 0;
  }
  let failure: LatchkeyError | undefined;
  let note: string;
  try {
    note = describeRevocation(await revokeSsoSession(ctx, session, verbose), "the server");
  } catch (error) {
    const mapped = serverFailure(selection.server, error);
    failure = isLatchkeyError(mapped)
      ? mapped
      : new LatchkeyError("LK_SERVER_ERROR", { message: "Revocation failed.", cause: error });
    note =
      failure.code === "LK_SERVER_UNREACHABLE"
        ? "the server could not be reached, so its tokens were NOT revoked"
        : "revocation at the server FAILED";
  }
  await deleteServerSession(ctx, selection.server);
  printStatus(ctx, `Logged out of ${selection.server}: ${note}; the local session was removed.`);
  return failure ? printError(ctx, failure, verbose) : 0;
}

/**
 * `latchkey whoami` at a server: asks GET /api/v1/me on every call (signed), so a revoked or expired session is
 * found out here (LK_SESSION_EXPIRED), not at the next push.
 */
export async function serverWhoami(
  ctx: Context,
  options: ServerOptions & { json?: boolean },
  verbose = 0,
): Promise<number> {
  const selection = await requireServer(ctx, options);
  let fetched: Awaited<ReturnType<typeof fetchMe>>;
  try {
    fetched = await fetchMe(ctx, sameSelection(selection.server, options), verbose);
  } catch (error) {
    const loggedOut =
      isLatchkeyError(error, "LK_NOT_LOGGED_IN") || isLatchkeyError(error, "LK_SESSION_EXPIRED");
    if (options.json !== true || !loggedOut) throw error;
    // Having no session is an answer too: a script that asked for JSON can read it, and the exit code still says.
    printJson(ctx, { loggedIn: false, server: selection.server, profile: selection.profile });
    return printError(ctx, error, verbose, { json: true });
  }
  const { me, server } = fetched;
  const { backend } = await ctx.keystore();
  const report: ServerWhoami = {
    loggedIn: true,
    server,
    profile: selection.profile,
    userId: me.userId,
    email: me.email,
    clientId: me.clientId,
    expiresAt: me.expiresAt,
    keystore: backend,
  };
  if (options.json) {
    printJson(ctx, report);
    return 0;
  }
  const c = palette(ctx.env, ctx.stdout);
  printData(
    ctx,
    [
      `server    ${report.server}`,
      `email     ${c.bold(report.email)}`,
      `user id   ${report.userId}`,
      `profile   ${report.profile}`,
      `expires   ${report.expiresAt} (access token; renewed automatically)`,
      `keystore  ${report.keystore}`,
    ].join("\n"),
  );
  return 0;
}

/**
 * `latchkey token-rotate`: a refresh grant (the server rotates the refresh token too), the new session stored,
 * then the old access token revoked (RFC 7009) and the new one checked with GET /api/v1/me.
 */
export async function tokenRotate(ctx: Context, options: ServerOptions, verbose = 0): Promise<number> {
  const { selection, session } = await requireServerSession(ctx, { ...options, verbose });
  const old = session.access_token;
  if (session.refresh_token === undefined) {
    throw new LatchkeyError("LK_SESSION_EXPIRED", {
      message: `The session at ${selection.server} has no refresh token, so it cannot be rotated.`,
      hint: "Run `latchkey login` again.",
    });
  }
  const next = await refreshServerSession(ctx, selection.server, session, { verbose, replacing: old });
  const refreshRotated = next.refresh_token !== session.refresh_token;
  try {
    await revokeTokens(ctx, next, [["access_token", old]], verbose);
  } catch (error) {
    const mapped = serverFailure(selection.server, error);
    const failure = isNetworkError(error)
      ? unreachable(selection.server, error)
      : isLatchkeyError(mapped)
        ? mapped
        : new LatchkeyError("LK_SERVER_ERROR", { message: "Revocation failed.", cause: error });
    printStatus(
      ctx,
      `The session at ${selection.server} has a new access token, but the old one could NOT be revoked.`,
    );
    return printError(ctx, failure, verbose);
  }
  let me: MeResponse;
  try {
    ({ me } = await fetchMe(ctx, sameSelection(selection.server, options), verbose));
  } catch (error) {
    // A provider may end the whole grant when one of its access tokens is revoked (RFC 7009 §2.1 allows it).
    if (isLatchkeyError(error) && error.code === "LK_SESSION_EXPIRED") {
      throw new LatchkeyError("LK_SESSION_EXPIRED", {
        message: `${selection.server} ended the whole session when the old access token was revoked, so the rotated tokens were refused too.`,
        hint: "Run `latchkey login` to start a new session (its tokens are new as well).",
        cause: error,
        details: { server: selection.server },
      });
    }
    throw error;
  }
  printStatus(
    ctx,
    `Rotated the session at ${selection.server} (${me.email}): new access token valid until ${iso(next.expires_at)}` +
      `${refreshRotated ? ", new refresh token" : ""}; the old access token was revoked.`,
  );
  return 0;
}

// `latchkey login sso`, `latchkey logout sso` and `latchkey auth status`: the person's SSO session and the state
// of the environment token caches. The flows live in oauth/sso.ts and oauth/device.ts; this module turns them
// into output and exit codes.
import { LatchkeyError, isLatchkeyError, type SsoSession } from "@latchkey/core";
import type { Context } from "../context.js";
import { listEnvironments, selectProfile } from "../oauth/config.js";
import { interactiveLogin } from "../oauth/device.js";
import {
  describeRevocation,
  deleteSsoSession,
  loadSsoSession,
  refreshSsoSession,
  resolveSsoTarget,
  revokeSsoSession,
  sessionIssuer,
  sessionValid,
  storedSsoIssuers,
  type SsoTargetOptions,
} from "../oauth/sso.js";
import { isFresh, parseCachedToken, tokenAccount } from "../oauth/tokens.js";
import { palette, printData, printError, printJson, printStatus } from "../output/output.js";

/** Options of `latchkey login sso`. */
export interface LoginSsoOptions extends SsoTargetOptions {
  noBrowser?: boolean;
  device?: boolean;
  /** How long the loopback listener waits (tests); default five minutes. */
  timeoutMs?: number;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** `latchkey login sso`: a browser (or device) login whose tokens go to the keystore under `sso:<issuer>`. */
export async function loginSso(ctx: Context, options: LoginSsoOptions, verbose = 0): Promise<number> {
  const target = await resolveSsoTarget(ctx, options);
  const { session } = await interactiveLogin(ctx, target, options, verbose);
  const { backend } = await ctx.keystore();
  const c = palette(ctx.env, ctx.stderr);
  printStatus(
    ctx,
    `${c.green("✓")} Logged in to ${session.issuer} as ${c.bold(session.subject)} ` +
      `(profile ${target.profile}; session stored in the ${backend} keystore, access token valid until ${iso(session.expires_at)}).`,
  );
  return 0;
}

/** `latchkey logout sso`: revoke at the provider where it offers revocation, then forget the session locally. */
export async function logoutSso(ctx: Context, options: SsoTargetOptions, verbose = 0): Promise<number> {
  const issuer = await sessionIssuer(ctx, options).catch((error: unknown) => {
    // Nothing stored and nothing configured: logging out is already done.
    if (isLatchkeyError(error) && error.code === "LK_SESSION_EXPIRED") return null;
    throw error;
  });
  const session = issuer === null ? null : await loadSsoSession(ctx, issuer);
  if (issuer === null || session === null) {
    printStatus(ctx, `No SSO session${issuer === null ? "" : ` at ${issuer}`} is stored; nothing to do.`);
    return 0;
  }
  let revocationError: LatchkeyError | undefined;
  let note: string;
  try {
    note = describeRevocation(await revokeSsoSession(ctx, session, verbose), "the provider");
  } catch (error) {
    revocationError = isLatchkeyError(error)
      ? error
      : new LatchkeyError("LK_SSO_FAILED", { message: "Revocation failed.", cause: error });
    note = "revocation at the provider FAILED";
  }
  // Local state goes in every case: a user who logs out must not keep a usable session on this machine.
  await deleteSsoSession(ctx, issuer);
  printStatus(ctx, `Logged out of ${issuer}: ${note}; the local session was removed.`);
  if (revocationError) return printError(ctx, revocationError, verbose);
  return 0;
}

/** Where an environment's cached token stands. */
export type CacheState = "valid" | "expired" | "none";

/** One row of `auth status`. */
export interface EnvironmentStatus {
  readonly name: string;
  readonly state: CacheState;
  readonly expiresAt?: string;
  readonly refreshable?: boolean;
}

/** The SSO part of `auth status`. */
export interface SessionStatus {
  readonly issuer: string;
  readonly subject: string | null;
  readonly clientId: string | null;
  readonly state: "valid" | "refreshed" | "expired" | "none";
  readonly expiresAt: string | null;
  readonly refreshable: boolean;
}

/** `auth status --json`. */
export interface AuthStatus {
  readonly profile: string;
  readonly profileSource: string;
  readonly backend: string;
  readonly sessions: readonly SessionStatus[];
  readonly environments: readonly EnvironmentStatus[];
}

async function sessionStatus(
  ctx: Context,
  issuer: string,
  verbose: number,
): Promise<{ status: SessionStatus; problem?: LatchkeyError }> {
  let session: SsoSession | null = await loadSsoSession(ctx, issuer);
  if (session === null) {
    return {
      status: { issuer, subject: null, clientId: null, state: "none", expiresAt: null, refreshable: false },
    };
  }
  let state: SessionStatus["state"] = "valid";
  let problem: LatchkeyError | undefined;
  if (!sessionValid(session, ctx.clock.now())) {
    try {
      session = await refreshSsoSession(ctx, session, verbose);
      state = "refreshed";
    } catch (error) {
      if (!isLatchkeyError(error)) throw error;
      state = "expired";
      problem = error;
    }
  }
  return {
    status: {
      issuer,
      subject: session.subject,
      clientId: session.client_id,
      state,
      expiresAt: iso(session.expires_at),
      refreshable: session.refresh_token !== undefined,
    },
    ...(problem ? { problem } : {}),
  };
}

/**
 * `latchkey auth status`: the SSO session(s) (subject, issuer, expiry, backend) and the token cache of every
 * environment the profile sees. An expired SSO session is refreshed when it can be; when it cannot, the report is
 * still printed and the command fails with LK_SESSION_EXPIRED.
 */
export async function authStatus(
  ctx: Context,
  options: SsoTargetOptions & { json?: boolean },
  verbose = 0,
): Promise<number> {
  const selected = await selectProfile(ctx, options.profile);
  const resolution = await ctx.keystore();
  const configured = options.issuer ?? selected.profile.ssoIssuer;
  const issuers =
    configured !== undefined
      ? [await sessionIssuer(ctx, { ...options, issuer: configured })]
      : await storedSsoIssuers(ctx);
  const sessions: SessionStatus[] = [];
  let problem: LatchkeyError | undefined;
  for (const issuer of issuers) {
    const result = await sessionStatus(ctx, issuer, verbose);
    sessions.push(result.status);
    problem ??= result.problem;
  }
  const environments: EnvironmentStatus[] = [];
  for (const name of await listEnvironments(ctx, selected.name)) {
    const cached = parseCachedToken(
      await resolution.keystore.get(tokenAccount({ profile: selected.name, env: name })),
    );
    environments.push(
      cached === null
        ? { name, state: "none" }
        : {
            name,
            state: isFresh(cached, ctx.clock.now()) ? "valid" : "expired",
            expiresAt: iso(cached.expires_at),
            refreshable: cached.refresh_token !== undefined,
          },
    );
  }
  const report: AuthStatus = {
    profile: selected.name,
    profileSource: selected.source,
    backend: resolution.backend,
    sessions,
    environments,
  };
  if (options.json) printJson(ctx, report);
  else printData(ctx, renderStatus(ctx, report));
  return problem ? printError(ctx, problem, verbose, { json: options.json === true }) : 0;
}

function renderStatus(ctx: Context, report: AuthStatus): string {
  const c = palette(ctx.env, ctx.stdout);
  const lines = [
    `Profile ${c.bold(report.profile)} (from ${report.profileSource}); keystore: ${report.backend}`,
    "",
    "SSO",
  ];
  if (report.sessions.length === 0) lines.push("  not logged in (latchkey login sso)");
  for (const s of report.sessions) {
    lines.push(`  issuer   ${s.issuer}`);
    if (s.state === "none") {
      lines.push(`  session  none (latchkey login sso)`);
      continue;
    }
    const when =
      s.state === "expired"
        ? c.red(`expired (${s.expiresAt})`)
        : c.green(`valid until ${s.expiresAt}${s.state === "refreshed" ? " (just refreshed)" : ""}`);
    lines.push(`  subject  ${s.subject}`, `  client   ${s.clientId}`, `  access   ${when}`);
    lines.push(`  refresh  ${s.refreshable ? "yes" : "no"}`, `  backend  ${report.backend}`);
  }
  lines.push("", "Environments");
  if (report.environments.length === 0) lines.push("  none configured");
  const width = Math.max(0, ...report.environments.map((e) => e.name.length));
  for (const e of report.environments) {
    const text =
      e.state === "none"
        ? c.dim("no cached token")
        : e.state === "valid"
          ? c.green(`valid until ${e.expiresAt}`)
          : `expired (${e.expiresAt})${e.refreshable ? ", refreshable" : ""}`;
    lines.push(`  ${e.name.padEnd(width)}  ${text}`);
  }
  return lines.join("\n");
}

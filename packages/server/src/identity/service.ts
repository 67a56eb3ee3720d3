/**
 * The identity service: the rules of signing in (the password, then a TOTP code for an enrolled account, both
 * under the sign-in limits of rate-limit.ts), of re-authenticating for a step-up (under the same limits), of open
 * sign-up, of the bearer tokens the API accepts (tokens.ts), and the audit rows of sign-in and sign-up. Callers (routes.ts) hand it what the user typed; every
 * outcome a page must tell apart is a value here, not an exception.
 */
import { createHash } from "node:crypto";
import { isLatchkeyError, type StepUpMethod } from "@latchkey/core";
import type { Kysely } from "kysely";
import { insertAudit } from "../audit/data.js";
import type { FactorRefusal, Reauthentication } from "../reauthentication.js";
import type { Database } from "../db/schema.js";
import {
  argon2Hasher,
  createAccount,
  normalizeEmail,
  prepareDecoy,
  verifyPassword,
  verifyTotp,
  type PasswordHasher,
} from "./accounts.js";
import * as data from "./data.js";
import { macEqual, type IdentityKeys } from "./keys.js";
import {
  beginAttempt,
  limitAddress,
  purgeAttempts,
  rememberAddress,
  WINDOW_MS,
  type Refusal,
  type SignInLimits,
} from "./rate-limit.js";
import { createAuthenticate, type TokenDeps } from "./tokens.js";

/** How long the ticket of a passed password step stays good for the TOTP step. */
const TICKET_SECONDS = 5 * 60;

/** What the service needs. */
export interface IdentityServiceDeps extends TokenDeps {
  db: Kysely<Database>;
  keys: IdentityKeys;
  now: () => Date;
  randomId: () => string;
  /** Default Argon2id. */
  hasher?: PasswordHasher;
  /** Replaces some of the sign-in limits (rate-limit.ts LIMITS); tests lower them. */
  limits?: Partial<SignInLimits>;
}

/** A sign-in step: the password, or the TOTP code after it. */
export type SignInStep = "password" | "totp";

/** An attempt a sign-in limit refused before its credential was checked. */
export interface RateLimited {
  kind: "rate-limited";
  limit: Refusal["limit"];
  retryAfterSeconds: number;
  /** The same for every refusal of this limit, account (unless the address limit), address and window. */
  auditKey: string;
}

/** The outcome of the password step. */
export type PasswordOutcome =
  | { kind: "invalid-email" }
  | RateLimited
  /** No account, or the wrong password: the two are not told apart. `email` is the normalized one. */
  | { kind: "wrong"; email: string }
  /** The account has TOTP: the code step follows, carrying `ticket`. */
  | { kind: "totp-required"; ticket: string }
  | { kind: "signed-in"; accountId: string };

/** The outcome of the TOTP step. */
export type TotpOutcome =
  /** The ticket of the password step is missing, forged, for another interaction or too old. */
  { kind: "expired" } | RateLimited | { kind: "wrong" } | { kind: "signed-in"; accountId: string };

/** The outcome of open sign-up. */
export type SignUpOutcome =
  { kind: "created"; accountId: string } | { kind: "invalid"; reason: "exists" | "email" | "password" };

/** Writes one audit row of the identity slice. */
export type IdentityAudit = (
  action: string,
  userId: string | null,
  metadata: Record<string, unknown>,
  coalesceKey?: string,
) => Promise<void>;

/** Builds the service. */
export function createIdentityService(deps: IdentityServiceDeps) {
  const { db, now, randomId } = deps;
  const hasher = deps.hasher ?? argon2Hasher;
  const attemptDeps = { db, now, randomId, ...(deps.limits ? { limits: deps.limits } : {}) };

  const audit: IdentityAudit = (action, userId, metadata, coalesceKey) =>
    insertAudit(db, {
      id: randomId(),
      userId,
      action,
      vaultId: null,
      version: null,
      createdAt: now().toISOString(),
      metadata,
      ...(coalesceKey === undefined ? {} : { coalesceKey }),
    });

  /**
   * Runs `check` under the sign-in limits: its answer (a false one counts against them), or the refusal of a
   * limit, and then `check` never runs.
   */
  async function underLimits(
    email: string,
    ip: string,
    check: () => Promise<boolean>,
  ): Promise<boolean | RateLimited> {
    const attempt = await beginAttempt(attemptDeps, email, ip);
    if (!attempt.allowed) {
      // A refused attempt costs its sender nothing, so it must not cost a row either: one key per limit,
      // account and address (address alone for the address limit) and window, for the audit row to count under.
      const window = Math.floor(now().getTime() / WINDOW_MS);
      const address = limitAddress(ip);
      const subject =
        attempt.limit === "ip" ? [attempt.limit, address, window] : [attempt.limit, email, address, window];
      return {
        kind: "rate-limited",
        limit: attempt.limit,
        retryAfterSeconds: Math.ceil(attempt.retryAfterMs / 1000),
        auditKey: createHash("sha256").update(JSON.stringify(subject)).digest("base64url"),
      };
    }
    if (await check()) {
      await attempt.succeeded();
      return true;
    }
    await attempt.failed();
    return false;
  }

  /** underLimits for a sign-in step, with its audit rows. */
  async function limited(
    email: string,
    account: data.Account | undefined,
    ip: string,
    step: SignInStep,
    check: () => Promise<boolean>,
  ): Promise<boolean | RateLimited> {
    const ok = await underLimits(email, ip, check);
    if (typeof ok !== "boolean") {
      await audit(
        "auth.rate_limited",
        ok.limit === "ip" ? null : (account?.id ?? null),
        { limit: ok.limit, step, ip },
        `auth.rate_limited:${ok.auditKey}`,
      );
    } else if (!ok) {
      await audit("auth.login_failed", account?.id ?? null, { step, ip });
    }
    return ok;
  }

  // The TOTP step's proof that the password step passed: the interaction, the account and an expiry under a MAC.
  const ticketFor = (uid: string, userId: string): string => {
    const exp = String(Math.floor(now().getTime() / 1000) + TICKET_SECONDS);
    return `${userId}.${exp}.${deps.keys.mac("totp-ticket", uid, userId, exp).toString("base64url")}`;
  };
  const openTicket = (uid: string, ticket: string | undefined): string | undefined => {
    const [userId, exp, mac] = (ticket ?? "").split(".");
    if (!userId || !exp || !mac) return undefined;
    if (!macEqual(Buffer.from(mac, "base64url"), deps.keys.mac("totp-ticket", uid, userId, exp)))
      return undefined;
    if (Number(exp) < Math.floor(now().getTime() / 1000)) return undefined;
    return userId;
  };

  const signedIn = async (account: data.Account, ip: string, totp: boolean) => {
    await rememberAddress(attemptDeps, account.email, ip);
    await audit("auth.login", account.id, { ip, totp });
    return { kind: "signed-in", accountId: account.id } as const;
  };

  /** The password step of interaction `uid`, from `ip`. */
  async function signInWithPassword(input: {
    uid: string;
    email: string;
    password: string;
    ip: string;
  }): Promise<PasswordOutcome> {
    let email: string;
    try {
      email = normalizeEmail(input.email);
    } catch {
      return { kind: "invalid-email" };
    }
    const account = await data.findAccountByEmail(db, email);
    // Without an account too, the password is checked (against a decoy): the same work either way.
    const ok = await limited(email, account, input.ip, "password", () =>
      verifyPassword(account, input.password, hasher),
    );
    if (typeof ok !== "boolean") return ok;
    if (!ok || !account) return { kind: "wrong", email };
    if (account.totp_enabled === 1)
      return { kind: "totp-required", ticket: ticketFor(input.uid, account.id) };
    return signedIn(account, input.ip, false);
  }

  /** The TOTP step of interaction `uid`, with the ticket the password step gave. */
  async function signInWithTotp(input: {
    uid: string;
    ticket: string | undefined;
    code: string;
    ip: string;
  }): Promise<TotpOutcome> {
    const userId = openTicket(input.uid, input.ticket);
    const account = userId === undefined ? undefined : await data.findAccountById(db, userId);
    if (!account || input.ticket === undefined) return { kind: "expired" };
    const ok = await limited(account.email, account, input.ip, "totp", () =>
      verifyTotp(deps, account, input.code),
    );
    if (typeof ok !== "boolean") return ok;
    if (!ok) return { kind: "wrong" };
    return signedIn(account, input.ip, true);
  }

  /** How an account re-authenticates for a step-up (docs/pairing.md). */
  const stepUpMethodOf = (account: data.Account | undefined): StepUpMethod =>
    account === undefined || account.password_hash === null
      ? "unavailable"
      : account.totp_enabled === 1
        ? "password+totp"
        : "password";

  /**
   * A signed-in user's step-up: the password (Argon2id, as at sign-in: a wrong one costs what a right one does),
   * then the TOTP code when enrolled, under the same sign-in limits as the sign-in page, whose rows a failure
   * adds to. The audit rows are the step-up slice's; this writes none.
   */
  const reauthentication: Reauthentication = {
    method: async (userId) => stepUpMethodOf(await data.findAccountById(db, userId)),
    async check({ userId, password, totp, ip }) {
      const account = await data.findAccountById(db, userId);
      const method = stepUpMethodOf(account);
      if (account === undefined || method === "unavailable") return { kind: "unavailable" };
      if (method === "password" && totp !== undefined) return { kind: "totp-not-enrolled" };
      let reason: FactorRefusal = "wrong_password";
      const ok = await underLimits(account.email, ip, async () => {
        // Without the code there is no proof to give, whatever the password: counted as a failure, so a client
        // cannot probe passwords without a code.
        if (method === "password+totp" && totp === undefined) {
          reason = "totp_missing";
          return false;
        }
        if (!(await verifyPassword(account, password, hasher))) return false;
        if (method === "password+totp" && !(await verifyTotp(deps, account, totp ?? ""))) {
          reason = "wrong_totp";
          return false;
        }
        return true;
      });
      if (typeof ok !== "boolean") return ok;
      if (!ok) return { kind: "refused", reason };
      // Every factor passed from here, as at a sign-in: the address is the account's own.
      await rememberAddress(attemptDeps, account.email, ip);
      return { kind: "passed", method };
    },
  };

  /** Open sign-up (the routes offer it only with --open-signup). */
  async function signUp(input: { email: string; password: string }): Promise<SignUpOutcome> {
    try {
      const created = await createAccount(
        { db, now, randomId, hasher },
        { email: input.email, password: input.password, via: "signup" },
      );
      return { kind: "created", accountId: created.userId };
    } catch (err) {
      if (!isLatchkeyError(err)) throw err;
      const reason =
        err.code === "LK_ACCOUNT_EXISTS" ? "exists" : err.code === "LK_EMAIL_INVALID" ? "email" : "password";
      return { kind: "invalid", reason };
    }
  }

  return {
    signInWithPassword,
    signInWithTotp,
    signUp,
    reauthentication,
    authenticate: createAuthenticate(deps),
    audit,
    /** Makes the decoy hash now, so that the first sign-in of an unknown email takes as long as the others. */
    prepare: (): void => prepareDecoy(hasher),
    /** Drops sign-in rows the limits no longer look at. */
    purge: (): Promise<void> => purgeAttempts(attemptDeps),
  };
}

/** The identity service's interface. */
export type IdentityService = ReturnType<typeof createIdentityService>;

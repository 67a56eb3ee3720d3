/**
 * Re-authentication of a signed-in user (a step-up): the identity slice checks the factors, under the same
 * sign-in limits as its sign-in page (identity/service.ts); the step-up slice asks and mints the proof
 * (step-up/service.ts). Here rather than in either slice, so neither imports the other.
 */
import type { StepUpMethod } from "@latchkey/core";

/** Why a step-up's factors were refused (audit rows name these). */
export type FactorRefusal = "wrong_password" | "wrong_totp" | "totp_missing";

/** The outcome of checking a step-up's factors. */
export type ReauthOutcome =
  /** Every factor the account has was right. */
  | { kind: "passed"; method: Exclude<StepUpMethod, "unavailable"> }
  /** The account has no password: nothing was checked. */
  | { kind: "unavailable" }
  /** A TOTP code was sent for an account without TOTP: a malformed request, nothing was checked or counted. */
  | { kind: "totp-not-enrolled" }
  /** A factor was wrong or missing; the attempt counts against the sign-in limits. */
  | { kind: "refused"; reason: FactorRefusal }
  /**
   * A sign-in limit refused the attempt before anything was checked. `auditKey` is the same for every refusal of
   * this limit, account, address and hour, so the audit rows of repeated refusals can be coalesced.
   */
  | {
      kind: "rate-limited";
      limit: "account_ip" | "account" | "ip";
      retryAfterSeconds: number;
      auditKey: string;
    };

/** What the identity slice offers for step-ups. */
export interface Reauthentication {
  /** How the account `userId` re-authenticates: both factors when TOTP is enrolled, `unavailable` without a password. */
  method(userId: string): Promise<StepUpMethod>;
  /** Checks `password` (and `totp`) of the account `userId`, sent from `ip`, under the sign-in limits. */
  check(input: {
    userId: string;
    password: string;
    totp: string | undefined;
    ip: string;
  }): Promise<ReauthOutcome>;
}

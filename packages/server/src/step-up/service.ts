/**
 * The step-up service (docs/pairing.md): how the caller's account re-authenticates, and the proofs it mints once
 * the identity slice has checked the factors (reauthentication.ts, under the sign-in limits). Every attempt is an
 * audit row: granted, refused (with why), rate-limited (coalesced). Never the password or the code. Outcomes are
 * values; the routes map them to HTTP.
 */
import { STEP_UP_TTL_SECONDS, type StepUpMethod, type StepUpRequest, type StepUpScope } from "@latchkey/core";
import type { Kysely } from "kysely";
import { purgeStepUpUses } from "../api/data.js";
import { mintStepUpProof, type StepUpFactors } from "../api/step-up-proof.js";
import { insertAudit } from "../audit/data.js";
import type { Database } from "../db/schema.js";
import type { FactorRefusal, Reauthentication } from "../reauthentication.js";

/** What the service needs. */
export interface StepUpServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  randomBytes: (n: number) => Uint8Array;
  /** The key of step-up proofs (IdentityKeys.stepUpKey). */
  stepUpKey: Uint8Array;
  /** The identity slice's factor checks. */
  reauthentication: Reauthentication;
}

/** The caller: the bearer's user and session, and the client's address. */
export interface StepUpActor {
  userId: string;
  grantId: string;
  ip: string;
}

/** The outcome of a step-up. */
export type StepUpOutcome =
  | { kind: "granted"; proof: string; scope: StepUpScope; expiresAt: string }
  | { kind: "failed"; reason: FactorRefusal }
  | { kind: "unavailable" }
  | { kind: "totp-not-enrolled" }
  | { kind: "rate-limited"; retryAfterSeconds: number };

/** One hour: refusals of an account without a password coalesce per user and hour. */
const UNAVAILABLE_WINDOW_MS = 60 * 60 * 1000;

/** Builds the service. */
export function createStepUpService(deps: StepUpServiceDeps) {
  const { db, now, randomId } = deps;

  const audit = (
    action: string,
    userId: string | null,
    metadata: Record<string, unknown>,
    coalesceKey?: string,
  ): Promise<void> =>
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

  /** How the actor's account re-authenticates. */
  function method(actor: StepUpActor): Promise<StepUpMethod> {
    return deps.reauthentication.method(actor.userId);
  }

  /** Checks the factors of `request` and mints a proof for its scope, bound to the actor's user and session. */
  async function grant(actor: StepUpActor, request: StepUpRequest): Promise<StepUpOutcome> {
    const { scope } = request;
    const checked = await deps.reauthentication.check({
      userId: actor.userId,
      password: request.password,
      totp: request.totp,
      ip: actor.ip,
    });
    switch (checked.kind) {
      case "totp-not-enrolled":
        return checked;
      case "unavailable": {
        // Nothing limits these (no credential is checked), so they must not grow the log without bound either.
        const window = Math.floor(now().getTime() / UNAVAILABLE_WINDOW_MS);
        await audit(
          "step_up.refused",
          actor.userId,
          { scope, reason: "unavailable", ip: actor.ip },
          `step_up.refused:unavailable:${actor.userId}:${window}`,
        );
        return checked;
      }
      case "rate-limited":
        await audit(
          "step_up.rate_limited",
          checked.limit === "ip" ? null : actor.userId,
          { scope, limit: checked.limit, ip: actor.ip },
          `step_up.rate_limited:${checked.auditKey}`,
        );
        return { kind: "rate-limited", retryAfterSeconds: checked.retryAfterSeconds };
      case "refused":
        await audit("step_up.refused", actor.userId, { scope, reason: checked.reason, ip: actor.ip });
        return { kind: "failed", reason: checked.reason };
      case "passed":
        return mint(actor, scope, checked.method);
    }
  }

  async function mint(actor: StepUpActor, scope: StepUpScope, method: StepUpFactors): Promise<StepUpOutcome> {
    const at = now();
    // The spent proofs only matter until they expire; a mint is the moment to drop the expired ones.
    await purgeStepUpUses(db, at.toISOString());
    const iat = Math.floor(at.getTime() / 1000);
    const exp = iat + STEP_UP_TTL_SECONDS;
    const proof = await mintStepUpProof(deps.stepUpKey, {
      sub: actor.userId,
      sid: actor.grantId,
      scope,
      jti: Buffer.from(deps.randomBytes(16)).toString("base64url"),
      method,
      iat,
      exp,
    });
    await audit("step_up.granted", actor.userId, { scope, method, ip: actor.ip });
    return { kind: "granted", proof, scope, expiresAt: new Date(exp * 1000).toISOString() };
  }

  return { method, grant };
}

/** The step-up service's interface. */
export type StepUpService = ReturnType<typeof createStepUpService>;

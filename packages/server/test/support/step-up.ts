/**
 * Step-up proofs for the server suites: a real proof of the server's key for a bearer token's user and session,
 * minted as POST /api/v1/step-up mints one (api/step-up-proof.ts) but without typing a password, for suites
 * whose subject is a route that needs a proof rather than the step-up itself (test/step-up.test.ts covers that).
 */
import { randomBytes } from "node:crypto";
import { STEP_UP_TTL_SECONDS, type StepUpScope } from "@latchkey/core";
import { mintStepUpProof, type StepUpFactors } from "../../src/api/step-up-proof.js";
import type { Identity } from "../../src/identity/identity.js";

/** A proof for `scope`, of the user and session (OAuth grant) of `token`, minted at `now` (default: the clock). */
export async function stepUpProofFor(
  identity: Identity,
  token: string,
  scope: StepUpScope,
  options: { now?: Date; method?: StepUpFactors } = {},
): Promise<string> {
  const who = await identity.authenticate(token);
  if (who === null) throw new Error("stepUpProofFor: the token does not authenticate");
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return mintStepUpProof(identity.keys.stepUpKey, {
    sub: who.userId,
    sid: who.grantId,
    scope,
    jti: randomBytes(16).toString("base64url"),
    method: options.method ?? "password",
    iat,
    exp: iat + STEP_UP_TTL_SECONDS,
  });
}

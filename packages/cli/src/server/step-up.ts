// Step-up proofs (docs/pairing.md, "Step-up proofs"): the CLI proves that the person at the keyboard knows the
// account's password (and TOTP code) right now, for one sensitive action. Both requests go through callApi, so
// they carry the session's bearer token, refresh it once on a 401 and have their answers' signatures checked.
// The password lives only in this function's memory and the request body; the -v/-vv trace redacts that body
// (http/client.ts, SECRET_FIELD), and the proof in the answer and in X-Latchkey-Step-Up.
import {
  LatchkeyError,
  MAX_STEP_UP_PASSWORD_LENGTH,
  isLatchkeyError,
  stepUpMethodResponseSchema,
  stepUpResponseSchema,
  type StepUpRequest,
  type StepUpScope,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { printStatus } from "../output/output.js";
import { callApi, type ApiOptions } from "./api.js";

/** How many times the person may type the factors before the command gives up (each counts at the server). */
export const STEP_UP_ATTEMPTS = 3;

/** A proof minted for one scope, to send with one request (callApi's `stepUpProof`). */
export interface StepUpProof {
  /** The compact JWS: opaque here, and a credential for five minutes: never print or store it. */
  readonly proof: string;
  readonly scope: StepUpScope;
  /** When the server stops accepting it (ISO-8601). */
  readonly expiresAt: string;
  /** The server it is good for (canonical URL). */
  readonly server: string;
}

/** What each scope lets the proof do, in the words shown before the password prompt. */
const PURPOSE: Record<StepUpScope, string> = {
  "vault:public-key:set": "set your account's sharing key",
  "vault:public-key:rotate": "replace your account's sharing key",
  "vault:pair": "pair a new device with your account",
  "org:member:add": "add a member to an organisation",
  "org:member:role": "change a member's role in an organisation",
  "org:member:remove": "remove a member from an organisation",
  "org:delete": "delete an organisation",
  "vault:ci:enable": "let CI pull a vault",
};

const SIX_DIGITS = /^[0-9]{6}$/;

/**
 * Mints a step-up proof for `scope` at the server `options` select (as for callApi: --server, LATCHKEY_SERVER or
 * the profile's). Asks `GET /step-up/method` first: `unavailable` is LK_STEP_UP_UNAVAILABLE with the server's
 * reason and hint. Needs stdin and stderr to be a terminal (LK_NOT_INTERACTIVE otherwise: a script cannot
 * re-authenticate, by design, and there is no --yes), then asks for the password, and for a 6-digit code when
 * the account has TOTP, at masked prompts, and posts them to `POST /step-up`. A wrong password or code is said
 * and asked again, {@link STEP_UP_ATTEMPTS} times in all, then LK_STEP_UP_FAILED; a 429 is LK_RATE_LIMITED at
 * once, naming the server's Retry-After. Ctrl-C at a prompt is LK_CANCELLED.
 */
export async function mintStepUpProof(
  ctx: Context,
  scope: StepUpScope,
  options: ApiOptions = {},
): Promise<StepUpProof> {
  const method = await callApi(
    ctx,
    { method: "GET", path: "/step-up/method", answer: stepUpMethodResponseSchema },
    options,
  );
  // Later requests go to the server that answered, whatever the profile says by then.
  const target: ApiOptions = { ...options, server: method.server };
  if (method.data.method === "unavailable") {
    throw new LatchkeyError("LK_STEP_UP_UNAVAILABLE", {
      message: `${method.server} cannot check your password, so it cannot confirm it is you${method.data.reason === undefined ? "." : `: ${method.data.reason}`}`,
      ...(method.data.hint === undefined ? {} : { hint: method.data.hint }),
      details: { server: method.server, scope },
    });
  }
  if (!ctx.stdin.isTTY || !ctx.stderr.isTTY) {
    throw new LatchkeyError("LK_NOT_INTERACTIVE", {
      message: `To ${PURPOSE[scope]}, ${method.server} asks for your password${method.data.method === "password+totp" ? " and a TOTP code" : ""}, and this command has no terminal to ask on (stdin or stderr is not one).`,
      hint: "Run it in an interactive terminal. A script cannot confirm it is you, by design: there is no --yes for this.",
      details: { server: method.server, scope },
    });
  }
  const withTotp = method.data.method === "password+totp";
  printStatus(
    ctx,
    `To ${PURPOSE[scope]}, confirm it is you: type your password for ${method.server}${withTotp ? " and a code from your authenticator app" : ""}.`,
  );
  for (let attempt = 1; ; attempt++) {
    const refused = (why: string): LatchkeyError =>
      new LatchkeyError("LK_STEP_UP_FAILED", {
        message: `${why} ${attempt} of ${STEP_UP_ATTEMPTS} attempts used; giving up.`,
        details: { server: method.server, scope, attempts: attempt },
      });
    const retry = (why: string): void => {
      printStatus(ctx, `${why} Try again (${attempt} of ${STEP_UP_ATTEMPTS} attempts used).`);
    };
    const password = await ctx.prompts.secret("Password");
    let totp: string | undefined;
    if (withTotp) totp = (await ctx.prompts.secret("TOTP code (6 digits)")).replace(/\s+/g, "");
    // Shapes the server refuses anyway are refused here, without spending one of its attempts.
    const local =
      password === "" || password.length > MAX_STEP_UP_PASSWORD_LENGTH
        ? `The password must be 1 to ${MAX_STEP_UP_PASSWORD_LENGTH} characters.`
        : totp !== undefined && !SIX_DIGITS.test(totp)
          ? "The TOTP code must be 6 digits."
          : null;
    if (local !== null) {
      if (attempt >= STEP_UP_ATTEMPTS) throw refused(local);
      retry(local);
      continue;
    }
    const body: StepUpRequest = { scope, password, ...(totp === undefined ? {} : { totp }) };
    try {
      const minted = await callApi(
        ctx,
        { method: "POST", path: "/step-up", body, answer: stepUpResponseSchema },
        target,
      );
      if (minted.data.scope !== scope) {
        throw new LatchkeyError("LK_SERVER_ERROR", {
          message: `${minted.server} answered a step-up for ${scope} with a proof for ${minted.data.scope}; it was not used.`,
          details: { server: minted.server },
        });
      }
      return { ...minted.data, scope, server: minted.server };
    } catch (error) {
      if (!isLatchkeyError(error, "LK_STEP_UP_FAILED")) throw error;
      const why = withTotp ? "The password or the TOTP code is wrong." : "The password is wrong.";
      if (attempt >= STEP_UP_ATTEMPTS) throw refused(why);
      retry(why);
    }
  }
}

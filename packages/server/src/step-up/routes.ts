/**
 * The step-up routes under /api/v1 (docs/pairing.md): `GET /step-up/method`, `POST /step-up`, and
 * `POST /step-up/cookie`, which mints the same proof but hands it to the browser dashboard as a cookie that page
 * script cannot read. The API layer (api/plugin.ts) has authenticated the bearer and signs the 2xx answers. A
 * refusal is never a 401: that means "your bearer token is bad", and the CLI would refresh its token and try again.
 */
import {
  API_PREFIX,
  STEP_UP_COOKIE_PATH,
  STEP_UP_COOKIE_SCOPES,
  stepUpRequestSchema,
  type StepUpCookieResponse,
  type StepUpMethodResponse,
  type StepUpResponse,
  type StepUpScope,
} from "@latchkey/core";
import type { FastifyRequest } from "fastify";
import { ApiError, invalid, parseBody, SMALL_BODY_LIMIT, type ApiRoutes } from "../api/plugin.js";
import {
  createStepUpService,
  type StepUpActor,
  type StepUpOutcome,
  type StepUpServiceDeps,
} from "./service.js";

/** What the step-up routes need. */
export type StepUpDeps = StepUpServiceDeps;

const UNAVAILABLE: Readonly<Required<Pick<StepUpMethodResponse, "reason" | "hint">>> = {
  reason: "Your account has no password on this server, so it cannot re-authenticate.",
  hint: "Ask the server's administrator to give your account a password.",
};

/** The step-up routes, for registerApi (api/plugin.ts). */
export function stepUpRoutes(deps: StepUpDeps): ApiRoutes {
  const service = createStepUpService(deps);
  return (api, context) => {
    const actor = (request: FastifyRequest): StepUpActor => {
      const { user, ip } = context.call(request);
      return { userId: user.userId, grantId: user.grantId, ip };
    };

    api.get(`${API_PREFIX}/step-up/method`, async (request, reply) => {
      const method = await service.method(actor(request));
      const body: StepUpMethodResponse = method === "unavailable" ? { method, ...UNAVAILABLE } : { method };
      return reply.send(body);
    });

    api.post(`${API_PREFIX}/step-up`, { bodyLimit: SMALL_BODY_LIMIT }, async (request, reply) => {
      const body = parseBody(stepUpRequestSchema, request.body);
      const { proof, scope, expiresAt } = granted(request, await service.grant(actor(request), body));
      const answer: StepUpResponse = { proof, scope, expiresAt };
      return reply.send(answer);
    });

    api.post(STEP_UP_COOKIE_PATH, { bodyLimit: SMALL_BODY_LIMIT }, async (request, reply) => {
      const body = parseBody(stepUpRequestSchema, request.body);
      // Before the factors are checked: a request that can never be granted costs no attempt.
      const scope = cookieScope(body.scope);
      if (scope === undefined) {
        throw invalid(
          `A step-up proof is set as a cookie only for ${STEP_UP_COOKIE_SCOPES.map((s) => `"${s}"`).join(", ")}, whose routes are where the cookie is sent; use POST /api/v1/step-up for "${body.scope}".`,
        );
      }
      const { proof, expiresAt } = granted(request, await service.grant(actor(request), body));
      context.setStepUpCookie(reply, proof);
      const answer: StepUpCookieResponse = { scope, expiresAt };
      return reply.send(answer);
    });
  };
}

/** `scope` when a proof for it may be set as a cookie. */
function cookieScope(scope: StepUpScope): (typeof STEP_UP_COOKIE_SCOPES)[number] | undefined {
  return STEP_UP_COOKIE_SCOPES.find((s) => s === scope);
}

/** The proof of a granted step-up; any other outcome thrown as its refusal. */
function granted(
  request: FastifyRequest,
  outcome: StepUpOutcome,
): Extract<StepUpOutcome, { kind: "granted" }> {
  switch (outcome.kind) {
    case "granted":
      return outcome;
    case "totp-not-enrolled":
      throw invalid('"totp" was sent, but this account has no TOTP enrolled: send the password alone.');
    case "failed":
      throw new ApiError(403, {
        error: "StepUpFailed",
        code: "LK_STEP_UP_FAILED",
        message:
          outcome.reason === "totp_missing"
            ? "This account has two-step sign-in: the TOTP code is required with the password."
            : "The password or the TOTP code is wrong.",
      });
    case "unavailable":
      throw new ApiError(403, {
        error: "StepUpUnavailable",
        code: "LK_STEP_UP_UNAVAILABLE",
        message: UNAVAILABLE.reason,
      });
    case "rate-limited":
      request.log.warn({ event: "step_up.rate_limited" }, "step-up attempt rate-limited");
      throw new ApiError(
        429,
        {
          error: "RateLimited",
          code: "LK_RATE_LIMITED",
          message: `Too many failed attempts; try again in ${outcome.retryAfterSeconds} seconds.`,
        },
        { "retry-after": String(outcome.retryAfterSeconds) },
      );
  }
}

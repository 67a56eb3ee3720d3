/**
 * The step-up routes under /api/v1 (docs/pairing.md): `GET /step-up/method` and `POST /step-up`. The API layer
 * (api/plugin.ts) has authenticated the bearer and signs the 2xx answers. A refusal is never a 401: that means
 * "your bearer token is bad", and the CLI would refresh its token and try again.
 */
import {
  API_PREFIX,
  stepUpRequestSchema,
  type StepUpMethodResponse,
  type StepUpResponse,
} from "@latchkey/core";
import type { FastifyRequest } from "fastify";
import { ApiError, invalid, parseBody, SMALL_BODY_LIMIT, type ApiRoutes } from "../api/plugin.js";
import { createStepUpService, type StepUpActor, type StepUpServiceDeps } from "./service.js";

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
      const outcome = await service.grant(actor(request), body);
      switch (outcome.kind) {
        case "granted": {
          const answer: StepUpResponse = {
            proof: outcome.proof,
            scope: outcome.scope,
            expiresAt: outcome.expiresAt,
          };
          return reply.send(answer);
        }
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
    });
  };
}

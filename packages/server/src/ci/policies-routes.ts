/**
 * The CI policy API under /api/v1 (docs/ci.md "Policies" and "Escrow"): the router layer. The API layer
 * (api/plugin.ts) has authenticated the bearer token and checked the request id before a route runs, and signs
 * every 2xx answer. `GET /ci/config` tells a signed-in CLI the escrow key and the trusted issuers; each copy — the
 * caller's personal copy (`/vaults/:vaultId/ci`) or an organisation's (`/orgs/:slug/vaults/:vaultId/ci`) — has its
 * policy shown (GET), made or replaced with a step-up proof for `vault:ci:enable` (PUT), and deleted with its
 * escrow (DELETE). Nothing here logs a body or an escrowed key.
 */
import {
  API_PREFIX,
  CI_PATH,
  ciEnableRequestSchema,
  ORGS_PATH,
  type CiConfigResponse,
  type CiDisableResponse,
  type CiPolicyResponse,
} from "@latchkey/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  ApiError,
  invalid,
  parseBody,
  SMALL_BODY_LIMIT,
  stepUpRequired,
  type ApiContext,
  type ApiRoutes,
} from "../api/plugin.js";
import { copyRefusal } from "../api/copies.js";
import { parseOrgSlug, parseVaultId } from "../api/params.js";
import { escrowPublicKeyText } from "../escrow-key.js";
import {
  createCiPolicyService,
  type CiActor,
  type CiPolicyService,
  type CiPolicyServiceDeps,
  type CopyNotFound,
  type CopyTarget,
  type EnableRefusal,
  type NotEnabled,
  type OrgDenied,
} from "./policies-service.js";

/** What the CI policy routes need: the service's dependencies, and the server's public URL once known. */
export interface CiPolicyDeps extends CiPolicyServiceDeps {
  /** The URL clients reach the server at: the audience a policy gets when the CLI names none. */
  publicUrl: () => string | undefined;
}

/** The CI policy routes, for registerApi (api/plugin.ts). */
export function ciPolicyRoutes(deps: CiPolicyDeps): ApiRoutes {
  return (api, context) => ciPolicyPlugin(api, context, createCiPolicyService(deps), deps);
}

const error = (status: number, name: string, code: string, message: string): ApiError =>
  new ApiError(status, { error: name, code, message });

/** The answer to a refusal of the service. */
function refusal(outcome: OrgDenied | CopyNotFound | NotEnabled | EnableRefusal): ApiError {
  switch (outcome.kind) {
    case "org-not-found":
    case "forbidden":
    case "vault-not-found":
    case "not-shared":
      return copyRefusal(outcome);
    case "not-enabled":
      return error(
        404,
        "CiNotEnabledError",
        "LK_CI_NOT_ENABLED",
        "CI pulls are not enabled for this vault copy.",
      );
    case "issuer-not-trusted":
      return invalid(
        `"issuer" must be an issuer this server trusts for the policy's provider (GET ${CI_PATH}/config lists them).`,
      );
    case "protected-refs-unsupported":
      return invalid(
        `"protectedRefsOnly" needs a provider whose tokens say whether a ref is protected (gitlab).`,
      );
    case "escrow-stale":
      return error(
        409,
        "CiEscrowStaleError",
        "LK_CI_ESCROW_STALE",
        `The escrow is for another escrow key than the server's (GET ${CI_PATH}/config names it); nothing was changed.`,
      );
    case "escrow-invalid":
      return error(
        400,
        "CiEscrowInvalidError",
        "LK_CI_ESCROW_INVALID",
        "The escrowed key does not open the vault copy's current version; nothing was changed.",
      );
    case "step-up-used":
      return stepUpRequired("vault:ci:enable", "used");
  }
}

/** The value of a successful outcome; throws the answer to any other. */
function value<T>(
  outcome: { kind: "ok"; value: T } | OrgDenied | CopyNotFound | NotEnabled | EnableRefusal,
): T {
  if (outcome.kind === "ok") return outcome.value;
  throw refusal(outcome);
}

type ByCopy = { Params: Record<string, string | undefined> };

function ciPolicyPlugin(
  api: FastifyInstance,
  context: ApiContext,
  service: CiPolicyService,
  deps: CiPolicyDeps,
): void {
  const actor = (request: FastifyRequest): CiActor => {
    const { user, ip } = context.call(request);
    return { userId: user.userId, clientId: user.clientId, ip };
  };
  const personal = (params: ByCopy["Params"]): CopyTarget => ({
    vaultId: parseVaultId(params.vaultId ?? ""),
  });
  const ofOrg = (params: ByCopy["Params"]): CopyTarget => ({
    vaultId: parseVaultId(params.vaultId ?? ""),
    org: parseOrgSlug(params.slug ?? ""),
  });

  api.get(`${CI_PATH}/config`, async (_request, reply) => {
    const audience = deps.publicUrl();
    // Only between the listen and the URL being known on --port 0 without PUBLIC_URL: a moment at start-up.
    if (audience === undefined)
      throw error(503, "NotReadyError", "LK_SERVER_ERROR", "The server is starting.");
    const answer: CiConfigResponse = {
      escrowPublicKey: escrowPublicKeyText(deps.escrowKey),
      escrowKeyFingerprint: deps.escrowKey.fingerprint,
      issuers: deps.issuers.map((issuer) => ({ provider: issuer.provider, issuer: issuer.url })),
      defaultAudience: audience,
    };
    return reply.send(answer);
  });

  // The same three routes for the caller's personal copy and for an organisation's.
  for (const [path, target] of [
    [`${API_PREFIX}/vaults/:vaultId/ci`, personal],
    [`${ORGS_PATH}/:slug/vaults/:vaultId/ci`, ofOrg],
  ] as const) {
    api.get<ByCopy>(path, async (request, reply) => {
      const answer: CiPolicyResponse = value(await service.show(actor(request), target(request.params)));
      return reply.send(answer);
    });

    api.put<ByCopy>(path, { bodyLimit: SMALL_BODY_LIMIT }, async (request, reply) => {
      const copy = target(request.params);
      const body = parseBody(ciEnableRequestSchema, request.body);
      const grant = await context.stepUp(request, "vault:ci:enable");
      const answer: CiPolicyResponse = value(await service.enable(actor(request), copy, body, grant));
      return reply.send(answer);
    });

    api.delete<ByCopy>(path, async (request, reply) => {
      value(await service.disable(actor(request), target(request.params)));
      const answer: CiDisableResponse = { disabled: true };
      return reply.send(answer);
    });
  }
}

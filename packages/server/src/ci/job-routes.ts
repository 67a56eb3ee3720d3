/**
 * The CI routes a CI job calls (docs/ci.md "Exchange" and "The CI pull"), in a credential scope of the API layer
 * (api/plugin.ts registerCredentialApi): no session's bearer token is looked up or accepted there. `POST
 * /api/v1/ci/oidc` takes the job's OIDC ID token in its body and answers a CI access token, signed keyed by that ID
 * token; `GET /api/v1/vaults/:vaultId/ci-pull` takes only a CI access token as bearer and answers one environment,
 * signed keyed by it. Nothing here logs a token, a value or a body; refusals are logged by rule and code.
 */
import {
  API_PREFIX,
  canonicalVaultId,
  CI_PATH,
  ciExchangeRequestSchema,
  CONFIG_NAME,
  isOrgSlug,
  type ApiErrorBody,
} from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import { parseVaultId } from "../api/params.js";
import {
  ApiError,
  invalid,
  parseBody,
  rateLimited,
  SMALL_BODY_LIMIT,
  type CredentialContext,
  type CredentialRoutes,
} from "../api/plugin.js";
import { createCiExchangeService, type CiExchangeDeps, type CiExchangeService } from "./exchange-service.js";
import {
  createCiPullService,
  type CiPullDeps,
  type CiPullOutcome,
  type CiPullService,
} from "./pull-service.js";

/** Where a copy's CI pull lives, under `/api/v1/vaults/:vaultId`. */
export const CI_PULL_SEGMENT = "ci-pull";

/** What the CI job's routes need. */
export type CiJobDeps = CiExchangeDeps & CiPullDeps;

/** The exchange and the pull, for registerCredentialApi (api/plugin.ts). */
export function ciJobRoutes(deps: CiJobDeps): CredentialRoutes {
  return (api, context) =>
    ciJobPlugin(api, context, createCiExchangeService(deps), createCiPullService(deps));
}

const refusal = (status: number, error: string, code: string, message: string, headers = {}): ApiError =>
  new ApiError(status, { error, code, message } satisfies ApiErrorBody, headers);

const ACCESS_TOKEN_REFUSED = {
  invalid: "The bearer token is not a CI access token of this server.",
  expired: "The CI access token has expired.",
  revoked:
    "The CI access token was revoked: the vault's CI policy was disabled or replaced since it was issued.",
} as const;

function ciJobPlugin(
  api: FastifyInstance,
  context: CredentialContext,
  exchange: CiExchangeService,
  pull: CiPullService,
): void {
  api.post(`${CI_PATH}/oidc`, { bodyLimit: SMALL_BODY_LIMIT }, async (request, reply) => {
    const body = parseBody(ciExchangeRequestSchema, request.body);
    const { ip } = context.call(request);
    const vaultId = canonicalVaultId(body.vaultId);
    const outcome = await exchange.exchange({ vaultId, org: body.org, token: body.token, ip });
    const log = { event: "ci.exchange", vaultId, org: body.org ?? null, outcome: outcome.kind };
    switch (outcome.kind) {
      case "exchanged":
        request.log.info({ ...log, name: outcome.answer.name }, "CI token exchanged");
        context.signWith(request, body.token);
        return reply.send(outcome.answer);
      case "rate-limited":
        request.log.warn(log, "CI exchange rate-limited");
        throw rateLimited(
          `Too many refused CI exchanges from this address; the server takes another in ${outcome.retryAfterSeconds} seconds.`,
          outcome.retryAfterSeconds,
        );
      case "not-enabled":
        request.log.info(log, "CI exchange refused");
        throw notEnabled();
      case "invalid":
        request.log.info(log, "CI exchange refused");
        throw refusal(401, "Unauthorized", "LK_CI_TOKEN_INVALID", outcome.message);
      case "replayed":
        request.log.warn(log, "CI exchange refused");
        throw refusal(
          401,
          "Unauthorized",
          "LK_CI_TOKEN_REPLAYED",
          "This CI token was already exchanged: each OIDC token is accepted once.",
        );
      case "denied":
        request.log.info(
          { ...log, rule: outcome.denial.rule, claim: outcome.denial.claim },
          "CI exchange refused",
        );
        throw refusal(403, "Forbidden", "LK_CI_POLICY_DENIED", outcome.denial.message);
    }
  });

  type PullRequest = { Params: { vaultId: string }; Querystring: Record<string, unknown> };
  api.get<PullRequest>(`${API_PREFIX}/vaults/:vaultId/${CI_PULL_SEGMENT}`, async (request, reply) => {
    const token = context.bearer(request);
    if (token === undefined) throw accessTokenRefused(ACCESS_TOKEN_REFUSED.invalid);
    const vaultId = parseVaultId(request.params.vaultId);
    const { environment, org } = parsePullQuery(request.query);
    const outcome = await pull.pull({ token, vaultId, org, environment, ip: context.call(request).ip });
    request.log.info(
      { event: "ci.pull", vaultId, org: org ?? null, environment, outcome: outcome.kind },
      outcome.kind === "pulled" ? "CI pull released an environment" : "CI pull refused",
    );
    if (outcome.kind !== "pulled") throw pullRefusal(outcome);
    context.signWith(request, token);
    return reply.send(outcome.answer);
  });
}

const notEnabled = (): ApiError =>
  refusal(404, "CiNotEnabledError", "LK_CI_NOT_ENABLED", "CI pulls are not enabled for this vault copy.");

const accessTokenRefused = (message: string): ApiError =>
  refusal(401, "Unauthorized", "LK_CI_ACCESS_TOKEN_INVALID", message, {
    "www-authenticate": 'Bearer realm="latchkey-ci", error="invalid_token"',
  });

function pullRefusal(outcome: Exclude<CiPullOutcome, { kind: "pulled" }>): ApiError {
  switch (outcome.kind) {
    case "token-refused":
      return accessTokenRefused(ACCESS_TOKEN_REFUSED[outcome.refusal]);
    case "other-copy":
      return refusal(
        403,
        "Forbidden",
        "LK_CI_POLICY_DENIED",
        "This CI access token was issued for another vault copy.",
      );
    case "environment-not-allowed":
      return refusal(
        403,
        "Forbidden",
        "LK_CI_POLICY_DENIED",
        `This CI access token may pull only the environment ${outcome.allowed.join(", ")}: the job's environment claim when it was issued.`,
      );
    case "copy-not-found":
      return refusal(
        404,
        "VaultNotFoundError",
        "LK_VAULT_NOT_SYNCED",
        "The server holds no copy of this vault.",
      );
    case "escrow-stale":
      return refusal(
        409,
        "CiEscrowStaleError",
        "LK_CI_ESCROW_STALE",
        "The vault's CI escrow does not open its current version; a maintainer enables CI on it again.",
      );
    case "environment-not-found":
      return refusal(
        404,
        "EnvNotFoundError",
        "LK_ENV_NOT_FOUND",
        "The vault has no environment by that name.",
      );
  }
}

/** `env` (an environment name) and the optional `org` (a slug), each once; nothing else. */
function parsePullQuery(query: Record<string, unknown>): { environment: string; org: string | undefined } {
  for (const name of Object.keys(query)) {
    if (name !== "env" && name !== "org") throw invalid(`The query may hold only "env" and "org".`);
  }
  const { env, org } = query;
  if (typeof env !== "string" || !CONFIG_NAME.test(env)) {
    throw invalid(`"env" must be given once, an environment name (letters, digits, ".", "_", "-").`);
  }
  if (org !== undefined && (typeof org !== "string" || !isOrgSlug(org))) {
    throw invalid(`"org" must be given at most once, an organisation slug.`);
  }
  return { environment: env, org };
}

/**
 * The account routes under /api/v1/account: the router layer. The API layer (api/plugin.ts) has authenticated the
 * bearer token and checked the request id before a route runs, and signs every 2xx answer. The account is always
 * the caller's: no route takes another account's id.
 */
import { ACCOUNT_AUDIT_PATH, type AuditPageResponse } from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import type { ApiContext, ApiRoutes } from "../api/plugin.js";
import { parseAuditQuery } from "../api/params.js";
import { createAccountService, type AccountService, type AccountServiceDeps } from "./service.js";

/** The account routes, for registerApi (api/plugin.ts). */
export function accountRoutes(deps: AccountServiceDeps): ApiRoutes {
  return (api, context) => accountPlugin(api, context, createAccountService(deps));
}

function accountPlugin(api: FastifyInstance, context: ApiContext, service: AccountService): void {
  api.get<{ Querystring: unknown }>(ACCOUNT_AUDIT_PATH, async (request, reply) => {
    const query = parseAuditQuery(request.query);
    const { user } = context.call(request);
    const answer: AuditPageResponse = await service.auditPage(user.userId, query);
    return reply.send(answer);
  });
}

/**
 * The account's sessions under /api/v1/sessions: "sign out everywhere" (POST …/revoke-all), which the dashboard
 * offers. The API layer has authenticated the caller and signs the answer; the service ends every sign-in.
 */
import { REVOKE_ALL_SESSIONS_PATH, type RevokeAllSessionsResponse } from "@latchkey/core";
import type { ApiRoutes } from "../api/plugin.js";
import { createSessionService, type SessionServiceDeps } from "./service.js";

/** The session routes, for registerApi (api/plugin.ts). */
export function sessionRoutes(deps: SessionServiceDeps): ApiRoutes {
  const service = createSessionService(deps);
  return (api, context) => {
    // No step-up: whoever holds a session may end them all, which is what someone who fears a stolen one needs,
    // and the worst a thief can do with it is sign the owner out.
    api.post(REVOKE_ALL_SESSIONS_PATH, async (request, reply) => {
      const { user, ip } = context.call(request);
      const revoked = await service.revokeAll({
        userId: user.userId,
        ip,
        grantId: user.grantId,
        clientId: user.clientId,
      });
      const body: RevokeAllSessionsResponse = revoked;
      return reply.send(body);
    });
  };
}

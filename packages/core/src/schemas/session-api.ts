/**
 * What the browser dashboard (packages/web) exchanges with the server besides the sync API it shares with the CLI:
 * "sign out everywhere", and the parts of the server's own OpenID provider it reads to sign in (discovery and the
 * token endpoint's answer). The API bodies follow sync-api.ts's rules: strict objects, messages that never quote a
 * value. The provider's documents are oidc-provider's formats, so members this code does not read are allowed.
 */
import * as z from "zod/mini";
import { body } from "./sync-api.js";

/** `POST` here signs the account out of every session and drops every unfinished pairing of it. */
export const REVOKE_ALL_SESSIONS_PATH = "/api/v1/sessions/revoke-all";

function count(name: string) {
  return z.int(`"${name}" must be a whole number of at least 0.`).check(z.gte(0));
}

/** 200 answer of {@link REVOKE_ALL_SESSIONS_PATH}: how much was ended. */
export const revokeAllSessionsResponseSchema = body({
  /** Sign-ins (OAuth grants) ended, with every token issued under them: the CLI's and the browsers'. */
  grants: count("grants"),
  /** Browser sessions of the identity provider ended. */
  sessions: count("sessions"),
  /** Pairings dropped, pending or not yet consumed. */
  pairings: count("pairings"),
});
/** 200 answer of {@link REVOKE_ALL_SESSIONS_PATH}. */
export type RevokeAllSessionsResponse = z.infer<typeof revokeAllSessionsResponseSchema>;

/** The members of the provider's `/.well-known/openid-configuration` the dashboard's sign-in reads. */
export const dashboardDiscoverySchema = z.looseObject({
  issuer: z.string({ error: "names no issuer (a string)" }),
  authorization_endpoint: z.string({ error: "names no authorization_endpoint (a string)" }),
  token_endpoint: z.string({ error: "names no token_endpoint (a string)" }),
  end_session_endpoint: z.string({ error: "names no end_session_endpoint (a string)" }),
});
/** The provider's discovery document, as far as the dashboard reads it. */
export type DashboardDiscovery = z.output<typeof dashboardDiscoverySchema>;

/** The token endpoint's answer to the dashboard's authorization code (RFC 6749 §5.1, OpenID Connect §3.1.3.3). */
export const dashboardTokenAnswerSchema = z.looseObject({
  access_token: z.string({ error: "holds no access_token (a string)" }).check(z.minLength(1)),
  token_type: z.string({ error: "holds no token_type (a string)" }),
  expires_in: z.number({ error: "holds no expires_in (a number)" }).check(z.gt(0)),
  id_token: z.string({ error: "holds no id_token (a string)" }).check(z.minLength(1)),
});
/** The token endpoint's answer, as the dashboard reads it. */
export type DashboardTokenAnswer = z.output<typeof dashboardTokenAnswerSchema>;

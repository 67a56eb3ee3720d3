/**
 * The step-up and pairing routes as the browser calls them, through the dashboard's one API client (api.ts:
 * bearer token, request id, signature checked, body read with core's schema). The step-up proof is asked for as a
 * cookie (`POST /api/v1/step-up/cookie`), which the server sets HttpOnly and scoped to the pairing routes: page
 * script never holds it, and `POST /api/v1/pairings` takes it from there (docs/pairing.md "The browser's step-up
 * cookie").
 */
import {
  PAIRINGS_PATH,
  STEP_UP_COOKIE_PATH,
  meResponseSchema,
  pairingConsumeResponseSchema,
  pairingCreateResponseSchema,
  pairingViewSchema,
  stepUpCookieResponseSchema,
  stepUpMethodResponseSchema,
  type StepUpCookieResponse,
  type StepUpMethodResponse,
} from "@latchkey/core";
import type { ApiClient } from "../api.js";
import type { PairingApi } from "./flow.js";

const one = (pairingId: string, action?: string): string =>
  `${PAIRINGS_PATH}/${encodeURIComponent(pairingId)}${action === undefined ? "" : `/${action}`}`;

/** The pairing routes on `client`. */
export function pairingRequests(client: ApiClient): PairingApi {
  return {
    create: (body) =>
      client.call({ method: "POST", path: PAIRINGS_PATH, body, answer: pairingCreateResponseSchema }),
    view: (pairingId) => client.call({ method: "GET", path: one(pairingId), answer: pairingViewSchema }),
    reveal: (pairingId, body) =>
      client.call({ method: "POST", path: one(pairingId, "reveal"), body, answer: pairingViewSchema }),
    consume: (pairingId) =>
      client.call({
        method: "POST",
        path: one(pairingId, "consume"),
        body: {},
        answer: pairingConsumeResponseSchema,
      }),
    revoke: (pairingId) =>
      client.call({ method: "POST", path: one(pairingId, "revoke"), body: {}, answer: pairingViewSchema }),
  };
}

/** `GET /api/v1/step-up/method`: how the account re-authenticates. */
export function stepUpMethod(client: ApiClient): Promise<StepUpMethodResponse> {
  return client.call({ method: "GET", path: "/api/v1/step-up/method", answer: stepUpMethodResponseSchema });
}

/** `POST /api/v1/step-up/cookie` for `vault:pair`: the factors are checked and the proof set as the cookie. */
export function stepUpForPairing(
  client: ApiClient,
  factors: { password: string; totp?: string },
): Promise<StepUpCookieResponse> {
  return client.call({
    method: "POST",
    path: STEP_UP_COOKIE_PATH,
    body: { scope: "vault:pair", ...factors },
    answer: stepUpCookieResponseSchema,
  });
}

/** The signed-in account's id (`GET /api/v1/me`): what the waiting pairing and the held keys are kept under. */
export async function accountId(client: ApiClient): Promise<string> {
  return (await client.call({ method: "GET", path: "/api/v1/me", answer: meResponseSchema })).userId;
}

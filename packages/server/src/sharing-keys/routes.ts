/**
 * The sharing-key API under /api/v1/sharing-key (docs/teams.md, "Sharing keys"): the router layer. The API layer
 * (api/plugin.ts) has authenticated the bearer token and checked the request id before a route runs, and signs
 * every 2xx answer. Each route validates its body with its schema from core (schemas/sharing-key-api.ts), checks
 * the step-up proof of its own scope, and calls the service.
 */
import {
  SHARING_KEY_PATH,
  checkSchema,
  sharingKeyFingerprintSchema,
  sharingKeyRotateRequestSchema,
  sharingKeySetRequestSchema,
  type SharingKeyImpactResponse,
  type SharingKeyResponse,
  type SharingKeyRotateResponse,
  type SharingKeyStateResponse,
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
import {
  createSharingKeyService,
  type SharingKeyActor,
  type SharingKeyService,
  type SharingKeyServiceDeps,
} from "./service.js";

/** What the sharing-key routes need: the service's dependencies. */
export type SharingKeyDeps = SharingKeyServiceDeps;

/** The sharing-key routes, for registerApi (api/plugin.ts). */
export function sharingKeyRoutes(deps: SharingKeyDeps): ApiRoutes {
  return (api, context) => sharingKeyPlugin(api, context, createSharingKeyService(deps));
}

const exists = (): ApiError =>
  new ApiError(409, {
    error: "SharingKeyExistsError",
    code: "LK_SHARING_KEY_EXISTS",
    message:
      "Your account already has a sharing key; it is replaced only by a rotation (latchkey env rotate-sharing-key).",
  });

const raced = (): ApiError =>
  new ApiError(409, {
    error: "SharingKeyMismatchError",
    code: "LK_SHARING_KEY_MISMATCH",
    message:
      "Your account's sharing key was replaced by another request while this one ran; nothing was changed.",
  });

const unusable = (): ApiError =>
  invalid(`"publicKey" must be an X25519 public key others can wrap for (not a low-order point).`);

const fingerprintSchema = sharingKeyFingerprintSchema();

function sharingKeyPlugin(api: FastifyInstance, context: ApiContext, service: SharingKeyService): void {
  const actor = (request: FastifyRequest): SharingKeyActor => {
    const { user, ip } = context.call(request);
    return { userId: user.userId, email: user.email, ip };
  };
  const small = { bodyLimit: SMALL_BODY_LIMIT };

  api.get<{ Querystring: Record<string, unknown> }>(SHARING_KEY_PATH, async (request, reply) => {
    const fingerprint = parseFingerprint(request.query);
    const answer: SharingKeyStateResponse = await service.state(actor(request), fingerprint);
    return reply.send(answer);
  });

  api.put(SHARING_KEY_PATH, small, async (request, reply) => {
    const { publicKey } = parseBody(sharingKeySetRequestSchema, request.body);
    const grant = await context.stepUp(request, "vault:public-key:set");
    const outcome = await service.set(actor(request), publicKey, grant);
    if (outcome.kind === "invalid-key") throw unusable();
    if (outcome.kind === "exists") throw exists();
    if (outcome.kind === "step-up-required") throw stepUpRequired("vault:public-key:set", "used");
    const answer: SharingKeyResponse = outcome.key;
    return reply.code(201).send(answer);
  });

  api.post(`${SHARING_KEY_PATH}/rotate`, small, async (request, reply) => {
    const { publicKey } = parseBody(sharingKeyRotateRequestSchema, request.body);
    const grant = await context.stepUp(request, "vault:public-key:rotate");
    const outcome = await service.rotate(actor(request), publicKey, grant);
    if (outcome.kind === "invalid-key") throw unusable();
    if (outcome.kind === "raced") throw raced();
    if (outcome.kind === "step-up-required") throw stepUpRequired("vault:public-key:rotate", "used");
    const answer: SharingKeyRotateResponse =
      outcome.kind === "unchanged"
        ? {
            publicKey: outcome.key.publicKey,
            fingerprint: outcome.key.fingerprint,
            previousFingerprint: outcome.key.fingerprint,
            rotated: false,
            orgs: [],
            wrappedKeysDeleted: 0,
          }
        : {
            publicKey: outcome.key.publicKey,
            fingerprint: outcome.key.fingerprint,
            previousFingerprint: outcome.previousFingerprint,
            rotated: true,
            orgs: outcome.orgs,
            wrappedKeysDeleted: outcome.wrappedKeysDeleted,
          };
    return reply.send(answer);
  });

  api.get(`${SHARING_KEY_PATH}/impact`, async (request, reply) => {
    const answer: SharingKeyImpactResponse = { orgs: await service.impact(actor(request)) };
    return reply.send(answer);
  });
}

/** The query of the state route: at most `fingerprint`, 64 lowercase hex digits; absent when the machine has none. */
function parseFingerprint(query: Record<string, unknown>): string | null {
  const names = Object.keys(query);
  if (names.some((name) => name !== "fingerprint")) {
    throw invalid("The query may only have the parameter fingerprint.");
  }
  if (query.fingerprint === undefined) return null;
  const checked = checkSchema(fingerprintSchema, query.fingerprint);
  if (!checked.ok) throw invalid(checked.message);
  return checked.value;
}

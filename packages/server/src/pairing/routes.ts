/**
 * The pairing API under /api/v1/pairings (docs/pairing.md): the router layer. The API layer (api/plugin.ts) has
 * authenticated the bearer token and checked the request id before a route runs, and signs every 2xx answer.
 * Each route validates its body with its schema from core (schemas/pairing-api.ts) and its path here, then calls
 * the service with the caller's user, session (OAuth grant) and address. Nothing here logs a body, a code, a key
 * or a sealed key.
 */
import {
  isUuid,
  PAIRINGS_PATH,
  pairingApproveRequestSchema,
  pairingCreateRequestSchema,
  pairingJoinRequestSchema,
  pairingRevealRequestSchema,
  PAIRING_TTL_SECONDS,
  type PairingConsumeResponse,
  type PairingCreateResponse,
  type PairingListResponse,
  type PairingRevokeAllResponse,
  type PairingView,
} from "@latchkey/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import {
  ApiError,
  invalid,
  parseBody,
  rateLimited,
  SMALL_BODY_LIMIT,
  stepUpRequired,
  type ApiContext,
  type ApiRoutes,
} from "../api/plugin.js";
import type { Database } from "../db/schema.js";
import {
  createPairingService,
  JOIN_FAILURE_LIMIT,
  MAX_UNFINISHED_PAIRINGS,
  type MoveFailure,
  type PairingActor,
  type PairingService,
} from "./service.js";

/** What the pairing routes need. */
export interface PairingDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  /** The CSPRNG pairing codes are drawn from. */
  randomBytes?: (length: number) => Uint8Array;
}

/** The pairing routes, for registerApi (api/plugin.ts). */
export function pairingRoutes(deps: PairingDeps): ApiRoutes {
  return (api, context) => pairingPlugin(api, context, createPairingService(deps));
}

const notFound = (): ApiError =>
  new ApiError(404, {
    error: "PairingNotFoundError",
    code: "LK_PAIRING_NOT_FOUND",
    message: "No pairing of your account that this session takes part in has this id.",
  });

const wrongCode = (): ApiError =>
  new ApiError(404, {
    error: "PairingNotFoundError",
    code: "LK_PAIRING_NOT_FOUND",
    message: "No pending pairing of your account has this code.",
  });

const failed = (message: string): ApiError =>
  new ApiError(409, { error: "PairingFailedError", code: "LK_PAIRING_FAILED", message });

/** The answer to a refused move whose step needs the pairing in `expected`. */
function refusal(outcome: MoveFailure, expected: string): ApiError {
  if (outcome.kind === "not-found") return notFound();
  const { status } = outcome;
  switch (outcome.reason) {
    case "expired":
      return failed(
        `The pairing has expired: it lasts ${PAIRING_TTL_SECONDS / 60} minutes from its creation.`,
      );
    case "other-session":
      return failed(`This step belongs to the pairing's other machine; the pairing is ${status}.`);
    case "own-session":
      return failed(
        "A pairing cannot be approved from the session that created it: approve it on another machine signed in to your account.",
      );
    case "mismatch":
      return failed(
        "The new device's key does not match the commitment it made when the pairing started; the pairing is revoked.",
      );
    case "state":
      return failed(`The pairing is ${status}; this step needs it ${expected}.`);
  }
}

function pairingPlugin(api: FastifyInstance, context: ApiContext, service: PairingService): void {
  const actor = (request: FastifyRequest): PairingActor => {
    const { user, ip } = context.call(request);
    return { userId: user.userId, grantId: user.grantId, ip };
  };
  const small = { bodyLimit: SMALL_BODY_LIMIT };
  type ById = { Params: { id: string } };

  api.post(PAIRINGS_PATH, small, async (request, reply) => {
    const body = parseBody(pairingCreateRequestSchema, request.body);
    // The browser dashboard's proof comes as its step-up cookie (api/step-up-proof.ts), the CLI's in the header.
    const grant = await context.stepUp(request, "vault:pair", { cookie: true });
    const outcome = await service.create(actor(request), body, grant);
    if (outcome.kind === "step-up-required") throw stepUpRequired("vault:pair", "used");
    if (outcome.kind === "too-many") {
      throw rateLimited(
        `Your account has ${MAX_UNFINISHED_PAIRINGS} unfinished pairings: finish or revoke one, or wait for them to expire.`,
        outcome.retryAfterSeconds,
      );
    }
    const answer: PairingCreateResponse = {
      pairingId: outcome.pairingId,
      code: outcome.code,
      expiresAt: outcome.expiresAt,
    };
    // Spent: the browser need not send it again.
    if (grant.from === "cookie") context.clearStepUpCookie(reply);
    return reply.code(201).send(answer);
  });

  api.get(PAIRINGS_PATH, async (request, reply) => {
    const answer: PairingListResponse = { pairings: await service.list(actor(request)) };
    return reply.send(answer);
  });

  api.post(`${PAIRINGS_PATH}/join`, small, async (request, reply) => {
    const body = parseBody(pairingJoinRequestSchema, request.body);
    const outcome = await service.join(actor(request), body.code, body.publicKey);
    if (outcome.kind === "invalid-key") throw invalid(`"publicKey" must be a point on P-256.`);
    if (outcome.kind === "rate-limited") {
      throw rateLimited(
        `More than ${JOIN_FAILURE_LIMIT} wrong pairing codes; the server accepts another in ${outcome.retryAfterSeconds} seconds.`,
        outcome.retryAfterSeconds,
      );
    }
    if (outcome.kind === "not-found") throw wrongCode();
    if (outcome.kind === "failed") throw refusal(outcome, "pending");
    const answer: PairingView = outcome.view;
    return reply.send(answer);
  });

  api.post(`${PAIRINGS_PATH}/revoke-all`, small, async (request, reply) => {
    noBody(request.body);
    const answer: PairingRevokeAllResponse = { revoked: await service.revokeAll(actor(request)) };
    return reply.send(answer);
  });

  api.get<ById>(`${PAIRINGS_PATH}/:id`, async (request, reply) => {
    const view = await service.get(actor(request), parsePairingId(request.params.id));
    if (view === null) throw notFound();
    const answer: PairingView = view;
    return reply.send(answer);
  });

  api.post<ById>(`${PAIRINGS_PATH}/:id/reveal`, small, async (request, reply) => {
    const id = parsePairingId(request.params.id);
    const body = parseBody(pairingRevealRequestSchema, request.body);
    const outcome = await service.reveal(actor(request), id, body);
    if (outcome.kind !== "ok") throw refusal(outcome, "joined");
    const answer: PairingView = outcome.view;
    return reply.send(answer);
  });

  api.post<ById>(`${PAIRINGS_PATH}/:id/approve`, small, async (request, reply) => {
    const id = parsePairingId(request.params.id);
    const body = parseBody(pairingApproveRequestSchema, request.body);
    const outcome = await service.approve(actor(request), id, body.sealedKey);
    if (outcome.kind !== "ok") throw refusal(outcome, "revealed");
    const answer: PairingView = outcome.view;
    return reply.send(answer);
  });

  api.post<ById>(`${PAIRINGS_PATH}/:id/consume`, small, async (request, reply) => {
    const id = parsePairingId(request.params.id);
    noBody(request.body);
    const outcome = await service.consume(actor(request), id);
    if (outcome.kind !== "consumed") throw refusal(outcome, "approved");
    const answer: PairingConsumeResponse = { pairingId: outcome.pairingId, sealedKey: outcome.sealedKey };
    return reply.send(answer);
  });

  api.post<ById>(`${PAIRINGS_PATH}/:id/revoke`, small, async (request, reply) => {
    const id = parsePairingId(request.params.id);
    noBody(request.body);
    const outcome = await service.revoke(actor(request), id);
    if (outcome.kind !== "ok") throw refusal(outcome, "unfinished");
    const answer: PairingView = outcome.view;
    return reply.send(answer);
  });
}

/** A pairing id is a UUID, taken in its one spelling (lower case, as the server makes them). */
function parsePairingId(text: string): string {
  if (!isUuid(text)) throw invalid("The pairing id must be a UUID.");
  return text.toLowerCase();
}

/** The routes that act on the path alone take no body, or an empty JSON object. */
function noBody(body: unknown): void {
  const empty =
    body === undefined ||
    body === null ||
    (typeof body === "object" && !Array.isArray(body) && Object.keys(body).length === 0);
  if (!empty) throw invalid("This request takes no body.");
}

/**
 * The platform connections API under /api/v1 (docs/platforms.md, "Connections"): the router layer. The API layer
 * (api/plugin.ts) has authenticated the bearer token and checked the request id before a route runs, and signs
 * every 2xx answer. Each copy — the caller's personal copy (`/vaults/:vaultId/platforms`) or an organisation's
 * (`/orgs/:slug/vaults/:vaultId/platforms`) — has its connections listed (GET), made (POST), deleted by name
 * (DELETE …/:name) and a push's or pull's outcome recorded (PUT …/:name/status). Nothing here logs a body.
 */
import {
  API_PREFIX,
  ORGS_PATH,
  PLATFORM_CONNECTION_NAME,
  PLATFORMS_SEGMENT,
  platformConnectRequestSchema,
  platformStatusRequestSchema,
  type PlatformConnection,
  type PlatformConnectionResponse,
  type PlatformDisconnectResponse,
  type PlatformListResponse,
} from "@latchkey/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  ApiError,
  invalid,
  parseBody,
  SMALL_BODY_LIMIT,
  type ApiContext,
  type ApiRoutes,
} from "../api/plugin.js";
import { copyRefusal } from "../api/copies.js";
import { parseOrgSlug, parseVaultId } from "../api/params.js";
import type { ConnectionRecord } from "./service.js";
import {
  createPlatformService,
  type CopyConnection,
  type CopyNotFound,
  type CopyTarget,
  type KeyStale,
  type NameTaken,
  type NotConnected,
  type OrgDenied,
  type PlatformActor,
  type PlatformService,
  type PlatformServiceDeps,
  type VersionAhead,
} from "./service.js";

/** The platform connection routes, for registerApi (api/plugin.ts). */
export function platformRoutes(deps: PlatformServiceDeps): ApiRoutes {
  return (api, context) => platformPlugin(api, context, createPlatformService(deps));
}

const error = (status: number, name: string, code: string, message: string): ApiError =>
  new ApiError(status, { error: name, code, message });

type Refusal = OrgDenied | CopyNotFound | NotConnected | NameTaken | KeyStale | VersionAhead;

/** The answer to a refusal of the service. */
function refusal(outcome: Refusal): ApiError {
  switch (outcome.kind) {
    case "org-not-found":
    case "forbidden":
    case "vault-not-found":
    case "not-shared":
      return copyRefusal(outcome);
    case "not-connected":
      return error(
        404,
        "PlatformNotConnectedError",
        "LK_PLATFORM_NOT_CONNECTED",
        "This vault copy has no platform connection of this name.",
      );
    case "name-taken":
      return error(
        409,
        "PlatformNameTakenError",
        "LK_PLATFORM_NAME_TAKEN",
        "This vault copy already has a platform connection of this name.",
      );
    case "key-stale":
      return error(
        409,
        "VaultKeyStaleError",
        "LK_VAULT_KEY_STALE",
        outcome.current === null
          ? "This vault copy's keys record no key version; nothing was stored. A maintainer must share it again."
          : `The credential was sealed with the copy's key of version ${outcome.sent}, but its key is now version ${outcome.current}; nothing was stored.`,
      );
    case "version-ahead":
      return invalid(`"version" names a version the copy does not have yet (its head is ${outcome.head}).`);
  }
}

/** The value of a successful outcome; throws the answer to any other. */
function value<T>(outcome: { kind: "ok"; value: T } | Refusal): T {
  if (outcome.kind === "ok") return outcome.value;
  throw refusal(outcome);
}

/** A connection as the wire carries it. */
function view(record: ConnectionRecord): PlatformConnection {
  const push = record.lastPush;
  return {
    id: record.id,
    name: record.name,
    platform: record.config.platform,
    environment: record.environment,
    config: record.config,
    sealedCredential: record.sealedCredential,
    createdAt: record.createdAt,
    createdBy: record.createdBy,
    lastPush:
      push === null
        ? null
        : {
            pushedAt: push.pushedAt,
            version: push.version,
            added: push.added,
            changed: push.changed,
            removed: push.removed,
            outcome: push.outcome === "ok" || push.outcome === "partial" ? push.outcome : "failed",
            message: push.message,
            pushedBy: push.pushedBy,
          },
  };
}

const one = (found: CopyConnection): PlatformConnectionResponse => ({
  vaultId: found.vaultId,
  org: found.org,
  connection: view(found.connection),
});

function parseName(text: string | undefined): string {
  if (text === undefined || !PLATFORM_CONNECTION_NAME.test(text)) {
    throw invalid(
      'The connection name must be 1 to 64 lower-case letters, digits, ".", "_" and "-", starting with a letter or digit.',
    );
  }
  return text;
}

type ByCopy = { Params: Record<string, string | undefined> };

function platformPlugin(api: FastifyInstance, context: ApiContext, service: PlatformService): void {
  const actor = (request: FastifyRequest): PlatformActor => {
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

  // The same four routes for the caller's personal copy and for an organisation's.
  for (const [path, target] of [
    [`${API_PREFIX}/vaults/:vaultId/${PLATFORMS_SEGMENT}`, personal],
    [`${ORGS_PATH}/:slug/vaults/:vaultId/${PLATFORMS_SEGMENT}`, ofOrg],
  ] as const) {
    api.get<ByCopy>(path, async (request, reply) => {
      const found = value(await service.list(actor(request), target(request.params)));
      const answer: PlatformListResponse = {
        vaultId: found.vaultId,
        org: found.org,
        connections: found.connections.map(view),
      };
      return reply.send(answer);
    });

    api.post<ByCopy>(path, { bodyLimit: SMALL_BODY_LIMIT }, async (request, reply) => {
      const copy = target(request.params);
      const body = parseBody(platformConnectRequestSchema, request.body);
      const found = value(await service.connect(actor(request), copy, body));
      return reply.code(201).send(one(found));
    });

    api.delete<ByCopy>(`${path}/:name`, async (request, reply) => {
      const copy = target(request.params);
      const name = parseName(request.params.name);
      value(await service.disconnect(actor(request), copy, name));
      const answer: PlatformDisconnectResponse = { disconnected: true };
      return reply.send(answer);
    });

    api.put<ByCopy>(`${path}/:name/status`, { bodyLimit: SMALL_BODY_LIMIT }, async (request, reply) => {
      const copy = target(request.params);
      const name = parseName(request.params.name);
      const body = parseBody(platformStatusRequestSchema, request.body);
      return reply.send(one(value(await service.record(actor(request), copy, name, body))));
    });
  }
}

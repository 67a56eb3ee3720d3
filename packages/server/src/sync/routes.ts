/**
 * The sync API under /api/v1: the router layer. The API layer (api/plugin.ts) has authenticated the bearer token
 * and checked the request id before a route runs, and signs every 2xx answer. Each route validates its body with
 * its schema from core (schemas/sync-api.ts: strict types, no coercion, sizes bounded, no unknown field) and its
 * path and query here, then calls the service, which writes the audit row in the transaction of the change.
 * Nothing here logs a body, a token, a blob or a wrapped key.
 */
import {
  API_PREFIX,
  pushRequestSchema,
  rewrapRequestSchema,
  VAULTS_PATH,
  type AuditLogResponse,
  type AuditPageResponse,
  type MeResponse,
  type PullResponse,
  type PushResponse,
  type RewrapResponse,
  type VaultListResponse,
} from "@latchkey/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import {
  ApiError,
  ciEscrowStale,
  parseBody,
  SMALL_BODY_LIMIT,
  type ApiContext,
  type ApiRoutes,
} from "../api/plugin.js";
import { parseAuditQuery, parseLimit, parseVaultId, PUSH_BODY_LIMIT } from "../api/params.js";
import type { Database } from "../db/schema.js";
import { dataVersionOf } from "../db/index.js";
import { createReadCache } from "../db/read-cache.js";
import type { EscrowKey } from "../escrow-key.js";
import {
  createSyncService,
  type Actor,
  type OrgCopiesLookup,
  type SyncService,
  type SyncWrites,
  type ValidPush,
} from "./service.js";

/** What the sync routes need. */
export interface SyncDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  /** The server's escrow key (escrow-key.ts), for pushes to copies with CI (vault-copies.ts PushOptions). */
  escrowKey?: EscrowKey | undefined;
  /** Where push and rewrap run when not in this thread (the writer thread, on SQLite). */
  writes?: SyncWrites;
  /** The caller's organisations' copies of their vaults, for the vault list (wired in app.ts). */
  orgCopies?: OrgCopiesLookup;
}

/**
 * A pull's answer as sent, kept while the database is unchanged (read-cache.ts), so a client pulling again is
 * answered without reading or serializing anything. Its signature cannot be kept: it covers the request id,
 * which is new on every request (the HMAC key of the token is cached in api/signature.ts).
 */
interface PullAnswer {
  body: string;
}

/** Most pull answers kept, and their largest total (a vault can be megabytes). */
const PULL_CACHE_ENTRIES = 1_000;
const PULL_CACHE_BYTES = 64 * 1024 * 1024;

// One body for "absent" and "someone else's", so a caller learns nothing about other users' vault ids.
const notFound = (): ApiError =>
  new ApiError(404, {
    error: "VaultNotFoundError",
    code: "LK_VAULT_NOT_SYNCED",
    message: "The server has no copy of this vault for your account.",
  });

const conflict = (currentVersion: number): ApiError =>
  new ApiError(409, {
    error: "VaultConflictError",
    code: "LK_VAULT_CONFLICT",
    message: `The server has version ${currentVersion} of this vault; the request was based on another version.`,
    currentVersion,
  });

/** The sync routes, for registerApi (api/plugin.ts). */
export function syncRoutes(deps: SyncDeps): ApiRoutes {
  return (api, context) => syncPlugin(api, context, createSyncService(deps), deps);
}

function syncPlugin(api: FastifyInstance, context: ApiContext, service: SyncService, deps: SyncDeps): void {
  const pulls = createReadCache<PullAnswer>(dataVersionOf(deps.db), {
    maxEntries: PULL_CACHE_ENTRIES,
    maxBytes: PULL_CACHE_BYTES,
  });
  const caller = (request: FastifyRequest) => context.call(request);
  const actor = (request: FastifyRequest): Actor => {
    const { user } = caller(request);
    return { userId: user.userId, clientId: user.clientId };
  };

  const prefix = API_PREFIX;

  api.get(`${prefix}/me`, async (request, reply) => {
    const { user } = caller(request);
    const body: MeResponse = {
      userId: user.userId,
      email: user.email,
      clientId: user.clientId,
      expiresAt: new Date(user.expiresAt * 1000).toISOString(),
    };
    return reply.send(body);
  });

  api.put<{ Params: { vaultId: string } }>(
    `${prefix}/vaults/:vaultId`,
    { bodyLimit: PUSH_BODY_LIMIT },
    async (request, reply) => {
      const vaultId = parseVaultId(request.params.vaultId);
      const push = parseBody(pushRequestSchema, request.body);
      // The schema took canonical base64 only, which Node's decoder reads exactly; the service needs the bytes.
      const blobBytes = Buffer.from(push.encryptedBlob, "base64");
      const valid: ValidPush = { ...push, schema: push.schema, blobBytes };
      const outcome = await service.push(actor(request), vaultId, valid);
      if (outcome.kind === "not-found") throw notFound();
      if (outcome.kind === "conflict") throw conflict(outcome.currentVersion);
      if (outcome.kind === "escrow-stale") throw ciEscrowStale();
      const body: PushResponse = { vaultId, version: outcome.version, createdAt: outcome.createdAt };
      return reply.send(body);
    },
  );

  api.get<{ Params: { vaultId: string } }>(`${prefix}/vaults/:vaultId`, async (request, reply) => {
    const vaultId = parseVaultId(request.params.vaultId);
    const call = caller(request);
    const key = `${call.user.userId}\u0000${vaultId}`;
    const { stamp } = call;
    let answer = pulls?.get(key, stamp);
    if (answer === undefined) {
      const vault = await service.pull(actor(request), vaultId);
      if (vault === null) throw notFound();
      const body: PullResponse = { vaultId, ...vault };
      // What fastify's default serializer would send for the object, so cached and fresh answers are the same.
      answer = { body: JSON.stringify(body) };
      pulls?.set(key, answer, stamp, answer.body.length);
    }
    return reply.type("application/json; charset=utf-8").send(answer.body);
  });

  api.put<{ Params: { vaultId: string } }>(
    `${prefix}/vaults/:vaultId/key`,
    { bodyLimit: SMALL_BODY_LIMIT },
    async (request, reply) => {
      const vaultId = parseVaultId(request.params.vaultId);
      const rewrap = parseBody(rewrapRequestSchema, request.body);
      const outcome = await service.rewrap(actor(request), vaultId, rewrap);
      if (outcome.kind === "not-found") throw notFound();
      if (outcome.kind === "conflict") throw conflict(outcome.currentVersion);
      const body: RewrapResponse = { vaultId, version: outcome.version };
      return reply.send(body);
    },
  );

  api.get<{ Params: { vaultId: string }; Querystring: Record<string, unknown> }>(
    `${prefix}/vaults/:vaultId/log`,
    async (request, reply) => {
      const vaultId = parseVaultId(request.params.vaultId);
      const limit = parseLimit(request.query.limit);
      const entries = await service.log(actor(request), vaultId, limit);
      if (entries === null) throw notFound();
      const body: AuditLogResponse = { vaultId, entries };
      return reply.send(body);
    },
  );

  api.get(VAULTS_PATH, async (request, reply) => {
    const body: VaultListResponse = { vaults: await service.vaults(actor(request)) };
    return reply.send(body);
  });

  api.get<{ Params: { vaultId: string }; Querystring: unknown }>(
    `${prefix}/vaults/:vaultId/audit`,
    async (request, reply) => {
      const vaultId = parseVaultId(request.params.vaultId);
      const query = parseAuditQuery(request.query);
      const page = await service.audit(actor(request), vaultId, query);
      if (page === null) throw notFound();
      const body: AuditPageResponse = page;
      return reply.send(body);
    },
  );
}

/**
 * The sync API under /api/v1: the router layer. Each route authenticates the bearer token, validates its body
 * with its schema from core (schemas/sync-api.ts: strict types, no coercion, sizes bounded, no unknown field)
 * and its path and query here, then calls the service, which writes the audit row in the transaction of the
 * change. Every 2xx answer is signed over its request (method, path, request id), its status and the bytes
 * actually sent (signature.ts); error answers are unsigned ApiErrorBody values. Nothing here logs a body, a
 * token, a blob or a wrapped key: request logs carry method and path only (logging.ts), and errors are logged by
 * code.
 */
import {
  API_PREFIX,
  canonicalVaultId,
  checkSchema,
  isRequestId,
  isUuid,
  MAX_LOG_LIMIT,
  pushRequestSchema,
  REQUEST_ID_HEADER,
  rewrapRequestSchema,
  SIGNATURE_HEADER,
  type ApiErrorBody,
  type AuditLogResponse,
  type MeResponse,
  type PullResponse,
  type PushResponse,
  type RewrapResponse,
  type WireSchema,
} from "@latchkey/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Authenticated } from "../authenticated.js";
import type { Database } from "../db/schema.js";
import { dataVersionOf, identityVersionOf } from "../db/index.js";
import { createReadCache, createStampBatcher, type ReadStamp } from "../db/read-cache.js";
import { JsonBodyRefused } from "../json-body.js";
import {
  createSyncService,
  type Actor,
  type SyncService,
  type SyncWrites,
  type ValidPush,
} from "./service.js";
import { signResponse } from "./signature.js";

/** What the sync routes need. */
export interface SyncDeps {
  db: Kysely<Database>;
  /** `stamp`: the identity version the request took on arrival (read-cache.ts), for the token cache. */
  authenticate: (bearerToken: string, stamp: ReadStamp | null) => Promise<Authenticated | null>;
  now: () => Date;
  randomId: () => string;
  /** Where push and rewrap run when not in this thread (the writer thread, on SQLite). */
  writes?: SyncWrites;
}

/** Largest push body accepted (fastify answers 413 beyond it, before parsing). */
export const PUSH_BODY_LIMIT = 8 * 1024 * 1024;
/** Largest body of the other routes that take one (rewrap). */
export const SMALL_BODY_LIMIT = 64 * 1024;
/** Longest bearer token looked at; longer ones are malformed. */
const MAX_TOKEN_LENGTH = 4096;

// RFC 6750 §2.1 b64token; the scheme name is case-insensitive (RFC 7235 §2.1).
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

interface CallContext {
  token: string;
  user: Authenticated;
  /**
   * The data version taken when the request arrived, for the pull cache (the token cache got the identity version
   * of the same read). A version read after arrival is as good as any later one (read-cache.ts).
   */
  stamp: ReadStamp | null;
  /** The request's X-Latchkey-Request-Id, echoed into the signed bytes of the answer. */
  requestId: string;
}

/**
 * A pull's answer as sent, kept while the database is unchanged (read-cache.ts), so a client pulling again is
 * answered without reading or serializing anything. Its signature cannot be kept: it covers the request id,
 * which is new on every request (the HMAC key of the token is cached in signature.ts).
 */
interface PullAnswer {
  body: string;
}

/** Most pull answers kept, and their largest total (a vault can be megabytes). */
const PULL_CACHE_ENTRIES = 1_000;
const PULL_CACHE_BYTES = 64 * 1024 * 1024;

/** A request refused with an ApiErrorBody. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.message);
  }
}

const invalid = (message: string): ApiError =>
  new ApiError(400, { error: "ValidationError", code: "LK_SERVER_ERROR", message });

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

/** Registers the sync routes on `app`. */
export async function registerSyncRoutes(app: FastifyInstance, deps: SyncDeps): Promise<void> {
  const service = createSyncService(deps);
  await app.register((api, _options, done) => {
    syncPlugin(api, deps, service);
    done();
  });
}

function syncPlugin(api: FastifyInstance, deps: SyncDeps, service: SyncService): void {
  const calls = new WeakMap<FastifyRequest, CallContext>();
  const dataVersion = dataVersionOf(deps.db);
  const identityVersion = identityVersionOf(deps.db);
  const nextStamps =
    dataVersion === null
      ? null
      : createStampBatcher(() => ({ data: dataVersion(), identity: identityVersion?.() ?? null }));
  const pulls = createReadCache<PullAnswer>(dataVersion, {
    maxEntries: PULL_CACHE_ENTRIES,
    maxBytes: PULL_CACHE_BYTES,
  });
  const caller = (request: FastifyRequest): CallContext => {
    const call = calls.get(request);
    // onRequest has run for every route of this plugin; reaching here without a caller is a bug.
    if (call === undefined) throw new Error("sync route reached without authentication");
    return call;
  };
  const actor = (request: FastifyRequest): Actor => {
    const { user } = caller(request);
    return { userId: user.userId, clientId: user.clientId };
  };

  // Before the body is read: an unauthenticated client cannot make the server parse 8 MiB.
  api.addHook("onRequest", async (request) => {
    const header = request.headers.authorization;
    if (header === undefined || header === "") {
      throw new ApiError(
        401,
        { error: "Unauthorized", code: "LK_NOT_LOGGED_IN", message: "This request needs a bearer token." },
        { "www-authenticate": 'Bearer realm="latchkey"' },
      );
    }
    const token = header.length <= MAX_TOKEN_LENGTH ? BEARER.exec(header)?.[1] : undefined;
    const stamps = nextStamps === null ? null : await nextStamps();
    const stamp = stamps?.data ?? null;
    const user = token === undefined ? null : await deps.authenticate(token, stamps?.identity ?? null);
    if (token === undefined || user === null || user.expiresAt * 1000 <= deps.now().getTime()) {
      throw new ApiError(
        401,
        {
          error: "Unauthorized",
          code: "LK_SESSION_EXPIRED",
          message: "The bearer token is malformed, expired or revoked.",
        },
        { "www-authenticate": 'Bearer realm="latchkey", error="invalid_token"' },
      );
    }
    const requestId = request.headers[REQUEST_ID_HEADER];
    if (typeof requestId !== "string" || !isRequestId(requestId)) {
      throw invalid(
        "Every request needs an X-Latchkey-Request-Id header of 22 to 64 base64url characters, new for each request.",
      );
    }
    calls.set(request, { token, user, stamp, requestId });
  });

  api.addHook("onSend", async (request, reply, payload) => {
    void reply.header("cache-control", "no-store");
    const call = calls.get(request);
    if (call === undefined || reply.statusCode < 200 || reply.statusCode > 299) return payload;
    if (typeof payload !== "string" && !Buffer.isBuffer(payload)) {
      // Every route here sends JSON, which fastify has serialized to a string by now; anything else could not
      // be signed over the bytes sent, so it is not sent.
      throw new Error("sync route produced a body that cannot be signed");
    }
    // request.url is the request target exactly as received (path and query), what the client signs as sent.
    const signed = {
      method: request.method,
      path: request.url,
      requestId: call.requestId,
      status: reply.statusCode,
    };
    void reply.header(SIGNATURE_HEADER, signResponse(call.token, signed, payload));
    return payload;
  });

  api.setErrorHandler(async (error: unknown, request, reply) => {
    if (error instanceof ApiError) {
      return reply.code(error.status).headers(error.headers).send(error.body);
    }
    const status = statusOf(error);
    if (status >= 400 && status < 500) {
      // fastify's own 4xx (body too large, bad JSON, wrong content type). Their messages can quote the body
      // (JSON.parse does), so neither the log nor the answer repeats them.
      request.log.info({ event: "sync.request-refused", status, code: codeOf(error) }, "request refused");
      const body: ApiErrorBody = {
        error: status === 413 ? "PayloadTooLargeError" : "ValidationError",
        code: "LK_SERVER_ERROR",
        message:
          status === 413
            ? `The request body is larger than ${request.routeOptions.bodyLimit ?? PUSH_BODY_LIMIT} bytes.`
            : error instanceof JsonBodyRefused
              ? error.message
              : status === 415
                ? "The request body must be application/json."
                : "The request body could not be read as JSON.",
      };
      return reply.code(status).send(body);
    }
    request.log.error({ event: "sync.failed", failure: describeFailure(error) }, "sync request failed");
    const body: ApiErrorBody = {
      error: "InternalError",
      code: "LK_SERVER_ERROR",
      message: "The server failed to handle the request.",
    };
    return reply.code(500).send(body);
  });

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
}

/** A vault id is a UUID, taken in its one spelling (lower case), so one UUID names one vault. */
function parseVaultId(text: string): string {
  if (!isUuid(text)) throw invalid("The vault id must be a UUID.");
  return canonicalVaultId(text);
}

/** The body as `schema` takes it, or a 400 naming the first thing wrong with it (never a value sent). */
function parseBody<T>(schema: WireSchema<T>, body: unknown): T {
  const checked = checkSchema(schema, body);
  if (!checked.ok) throw invalid(checked.message);
  return checked.value;
}

function parseLimit(value: unknown): number {
  if (value === undefined) return MAX_LOG_LIMIT;
  if (typeof value !== "string" || !/^\d{1,3}$/.test(value)) {
    throw invalid(`"limit" must be an integer from 1 to ${MAX_LOG_LIMIT}.`);
  }
  const limit = Number(value);
  if (limit < 1 || limit > MAX_LOG_LIMIT)
    throw invalid(`"limit" must be an integer from 1 to ${MAX_LOG_LIMIT}.`);
  return limit;
}

/**
 * What the log may say about an unexpected failure: names, messages, codes and the stack, never the other
 * fields of a driver's error (PostgreSQL's `detail` can quote the failing row: a blob, a wrapped key).
 */
export function describeFailure(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  const cause: unknown = error.cause;
  return {
    type: error.name,
    message: error.message,
    ...(codeOf(error) === undefined ? {} : { code: codeOf(error) }),
    ...(error.stack === undefined ? {} : { stack: error.stack }),
    ...(cause !== undefined && depth < 3 ? { cause: describeFailure(cause, depth + 1) } : {}),
  };
}

function statusOf(error: unknown): number {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : 500;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

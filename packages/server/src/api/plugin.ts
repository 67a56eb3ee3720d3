/**
 * The /api/v1 layer every slice's API routes share, one copy of it: the bearer token is authenticated before the
 * body is read, every request needs an X-Latchkey-Request-Id, every 2xx answer is signed over its request
 * (method, path, request id), its status and the bytes actually sent (signature.ts), and error answers are
 * unsigned ApiErrorBody values. The browser dashboard's tokens are held to reads and the few writes it needs
 * (DASHBOARD_WRITES). A slice hands its routes to registerApi as an {@link ApiRoutes}; they run inside
 * the one authenticated, signed scope and read the caller, and the step-up proof a route needs, through
 * {@link ApiContext}. Nothing here logs a body, a token or a proof: request logs carry method and path only
 * (logging.ts), and errors are logged by code.
 */
import {
  checkSchema,
  DASHBOARD_CLIENT_ID,
  isRequestId,
  PAIRINGS_PATH,
  REQUEST_ID_HEADER,
  REVOKE_ALL_SESSIONS_PATH,
  SIGNATURE_HEADER,
  STEP_UP_COOKIE_PATH,
  STEP_UP_HEADER,
  type ApiErrorBody,
  type StepUpScope,
  type WireSchema,
} from "@latchkey/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Authenticated } from "../authenticated.js";
import { dataVersionOf, identityVersionOf } from "../db/index.js";
import { createStampBatcher, type ReadStamp } from "../db/read-cache.js";
import type { Database } from "../db/schema.js";
import { JsonBodyRefused } from "../json-body.js";
import { recordStepUpUse } from "./data.js";
import { signResponse } from "./signature.js";
import {
  clearedStepUpCookie,
  stepUpCookie,
  stepUpProofFromCookies,
  verifyStepUpProof,
  type StepUpFactors,
  type StepUpRefusal,
} from "./step-up-proof.js";

/** What the API layer needs. */
export interface ApiDeps {
  db: Kysely<Database>;
  /** `stamp`: the identity version the request took on arrival (read-cache.ts), for the token cache. */
  authenticate: (bearerToken: string, stamp: ReadStamp | null) => Promise<Authenticated | null>;
  now: () => Date;
  /** The key of step-up proofs (IdentityKeys.stepUpKey). */
  stepUpKey: Uint8Array;
  /**
   * Whether the cookies the layer sets are Secure (loopback.ts secureCookies of the public URL, which may be known
   * only once the server listens); default true.
   */
  secureCookies?: () => boolean;
}

/** Who is calling, as the layer established it before any route ran. */
export interface ApiCall {
  /** The bearer token: the key of the answer's signature. Never logged, never stored. */
  token: string;
  /** The token's owner, its client and its OAuth grant (the session). */
  user: Authenticated;
  /**
   * The data version taken when the request arrived, for read caches (db/read-cache.ts); the token cache got the
   * identity version of the same read. A version read after arrival is as good as any later one.
   */
  stamp: ReadStamp | null;
  /** The request's X-Latchkey-Request-Id, echoed into the signed bytes of the answer. */
  requestId: string;
  /**
   * The client's address: fastify's request.ip, which believes X-Forwarded-For only from the proxies TRUST_PROXY
   * names (server.ts). The same address the sign-in limits count, so audit rows and limits agree.
   */
  ip: string;
}

/** A step-up proof that passed every check, not yet spent. Times are seconds since the epoch. */
export interface StepUpGrant {
  jti: string;
  scope: StepUpScope;
  /** How the user re-authenticated (for audit rows). */
  method: StepUpFactors;
  exp: number;
  /** Where the proof came from: the X-Latchkey-Step-Up header, or the browser's step-up cookie. */
  from: "header" | "cookie";
  /**
   * Spends the proof in `trx`, the transaction of the route's write (api/data.ts recordStepUpUse): false when it
   * was spent before, and then the route must write nothing and answer `stepUpRequired(scope, "used")`. A write
   * that rolls back takes the record with it, so the proof stays good.
   */
  record(trx: Kysely<Database>): Promise<boolean>;
}

/** What the layer gives the routes of a slice. */
export interface ApiContext {
  /** The caller of `request`, a request of this scope. */
  call(request: FastifyRequest): ApiCall;
  /**
   * The step-up proof of `request` (the X-Latchkey-Step-Up header) for `scope`: HS256 with the server's key, of
   * the caller's user and session, unexpired. Throws `stepUpRequired` (403 LK_STEP_UP_REQUIRED) otherwise. The
   * route then hands the grant to its service, which calls `record` in its write transaction.
   */
  stepUp(request: FastifyRequest, scope: StepUpScope, options?: StepUpSources): Promise<StepUpGrant>;
  /**
   * Hands `proof` to the browser as the step-up cookie (step-up-proof.ts stepUpCookie: HttpOnly, SameSite=Strict,
   * scoped to PAIRINGS_PATH, for the proof's life) instead of in the answer's body.
   */
  setStepUpCookie(reply: FastifyReply, proof: string): void;
  /** Deletes the step-up cookie, once a route has spent the proof it carried. */
  clearStepUpCookie(reply: FastifyReply): void;
}

/** Where a route takes a step-up proof from besides the X-Latchkey-Step-Up header. */
export interface StepUpSources {
  /**
   * The browser's step-up cookie too, when the request has no header. Only routes under the cookie's path say so:
   * a browser sends it nowhere else.
   */
  cookie?: boolean;
}

/**
 * A slice's routes under /api/v1 (paths start with API_PREFIX). They are registered inside the authenticated,
 * signed scope, with `context` to read the caller through.
 */
export type ApiRoutes = (api: FastifyInstance, context: ApiContext) => void | Promise<void>;

/** Largest body of a route that takes a small one (the default of fastify, 1 MiB, is far more than these need). */
export const SMALL_BODY_LIMIT = 64 * 1024;
/** Longest bearer token looked at; longer ones are malformed. */
const MAX_TOKEN_LENGTH = 4096;

// RFC 6750 §2.1 b64token; the scheme name is case-insensitive (RFC 7235 §2.1).
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** A request refused with an ApiErrorBody: throw it from a route, the layer's error handler sends it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.message);
  }
}

/** A 400 whose message says what is wrong with the request (never quoting a value sent). */
export const invalid = (message: string): ApiError =>
  new ApiError(400, { error: "ValidationError", code: "LK_SERVER_ERROR", message });

/** The body as `schema` takes it, or a 400 naming the first thing wrong with it (never a value sent). */
export function parseBody<T>(schema: WireSchema<T>, body: unknown): T {
  const checked = checkSchema(schema, body);
  if (!checked.ok) throw invalid(checked.message);
  return checked.value;
}

const STEP_UP_WHY: Readonly<Record<StepUpRefusal, string>> = {
  missing: "the request carries none",
  invalid: "the one sent is not a proof this server issued",
  expired: "the one sent has expired",
  "other-action": "the one sent is for another action",
  "other-session": "the one sent was issued to another session",
  used: "the one sent was already used",
};

/**
 * The 403 of a route whose step-up proof is missing or not good for it, naming the scope and why in general terms.
 * Never a 401: that means "your bearer token is bad", and a client would refresh its token and retry.
 */
export const stepUpRequired = (scope: StepUpScope, why: StepUpRefusal): ApiError =>
  new ApiError(403, {
    error: "StepUpRequired",
    code: "LK_STEP_UP_REQUIRED",
    message: `This action needs a fresh step-up proof for "${scope}": ${STEP_UP_WHY[why]}.`,
  });

/**
 * The 429 of an action an account limit refused (api/account-limits.ts): `message` says which limit, and
 * Retry-After when the next one is allowed.
 */
export const rateLimited = (message: string, retryAfterSeconds: number): ApiError =>
  new ApiError(
    429,
    { error: "RateLimitedError", code: "LK_RATE_LIMITED", message },
    { "retry-after": String(retryAfterSeconds) },
  );

/**
 * The 409 of a push or share to a copy with CI whose new version opens with neither the copy's escrow nor the one
 * the request carries (docs/ci.md "Escrow"): nothing was written. The CLI escrows the key it sealed with for the
 * server's current escrow key (GET /api/v1/ci/config) and sends the request again.
 */
export const ciEscrowStale = (): ApiError =>
  new ApiError(409, {
    error: "CiEscrowStaleError",
    code: "LK_CI_ESCROW_STALE",
    message:
      "This vault copy has CI enabled and its escrowed key does not open this version, which carries no escrow for the server's current escrow key that does; nothing was written.",
  });

/**
 * The writes the browser dashboard's token may make, as `METHOD route-pattern`: the dashboard reads (every GET),
 * pairs its browser as the NEW device (create, reveal, consume, revoke; revoke-all of the account's unfinished
 * pairings), mints the step-up cookie those need (its route sets one for `vault:pair` alone) and signs out
 * everywhere. Everything else — pushes, shares, organisation changes, CI, header step-up proofs for any scope,
 * joining or approving a pairing as the device that holds the keys — is the CLI's: one XSS in the dashboard must
 * not be a token that can write. The one list, checked before any route runs.
 */
const DASHBOARD_WRITES: ReadonlySet<string> = new Set([
  `POST ${PAIRINGS_PATH}`,
  `POST ${PAIRINGS_PATH}/:id/reveal`,
  `POST ${PAIRINGS_PATH}/:id/consume`,
  `POST ${PAIRINGS_PATH}/:id/revoke`,
  `POST ${PAIRINGS_PATH}/revoke-all`,
  `POST ${STEP_UP_COOKIE_PATH}`,
  `POST ${REVOKE_ALL_SESSIONS_PATH}`,
]);

/** Whether a token of `clientId` may make `request` (only the dashboard's tokens are limited). */
function clientMayCall(clientId: string, request: FastifyRequest): boolean {
  if (clientId !== DASHBOARD_CLIENT_ID) return true;
  if (request.method === "GET" || request.method === "HEAD") return true;
  return DASHBOARD_WRITES.has(`${request.method} ${request.routeOptions.url ?? ""}`);
}

/** Registers `routes` (each slice's) on `app` inside one authenticated, signed scope. */
export async function registerApi(
  app: FastifyInstance,
  deps: ApiDeps,
  routes: readonly ApiRoutes[],
): Promise<void> {
  await app.register(async (api) => {
    const context = installHooks(api, deps);
    for (const add of routes) await add(api, context);
  });
}

/**
 * What the layer gives the routes of a scope whose callers are not users' sessions (the CI exchange and pull,
 * ci/): each route checks the credential its request presents — a bearer token of its own kind, or a proof in the
 * body — and names it with `signWith`, which keys the answer's signature as a session's token keys the others'.
 */
export interface CredentialContext {
  /** The request's X-Latchkey-Request-Id (checked before the route ran) and the client's address. */
  call(request: FastifyRequest): { requestId: string; ip: string };
  /** The request's bearer token, or undefined when it carries none or a malformed one. */
  bearer(request: FastifyRequest): string | undefined;
  /** Signs the 2xx answer to `request` keyed by `credential`; a 2xx answer without one is not sent. */
  signWith(request: FastifyRequest, credential: string): void;
}

/** A slice's routes in a credential scope (registerCredentialApi). */
export type CredentialRoutes = (api: FastifyInstance, context: CredentialContext) => void | Promise<void>;

/**
 * Registers `routes` on `app` in a scope of their own: the request id is required and answers are signed as in
 * registerApi's scope, but no session's bearer token is looked up — and none is accepted: a route takes only the
 * credential it checks itself, so a session's token is nothing there and the route's credential nothing elsewhere.
 */
export async function registerCredentialApi(
  app: FastifyInstance,
  routes: readonly CredentialRoutes[],
): Promise<void> {
  await app.register(async (api) => {
    const calls = new WeakMap<FastifyRequest, AnswerSigning & { ip: string }>();
    api.addHook("onRequest", (request, _reply, done) => {
      let requestId: string;
      try {
        requestId = requestIdOf(request);
      } catch (err) {
        done(err as ApiError);
        return;
      }
      calls.set(request, { token: undefined, requestId, ip: request.ip });
      done();
    });
    installAnswers(api, (request) => calls.get(request));
    const call = (request: FastifyRequest) => {
      const found = calls.get(request);
      if (found === undefined) throw new Error("API route reached without its request id checked");
      return found;
    };
    const context: CredentialContext = {
      call: (request) => {
        const { requestId, ip } = call(request);
        return { requestId, ip };
      },
      bearer: (request) => bearerOf(request.headers.authorization),
      signWith: (request, credential) => {
        call(request).token = credential;
      },
    };
    for (const add of routes) await add(api, context);
  });
}

/** The token of an Authorization header `Bearer TOKEN`, or undefined when there is none or it is malformed. */
function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined || header.length > MAX_TOKEN_LENGTH) return undefined;
  return BEARER.exec(header)?.[1];
}

/** The request's X-Latchkey-Request-Id, or throws the 400 that asks for one. */
function requestIdOf(request: FastifyRequest): string {
  const requestId = request.headers[REQUEST_ID_HEADER];
  if (typeof requestId !== "string" || !isRequestId(requestId)) {
    throw invalid(
      "Every request needs an X-Latchkey-Request-Id header of 22 to 64 base64url characters, new for each request.",
    );
  }
  return requestId;
}

function installHooks(api: FastifyInstance, deps: ApiDeps): ApiContext {
  const calls = new WeakMap<FastifyRequest, ApiCall>();
  const dataVersion = dataVersionOf(deps.db);
  const identityVersion = identityVersionOf(deps.db);
  const nextStamps =
    dataVersion === null
      ? null
      : createStampBatcher(() => ({ data: dataVersion(), identity: identityVersion?.() ?? null }));

  // Before the body is read: an unauthenticated client cannot make the server parse megabytes.
  api.addHook("onRequest", async (request) => {
    const header = request.headers.authorization;
    if (header === undefined || header === "") {
      throw new ApiError(
        401,
        { error: "Unauthorized", code: "LK_NOT_LOGGED_IN", message: "This request needs a bearer token." },
        { "www-authenticate": 'Bearer realm="latchkey"' },
      );
    }
    const token = bearerOf(header);
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
    const requestId = requestIdOf(request);
    if (!clientMayCall(user.clientId, request)) {
      throw new ApiError(403, {
        error: "Forbidden",
        code: "LK_DASHBOARD_READ_ONLY",
        message:
          "The dashboard's session may read, pair this browser and sign out everywhere, not take this action; nothing was changed. Use the latchkey command line.",
      });
    }
    calls.set(request, { token, user, stamp, requestId, ip: request.ip });
  });

  installAnswers(api, (request) => calls.get(request));

  const call = (request: FastifyRequest): ApiCall => {
    const found = calls.get(request);
    // onRequest has run for every route of this scope; reaching here without a caller is a bug.
    if (found === undefined) throw new Error("API route reached without authentication");
    return found;
  };
  const secure = (): boolean => deps.secureCookies?.() ?? true;
  const stepUp = async (
    request: FastifyRequest,
    scope: StepUpScope,
    sources: StepUpSources = {},
  ): Promise<StepUpGrant> => {
    const { user } = call(request);
    const header = request.headers[STEP_UP_HEADER];
    // Node joins a repeated header into one value, which is then no proof; an array is not one either.
    if (Array.isArray(header)) throw stepUpRequired(scope, "invalid");
    const fromCookie = header === undefined && sources.cookie === true;
    // The cookie is checked exactly as the header is: the bearer's user and session, the scope, the clock.
    const proof = fromCookie ? stepUpProofFromCookies(request.headers.cookie, secure()) : header;
    if (proof === null) throw stepUpRequired(scope, "invalid");
    const verified = await verifyStepUpProof(deps.stepUpKey, proof, {
      scope,
      userId: user.userId,
      grantId: user.grantId,
      now: deps.now(),
    });
    if (!verified.ok) throw stepUpRequired(scope, verified.refusal);
    const { jti, method, exp } = verified.claims;
    return {
      jti,
      scope,
      method,
      exp,
      from: fromCookie ? "cookie" : "header",
      record: (trx) =>
        recordStepUpUse(trx, {
          jti,
          userId: user.userId,
          scope,
          usedAt: deps.now().toISOString(),
          expiresAt: new Date(exp * 1000).toISOString(),
        }),
    };
  };
  return {
    call,
    stepUp,
    setStepUpCookie: (reply, proof) => void reply.header("set-cookie", stepUpCookie(proof, secure())),
    clearStepUpCookie: (reply) => void reply.header("set-cookie", clearedStepUpCookie(secure())),
  };
}

/** What the answer to a request is signed with: the credential it presented, and its request id. */
interface AnswerSigning {
  /** Undefined until the route names it (a credential scope's route calls signWith). */
  token: string | undefined;
  requestId: string;
}

/**
 * The answers of a scope: every 2xx answer signed over its request with `signing(request)` (signature.ts), error
 * answers unsigned ApiErrorBody values, fastify's own 4xx without quoting the body, and other failures logged by
 * name and answered with a bare 500.
 */
function installAnswers(
  api: FastifyInstance,
  signing: (request: FastifyRequest) => AnswerSigning | undefined,
): void {
  api.addHook("onSend", async (request, reply, payload) => {
    void reply.header("cache-control", "no-store");
    const call = signing(request);
    if (call === undefined || reply.statusCode < 200 || reply.statusCode > 299) return payload;
    // A 2xx answer of a scope whose route named no key to sign it with is a bug: it is not sent.
    if (call.token === undefined) throw new Error("API route answered without naming its credential");
    if (typeof payload !== "string" && !Buffer.isBuffer(payload)) {
      // Every route here sends JSON, which fastify has serialized to a string by now; anything else could not
      // be signed over the bytes sent, so it is not sent.
      throw new Error("API route produced a body that cannot be signed");
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
      request.log.info({ event: "api.request-refused", status, code: codeOf(error) }, "request refused");
      const body: ApiErrorBody = {
        error: status === 413 ? "PayloadTooLargeError" : "ValidationError",
        code: "LK_SERVER_ERROR",
        message:
          status === 413
            ? `The request body is larger than ${request.routeOptions.bodyLimit ?? request.server.initialConfig.bodyLimit} bytes.`
            : error instanceof JsonBodyRefused
              ? error.message
              : status === 415
                ? "The request body must be application/json."
                : "The request body could not be read as JSON.",
      };
      return reply.code(status).send(body);
    }
    request.log.error({ event: "api.failed", failure: describeFailure(error) }, "API request failed");
    const body: ApiErrorBody = {
      error: "InternalError",
      code: "LK_SERVER_ERROR",
      message: "The server failed to handle the request.",
    };
    return reply.code(500).send(body);
  });
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

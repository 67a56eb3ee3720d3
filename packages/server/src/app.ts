/**
 * The HTTP application: routes and hooks, built from injected dependencies so tests run it in-process with
 * `app.inject` (DESIGN.md: no sockets in route tests). main.ts adds the process around it: the listener,
 * signals, the secret and the real logger.
 */
import { randomBytes as cryptoRandomBytes } from "node:crypto";
import { OIDC_PATH } from "@latchkey/core";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from "fastify";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";
import { accountRoutes } from "./account/routes.js";
import { registerApi, registerCredentialApi, type ApiRoutes } from "./api/plugin.js";
import type { CiIssuer } from "./ci/issuers.js";
import type { CiFetch } from "./ci/jwks.js";
import {
  CI_EXCHANGE_FIRST_DELAY_MS,
  CI_EXCHANGE_FREE_FAILURES,
  CI_EXCHANGE_MAX_DELAY_MS,
  type CiExchangeLimiter,
} from "./ci/exchange-service.js";
import { ciJobRoutes } from "./ci/job-routes.js";
import { createCiTokenVerifier } from "./ci/verify.js";
import { ciPolicyRoutes } from "./ci/policies-routes.js";
import { removeMemberPolicies, removeOrgCopyPolicies, type OrgCopyAccess } from "./ci/policies-service.js";
import type { Database } from "./db/schema.js";
import { defaultDashboardDir } from "./dashboard/files.js";
import { registerDashboard } from "./dashboard/routes.js";
import { migrationsCurrent } from "./db/migrations.js";
import type { EscrowKey } from "./escrow-key.js";
import type { Identity } from "./identity/identity.js";
import { beginAttempt, limitAddress } from "./identity/rate-limit.js";
import { registerJsonBodyParser } from "./json-body.js";
import { OneLinePerRequest } from "./logging.js";
import { secureCookies } from "./loopback.js";
import type { Metrics } from "./metrics.js";
import { timeOrderedId } from "./db/ids.js";
import { deleteUserKeys, listMemberCopies, listUserKeys, orgNoticeRecipients } from "./orgs/data.js";
import { orgRoutes } from "./orgs/routes.js";
import { organisationAccess } from "./orgs/service.js";
import { sharingNotices } from "./outbox/service.js";
import { revokeAllPairings } from "./pairing/data.js";
import { pairingRoutes } from "./pairing/routes.js";
import { platformRoutes } from "./platforms/routes.js";
import {
  removeOrgCopyConnections,
  resealOrgCopyConnections,
  type PlatformOrgAccess,
} from "./platforms/service.js";
import { sessionRoutes } from "./sessions/routes.js";
import { findSharingKeys } from "./sharing-keys/data.js";
import { sharingKeyRoutes } from "./sharing-keys/routes.js";
import type { SharingKeyServiceDeps } from "./sharing-keys/service.js";
import { stepUpRoutes } from "./step-up/routes.js";
import { syncRoutes } from "./sync/routes.js";
import type { SyncWrites } from "./sync/service.js";

/** What the application needs from the outside. */
export interface AppDeps {
  db: Kysely<Database>;
  /** Accounts, the OpenID provider under /oidc and bearer-token authentication (identity/identity.ts). */
  identity: Identity;
  /**
   * The server's escrow key (escrow-key.ts): what CI escrows are wrapped for. Every app on one database needs the
   * same one (server.ts records it in the database and refuses another). Absent, as in tests of other parts: no CI
   * policy routes, and a push to a copy with a policy is refused (vault-copies.ts).
   */
  escrowKey?: EscrowKey;
  /** The clock and id source of the API routes (defaults: the system clock, time-ordered UUIDs). */
  now?: () => Date;
  randomId?: () => string;
  /** Random bytes of the API routes (step-up proof ids, pairing codes); default node:crypto's CSPRNG. */
  randomBytes?: (n: number) => Uint8Array;
  /** The migrations /readyz expects to have run; defaults to every migration this server ships. */
  migrations?: Readonly<Record<string, Migration>>;
  /** Logger options (see logging.ts); false or absent logs nothing, as in route tests. */
  logger?: FastifyServerOptions["logger"];
  /** How long /readyz waits for the database before answering 503. */
  readinessTimeoutMs?: number;
  /**
   * The proxies whose X-Forwarded-For/-Proto are believed (server.ts TrustProxy): addresses, ranges or range
   * names. The client IP of the sign-in limits is then the nearest one that is not a trusted proxy, never the
   * left-most entry, which the client writes itself. Absent or empty: the peer's address.
   */
  trustProxy?: readonly string[];
  /** Where the sync routes' writes run when not in this thread (server.ts: the writer thread on SQLite). */
  syncWrites?: SyncWrites;
  /**
   * The CI platforms whose OIDC tokens the CI routes accept (server.ts, CI_OIDC_ISSUERS); absent: none. The only
   * way an issuer is trusted: tests add their loopback issuer here, never through a request.
   */
  ciIssuers?: readonly CiIssuer[];
  /** The server's outbound fetch (the CI issuers' discovery documents and keys); default globalThis.fetch. */
  fetch?: CiFetch;
  /**
   * The built browser dashboard served under /dashboard/ (dashboard/files.ts): default, packages/web/dist found
   * through the workspace package; null, none (a 503 page says how to build it).
   */
  dashboardDir?: string | null;
  /** The process's metrics (metrics.ts, --metrics-listen): every answer is counted there. Absent: none. */
  metrics?: Metrics;
  /**
   * Adds test-only routes. Only tests pass it (in-process, or the process tests' own entry through run-process.ts);
   * the shipped entry has no way to.
   */
  testRoutes?: TestRoutes;
}

/**
 * Adds test-only routes: on `app` itself, or through `api` inside the authenticated, signed /api/v1 scope
 * (api/plugin.ts), where they read the caller and its step-up proofs as a slice's routes do.
 */
export type TestRoutes = (app: FastifyInstance, api: (routes: ApiRoutes) => void) => void;

/** Body of a 503 from /readyz: why the server is not ready. */
export interface NotReady {
  status: "unavailable";
  reason: "database_unreachable" | "migrations_pending";
  message: string;
}

const DEFAULT_READINESS_TIMEOUT_MS = 2_000;

interface FrameworkErrorAnswer {
  statusCode: number;
  error: string;
  message: string;
}

/** The answers to fastify's routing errors: what went wrong, never the request target itself. */
const FRAMEWORK_ERRORS: Readonly<Record<string, FrameworkErrorAnswer | undefined>> = {
  FST_ERR_BAD_URL: { statusCode: 400, error: "Bad Request", message: "The request path is not a valid URL." },
  FST_ERR_MAX_PARAM_LENGTH: {
    statusCode: 414,
    error: "URI Too Long",
    message: "A segment of the request path is too long.",
  },
};
const OTHER_FRAMEWORK_ERROR: FrameworkErrorAnswer = {
  statusCode: 500,
  error: "Internal Server Error",
  message: "The server failed to handle the request.",
};

/** The notices of changes to sharing, with their recipients read from the organisations' tables. */
const NOTICES = sharingNotices(orgNoticeRecipients);

/**
 * What a sharing-key rotation needs of other slices, wired here so that the sharing-keys slice imports none: the
 * organisations' wrapped keys of the account (orgs/data.ts) and the notices (outbox/service.ts).
 */
export const SHARING_KEY_HOOKS: Pick<SharingKeyServiceDeps, "wrappedKeys" | "onRotated"> = {
  wrappedKeys: { list: listUserKeys, delete: deleteUserKeys },
  onRotated: (trx, rotated) =>
    NOTICES.queue(
      trx,
      {
        type: "sharing-key-rotated",
        account: rotated.email,
        at: rotated.at,
        orgs: rotated.orgs.map((org) => org.slug),
      },
      rotated.orgs.map((org) => org.orgId),
    ),
};

/**
 * Who may act on an organisation's copy for the CI slice: the organisations' permission table, so that the CI
 * slice imports none of theirs.
 */
const CI_ORG_ACCESS: OrgCopyAccess = async (db, userId, slug, need, lockAt) => {
  const found = await organisationAccess(
    db,
    userId,
    slug,
    need === "read" ? "vault.ci.read" : "vault.ci.manage",
    lockAt,
  );
  return "kind" in found ? found : { orgId: found.org.id, slug: found.org.slug };
};

/** What goes with an organisation's copies when they go: their CI policies and their platform connections. */
function copiesRemoved(randomId: () => string) {
  const policies = removeOrgCopyPolicies(randomId);
  const connections = removeOrgCopyConnections(randomId);
  return async (trx: Kysely<Database>, event: Parameters<typeof policies>[1]): Promise<void> => {
    await policies(trx, event);
    await connections(trx, event);
  };
}

const PLATFORM_ACTIONS = {
  read: "vault.platforms.read",
  record: "vault.platforms.record",
  manage: "vault.platforms.manage",
} as const;

const PLATFORM_ORG_ACCESS: PlatformOrgAccess = async (db, userId, slug, need, lockAt) => {
  const found = await organisationAccess(db, userId, slug, PLATFORM_ACTIONS[need], lockAt);
  return "kind" in found ? found : { orgId: found.org.id, slug: found.org.slug };
};

/** Builds the application; call `listen` (main.ts) or `inject` (tests) on the result. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ?? false,
    logController: new OneLinePerRequest(),
    // A client behind a proxy that stops reading must not hold a request forever.
    requestTimeout: 60_000,
    trustProxy: deps.trustProxy === undefined || deps.trustProxy.length === 0 ? false : [...deps.trustProxy],
    // fastify's own answers to a URL it cannot route (bad percent-encoding, an over-long path segment) quote the
    // whole request target, query string included, where OAuth codes and tokens travel.
    frameworkErrors: (error, _request, reply) => {
      const answer = FRAMEWORK_ERRORS[error.code] ?? OTHER_FRAMEWORK_ERROR;
      // The reply's generic route types know no status codes here; the answer is plain JSON.
      void (reply as FastifyReply).code(answer.statusCode).send(answer);
    },
  });
  registerJsonBodyParser(app);
  deps.metrics?.instrument(app);

  // Once the server is closing, a response ends its connection: Node closes only the connections that are idle
  // at the moment the listener closes, so a keep-alive connection whose request was still in flight would
  // otherwise hold the process open until its keep-alive timeout.
  let closing = false;
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  app.addHook("onSend", async (_request, reply, payload) => {
    if (closing) void reply.header("connection", "close");
    return payload;
  });

  // Process liveness only: nothing here touches the database, so a slow database does not get the process
  // restarted by an orchestrator that probes /healthz.
  app.get("/healthz", async (_request, reply) => {
    await reply.header("cache-control", "no-store").send({ status: "ok" });
  });

  app.get("/readyz", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    let current: boolean;
    try {
      current = await withTimeout(
        migrationsCurrent(deps.db, deps.migrations),
        deps.readinessTimeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS,
      );
    } catch (err) {
      request.log.warn({ err }, "readiness check: database unreachable");
      const body: NotReady = {
        status: "unavailable",
        reason: "database_unreachable",
        message: "The database did not answer.",
      };
      return reply.code(503).send(body);
    }
    if (!current) {
      const body: NotReady = {
        status: "unavailable",
        reason: "migrations_pending",
        message: "The database schema is older than this server; migrations have not run.",
      };
      return reply.code(503).send(body);
    }
    return reply.send({ status: "ready" });
  });

  // Fastify's own 404 handler logs and echoes the full URL, query string included; OAuth codes and tokens travel
  // there, so this one names the path alone.
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split("?", 1)[0] ?? "";
    await reply.code(404).send({
      statusCode: 404,
      error: "Not Found",
      message: `No route for ${request.method} ${path}`,
    });
  });

  deps.identity.register(app);
  registerDashboard(app, {
    dir: deps.dashboardDir === undefined ? defaultDashboardDir() : deps.dashboardDir,
  });
  const now = deps.now ?? (() => new Date());
  const randomId = deps.randomId ?? (() => timeOrderedId());
  const randomBytes = deps.randomBytes ?? ((n: number) => new Uint8Array(cryptoRandomBytes(n)));
  // Known once the issuer is (server.ts may set it only when listening on --port 0).
  const publicUrl = (): string | undefined => deps.identity.issuer?.slice(0, -OIDC_PATH.length);
  const apiRoutes: ApiRoutes[] = [
    syncRoutes({
      db: deps.db,
      now,
      randomId,
      escrowKey: deps.escrowKey,
      orgCopies: listMemberCopies,
      ...(deps.syncWrites ? { writes: deps.syncWrites } : {}),
    }),
    accountRoutes({ db: deps.db }),
    stepUpRoutes({
      db: deps.db,
      now,
      randomId,
      randomBytes,
      stepUpKey: deps.identity.keys.stepUpKey,
      reauthentication: deps.identity.reauthentication,
    }),
    sessionRoutes({ db: deps.db, now, randomId, revokePairings: revokeAllPairings }),
    pairingRoutes({ db: deps.db, now, randomId, randomBytes }),
    sharingKeyRoutes({ db: deps.db, now, randomId, ...SHARING_KEY_HOOKS }),
    orgRoutes({
      db: deps.db,
      now,
      randomId,
      sharingKeys: findSharingKeys,
      onMemberRemoved: NOTICES.memberRemoved,
      onMemberAdded: NOTICES.memberAdded,
      onCopiesRemoved: copiesRemoved(randomId),
      onCopyResealed: resealOrgCopyConnections(randomId),
      memberCiPolicies: removeMemberPolicies(randomId),
      escrowKey: deps.escrowKey,
    }),
    platformRoutes({ db: deps.db, now, randomId, orgAccess: PLATFORM_ORG_ACCESS }),
  ];
  if (deps.escrowKey !== undefined) {
    apiRoutes.push(
      ciPolicyRoutes({
        db: deps.db,
        now,
        randomId,
        escrowKey: deps.escrowKey,
        issuers: deps.ciIssuers ?? [],
        orgAccess: CI_ORG_ACCESS,
        publicUrl,
      }),
    );
  }
  if (deps.testRoutes) {
    deps.testRoutes(app, (routes) => apiRoutes.push(routes));
  }
  // Registered as a plugin so the API layer's hooks and parsers stay its own; fastify loads it before listen (or
  // the first inject).
  void registerApi(
    app,
    {
      db: deps.db,
      authenticate: (token, stamp) => deps.identity.authenticate(token, stamp),
      now,
      stepUpKey: deps.identity.keys.stepUpKey,
      secureCookies: () => secureCookies(publicUrl()),
    },
    apiRoutes,
  );
  if (deps.escrowKey !== undefined) {
    // The CI job's exchange and pull: a scope of their own, where no session's token is taken.
    void registerCredentialApi(app, [
      ciJobRoutes({
        db: deps.db,
        now,
        randomId,
        randomBytes,
        verifier: createCiTokenVerifier({
          issuers: deps.ciIssuers ?? [],
          fetch: deps.fetch ?? ((url, init) => fetch(url, init)),
          now,
        }),
        accessKey: deps.identity.keys.ciAccessKey,
        escrowKey: deps.escrowKey,
        limiter: ciExchangeLimiter(deps.db, now, randomId),
      }),
    ]);
  }

  return app;
}

/**
 * The CI exchange's limit on refused exchanges per client address, counted by the sign-in limiter
 * (identity/rate-limit.ts, in the database for every process) under an account name of the address's own that no
 * email can be. Its failures also count toward the address's hourly ceiling of refused sign-ins.
 */
function ciExchangeLimiter(db: Kysely<Database>, now: () => Date, randomId: () => string): CiExchangeLimiter {
  const delay = {
    free: CI_EXCHANGE_FREE_FAILURES,
    firstDelayMs: CI_EXCHANGE_FIRST_DELAY_MS,
    maxDelayMs: CI_EXCHANGE_MAX_DELAY_MS,
  };
  // One account per address: the per-account rules then count that address alone, and need no higher ceiling.
  const limits = { pair: delay, account: { ...delay, newAddresses: 10_000, ceiling: 10_000 } };
  return {
    begin: (ip) => beginAttempt({ db, now, randomId, limits }, `ci exchange ${limitAddress(ip)}`, ip),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
